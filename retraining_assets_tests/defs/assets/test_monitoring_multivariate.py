"""The drift_report asset carries the multivariate scores, through the real definitions."""

import dagster as dg
import pytest

from retraining_assets.core.demo import ABRUPT
from retraining_assets.core.pipeline import demo_pipeline
from retraining_assets.definitions import build_definitions
from retraining_assets_tests.defs.assets.test_monitoring import DRIFT_KEY, STREAM


@pytest.fixture
def monitored(settings, platform_db):
    STREAM.seed_database(platform_db)
    defs = build_definitions(settings, [demo_pipeline(settings, STREAM)])
    with dg.instance_for_test() as instance:
        defs.resolve_job_def("demo_reference_job").execute_in_process(instance=instance)
        yield defs, instance


def _metadata(defs, instance, offset: int) -> dict:
    result = defs.resolve_job_def("demo_monitoring_job").execute_in_process(
        instance=instance, partition_key=STREAM.partition_key(offset)
    )
    assert result.success
    return instance.get_latest_materialization_event(DRIFT_KEY).asset_materialization.metadata


def test_drift_report_metadata_has_the_multivariate_scores(monitored) -> None:
    defs, instance = monitored
    stable = _metadata(defs, instance, 4)
    abrupt = _metadata(defs, instance, ABRUPT.first_offset)
    for metadata in (stable, abrupt):
        assert 0.0 <= metadata["multivariate_auc"].value <= 1.0
        assert 0.0 <= metadata["multivariate_p_value"].value <= 1.0
        assert metadata["reconstruction_lower"].value <= metadata["reconstruction_upper"].value
        assert "Domain classifier:" in metadata["report"].value
    assert abrupt["multivariate_drift"].value is True
    assert abrupt["multivariate_auc"].value > stable["multivariate_auc"].value
    ranked = [name for name, _ in abrupt["multivariate_features"].value]  # largest first
    shares = [share for _, share in abrupt["multivariate_features"].value]
    assert shares == sorted(shares, reverse=True)
    assert ranked[0] in {"utilization", "channel", "credit_score", "income", "loan_amount"}
