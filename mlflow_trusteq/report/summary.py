"""A short plain-text summary of a report and its verdict, for the terminal (``trusteq evaluate``/``show``)."""

from __future__ import annotations

from typing import Any

from .._types import Estimate
from ._table import GROUPS, build_rows, fmt_ci, fmt_number, group_skip_reason, not_measured, ordered_checks, split_key

__all__ = ["summary_table", "KEY_METRICS"]

#: row names shown in the summary (besides every row a check of the verdict refers to)
KEY_METRICS = ("label_loyalty", "probability_loyalty", "negative_flip_rate", "positive_flip_rate", "accuracy",
               "ece_equal_mass", "ece_equal_width", "brier_loss", "log_loss", "speedup", "size_ratio")

_MARK = {"fail": "[FAIL]", "skipped": "[skip]", "pass": "[pass]"}


def _est(e: Estimate | None, *, signed: bool = False) -> str:
    if e is None:
        return ""
    ci = fmt_ci(e, signed=signed)
    return fmt_number(e.value, signed=signed) + (f" {ci}" if ci else "")


def _wanted(name: str, checked: set[str]) -> bool:
    if name in KEY_METRICS or name in checked:
        return True
    base = name.rsplit("/", 1)[-1]
    head = name.split("/", 1)[0]
    return (head == "alignment" and base == "top_k_jaccard" and "noise" not in name) or \
        (head == "robustness" and base == "after_attack_accuracy")


def summary_table(report: Any, verdict: Any = None, *, width: int = 120) -> str:
    """A few lines of plain text: the key metrics with their intervals, then the verdict and its reasons.

    Parameters
    ----------
    report : TrustReport
    verdict : Verdict, optional
        When given, its label, policy and every check (failed first, then skipped, then passed).
    width : int, default 120
        Reasons longer than this are wrapped.

    Returns
    -------
    str
        No trailing newline; ASCII apart from the model names, labels and reasons themselves.

    Examples
    --------
    ``print(summary_table(report, verdict))`` gives, e.g.::

        trusteq: candidate 'bert-int8' vs parent 'bert' on 872 examples (text, gold labels: yes)
        metric                  parent                 candidate              candidate - parent / pair
        label_loyalty                                                         0.9312 [0.9151, 0.9472]
        ...
        VERDICT: FAIL  (policy 'default', digest 3f2a...)
          [FAIL] label_loyalty = 0.9312: the lower bound of its CI is 0.9151, below the threshold 0.95
    """
    import textwrap

    checked = set()
    if verdict is not None:
        checked = {split_key(c.metric)[0] for c in verdict.checks}
    groups = build_rows(report.metrics)
    lines = [f"trusteq: candidate {report.candidate_name!r} vs parent {report.parent_name!r} on "
             f"{report.n_examples:,} examples ({report.kind}, gold labels: {'yes' if report.has_targets else 'no'})"]
    table: list[tuple[str, str, str, str]] = []
    for g in GROUPS:
        rows = [r for r in groups.get(g, []) if _wanted(r.name, checked)]
        reason = group_skip_reason(report, g)
        if not rows and reason and g in ("accuracy", "calibration", "alignment", "robustness"):
            table.append((g, "", "", not_measured(reason)))
            continue
        for r in rows:
            if r.is_pair:
                table.append((r.name, "", "", _est(r.values["pair"])))
            else:
                table.append((r.name, _est(r.values.get("parent")), _est(r.values.get("candidate")),
                              _est(r.values.get("diff"), signed=True)))
    header = ("metric", "parent", "candidate", "candidate - parent / pair")
    w = [max(len(header[i]), *(len(t[i]) for t in table)) if table else len(header[i]) for i in range(3)]
    fmt = f"{{:<{w[0]}}}  {{:<{w[1]}}}  {{:<{w[2]}}}  {{}}"
    lines.append(fmt.format(*header).rstrip())
    lines.append("-" * min(width, len(fmt.format(*header)) + 6))
    for t in table:
        lines.append(fmt.format(*t).rstrip())
    conf = next((e.confidence for e in report.metrics.values() if e.confidence is not None), None)
    if conf is not None:
        lines.append(f"[brackets: {100 * conf:g}% paired bootstrap interval]")
    if verdict is not None:
        digest = (verdict.policy_digest or "")[:12]
        lines.append("")
        lines.append(f"VERDICT: {'PASS' if verdict.passed else 'FAIL'}  (policy {verdict.policy_name!r}"
                     + (f", digest {digest}...)" if digest else ")"))
        for c in ordered_checks(verdict):
            mark = _MARK.get(c.status, f"[{c.status}]")
            wrapped = textwrap.wrap(str(c.reason), width=max(40, width - 9)) or [""]
            lines.append(f"  {mark} {wrapped[0]}")
            lines.extend(f"         {more}" for more in wrapped[1:])
    return "\n".join(lines)
