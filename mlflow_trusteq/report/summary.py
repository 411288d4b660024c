"""A short plain-text summary of a report and its verdict, for the terminal (``trusteq evaluate``/``show``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._format import format_estimate, format_short
from .._keys import metric_info, parse_key
from ._table import GROUPS, build_rows, group_skip_reason, not_measured, ordered_checks, split_key

if TYPE_CHECKING:
    from ..compare import TrustReport
    from ..policy import CheckResult, Verdict

__all__ = ["summary_table", "summary_line", "KEY_METRICS", "SUMMARY_MAX_CHARS"]

#: the longest :func:`summary_line` (it fits MLflow's tag column and a model version's list row)
SUMMARY_MAX_CHARS = 250

#: the numbers a passing summary shows (report keys, in order)
_PASS_KEYS = ("label_loyalty", "diff/accuracy", "speedup", "size_ratio")

#: row names shown in the summary (besides every row a check of the verdict refers to)
KEY_METRICS = ("label_loyalty", "probability_loyalty", "negative_flip_rate", "positive_flip_rate", "accuracy",
               "ece_equal_mass", "ece_equal_width", "brier_loss", "log_loss", "speedup", "size_ratio")

_MARK = {"fail": "[FAIL]", "skipped": "[skip]", "pass": "[pass]"}


def _wanted(name: str, checked: set[str]) -> bool:
    if name in KEY_METRICS or name in checked:
        return True
    key = parse_key(name)
    return (key.section == "alignment" and key.metric == "top_k_jaccard" and "noise_floor" not in key.qualifiers) \
        or (key.section == "robustness" and key.metric == "after_attack_accuracy") \
        or (key.section == "consistency" and key.metric == "label_loyalty")


def summary_table(report: TrustReport, verdict: Verdict | None = None, *, width: int = 120) -> str:
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
    checked: set[str] = set()
    if verdict is not None:
        checked = {split_key(c.metric)[0] for c in verdict.checks}
    lines = [f"trusteq: candidate {report.candidate_name!r} vs parent {report.parent_name!r} on "
             f"{report.n_examples:,} examples ({report.kind}, gold labels: {'yes' if report.has_targets else 'no'})"]
    lines += _metric_lines(report, checked, width)
    if verdict is not None:
        lines += _verdict_lines(verdict, width)
    return "\n".join(lines)


def _table_rows(report: TrustReport, checked: set[str]) -> list[tuple[str, str, str, str]]:
    """(metric, parent, candidate, diff-or-pair) cells of the shown rows, group by group."""
    groups = build_rows(report.metrics)
    table: list[tuple[str, str, str, str]] = []
    for g in GROUPS:
        rows = [r for r in groups.get(g, []) if _wanted(r.name, checked)]
        reason = group_skip_reason(report, g)
        if not rows and reason and g in ("accuracy", "calibration", "alignment", "robustness"):
            table.append((g, "", "", not_measured(reason)))
            continue
        for r in rows:
            if r.is_pair:
                table.append((r.name, "", "", format_estimate(r.values["pair"])))
            else:
                table.append((r.name, format_estimate(r.values.get("parent")),
                              format_estimate(r.values.get("candidate")),
                              format_estimate(r.values.get("diff"), signed=True)))
    return table


def _metric_lines(report: TrustReport, checked: set[str], width: int) -> list[str]:
    table = _table_rows(report, checked)
    header = ("metric", "parent", "candidate", "candidate - parent / pair")
    w = [max(len(header[i]), *(len(t[i]) for t in table)) if table else len(header[i]) for i in range(3)]
    fmt = f"{{:<{w[0]}}}  {{:<{w[1]}}}  {{:<{w[2]}}}  {{}}"
    lines = [fmt.format(*header).rstrip(), "-" * min(width, len(fmt.format(*header)) + 6)]
    lines += [fmt.format(*t).rstrip() for t in table]
    conf = next((e.confidence for e in report.metrics.values() if e.confidence is not None), None)
    if conf is not None:
        lines.append(f"[brackets: {100 * conf:g}% paired bootstrap interval]")
    return lines


def _verdict_lines(verdict: Verdict, width: int) -> list[str]:
    import textwrap

    digest = (verdict.policy_digest or "")[:12]
    lines = ["", f"VERDICT: {verdict.label.upper()}  (policy {verdict.policy_name!r}"
             + (f", digest {digest}...)" if digest else ")")]
    for c in ordered_checks(verdict):
        mark = _MARK.get(c.status, f"[{c.status}]")
        wrapped = textwrap.wrap(str(c.reason), width=max(40, width - 9)) or [""]
        lines.append(f"  {mark} {wrapped[0]}")
        lines.extend(f"         {more}" for more in wrapped[1:])
    return lines


#: base metric names as a reviewer reads them (others: underscores as spaces)
_WORDS = {"ece_equal_mass": "ECE (equal-mass)", "ece_equal_width": "ECE (equal-width)",
          "mce_equal_mass": "MCE (equal-mass)", "mce_equal_width": "MCE (equal-width)", "brier_loss": "Brier",
          "ece_sq_debiased": "ECE² (debiased)", "top_k_jaccard": "top-k Jaccard", "speedup": "speed-up"}


def _metric_words(key: str) -> str:
    """A report key as a reviewer reads it: ``diff/accuracy`` -> ``Δaccuracy``."""
    try:
        parsed = parse_key(key)
    except ValueError:
        return key
    words = " ".join([*(part for part in (parsed.section, parsed.method) if part is not None), *parsed.qualifiers,
                      *([parsed.role] if parsed.role in ("parent", "candidate") else []),
                      _WORDS.get(parsed.metric, parsed.metric.replace("_", " "))])
    return ("Δ" + words) if parsed.role == "diff" else words


def _check_words(report: TrustReport, check: CheckResult) -> str:
    """One failed check: the metric, its estimate with the interval, and the rule it broke."""
    if check.metric.startswith(("guard_", "slices/each/")):
        return _reason_words(check)
    name = _metric_words(check.metric)
    est = report.metrics.get(check.metric)
    if est is None or check.value is None:
        return f"{name} not measured"
    if check.threshold is None:
        rule = "(no interval)"
    elif "±" in check.reason:  # a two-sided margin
        rule = f"outside ±{format_short(check.threshold)}"
    elif check.bound is not None and "change against the parent" in check.reason:
        rule = f"(change {format_short(check.bound)} < {format_short(check.threshold)})"
    else:
        try:
            higher = metric_info(check.metric).higher_is_better
        except KeyError:
            higher = "below" in check.reason
        rule = f"{'<' if higher else '>'} {format_short(check.threshold)}"
    return f"{name} {format_estimate(est, signed=parse_key(check.metric).role == 'diff')} {rule}"


#: a failed comparability guard in a few words (its full reason is in the verdict)
_GUARD_WORDS = {
    "guard_same_model": "same content as the parent (nothing was compressed)",
    "guard_implausible_gain": "implausibly better than the parent (a data leak?)",
    "guard_parent_accuracy_floor": "the parent's accuracy is below the policy's floor",
    "guard_data_changed": "judged on other data than an earlier verdict",
}


def _reason_words(check: CheckResult) -> str:
    """A guard's short words, or a slice check's worst slice (the first of the slices its reason names)."""
    if check.metric in _GUARD_WORDS:
        judged = "could not be judged" not in check.reason
        return _GUARD_WORDS[check.metric] if judged else f"{_GUARD_WORDS[check.metric]}: not judged"
    worst = check.reason.split(" fail: ", 1)[-1].split("; ", 1)[0]
    return worst if " on slice " in worst else f"{_metric_words(check.metric)} not judged"


def summary_line(report: TrustReport, verdict: Verdict, *, max_chars: int = SUMMARY_MAX_CHARS) -> str:
    """The verdict in one line, for a tag column: the word, then the failed checks with their numbers.

    A fail lists every failed check as ``<metric> <estimate [CI]> <rule>`` (an incomplete verdict:
    ``<metric> not measured``); a pass lists label loyalty, the accuracy change, the speed-up and the size ratio.
    Longer lines are cut at a check boundary and end with ``(+N more)``.

    Parameters
    ----------
    report : TrustReport
    verdict : Verdict
    max_chars : int, default :data:`SUMMARY_MAX_CHARS`

    Returns
    -------
    str
        E.g. ``FAIL: label loyalty 0.9600 [0.9460, 0.9710] < 0.95; Δaccuracy -0.0300 [-0.0500, -0.0100] < -0.02``.
    """
    word = verdict.label.upper()  # PASS, FAIL or INCOMPLETE
    if verdict.passed:
        parts = [f"{_metric_words(k)} {format_estimate(report.metrics[k], signed=k.startswith('diff/'))}"
                 for k in _PASS_KEYS if k in report.metrics]
        n_pass = sum(c.status == "pass" for c in verdict.checks)
        n_skip = sum(c.status == "skipped" for c in verdict.checks)
        parts.append(f"{n_pass} checks passed" + (f", {n_skip} not requested" if n_skip else ""))
    else:
        bad = [c for c in ordered_checks(verdict) if c.status == "fail"]
        parts = [_check_words(report, c) for c in bad] or ["see the verdict's reasons"]
    head = f"{word}: "
    out = head
    for i, part in enumerate(parts):
        more = f" (+{len(parts) - i} more)"
        piece = part if out == head else "; " + part
        if len(out) + len(piece) + (len(more) if i < len(parts) - 1 else 0) > max_chars:
            return (out + more) if out != head else (head + part)[: max_chars - 1] + "…"
        out += piece
    return out
