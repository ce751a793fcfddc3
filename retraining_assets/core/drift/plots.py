"""Plots and the self-contained HTML page of a :class:`~retraining_assets.core.drift.DriftReport`.

Drawn only from the counts kept in the report (no raw data). Uses matplotlib's object API with
the Agg canvas, so no global backend or pyplot state is touched.
"""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from retraining_assets.core.drift.report import DriftReport

REFERENCE_COLOR = "#4c72b0"
CURRENT_COLOR = "#dd8452"
DRIFT_COLOR = "#c44e52"
OK_COLOR = "#8c8c8c"
MAX_CATEGORY_BARS = 25


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return buffer.getvalue()


def _shares(counts: list[int]) -> np.ndarray:
    arr = np.asarray(counts, dtype=float)
    return arr / arr.sum() if arr.sum() > 0 else arr


def feature_png(name: str, entry: dict[str, Any]) -> bytes:
    """Reference vs current distribution of one feature as PNG bytes."""
    fig = Figure(figsize=(6.0, 2.8))
    ax = fig.add_subplot()
    hist = entry.get("histogram")
    if hist is None:
        ax.text(0.5, 0.5, entry.get("reason") or "no data", ha="center", va="center", wrap=True)
        ax.set_axis_off()
    elif hist["type"] == "numeric":
        edges = np.asarray(hist["edges"])
        # Shares of all non-null values, so mass outside the plotted range stays visible as a gap.
        ref_total = sum(hist["reference"]) + sum(hist["reference_outside"])
        cur_total = sum(hist["current"]) + sum(hist["current_outside"])
        for counts, total, color, label in (
            (hist["reference"], ref_total, REFERENCE_COLOR, "reference"),
            (hist["current"], cur_total, CURRENT_COLOR, "current"),
        ):
            shares = np.asarray(counts, dtype=float) / max(total, 1)
            ax.stairs(shares, edges, fill=True, alpha=0.45, color=color, label=label)
        ax.set_ylabel("share of rows")
    else:
        labels = hist["labels"][:MAX_CATEGORY_BARS]
        x = np.arange(len(labels))
        ref = _shares(hist["reference"])[: len(labels)]
        cur = _shares(hist["current"])[: len(labels)]
        ax.bar(x - 0.2, ref, width=0.4, color=REFERENCE_COLOR, label="reference")
        ax.bar(x + 0.2, cur, width=0.4, color=CURRENT_COLOR, label="current")
        ax.set_xticks(x, labels, rotation=45, ha="right", fontsize=7)
        ax.set_ylabel("share of rows")
    status = "DRIFT" if entry.get("drifted") else "ok"
    ax.set_title(f"{name} ({entry['kind']}, {status})", color=DRIFT_COLOR if status == "DRIFT"
                 else "black", fontsize=10)  # fmt: skip
    if hist is not None:
        ax.legend(fontsize=7)
    return _png(fig)


def summary_png(report: DriftReport) -> bytes:
    """Horizontal bars of PSI, Jensen-Shannon and Wasserstein/std per feature with thresholds."""
    names = list(report.features)
    t = report.thresholds
    panels = (
        ("psi", "PSI", (t["psi_warning"], t["psi_alert"])),
        ("jensen_shannon", "Jensen-Shannon", (t["jensen_shannon"],)),
        ("wasserstein", "Wasserstein / std", (t["wasserstein"],)),
    )
    fig = Figure(figsize=(11.0, 1.4 + 0.28 * max(len(names), 1)), layout="constrained")
    y = np.arange(len(names))
    for k, (key, title, limits) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), k + 1)
        values = [report.features[n][key] or 0.0 for n in names]
        colors = [DRIFT_COLOR if report.features[n]["drifted"] else OK_COLOR for n in names]
        ax.barh(y, values, color=colors)
        for limit in limits:
            ax.axvline(limit, color="black", linestyle="--", linewidth=0.8)
        ax.set_yticks(y, names if k == 0 else [""] * len(names), fontsize=8)
        ax.invert_yaxis()
        ax.set_title(title, fontsize=10)
    verdict = "dataset drift" if report.dataset_drift else "no dataset drift"
    fig.suptitle(f"{verdict}: {len(report.drifted_features)}/{len(names)} features drifted "
                 "(red = drifted, dashed = thresholds)", fontsize=10)  # fmt: skip
    return _png(fig)


def write_summary_png(report: DriftReport, path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    path.write_bytes(summary_png(report))
    return path


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _summary_table(report: DriftReport) -> str:
    head = ("feature", "kind", "drifted", "PSI", "W/std", "JS", "KS D", "chi2 p", "q", "note")
    rows = ["<tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for name, e in report.features.items():
        note = (
            e["reason"] or ", ".join(e["exceeded"]) or ("PSI warning" if e["psi_warning"] else "")
        )
        cells = [name, e["kind"], "yes" if e["drifted"] else "no", *(
            _number(e[k]) for k in ("psi", "wasserstein", "jensen_shannon", "ks_statistic",
                                    "chi2_pvalue", "q_value")), note]  # fmt: skip
        css = ' class="drift"' if e["drifted"] else ""
        rows.append(f"<tr{css}>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells)
                    + "</tr>")  # fmt: skip
    return "<table>" + "".join(rows) + "</table>"


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.3g}"


def write_html(
    report: DriftReport, path: str | os.PathLike[str], summary: bytes | None = None
) -> Path:
    """A single HTML file: verdict, summary plot (``summary``: its PNG, if already drawn) and
    table, one distribution plot per feature."""
    verdict = "DATASET DRIFT" if report.dataset_drift else "No dataset drift"
    sections = [
        f"<h2>{html.escape(str(name))}</h2>{_img(feature_png(str(name), entry), str(name))}"
        for name, entry in report.features.items()
    ]
    notes = "".join(f"<li>{html.escape(w)}</li>" for w in report.warnings)
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Drift report</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 6px;font-size:13px}} tr.drift{{background:#f6d5d5}}</style>
</head><body>
<h1>{verdict}</h1>
<p>{len(report.drifted_features)} of {len(report.features)} features drifted; reference
{report.n_reference} rows, current {report.n_current} rows; profile
<code>{html.escape(report.profile_hash[:16])}</code>.</p>
{_img(summary or summary_png(report), "summary")}
{_summary_table(report)}
<h2>Warnings</h2><ul>{notes}</ul>
{"".join(sections)}
</body></html>
"""
    path = Path(path)
    path.write_text(page, encoding="utf-8")
    return path
