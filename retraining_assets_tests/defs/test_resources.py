"""The resources: one key per kind, every pipeline's records behind one ``records`` key."""

from __future__ import annotations

import pytest

from retraining_assets.core.pipeline import Pipeline
from retraining_assets.core.sources import SqlRecordSource
from retraining_assets.definitions import build_definitions
from retraining_assets.defs.resources import RecordsResource


def test_the_records_resource_returns_each_pipelines_source(seeded_demo: Pipeline) -> None:
    defs = build_definitions(seeded_demo.settings, [seeded_demo])
    assert set(defs.resources) == {"platform", "notifier", "records", "clock", "io_manager"}
    source = defs.resources["records"].source("demo")
    assert isinstance(source, SqlRecordSource) and source.table == "demo_records"
    assert source.count() == seeded_demo.source.count()


def test_an_unknown_pipeline_is_named_with_the_configured_ones(seeded_demo: Pipeline) -> None:
    records = RecordsResource.of([seeded_demo])
    with pytest.raises(
        KeyError, match="no record source for pipeline 'loans' \\(configured: demo\\)"
    ):
        records.source("loans")
