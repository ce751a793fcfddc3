"""The code location: every configured pipeline (the demo, and yours when configured)."""

from __future__ import annotations

import dagster as dg

from retraining_assets.core.pipeline import Pipeline, configured_pipelines
from retraining_assets.defs.factory import build_pipeline_defs
from retraining_assets.settings import Settings, load_settings


def build_definitions(
    settings: Settings, pipelines: list[Pipeline] | None = None
) -> dg.Definitions:
    pipelines = pipelines if pipelines is not None else configured_pipelines(settings)
    return dg.Definitions.merge(*(build_pipeline_defs(pipeline) for pipeline in pipelines))


defs = build_definitions(load_settings())
