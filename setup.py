"""Kept for tools that still look for it; the project is configured in pyproject.toml."""

from setuptools import setup

setup()
