"""Turn a report's flat metric keys into grouped rows (parent / candidate / difference / pair value).

Shared by the HTML report and the terminal summary. A key ``[prefix/]<role>/<metric>`` with
``role`` in ``parent``, ``candidate``, ``diff`` becomes one row ``[prefix/]<metric>`` with a
column per role; any other key is a *pair* row holding one value for the two models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .._format import format_ci, format_number
from .._keys import parse_key
from .._types import Estimate

if TYPE_CHECKING:
    from ..compare import TrustReport
    from ..policy import CheckResult, Verdict

GROUPS = ("fidelity", "consistency", "accuracy", "calibration", "efficiency", "alignment", "robustness", "other")

_ORDER = ["label_loyalty", "probability_loyalty", "negative_flip_rate", "positive_flip_rate", "accuracy",
          "ece_sq_debiased", "ece_equal_mass", "ece_equal_width", "mce_equal_mass", "mce_equal_width", "brier_loss",
          "log_loss", "speedup", "size_ratio", "throughput", "latency"]


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
    parsed = parse_key(key)
    return parsed.row, parsed.role or "pair"


def group_of(name: str) -> str:
    """The display group of a row name (or key): its section, else its metric's registered group."""
    return parse_key(name).group


def _sort_key(name: str) -> tuple[int, str]:
    """Core metrics in :data:`_ORDER`, then everything else (section rows, unknown names) by name."""
    key = parse_key(name)
    if key.section is None and key.metric in _ORDER:
        return _ORDER.index(key.metric), name
    return len(_ORDER), name


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


#: the shared formatters, under the names the report modules use
fmt_number = format_number
fmt_ci = format_ci


def check_status_by_row(verdict: Verdict | None) -> dict[str, str]:
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


def ordered_checks(verdict: Verdict) -> list[CheckResult]:
    """The verdict's checks: failed first, then skipped, then passed (stable within each)."""
    rank = {"fail": 0, "skipped": 1, "pass": 2}
    return sorted(verdict.checks, key=lambda c: rank.get(c.status, 0))


def group_skip_reason(report: TrustReport, group: str) -> str | None:
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
