"""``summary_line``: the verdict in one line with its numbers (the ``trusteq.summary`` tag)."""

from __future__ import annotations

import re

import pytest

from mlflow_trusteq import Policy, compare
from mlflow_trusteq.report import summary_line
from mlflow_trusteq.report.summary import SUMMARY_MAX_CHARS

from _models import float32_copy


@pytest.fixture(scope="module")
def pair_reports(tfidf_pair, sst2_small):
    parent, weak = tfidf_pair
    _, dev = sst2_small
    policy = Policy.default()
    failing = compare(parent, weak, dev, targets="label", n_resamples=100)
    passing = compare(parent, float32_copy(parent), dev, targets="label", n_resamples=100)
    return (failing, policy.judge(failing)), (passing, policy.judge(passing))


def test_a_fail_names_each_failed_check_with_its_estimate_interval_and_rule(pair_reports):
    (report, verdict), _ = pair_reports
    line = summary_line(report, verdict)
    assert line.startswith("FAIL: label loyalty ") and len(line) <= SUMMARY_MAX_CHARS
    est = report.metrics["label_loyalty"]
    assert f"label loyalty {est.value:.4f} [{est.lower:.4f}, {est.upper:.4f}] < 0.95" in line
    n_failed = sum(c.status == "fail" for c in verdict.checks)
    assert line.count(";") + 1 == n_failed or "more)" in line
    assert "\n" not in line


def test_a_pass_shows_the_numbers_a_reviewer_wants(pair_reports):
    _, (report, verdict) = pair_reports
    line = summary_line(report, verdict)
    assert re.match(r"PASS: label loyalty 1\.0000 \[[0-9.]+, 1\.0000\]; Δaccuracy \S+ \[.+\]; "
                    r"speed-up [0-9.]+( \[[^]]+\])?; size ratio [0-9.]+; \d+ checks passed", line), line
    assert "checks passed" in line


def test_a_long_summary_is_cut_at_a_check_and_says_how_many_more(pair_reports):
    (report, verdict), _ = pair_reports
    line = summary_line(report, verdict, max_chars=90)
    assert len(line) <= 90 and re.search(r"\(\+\d+ more\)$", line), line


def test_a_failed_guard_is_named_in_words_not_as_not_measured(tfidf_pair, sst2_small):
    """``compare(parent, parent)`` fails the same-model guard; the line says so (it said "not measured")."""
    parent, _ = tfidf_pair
    report = compare(parent, parent, sst2_small[1], targets="label", n_resamples=100)
    line = summary_line(report, Policy.default().judge(report))
    assert line == "FAIL: same content as the parent (nothing was compressed)"
