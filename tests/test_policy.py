"""Policy: MetricThreshold semantics on CI bounds, fail-closed skips, strict parsing."""

from __future__ import annotations

import pytest

from mlflow_trusteq import Estimate, PolicyError
from mlflow_trusteq.compare import TrustReport
from mlflow_trusteq.policy import DEFAULT_POLICY, Policy, Verdict


def report(metrics: dict[str, Estimate], skipped: dict[str, str] | None = None) -> TrustReport:
    return TrustReport(metrics=metrics, labels=("a", "b"), n_examples=100, has_targets=True, kind="text",
                       feature_columns=("x",), parent_name="p", candidate_name="c", skipped=skipped or {})


def one(check: dict, metrics: dict[str, Estimate], **kw):
    verdict = Policy.from_dict({"checks": check, **kw}).judge(report(metrics))
    checks = _checks(verdict)
    assert len(checks) == 1
    return verdict, checks[0]


def _checks(verdict: Verdict) -> list:
    """The verdict's threshold checks (the comparability guards, judged on every report, left out)."""
    return [c for c in verdict.checks if not c.metric.startswith("guard_")]


def test_threshold_judges_the_lower_bound_for_higher_is_better():
    # point estimate above the bar, lower bound below it: not enough evidence -> fail
    v, c = one({"label_loyalty": {"threshold": 0.95}}, {"label_loyalty": Estimate(0.96, 0.94, 0.98)})
    assert not v.passed and c.status == "fail" and "lower bound" in c.reason and c.bound == 0.94
    v, c = one({"label_loyalty": {"threshold": 0.95}}, {"label_loyalty": Estimate(0.97, 0.951, 0.99)})
    assert v.passed and c.status == "pass"


def test_point_mode_judges_the_point_estimate():
    v, _ = one({"label_loyalty": {"threshold": 0.95}}, {"label_loyalty": Estimate(0.96, 0.94, 0.98)},
               decide_on="point")
    assert v.passed


def test_lower_is_better_uses_the_upper_bound():
    m = {"candidate/ece_equal_mass": Estimate(0.04, 0.03, 0.06)}
    v, c = one({"candidate/ece_equal_mass": {"threshold": 0.05}}, m)
    assert not v.passed and c.bound == 0.06 and "above" in c.reason
    v, _ = one({"candidate/ece_equal_mass": {"threshold": 0.07}}, m)
    assert v.passed


def test_margin_needs_the_whole_interval_inside():
    v, c = one({"diff/ece_equal_mass": {"margin": 0.05}}, {"diff/ece_equal_mass": Estimate(0.01, -0.02, 0.06)})
    assert not v.passed and "does not lie within" in c.reason
    v, _ = one({"diff/ece_equal_mass": {"margin": 0.05}}, {"diff/ece_equal_mass": Estimate(0.01, -0.049, 0.049)})
    assert v.passed


def test_min_absolute_change_follows_mlflow_semantics_on_the_paired_difference():
    metrics = {"candidate/accuracy": Estimate(0.80, 0.77, 0.83), "parent/accuracy": Estimate(0.82, 0.79, 0.85),
               "diff/accuracy": Estimate(-0.02, -0.03, -0.01)}
    # tolerate a loss of 0.05: pessimistic gain is -0.03 >= -0.05
    v, _ = one({"candidate/accuracy": {"min_absolute_change": -0.05}}, metrics)
    assert v.passed
    # MLflow's usual positive requirement: the candidate must be better by 0.01 -> fails
    v, c = one({"candidate/accuracy": {"min_absolute_change": 0.01}}, metrics)
    assert not v.passed and "absolute change" in c.reason
    # relative: gain / |parent| = -0.03 / 0.82 = -0.0366 >= -0.04 passes, >= -0.03 fails
    assert one({"candidate/accuracy": {"min_relative_change": -0.04}}, metrics)[0].passed
    assert not one({"candidate/accuracy": {"min_relative_change": -0.03}}, metrics)[0].passed
    # lower-is-better metric: a smaller candidate ECE is a positive gain
    ece = {"candidate/ece_equal_mass": Estimate(0.03, 0.02, 0.04), "parent/ece_equal_mass": Estimate(0.05),
           "diff/ece_equal_mass": Estimate(-0.02, -0.03, -0.01)}
    assert one({"candidate/ece_equal_mass": {"min_absolute_change": 0.01}}, ece)[0].passed
    assert not one({"candidate/ece_equal_mass": {"min_absolute_change": 0.02}}, ece)[0].passed


