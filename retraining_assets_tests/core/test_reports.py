"""Reports under the artifact root, local or on object storage, and the report server: report
files one click away, and nothing else."""

from pathlib import Path

import boto3
import pytest

from retraining_assets.core.reports import published, report_url, reports_root, write_report
from retraining_assets.settings import Settings
from retraining_assets_tests import s3_server
from retraining_assets_tests.reports_client import serving_reports

s3_endpoint, bucket = s3_server.s3_endpoint, s3_server.bucket  # the shared fixtures
PAGE = "<html><body>drift in income</body></html>"


def _local(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / ".retrain")


def test_a_report_link_opens_the_report_file(tmp_path: Path) -> None:
    settings = _local(tmp_path)
    folder = reports_root(settings) / "demo" / "2024-03-01"
    with published(folder) as scratch:
        (scratch / "drift report.html").write_text(PAGE)
    report = folder / "drift report.html"
    # a plain local file under the (default) artifact root, readable without any server
    assert report == tmp_path / ".retrain" / "artifacts" / "reports" / "demo" / "2024-03-01" / (
        "drift report.html"
    )
    assert report.read_text() == PAGE
    url = report_url("http://reports.example:3001/", reports_root(settings), report)
    assert url == "http://reports.example:3001/reports/demo/2024-03-01/drift%20report.html"
    with serving_reports(settings) as get:
        page = get(url)
        assert page.status_code == 200 and "drift in income" in page.text
        assert page.headers["content-type"].startswith("text/html")


def test_only_report_files_are_served(tmp_path: Path) -> None:
    settings = _local(tmp_path)
    (reports_root(settings) / "demo").mkdir(parents=True)
    (settings.artifact_path / "platform.db").write_text("secret")
    with serving_reports(settings) as get:
        for path in ("/reports/", "/reports/demo/", "/platform.db", "/reports/../platform.db",
                     "/reports/%2e%2e/platform.db", "/reports/demo/missing.html",
                     "/reports/demo/..%2f..%2fplatform.db"):  # fmt: skip
            response = get(f"http://x{path}")
            assert response.status_code == 404, path
            assert "secret" not in response.text


def test_a_file_outside_the_report_folder_has_no_link(tmp_path: Path) -> None:
    settings = _local(tmp_path)
    with pytest.raises(ValueError, match=r"platform.db is not under the report folder"):
        report_url("http://127.0.0.1:3001", reports_root(settings), tmp_path / "platform.db")


def test_a_report_that_fails_to_render_is_not_written(tmp_path: Path) -> None:
    folder = reports_root(_local(tmp_path)) / "demo" / "2024-03-01"
    with pytest.raises(RuntimeError, match="plot failed"), published(folder) as scratch:
        (scratch / "drift.html").write_text(PAGE)
        raise RuntimeError("plot failed")
    assert not folder.exists()


def test_reports_on_object_storage_are_written_to_the_bucket_and_served_from_it(
    tmp_path: Path, bucket: str
) -> None:
    settings = Settings(home=tmp_path / ".retrain", artifact_root=f"s3://{bucket}/prod")
    folder = reports_root(settings) / "demo" / "2024-03-01"
    with published(folder) as scratch:
        (scratch / "drift.html").write_text(PAGE)
        (scratch / "drift.png").write_bytes(b"\x89PNG fake")
    objects = boto3.client("s3").list_objects_v2(Bucket=bucket)["Contents"]
    assert sorted(item["Key"] for item in objects) == [
        "prod/reports/demo/2024-03-01/drift.html",
        "prod/reports/demo/2024-03-01/drift.png",
    ]
    assert not (tmp_path / ".retrain").exists()  # nothing went to the local machine
    url = report_url(settings.reports_url, reports_root(settings), folder / "drift.html")
    assert url == f"{settings.reports_url}/reports/demo/2024-03-01/drift.html"
    with serving_reports(settings) as get:  # a report server on another machine reads it
        page = get(url)
        assert page.status_code == 200 and page.text == PAGE
        assert page.headers["content-type"].startswith("text/html")
        assert get(url.replace("drift.html", "drift.png")).content == b"\x89PNG fake"
        assert get(url.replace("drift.html", "missing.html")).status_code == 404
        assert get(f"{settings.reports_url}/reports/demo/").status_code == 404


def test_one_report_file_goes_to_a_path_or_a_bucket_url(tmp_path: Path, bucket: str) -> None:
    """What `retrain drift --html/--png` write with: a local path or an s3:// URL."""
    local = write_report(tmp_path / "out" / "r.html", lambda path: path.write_text(PAGE))
    assert local == tmp_path / "out" / "r.html" and local.read_text() == PAGE
    remote = write_report(f"s3://{bucket}/cli/r.html", lambda path: path.write_text(PAGE))
    assert str(remote) == f"s3://{bucket}/cli/r.html"
    body = boto3.client("s3").get_object(Bucket=bucket, Key="cli/r.html")["Body"].read()
    assert body.decode() == PAGE
