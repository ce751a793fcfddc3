"""The report server: report files one click away, and nothing else."""

from pathlib import Path

import pytest

from retraining_assets.core.reports import report_url, reports_root
from retraining_assets_tests.reports_client import serving_reports


def test_a_report_link_opens_the_report_file(tmp_path: Path) -> None:
    report = reports_root(tmp_path) / "demo" / "2024-03-01" / "drift report.html"
    report.parent.mkdir(parents=True)
    report.write_text("<html><body>drift in income</body></html>")
    url = report_url("http://reports.example:3001/", tmp_path, report)
    assert url == "http://reports.example:3001/reports/demo/2024-03-01/drift%20report.html"
    with serving_reports(tmp_path) as get:
        page = get(url)
        assert page.status_code == 200 and "drift in income" in page.text
        assert page.headers["content-type"].startswith("text/html")


def test_only_report_files_are_served(tmp_path: Path) -> None:
    (reports_root(tmp_path) / "demo").mkdir(parents=True)
    (tmp_path / "platform.db").write_text("secret")
    with serving_reports(tmp_path) as get:
        for path in ("/reports/", "/reports/demo/", "/platform.db", "/reports/../platform.db",
                     "/reports/%2e%2e/platform.db", "/reports/demo/missing.html"):  # fmt: skip
            response = get(f"http://x{path}")
            assert response.status_code == 404, path
            assert "secret" not in response.text


def test_a_file_outside_the_report_folder_has_no_link(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"platform.db is not under the report folder"):
        report_url("http://127.0.0.1:3001", tmp_path, tmp_path / "platform.db")
