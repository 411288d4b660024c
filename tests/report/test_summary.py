"""The terminal summary: key metrics with intervals, the verdict and every reason."""

from __future__ import annotations

from mlflow_trusteq.report import summary_table
from mlflow_trusteq.report._table import build_rows, fmt_number, split_key


def test_summary_has_key_metrics_with_intervals(report):
    text = summary_table(report)
    ll = report.metrics["label_loyalty"]
    assert f"{ll.value:.4f} [{ll.lower:.4f}, {ll.upper:.4f}]" in text
    acc_line = next(line for line in text.splitlines() if line.startswith("accuracy "))
    for role in ("parent", "candidate"):
        e = report.metrics[f"{role}/accuracy"]
        assert f"{e.value:.4f} [{e.lower:.4f}, {e.upper:.4f}]" in acc_line
    d = report.metrics["diff/accuracy"]
    assert f"{d.value:+.4f}" in acc_line
    assert "speedup" in text and "1.8338" in text
    assert "VERDICT" not in text  # no verdict given
    assert "95% paired bootstrap interval" in text


def test_summary_has_verdict_and_every_reason(report, verdict):
    text = summary_table(report, verdict, width=10_000)
    assert "VERDICT: FAIL" in text and "policy 'default'" in text and verdict.policy_digest[:12] in text
    lines = text.splitlines()
    idx = {}
    for c in verdict.checks:
        mark = {"fail": "[FAIL]", "skipped": "[skip]", "pass": "[pass]"}[c.status]
        line = f"  {mark} {c.reason}"
        assert line in lines, line
        idx.setdefault(c.status, []).append(lines.index(line))
    assert max(idx["fail"]) < min(idx["skipped"]) and max(idx["skipped"]) < min(idx["pass"])


def test_summary_wraps_long_reasons(report, verdict):
    text = summary_table(report, verdict, width=60)
    verdict_part = text.split("VERDICT", 1)[1].splitlines()[1:]
    assert all(len(line) <= 60 for line in verdict_part)


def test_summary_without_labels_says_not_measured(make_report, pair):
    P, Q, _ = pair
    text = summary_table(make_report(P, Q, None))
    assert "gold labels: no" in text
    assert "not measured: no gold labels were given" in text
    assert "ece_equal_mass" not in text


def test_rows_split_roles_and_group():
    assert split_key("parent/accuracy") == ("accuracy", "parent")
    assert split_key("robustness/word/diff/after_attack_accuracy") == ("robustness/word/after_attack_accuracy", "diff")
    assert split_key("alignment/lime/normalized/top_k_jaccard") == ("alignment/lime/normalized/top_k_jaccard", "pair")
    from mlflow_trusteq._types import Estimate

    rows = build_rows({"candidate/throughput": Estimate(2.0), "parent/throughput": Estimate(1.0),
                       "label_loyalty": Estimate(0.9), "diff/brier_loss": Estimate(0.1)})
    assert [r.name for r in rows["efficiency"]] == ["throughput"]
    assert set(rows["efficiency"][0].values) == {"parent", "candidate"}
    assert rows["fidelity"][0].is_pair and rows["calibration"][0].name == "brier_loss"
    assert fmt_number(float("nan")) == "—" and fmt_number(12345.6) == "12,346"
    assert fmt_number(0.5, signed=True) == "+0.5000"
