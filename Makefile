# The two set-up commands of the README: `make demo` and `make test`. Both create or reuse a
# local virtualenv and install the project first.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
# torch: the CPU wheel first, so the dependency resolver never pulls a multi-GB CUDA build.
# Elsewhere: TORCH_INDEX="--index-url https://download.pytorch.org/whl/cpu" make demo
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
# Two cores: one BLAS/OpenMP thread per process is the fast setting (11.7 s -> 0.5 s measured).
export OMP_NUM_THREADS ?= 1
export GX_ANALYTICS_ENABLED := false
export RETRAIN_HOME ?= $(CURDIR)/.retrain
export DAGSTER_HOME ?= $(RETRAIN_HOME)/dagster

.PHONY: install demo demo-serve test dev lint clean

$(VENV)/.installed: pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_INDEX) "$(TORCH_SPEC)"
	# the pin again: without it this resolution replaced the CPU wheel by torch 2.14.1 and its
	# CUDA libraries (7.1 GB venv, seen 2026-12-07)
	$(PY) -m pip install --quiet -e ".[dev]" "$(TORCH_SPEC)"
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/retrain demo

demo-serve: install
	$(VENV)/bin/retrain demo --serve

test: install
	$(PY) -m pytest -q -n 2 --dist loadfile --durations=25

# From the instance folder: Dagster reads its dagster.yaml there, and the root one (the same
# local instance, for a bare `dagster dev`) is not reported as ignored.
# The report server (RETRAIN_REPORTS_URL) runs beside it, so report links open in one click.
dev: install
	$(VENV)/bin/retrain init
	$(PY) -m retraining_assets.reports & reports=$$!; trap 'kill $$reports' EXIT; \
	cd "$(DAGSTER_HOME)" && $(abspath $(VENV))/bin/dagster dev -w "$(CURDIR)/workspace.yaml"

lint: install
	$(VENV)/bin/ruff check retraining_assets retraining_assets_tests benchmarks

clean:
	rm -rf $(RETRAIN_HOME)