def test_required_missing_metric_fails_closed_and_optional_not_requested_is_skipped():
    rep = report({"label_loyalty": Estimate(1.0, 1.0, 1.0)},
                 skipped={"calibration": "not measured: no gold labels were given",
                          "alignment": "not requested (pass `alignment=True` or a config)"})
    pol = Policy.from_dict({"checks": {
        "label_loyalty": {"threshold": 0.9},
        "diff/ece_equal_mass": {"margin": 0.05},
        "alignment/lime/normalized/top_k_jaccard": {"threshold": 0.5, "required": False}}})
    v = pol.judge(rep)
    status = {c.metric: c.status for c in _checks(v)}
    assert status == {"label_loyalty": "pass", "diff/ece_equal_mass": "fail",
                      "alignment/lime/normalized/top_k_jaccard": "skipped"}
    assert not v.passed
    assert any("no gold labels" in r for r in v.reasons)


def test_a_section_that_errored_fails_even_when_not_required():
    rep = report({"label_loyalty": Estimate(1.0, 1.0, 1.0)},
                 skipped={"alignment": "error: RuntimeError: model exploded"})
    pol = Policy.from_dict({"checks": {"label_loyalty": {"threshold": 0.9},
                                       "alignment/lime/normalized/top_k_jaccard": {"threshold": 0.5,
                                                                                   "required": False}}})
    v = pol.judge(rep)
    assert not v.passed and any("model exploded" in r for r in v.reasons)


def test_bound_mode_without_interval_fails():
    v, c = one({"label_loyalty": {"threshold": 0.5}}, {"label_loyalty": Estimate(0.99)})
    assert not v.passed and "no confidence interval" in c.reason


def test_nan_metric_is_not_a_pass():
    v, _ = one({"label_loyalty": {"threshold": 0.5}}, {"label_loyalty": Estimate(float("nan"), None, None)})
    assert not v.passed


@pytest.mark.parametrize("bad, match", [
    ({"checks": {"label_loyalty": {"treshold": 0.9}}}, r"unknown key\(s\) \['treshold'\]"),
    ({"checks": {"label_loyaltyy": {"threshold": 0.9}}}, "unknown metric 'label_loyaltyy'"),
    ({"checks": {"label_loyalty": {"threshold": "high"}}}, "must be a finite number"),
    ({"checks": {"label_loyalty": {}}}, "sets no threshold"),
    ({"checks": {}}, "non-empty"),
    ({"chekcs": {"label_loyalty": {"threshold": 0.9}}}, r"unknown policy key\(s\) \['chekcs'\]"),
    ({"checks": {"label_loyalty": {"threshold": 0.9}}, "decide_on": "mean"}, "decide_on"),
    ({"checks": {"label_loyalty": {"min_absolute_change": 0.1}}}, "candidate/<metric>"),
    ({"checks": {"diff/accuracy": {"margin": -1}}}, "margin must be >= 0"),
])
def test_policy_typos_are_errors(bad, match):
    with pytest.raises(PolicyError, match=match):
        Policy.from_dict(bad)


def test_toml_round_trip_and_digest(tmp_path):
    path = tmp_path / "strict.toml"
    path.write_text('decide_on = "bound"\n[checks.label_loyalty]\nthreshold = 0.99\n'
                    '[checks."diff/ece_equal_mass"]\nmargin = 0.02\n')
    pol = Policy.from_toml(path)
    assert pol.name == "strict"
    assert {c.metric for c in pol.checks} == {"label_loyalty", "diff/ece_equal_mass"}
    assert Policy.from_dict(pol.to_dict()).digest == pol.digest
    assert Policy.default().digest != pol.digest
    bad = tmp_path / "bad.toml"
    bad.write_text("[checks.label_loyalty\nthreshold = 1")
    with pytest.raises(PolicyError, match="not valid TOML"):
        Policy.from_toml(bad)
    with pytest.raises(PolicyError, match="cannot read policy file"):
        Policy.from_toml(tmp_path / "missing.toml")


def test_default_policy_is_documented_and_valid():
    pol = Policy.default()
    assert {c.metric for c in pol.checks} == set(DEFAULT_POLICY["checks"])


def test_verdict_round_trip():
    v, _ = one({"label_loyalty": {"threshold": 0.95}}, {"label_loyalty": Estimate(0.96, 0.94, 0.98)})
    again = Verdict.from_dict(v.to_dict())
    assert again == v and again.reasons == v.reasons and again.label == "fail"


# ------------------------------------------------------------------ issue 10: edge cases never pass silently
def _report_n(metrics, n, skipped=None):
    return TrustReport(metrics=metrics, labels=("a", "b"), n_examples=n, has_targets=True, kind="text",
                       feature_columns=("x",), parent_name="p", candidate_name="c", skipped=skipped or {})


