"""Turn a report's flat metric keys into grouped rows (parent / candidate / difference / pair value).

Shared by the HTML report and the terminal summary. A key ``[prefix/]<role>/<metric>`` with
``role`` in ``parent``, ``candidate``, ``diff`` becomes one row ``[prefix/]<metric>`` with a
column per role; any other key is a *pair* row holding one value for the two models.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .._types import Estimate

GROUPS = ("fidelity", "accuracy", "calibration", "efficiency", "alignment", "robustness", "other")
ROLES = ("parent", "candidate", "diff")

_ORDER = ["label_loyalty", "probability_loyalty", "negative_flip_rate", "positive_flip_rate", "accuracy",
          "ece_equal_mass", "ece_equal_width", "mce_equal_mass", "mce_equal_width", "brier_loss", "log_loss",
          "speedup", "size_ratio", "throughput"]


@dataclass
class Row:
    group: str
    name: str
    values: dict[str, Estimate] = field(default_factory=dict)  # role or "pair" -> estimate

    @property
    def is_pair(self) -> bool:
        return "pair" in self.values


def split_key(key: str) -> tuple[str, str]:
    """``(row name, role)`` of a report key; role is ``"pair"`` for a key without one."""
    parts = key.split("/")
    if len(parts) >= 2 and parts[-2] in ROLES:
        return "/".join(parts[:-2] + parts[-1:]), parts[-2]
    return key, "pair"


def group_of(name: str) -> str:
    head = name.split("/", 1)[0]
    if head in ("alignment", "robustness"):
        return head
    base = name.rsplit("/", 1)[-1]
    if base in ("label_loyalty", "probability_loyalty") or base.endswith("flip_rate"):
        return "fidelity"
    if base == "accuracy":
        return "accuracy"
    if base.startswith(("ece_", "mce_", "brier", "log_loss")):
        return "calibration"
    if base in ("speedup", "size_ratio", "throughput"):
        return "efficiency"
    return "other"


def _sort_key(name: str) -> tuple[int, str]:
    base = name.rsplit("/", 1)[-1]
    prefix = name.rsplit("/", 1)[0] if "/" in name else ""
    try:
        return (_ORDER.index(base), name) if not prefix else (len(_ORDER), name)
    except ValueError:
        return (len(_ORDER), name)


def build_rows(metrics: dict[str, Estimate]) -> dict[str, list[Row]]:
    """Rows per group (in :data:`GROUPS` order), known metrics first in a fixed order."""
    rows: dict[str, Row] = {}
    for key, est in metrics.items():
        name, role = split_key(key)
        row = rows.setdefault(name, Row(group_of(name), name))
        row.values[role] = est
    out: dict[str, list[Row]] = {g: [] for g in GROUPS}
    for name in sorted(rows, key=_sort_key):
        out[rows[name].group].append(rows[name])
    return out


def fmt_number(x: float | None, *, signed: bool = False) -> str:
    """Four significant digits, thousands separators for large values, ``—`` for missing."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    x = float(x)
    sign = "+" if signed and x > 0 else ""
    if x == 0:
        return "0"
    if abs(x) >= 1000:
        return f"{sign}{x:,.0f}"
    if abs(x) >= 10:
        return f"{sign}{x:.4g}"
    if abs(x) >= 1e-3:
        return f"{sign}{x:.4f}"
    return f"{sign}{x:.2e}"


def fmt_ci(e: Estimate | None, *, signed: bool = False) -> str:
    if e is None or e.lower is None or e.upper is None:
        return ""
    return f"[{fmt_number(e.lower, signed=signed)}, {fmt_number(e.upper, signed=signed)}]"


def check_status_by_row(verdict: Any) -> dict[str, str]:
    """Row name -> worst status (fail > skipped > pass) of the verdict's checks on it."""
    rank = {"pass": 0, "skipped": 1, "fail": 2}
    out: dict[str, str] = {}
    if verdict is None:
        return out
    for c in verdict.checks:
        name, _ = split_key(c.metric)
        if name not in out or rank.get(c.status, 2) > rank.get(out[name], 2):
            out[name] = c.status
    return out


def ordered_checks(verdict: Any) -> list[Any]:
    """The verdict's checks: failed first, then skipped, then passed (stable within each)."""
    rank = {"fail": 0, "skipped": 1, "pass": 2}
    return sorted(verdict.checks, key=lambda c: rank.get(c.status, 0))


def group_skip_reason(report: Any, group: str) -> str | None:
    """Why a group was not measured (from ``report.skipped``), or None."""
    skipped = report.skipped or {}
    if group in skipped:
        return skipped[group]
    if group == "calibration" and not report.has_targets:
        return skipped.get("accuracy", "not measured: no gold labels were given")
    return None


def not_measured(reason: str) -> str:
    """``"not measured: <reason>"`` without doubling a reason that already says so."""
    reason = str(reason).strip()
    return reason if reason.lower().startswith("not measured") else f"not measured: {reason}"
