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
# a wide table's summary shows the most drifted features: 500 rows of bars made a 12,700-pixel
# picture on the asset page; the HTML report and the markdown table keep every feature
MAX_SUMMARY_FEATURES = 40


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()


def _shares(counts: list[int]) -> np.ndarray:
    arr = np.asarray(counts, dtype=float)
    return arr / arr.sum() if arr.sum() > 0 else arr


SVG_WIDTH, SVG_HEIGHT, SVG_PAD = 560, 210, 40


def feature_svg(name: str, entry: dict[str, Any]) -> str:
    """Reference vs current distribution of one feature as inline SVG: shares of rows per bin
    (numeric; mass outside the plotted range stays visible as a gap) or per category. Drawn as
    rectangles because a report holds one per feature and matplotlib took ~0.25 s for each,
    most of a monitoring run's report time (BENCHMARKS.md)."""
    hist, status = entry.get("histogram"), "DRIFT" if entry.get("drifted") else "ok"
    title = f"{name} ({entry['kind']}, {status})"
    color = DRIFT_COLOR if entry.get("drifted") else "black"
    left, right, top, bottom = SVG_PAD, SVG_WIDTH - 10, 28, SVG_HEIGHT - SVG_PAD
    parts = [f'<text x="{SVG_WIDTH / 2}" y="16" text-anchor="middle" fill="{color}" '
             f'font-size="13">{html.escape(title)}</text>']  # fmt: skip
    if hist is None:
        reason = html.escape(entry.get("reason") or "no data")
        parts.append(f'<text x="{SVG_WIDTH / 2}" y="{SVG_HEIGHT / 2}" text-anchor="middle">'
                     f"{reason}</text>")  # fmt: skip
        return _svg(parts, title)
    if hist["type"] == "numeric":
        edges = np.asarray(hist["edges"], dtype=float)
        series = [
            np.asarray(hist[role], dtype=float)
            / max(sum(hist[role]) + sum(hist[f"{role}_outside"]), 1)
            for role in ("reference", "current")
        ]
        span = (edges[-1] - edges[0]) or 1.0
        x = left + (edges - edges[0]) / span * (right - left)
        bars = [(x[:-1], np.diff(x))] * 2
        ticks = [(x[0], edges[0]), (x[len(x) // 2], edges[len(edges) // 2]), (x[-1], edges[-1])]
        labels = [(position, f"{value:.3g}", False) for position, value in ticks]
    else:
        names = hist["labels"][:MAX_CATEGORY_BARS]
        series = [_shares(hist[role])[: len(names)] for role in ("reference", "current")]
        slot = (right - left) / max(len(names), 1)
        starts = left + np.arange(len(names)) * slot
        bars = [(starts + 0.1 * slot, np.full(len(names), 0.4 * slot)),
                (starts + 0.5 * slot, np.full(len(names), 0.4 * slot))]  # fmt: skip
        labels = [
            (start + slot / 2, str(label), True) for start, label in zip(starts, names, strict=True)
        ]
    peak = max((float(values.max()) for values in series if values.size), default=0.0) or 1.0
    for (starts, widths), values, fill in zip(
        bars, series, (REFERENCE_COLOR, CURRENT_COLOR), strict=True
    ):
        for start, width, value in zip(starts, widths, values, strict=True):
            height = value / peak * (bottom - top)
            parts.append(f'<rect x="{start:.1f}" y="{bottom - height:.1f}" width="{width:.1f}" '
                         f'height="{height:.1f}" fill="{fill}" fill-opacity="0.55"/>')  # fmt: skip
    parts.append(f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#444"/>')
    for position, text, rotate in labels:
        turn = f' transform="rotate(40 {position:.1f} {bottom + 12})"' if rotate else ""
        parts.append(f'<text x="{position:.1f}" y="{bottom + 12}" font-size="9" '
                     f'text-anchor="{"start" if rotate else "middle"}"{turn}>'
                     f"{html.escape(text)}</text>")  # fmt: skip
    parts.append(f'<text x="4" y="{top + 8}" font-size="9">{peak:.2g}</text>'
                 f'<text x="4" y="{bottom}" font-size="9">0</text>')  # fmt: skip
    for row, (label, fill) in enumerate((("reference", REFERENCE_COLOR),
                                         ("current", CURRENT_COLOR))):  # fmt: skip
        y = top + 4 + row * 14
        parts.append(f'<rect x="{right - 80}" y="{y}" width="10" height="10" fill="{fill}" '
                     f'fill-opacity="0.55"/><text x="{right - 66}" y="{y + 9}" '
                     f'font-size="10">{label}</text>')  # fmt: skip
    return _svg(parts, title)


def _svg(parts: list[str], title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{SVG_WIDTH}" '
            f'height="{SVG_HEIGHT}" aria-label="{html.escape(title)}" '
            f'font-family="sans-serif"><title>{html.escape(title)}</title>'
            + "".join(parts) + "</svg>")  # fmt: skip


def summary_png(report: DriftReport) -> bytes:
    """Horizontal bars of PSI, Jensen-Shannon and Wasserstein/std per feature with thresholds.
    Fixed margins and shared feature labels rather than a constrained layout and a tight
    bounding box: half the drawing time, one PNG per monitored period."""
    names = summary_features(report)
    t = report.thresholds
    panels = (
        ("psi", "PSI", (t["psi_warning"], t["psi_alert"])),
        ("jensen_shannon", "Jensen-Shannon", (t["jensen_shannon"],)),
        ("wasserstein", "Wasserstein / std", (t["wasserstein"],)),
    )
    width, height = 11.0, 1.4 + 0.28 * max(len(names), 1)
    fig = Figure(figsize=(width, height))
    axes = fig.subplots(1, len(panels), sharey=True)
    label = 0.3 + 0.07 * max((len(n) for n in names), default=1)  # inches, at font size 8
    fig.subplots_adjust(left=min(0.45, label / width), right=0.98, top=1 - 0.6 / height,
                        bottom=0.35 / height, wspace=0.08)  # fmt: skip
    y = np.arange(len(names))
    colors = [DRIFT_COLOR if report.features[n]["drifted"] else OK_COLOR for n in names]
    for ax, (key, title, limits) in zip(axes, panels, strict=True):
        ax.barh(y, [report.features[n][key] or 0.0 for n in names], color=colors)
        for limit in limits:
            ax.axvline(limit, color="black", linestyle="--", linewidth=0.8)
        ax.set_title(title, fontsize=10)
    axes[0].set_yticks(y, names, fontsize=8)
    axes[0].invert_yaxis()  # shared: the first feature on top in every panel
    verdict = "dataset drift" if report.dataset_drift else "no dataset drift"
    total = len(report.features)
    shown = "" if len(names) == total else f"; the {len(names)} most drifted shown"
    fig.suptitle(f"{verdict}: {len(report.drifted_features)}/{total} features drifted{shown} "
                 "(red = drifted, dashed = thresholds)", fontsize=10)  # fmt: skip
    return _png(fig)


def summary_features(report: DriftReport, limit: int = MAX_SUMMARY_FEATURES) -> list[Any]:
    """The features the summary plots, in the report's order: all of them, or on a wider table
    the ``limit`` most drifted (drifted first, then by PSI)."""
    names = list(report.features)
    if len(names) <= limit:
        return names

    def rank(name: Any) -> tuple[bool, float]:
        entry = report.features[name]
        return (not entry["drifted"], -(entry["psi"] or 0.0))

    kept = set(sorted(names, key=rank)[:limit])
    return [name for name in names if name in kept]


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


def _multivariate_html(report: DriftReport) -> str:
    """The dataset scores (domain classifier, reconstruction error), when computed."""
    result = report.multivariate
    if result is None:
        return ""
    c, r = result.classifier, result.reconstruction
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{share:.3f}</td></tr>"
        for name, share in list(c.importances.items())[:10]
    )
    classifier = (
        f"not computed: {html.escape(c.skipped)}" if c.skipped else
        f"{'<b>DRIFT</b>' if c.drifted else 'no drift'}: AUC {c.auc:.3f}, p-value "
        f"{c.p_value:.2g}, {c.rows} rows per side"
    )  # fmt: skip
    reconstruction = (
        f"not computed: {html.escape(r.skipped)}" if r.skipped else
        f"{'<b>DRIFT</b>' if r.drifted else 'no drift'}: error {r.error:.3f}, normal band "
        f"{r.lower:.3f} to {r.upper:.3f}"
    )  # fmt: skip
    table = f"<table><tr><th>feature</th><th>share of AUC</th></tr>{rows}</table>" if rows else ""
    return (
        f"<h2>Multivariate drift</h2><p>Domain classifier {classifier}.</p>{table}"
        f"<p>Reconstruction error {reconstruction}.</p>"
    )


def write_html(
    report: DriftReport, path: str | os.PathLike[str], summary: bytes | None = None
) -> Path:
    """A single HTML file: verdict, summary plot (``summary``: its PNG, if already drawn) and
    table, one distribution plot per feature (inline SVG)."""
    verdict = "DATASET DRIFT" if report.dataset_drift else "No dataset drift"
    sections = [
        f"<h2>{html.escape(str(name))}</h2>{feature_svg(str(name), entry)}"
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
{_multivariate_html(report)}
<h2>Warnings</h2><ul>{notes}</ul>
{"".join(sections)}
</body></html>
"""
    path = Path(path)
    path.write_text(page, encoding="utf-8")
    return path
