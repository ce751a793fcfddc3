"""``DriftReport``: the verdict and every statistic behind it, as JSON, Markdown, HTML and PNG."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from retraining_assets.core.drift.multivariate import MultivariateDrift
from retraining_assets.core.drift.plots import write_html, write_summary_png


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "–"
    if value != 0 and abs(value) < 10 ** (-digits):
        return f"{value:.1e}"
    return f"{value:.{digits}f}"


@dataclass
class DriftReport:
    """The drift verdict and every statistic behind it; JSON-serialisable via ``to_dict``."""

    dataset_drift: bool
    n_reference: int
    n_current: int
    features: dict[str, dict[str, Any]]
    drifted_features: list[str]
    drift_share: float
    null_rates: dict[str, dict[str, Any]]
    unseen: dict[str, dict[str, Any]]
    prediction_drift: dict[str, Any] | None
    target_drift: dict[str, Any] | None
    warnings: list[str]
    thresholds: dict[str, Any]
    profile_hash: str
    multivariate: MultivariateDrift | None = None  # None unless asked for (it trains models)

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["multivariate"] = self.multivariate.to_dict() if self.multivariate else None
        return _plain(out)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftReport:
        optional = {"multivariate"}  # reports written before it existed lack it
        missing = [f.name for f in fields(cls) if f.name not in data and f.name not in optional]
        if missing:
            raise ValueError(f"drift report dict lacks keys: {missing}")
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        if values.get("multivariate") is not None:
            values["multivariate"] = MultivariateDrift.from_dict(values["multivariate"])
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> DriftReport:
        return cls.from_dict(json.loads(text))

    def to_markdown(self) -> str:
        """A summary line and one table row per feature (for Dagster metadata)."""
        verdict = "**DRIFT**" if self.dataset_drift else "no drift"
        lines = [
            f"Dataset: {verdict} — {len(self.drifted_features)}/{len(self.features)} features "
            f"drifted (share {self.drift_share:.2f}); reference {self.n_reference} rows, "
            f"current {self.n_current} rows.",
            "",
            "| feature | kind | drifted | PSI | W/std | JS | KS D | chi2 p | q | note |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name, e in self.features.items():
            note = e["reason"] or ", ".join(e["exceeded"]) or ("PSI warning" if e["psi_warning"]
                                                               else "")  # fmt: skip
            cells = [
                str(name).replace("|", "\\|"), e["kind"], "yes" if e["drifted"] else "no",
                _fmt(e["psi"]), _fmt(e["wasserstein"]), _fmt(e["jensen_shannon"]),
                _fmt(e["ks_statistic"]), _fmt(e["chi2_pvalue"]), _fmt(e["q_value"]),
                note.replace("|", "\\|"),
            ]  # fmt: skip
            lines.append("| " + " | ".join(cells) + " |")
        for role, result in (("prediction", self.prediction_drift), ("target", self.target_drift)):
            if result is not None:
                flag = "yes" if result["drifted"] else "no"
                lines.append(
                    f"\n{role.capitalize()} drift: {flag} "
                    f"(PSI {_fmt(result['psi'])}, q {_fmt(result['q_value'])})"
                )
        if self.multivariate is not None:
            lines.append("\n" + multivariate_summary(self.multivariate))
        return "\n".join(lines)

    def to_html(self, path: str | os.PathLike[str], summary: Path | None = None) -> Path:
        """Write a self-contained HTML report (the summary plot as an embedded PNG, a plot per
        feature as inline SVG); ``summary``: the summary plot already written by
        :meth:`plot_summary`, embedded rather than redrawn."""
        return write_html(self, path, summary.read_bytes() if summary else None)

    def plot_summary(self, path: str | os.PathLike[str]) -> Path:
        """Write a PNG of effect sizes per feature against their thresholds."""
        return write_summary_png(self, path)


def multivariate_summary(result: MultivariateDrift) -> str:
    """One line per dataset score: the domain classifier and the reconstruction error."""
    c, r = result.classifier, result.reconstruction
    if c.skipped:
        first = f"Domain classifier: not computed ({c.skipped})"
    else:
        top = ", ".join(f"{name} {share:.2f}" for name, share in list(c.importances.items())[:3])
        first = (
            f"Domain classifier: {'**DRIFT**' if c.drifted else 'no drift'} (AUC {c.auc:.3f}, "
            f"p {_fmt(c.p_value)}, {c.rows} rows per side; explained by {top or '–'})"
        )
    if r.skipped:
        second = f"Reconstruction error: not computed ({r.skipped})"
    else:
        second = (
            f"Reconstruction error: {'**DRIFT**' if r.drifted else 'no drift'} "
            f"({r.error:.3f}, normal band {r.lower:.3f} to {r.upper:.3f})"
        )
    return first + "\n\n" + second


def _plain(value: Any) -> Any:
    """numpy scalars/arrays to Python; non-finite floats to None (JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value
