"""One table of invariants run over every metric, plus the bad-input table.

Each row of :data:`METRICS` classifies one metric (sklearn's ``test_symmetry_consistency`` is the
model): ``identical`` is its value when the candidate is the parent, or ``None`` for a one-model
metric (then identical models give a paired difference of exactly 0); ``swap`` says what swapping
parent and candidate does (``"symmetric"``: nothing; ``"directional"``: the value changes;
``"candidate"``: it reads only the candidate). Every parametrized case asserts something, and
:func:`test_every_metric_is_classified` fails when a metric is exported by
:mod:`mlflow_trusteq.metrics`, or reported by :func:`summarize_pair`, without a row here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

import mlflow_trusteq.metrics as metrics_module
from mlflow_trusteq import InvalidInputError
from mlflow_trusteq.metrics import (
    MODEL_METRICS,
    brier_loss,
    debiased_squared_ece,
    expected_calibration_error,
    flip_matrix,
    js_divergence,
    label_loyalty_score,
    log_loss,
    max_calibration_error,
    negative_flip_rate,
    per_class_loyalty,
    positive_flip_rate,
    probability_loyalty_score,
    reliability_bins,
    summarize_pair,
)


@dataclass(frozen=True)
class Invariance:
    """How one metric behaves under identical models and under a swap of the two models."""

    name: str
    fn: Callable[[np.ndarray, np.ndarray, np.ndarray], float]  # (y, P, Q) -> float
    function: str  # the name exported by mlflow_trusteq.metrics that computes it
    identical: float | None
    swap: str  # "symmetric" | "directional" | "candidate"
    summary_key: str | None = None  # its key in summarize_pair (without "parent/"/"candidate/")

    def __post_init__(self) -> None:
        assert self.swap in ("symmetric", "directional", "candidate"), self.swap
        assert self.identical is not None or self.summary_key is not None, \
            f"{self.name}: a one-model metric is checked through its paired difference in summarize_pair"


def _accuracy(y, P, Q):
    return summarize_pair(P, Q, y, n_resamples=0).estimates["candidate/accuracy"].value


METRICS = [
    Invariance("label_loyalty_score", lambda y, P, Q: label_loyalty_score(P, Q), "label_loyalty_score",
               1.0, "symmetric", "label_loyalty"),
    Invariance("probability_loyalty_score", lambda y, P, Q: probability_loyalty_score(P, Q),
               "probability_loyalty_score", 1.0, "symmetric", "probability_loyalty"),
    Invariance("probability_loyalty_score(base=e)", lambda y, P, Q: probability_loyalty_score(P, Q, base=math.e),
               "probability_loyalty_score", 1.0, "symmetric"),
    Invariance("js_divergence(sum)", lambda y, P, Q: float(js_divergence(P, Q).sum()), "js_divergence",
               0.0, "symmetric"),
    Invariance("negative_flip_rate", lambda y, P, Q: negative_flip_rate(y, P, Q), "negative_flip_rate",
               0.0, "directional", "negative_flip_rate"),
    Invariance("positive_flip_rate", lambda y, P, Q: positive_flip_rate(y, P, Q), "positive_flip_rate",
               0.0, "directional", "positive_flip_rate"),
    Invariance("flip_matrix(offdiag)", lambda y, P, Q: float(flip_matrix(P, Q).sum() - np.trace(flip_matrix(P, Q))),
               "flip_matrix", 0.0, "symmetric"),
    Invariance("per_class_loyalty(mean)", lambda y, P, Q: float(np.nanmean(per_class_loyalty(P, Q))),
               "per_class_loyalty", 1.0, "directional"),
    Invariance("accuracy", _accuracy, "summarize_pair", None, "candidate", "accuracy"),
    Invariance("ece_equal_width", lambda y, P, Q: expected_calibration_error(y, Q), "expected_calibration_error",
               None, "candidate", "ece_equal_width"),
    Invariance("ece_equal_mass", lambda y, P, Q: expected_calibration_error(y, Q, n_bins=10, strategy="equal_mass"),
               "expected_calibration_error", None, "candidate", "ece_equal_mass"),
    Invariance("ece_sq_debiased", lambda y, P, Q: debiased_squared_ece(y, Q), "debiased_squared_ece",
               None, "candidate", "ece_sq_debiased"),
    Invariance("mce_equal_width", lambda y, P, Q: max_calibration_error(y, Q), "max_calibration_error",
               None, "candidate", "mce_equal_width"),
    Invariance("mce_equal_mass", lambda y, P, Q: max_calibration_error(y, Q, n_bins=10, strategy="equal_mass"),
               "max_calibration_error", None, "candidate", "mce_equal_mass"),
    Invariance("brier_loss", lambda y, P, Q: brier_loss(y, Q), "brier_loss", None, "candidate", "brier_loss"),
    Invariance("log_loss", lambda y, P, Q: log_loss(y, Q), "log_loss", None, "candidate", "log_loss"),
]
IDS = [m.name for m in METRICS]

#: names exported by mlflow_trusteq.metrics that are not metrics of a pair, and why
NOT_METRICS = {
    "reliability_bins": "the per-bin data behind ECE/MCE and the reliability diagram",
    "ReliabilityBins": "result type of reliability_bins",
    "PairSummary": "result type of summarize_pair",
    "MODEL_METRICS": "the names of the one-model metrics in summarize_pair",
    "mean_ci": "interval of a mean, not a metric",
    "bootstrap_ci": "interval of a statistic, not a metric",
    "bootstrap_counts": "bootstrap machinery",
    "assign_groups": "bootstrap machinery",
    "percentile_interval": "bootstrap machinery",
    "wilson_interval": "interval of a proportion, not a metric",
    "paired_difference_interval": "interval of a paired difference, not a metric",
    "bias_corrected_interval": "bootstrap machinery",
    "min_examples": "sample size a check needs, not a metric",
    "interval_kind": "names the interval family of a key",
}


def _data(n=500, k=3, seed=0):
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.full(k, 0.6), size=n)
    Q = rng.dirichlet(np.full(k, 0.6), size=n)
    y = rng.integers(0, k, n)
    return y, P, Q


def test_every_metric_is_classified():
    exported = set(metrics_module.__all__)
    classified = {m.function for m in METRICS}
    assert exported - classified - set(NOT_METRICS) == set(), "exported metric(s) without an Invariance row"
    assert (classified | set(NOT_METRICS)) - exported == set(), "rows naming something no longer exported"
    assert not classified & set(NOT_METRICS)
    y, P, Q = _data(n=60)
    reported = {key.split("/", 1)[-1] for key in summarize_pair(P, Q, y, n_resamples=0).estimates}
    assert reported == {m.summary_key for m in METRICS if m.summary_key}, "summarize_pair metric without a row"
    assert set(MODEL_METRICS) == {m.summary_key for m in METRICS if m.identical is None}
    # the registry's metrics of this module (the pair summary's groups) are all classified too
    from mlflow_trusteq._keys import METRIC_INFO

    registered = {name for name, info in METRIC_INFO.items() if info.group in ("fidelity", "accuracy", "calibration")}
    assert registered == reported, "registered pair metric without a row (or a row for an unregistered one)"


@pytest.mark.parametrize("row", METRICS, ids=IDS)
def test_identical_models(row):
    y, P, _ = _data()
    if row.identical is not None:
        assert row.fn(y, P, P.copy()) == row.identical
    else:  # a one-model metric: the candidate scores what the parent scores, a paired difference of 0
        s = summarize_pair(P, P.copy(), y, n_resamples=0)
        assert s.estimates[f"diff/{row.summary_key}"].value == 0.0
        assert s.estimates[f"parent/{row.summary_key}"].value == pytest.approx(row.fn(y, P, P), abs=1e-12)


@pytest.mark.parametrize("row", METRICS, ids=IDS)
def test_swap_of_parent_and_candidate(row):
    y, P, Q = _data(seed=1)
    if row.swap == "symmetric":
        assert row.fn(y, P, Q) == pytest.approx(row.fn(y, Q, P), abs=1e-12)
    elif row.swap == "directional":
        assert row.fn(y, P, Q) != pytest.approx(row.fn(y, Q, P))  # a directional metric must notice the swap
    else:  # reads only the candidate: another parent changes nothing, another candidate does
        _, R, _ = _data(seed=7)
        assert row.fn(y, R, Q) == row.fn(y, P, Q)
        assert row.fn(y, P, Q) != pytest.approx(row.fn(y, Q, P))


def test_flip_rates_swap_into_each_other():
    y, P, Q = _data(seed=2)
    assert negative_flip_rate(y, P, Q) == positive_flip_rate(y, Q, P)


@pytest.mark.parametrize("row", METRICS, ids=IDS)
def test_permutation_of_examples_leaves_value_unchanged(row):
    # continuous random confidences: no ties, so the rank-based equal-mass bins are order-free too
    y, P, Q = _data(seed=3)
    perm = np.random.default_rng(0).permutation(len(y))
    assert row.fn(y[perm], P[perm], Q[perm]) == pytest.approx(row.fn(y, P, Q), abs=1e-12, nan_ok=True)


def test_summarize_pair_identical_models():
    y, P, _ = _data(n=300)
    for bootstrap in ("examples", "groups"):
        s = summarize_pair(P, P.copy(), y, n_resamples=200, bootstrap=bootstrap, n_groups=50,
                           min_bin_count=1)
        # every example equal: no bootstrap spread, so the Wilson bound of a mean in [0, 1], never [1, 1]
        e = s.estimates["probability_loyalty"]
        assert (e.value, e.upper) == (1.0, 1.0) and e.lower == pytest.approx(300 / (300 + 1.959964 ** 2))
        # 300 agreements: the Clopper-Pearson lower bound 0.025^(1/n), never [1, 1]
        e = s.estimates["label_loyalty"]
        assert (e.value, e.upper) == (1.0, 1.0) and e.lower == pytest.approx(0.025 ** (1 / 300), abs=1e-12)
        for key in ("negative_flip_rate", "positive_flip_rate"):
            e = s.estimates[key]
            assert (e.value, e.lower) == (0.0, 0.0) and e.upper == pytest.approx(1.959964 ** 2 / (300 + 1.959964 ** 2))
        for m in MODEL_METRICS:
            e = s.estimates[f"diff/{m}"]
            if m == "accuracy":  # no discordant pair: Bonett-Price +-z sqrt(2) / (n + 2)
                assert e.value == 0.0 and e.upper == -e.lower == pytest.approx(1.959964 * 2 ** 0.5 / 302)
            else:  # no informative example is not sparse: the bootstrap's interval of identical models
                assert (e.value, e.lower, e.upper) == (0.0, 0.0, 0.0), m
        assert s.per_class_loyalty == [1.0, 1.0, 1.0]


def test_summarize_pair_permutation_invariant_point_estimates():
    y, P, Q = _data(n=400, seed=5)
    perm = np.random.default_rng(1).permutation(len(y))
    a = summarize_pair(P, Q, y, n_resamples=0, min_bin_count=1)
    b = summarize_pair(P[perm], Q[perm], y[perm], n_resamples=0, min_bin_count=1)
    for key in a.estimates:
        assert a.estimates[key].value == pytest.approx(b.estimates[key].value, abs=1e-12), key


def test_summarize_pair_symmetric_metrics():
    y, P, Q = _data(n=400, seed=6)
    a = summarize_pair(P, Q, y, n_resamples=0)
    b = summarize_pair(Q, P, y, n_resamples=0)
    for key in ("label_loyalty", "probability_loyalty"):
        assert a.estimates[key].value == pytest.approx(b.estimates[key].value, abs=1e-12)
    assert a.estimates["negative_flip_rate"].value == b.estimates["positive_flip_rate"].value
    assert a.estimates["diff/brier_loss"].value == pytest.approx(-b.estimates["diff/brier_loss"].value)


@pytest.mark.parametrize("n_bins", [2, 3, 5, 10, 15, 20])
def test_bin_edges_land_in_documented_bin(n_bins):
    # confidence exactly 1.0 -> last bin; a value exactly on an interior edge -> the lower bin
    edges = np.linspace(0, 1, n_bins + 1)
    on_edges = [e for e in edges[1:-1] if e >= 0.5]  # two classes: confidence >= 0.5
    conf = np.array(on_edges + [1.0])
    Q = np.column_stack([conf, 1 - conf])
    b = reliability_bins(np.zeros(len(conf), dtype=int), Q, n_bins=n_bins)
    expected = np.zeros(n_bins, dtype=int)
    for e in on_edges:
        expected[int(np.flatnonzero(edges == e)[0]) - 1] += 1  # bin (e_{j-1}, e_j] is index j-1
    expected[-1] += 1
    assert b.counts == tuple(expected)
    assert len(b.counts) == n_bins


# ----------------------------------------------------------------------------- bad input
GOOD = np.array([[0.9, 0.1], [0.2, 0.8]])
BAD_PROBA = [
    (np.array([0.5, 0.5]), "2-D"),
    (np.zeros((0, 2)), "empty"),
    (np.array([[1.0], [1.0]]), "at least 2 class columns"),
    (np.array([[0.5, 0.5], [np.nan, 0.5]]), r"NaN or infinite.*row 1"),
    (np.array([[0.5, 0.5], [np.inf, 0.5]]), r"NaN or infinite.*row 1"),
    (np.array([[1.5, -0.5], [0.5, 0.5]]), r"outside \[0, 1\].*row 0: \[1.5, -0.5\]"),
    (np.array([[0.5, 0.5], [0.3, 0.3]]), r"sum to 1.*row 1 sums to 0.6"),
    ([["a", "b"], ["c", "d"]], "numeric"),
]
PUBLIC_PAIR = [label_loyalty_score, probability_loyalty_score, js_divergence, flip_matrix, per_class_loyalty,
               lambda P, Q: summarize_pair(P, Q)]
PUBLIC_MODEL = [brier_loss, log_loss, expected_calibration_error, max_calibration_error, reliability_bins]


@pytest.mark.parametrize("bad, match", BAD_PROBA)
@pytest.mark.parametrize("fn", PUBLIC_PAIR)
def test_bad_probabilities_raise_named_error(fn, bad, match):
    with pytest.raises(InvalidInputError, match=rf"^P .*{match}"):
        fn(bad, GOOD)
    with pytest.raises(InvalidInputError, match=rf"^Q .*{match}"):
        fn(GOOD, bad)


@pytest.mark.parametrize("bad, match", BAD_PROBA)
@pytest.mark.parametrize("fn", PUBLIC_MODEL)
def test_bad_probabilities_raise_named_error_calibration(fn, bad, match):
    y = [0, 1] if np.asarray(bad).ndim == 2 and len(bad) == 2 else [0]
    with pytest.raises(InvalidInputError, match=match):
        fn(y, bad)


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(InvalidInputError, match=r"P \(2, 2\) and Q \(2, 3\)"):
        label_loyalty_score(GOOD, [[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]])
    with pytest.raises(InvalidInputError, match=r"P \(2, 2\) and Q \(1, 2\)"):
        probability_loyalty_score(GOOD, [[0.2, 0.8]])


@pytest.mark.parametrize("y, match", [
    ([0], "1 labels, expected 2"),
    ([0, 2], r"outside \[0, 1\].*row 1: 2"),
    ([-1, 0], r"outside \[0, 1\].*row 0: -1"),
    ([0.0, np.nan], r"NaN.*row 1"),
    ([0.0, 0.5], r"integer class indices, got 0.5 at row 1"),
    (["neg", "pos"], "map class names"),
    ([[0, 1]], "1-D"),
])
@pytest.mark.parametrize("fn", [negative_flip_rate, positive_flip_rate, lambda y, P, Q: brier_loss(y, Q),
                                lambda y, P, Q: expected_calibration_error(y, Q),
                                lambda y, P, Q: summarize_pair(P, Q, y)])
def test_bad_targets_raise_named_error(fn, y, match):
    with pytest.raises(InvalidInputError, match=match):
        fn(y, GOOD, GOOD)


@pytest.mark.parametrize("kwargs, match", [
    ({"n_bins": 0}, "`n_bins` >= 1, got 0"),
    ({"n_bins": True}, "`n_bins` to be an integer"),
    ({"strategy": "uniform"}, "'uniform'"),
])
def test_bad_calibration_options(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        expected_calibration_error([0, 1], GOOD, **kwargs)


def test_bad_base_and_min_bin_count():
    with pytest.raises(InvalidInputError, match="base.*got 0"):
        js_divergence(GOOD, GOOD, base=0)
    with pytest.raises(InvalidInputError, match="min_bin_count"):
        max_calibration_error([0, 1], GOOD, min_bin_count=-1)


def test_tolerances_accept_round_off():
    # values a hair outside [0, 1] and rows summing to 1 within 1e-4 are accepted (and clipped)
    P = np.array([[1.0 + 5e-7, -5e-7], [0.50004, 0.5]])
    assert label_loyalty_score(P, P) == 1.0
    assert js_divergence(P, P).tolist() == [0.0, 0.0]
