"""The drift report: JSON round trip and schema, HTML, PNG and markdown outputs."""

from __future__ import annotations

import json
import re
from xml.etree import ElementTree

import numpy as np
import pandas as pd
from PIL import Image

from retraining_assets.core.drift import DriftReport, detect_drift
from retraining_assets.core.drift.comparison import FEATURE_KEYS
from retraining_assets.core.drift.plots import MAX_SUMMARY_FEATURES, summary_features
from retraining_assets_tests.core.drift.frames import frames


def test_report_json_round_trip_and_schema() -> None:
    ref, cur = frames()
    report = detect_drift(ref, cur)
    data = json.loads(report.to_json())
    assert data == report.to_dict()
    for key in ("dataset_drift", "n_reference", "n_current", "features", "drifted_features",
                "null_rates", "unseen", "prediction_drift", "target_drift", "warnings",
                "thresholds", "profile_hash"):  # fmt: skip
        assert key in data
    assert data["n_reference"] == data["n_current"] == 4000
    numeric, categorical = data["features"]["scale"], data["features"]["color"]
    for entry in (numeric, categorical):
        assert set(FEATURE_KEYS) <= set(entry)
    assert numeric["chi2_pvalue"] is None and numeric["ks_statistic"] is not None
    assert categorical["ks_statistic"] is None and categorical["chi2_pvalue"] is not None
    assert DriftReport.from_dict(data).to_dict() == data
    assert DriftReport.from_json(report.to_json()) == DriftReport.from_dict(data)
    assert data["thresholds"]["psi_alert"] == 0.2


def test_html_and_png_outputs(tmp_path) -> None:
    ref, cur = frames()
    report = detect_drift(ref, cur)
    html_path = report.to_html(tmp_path / "report.html")
    text = html_path.read_text()
    assert text.count("<img") == 1 and "data:image/png;base64," in text  # the summary
    svgs = re.findall(r"<svg.*?</svg>", text, flags=re.S)
    assert len(svgs) == len(report.features)  # one distribution plot per feature
    for (name, entry), svg in zip(report.features.items(), svgs, strict=True):
        root = ElementTree.fromstring(svg)  # well-formed: labels and names are escaped
        assert root.findtext("{http://www.w3.org/2000/svg}title").startswith(str(name))
        assert ("DRIFT" in svg) == bool(entry["drifted"])
        histogram = entry["histogram"]
        if histogram and histogram["type"] == "numeric":  # a bar per bin and series + legend
            bins = len(histogram["edges"]) - 1
            assert len(root.findall("{http://www.w3.org/2000/svg}rect")) == 2 * bins + 2
    png = report.plot_summary(tmp_path / "summary.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5_000
    assert summary_features(report) == list(report.features)  # a narrow table: every feature
    markdown = report.to_markdown()
    assert all(f"| {name} |" in markdown for name in report.features)


def test_a_wide_tables_summary_plots_its_most_drifted_features(tmp_path) -> None:
    rng = np.random.default_rng(0)
    reference = pd.DataFrame(rng.normal(size=(2000, 120)), columns=[f"f{i}" for i in range(120)])
    current = pd.DataFrame(rng.normal(size=(2000, 120)), columns=reference.columns)
    shifted = [f"f{i}" for i in (3, 50, 119)]
    current[shifted] += 1.0
    report = detect_drift(reference, current)
    kept = summary_features(report, limit=10)
    assert len(kept) == 10 and set(shifted) <= set(kept)
    assert kept == [name for name in reference.columns if name in kept]  # the report's order
    assert len(summary_features(report)) == MAX_SUMMARY_FEATURES
    png = Image.open(report.plot_summary(tmp_path / "summary.png"))
    assert png.height < 1_500  # 40 rows of bars (~1,130 pixels), not 120 (~3,150)
    markdown = report.to_markdown()
    assert all(f"| {name} |" in markdown for name in reference.columns)  # every feature
