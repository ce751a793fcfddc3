"""The production path: a real materialization with PostgreSQL instance storage, using the
project's deploy/dagster.yaml, read back from the instance."""

import shutil
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from retraining_assets.definitions import build_definitions

ROOT = Path(__file__).parents[2]


@pytest.mark.postgres
def test_materialization_recorded_in_postgres_instance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_database: str, seeded_demo
) -> None:
    url = sa.engine.make_url(postgres_database)
    monkeypatch.setenv("DAGSTER_PG_USERNAME", url.username or "postgres")
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", url.password or "")
    monkeypatch.setenv("DAGSTER_PG_HOST", url.host or "127.0.0.1")
    monkeypatch.setenv("DAGSTER_PG_DB", url.database)
    shutil.copy(ROOT / "deploy" / "dagster.yaml", tmp_path / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    try:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        defs = build_definitions(seeded_demo.settings, [seeded_demo])
        reference = defs.resolve_job_def("demo_reference_job").execute_in_process(instance=instance)
        month = defs.resolve_job_def("demo_monitoring_job").execute_in_process(
            instance=instance, partition_key="2024-02-01"
        )
        assert reference.success and month.success

        run = instance.get_run_by_id(month.run_id)
        assert run.status == dg.DagsterRunStatus.SUCCESS
        assert run.tags["dagster/partition"] == "2024-02-01"
        event = instance.get_latest_materialization_event(dg.AssetKey(["demo", "current_data"]))
        assert event.run_id == month.run_id
        assert event.asset_materialization.metadata["dagster/row_count"].value > 0
        # and the rows really are in PostgreSQL, not in a local file
        with sa.create_engine(postgres_database).connect() as connection:
            runs = connection.execute(sa.text("SELECT count(*) FROM runs")).scalar()
        assert runs == 2
    finally:
        instance.dispose()