ALIGN = "alignment/lime/normalized/top_k_jaccard"


@pytest.mark.parametrize("skipped, metrics", [
    ({}, {ALIGN: Estimate(float("nan"), None, None)}),  # the stage ran and gave NaN
    ({}, {}),  # the stage ran (not skipped) but the key is missing
    ({"alignment": "not measured: it needs gold labels (pass `targets=`)"}, {}),  # requested, no value
])
def test_optional_check_whose_stage_ran_or_was_requested_without_value_fails(skipped, metrics):
    pol = Policy.from_dict({"checks": {ALIGN: {"threshold": 0.5, "required": False}}})
    v = pol.judge(report(metrics, skipped=skipped))
    assert not v.passed and v.checks[0].status == "fail"


def test_optional_check_not_requested_is_still_skipped():
    pol = Policy.from_dict({"checks": {"label_loyalty": {"threshold": 0.5},
                                       ALIGN: {"threshold": 0.5, "required": False}}})
    v = pol.judge(report({"label_loyalty": Estimate(1.0, 0.99, 1.0)},
                         skipped={"alignment": "not requested (pass `alignment=True` or a config)"}))
    assert v.passed and v.checks[1].status == "skipped"


@pytest.mark.parametrize("spec", [
    {"margin": 0.05, "threshold": 0.01},
    {"margin": 0.05, "min_absolute_change": -0.01},
    {"margin": 0.05, "min_relative_change": -0.01},
])
def test_margin_with_another_rule_is_an_error(spec):
    with pytest.raises(PolicyError, match="margin .* cannot be combined"):
        Policy.from_dict({"checks": {"candidate/accuracy": spec}})


@pytest.mark.parametrize("field, value", [
    ("greater_is_better", "false"), ("greater_is_better", 0), ("required", "false"), ("required", 1),
    ("required", None), ("threshold", float("inf")),
])
def test_fields_are_type_checked(field, value):
    spec = {"threshold": 0.05, field: value} if field != "threshold" else {field: value}
    with pytest.raises(PolicyError, match=field):
        Policy.from_dict({"checks": {"candidate/ece_equal_mass": spec}})


def test_policy_name_must_be_a_string():
    with pytest.raises(PolicyError, match="name"):
        Policy.from_dict({"name": 3, "checks": {"label_loyalty": {"threshold": 0.9}}})


@pytest.mark.parametrize("n", [3, 5, 10, 71])
def test_all_agree_on_too_few_examples_is_not_judged_and_says_how_many(n):
    from mlflow_trusteq.metrics import summarize_pair
    import numpy as np

    P = np.tile([[0.9, 0.1]], (n, 1))
    est = summarize_pair(P, P, n_resamples=200).estimates
    for decide_on in ("bound", "point"):
        v = Policy.from_dict({"checks": {"label_loyalty": {"threshold": 0.95}}, "decide_on": decide_on}).judge(
            _report_n({"label_loyalty": est["label_loyalty"]}, n))
        c = v.checks[0]
        assert not v.passed and c.status == "fail" and "not judged" in c.reason and "at least 72" in c.reason
        assert v.label == "incomplete"


def test_enough_examples_are_judged():
    v = Policy.from_dict({"checks": {"label_loyalty": {"threshold": 0.95}}}).judge(
        _report_n({"label_loyalty": Estimate(1.0, 73 / (73 + 1.959964 ** 2), 1.0, 0.95)}, 73))
    assert v.passed


def test_minimum_examples_of_the_default_policy():
    from mlflow_trusteq.metrics import min_examples

    assert min_examples("wilson", threshold=0.95) == 73  # 73 / (73 + z^2) >= 0.95 > 72 / (72 + z^2)
    assert 72 / (72 + 1.959964 ** 2) < 0.95 <= 73 / (73 + 1.959964 ** 2)
    # label loyalty's Clopper-Pearson: n of n agreeing gives the lower bound 0.025 ** (1 / n)
    assert min_examples("clopper_pearson", threshold=0.95) == 72
    assert 0.025 ** (1 / 71) < 0.95 <= 0.025 ** (1 / 72)
    assert min_examples("paired_difference", threshold=-0.02) == 137  # z sqrt(2) / (n + 2) <= 0.02
    assert min_examples("studentized", margin=0.05) == 100
    v = Policy.default().judge(_report_n({"diff/brier_loss": Estimate(0.0, 0.0, 0.0, 0.95)}, 50))
    c = next(c for c in v.checks if c.metric == "diff/brier_loss")
    assert c.status == "fail" and "at least 100" in c.reason
