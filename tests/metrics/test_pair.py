"""summarize_pair: keys, agreement with the single-metric functions, serialisation, settings."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from mlflow_trusteq import InvalidInputError
from mlflow_trusteq._keys import metric_info
from mlflow_trusteq.metrics import (
    MODEL_METRICS,
    PairSummary,
    brier_loss,
    expected_calibration_error,
    flip_matrix,
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

PAIR_KEYS = {"label_loyalty", "probability_loyalty"}
LABELLED_KEYS = PAIR_KEYS | {"negative_flip_rate", "positive_flip_rate"} | {
    f"{who}/{m}" for who in ("parent", "candidate", "diff") for m in MODEL_METRICS}


def _data(n=600, k=3, seed=0):
    rng = np.random.default_rng(seed)
    L = rng.normal(size=(n, k)) * 2
    P = np.exp(L) / np.exp(L).sum(1, keepdims=True)
    L2 = 0.6 * L + rng.normal(size=(n, k))
    Q = np.exp(L2) / np.exp(L2).sum(1, keepdims=True)
    y = np.minimum((rng.random((n, 1)) > P.cumsum(1)).sum(1), k - 1)
    return P, Q, y


def test_keys_with_and_without_labels():
    P, Q, y = _data()
    s = summarize_pair(P, Q, y, n_resamples=50)
    assert set(s.estimates) == LABELLED_KEYS and len(s.estimates) == 28
    assert s.has_targets and set(s.reliability) == {"parent", "candidate"}
    assert set(s.reliability["parent"]) == {"equal_width", "equal_mass"}
    u = summarize_pair(P, Q, n_resamples=50)
    assert set(u.estimates) == PAIR_KEYS  # never invent labels
    assert not u.has_targets and u.reliability == {}
    for key in s.estimates:
        metric_info(key)  # every key's base name is registered


@pytest.mark.parametrize("k", [2, 3])
def test_point_estimates_equal_single_metric_functions(k):
    P, Q, y = _data(k=k, seed=k)
    s = summarize_pair(P, Q, y, n_resamples=20, base=math.e, n_bins_equal_width=12, n_bins_equal_mass=8,
                       min_bin_count=5)
    e = {key: v.value for key, v in s.estimates.items()}
    assert e["label_loyalty"] == pytest.approx(label_loyalty_score(P, Q))
    assert e["probability_loyalty"] == pytest.approx(probability_loyalty_score(P, Q, base=math.e))
    assert e["negative_flip_rate"] == pytest.approx(negative_flip_rate(y, P, Q))
    assert e["positive_flip_rate"] == pytest.approx(positive_flip_rate(y, P, Q))
    for who, M in (("parent", P), ("candidate", Q)):
        assert e[f"{who}/accuracy"] == pytest.approx(np.mean(M.argmax(1) == y))
        assert e[f"{who}/brier_loss"] == pytest.approx(brier_loss(y, M))
        assert e[f"{who}/log_loss"] == pytest.approx(log_loss(y, M))
        for strategy, nb in (("equal_width", 12), ("equal_mass", 8)):
            assert e[f"{who}/ece_{strategy}"] == pytest.approx(
                expected_calibration_error(y, M, n_bins=nb, strategy=strategy))
            mce = max_calibration_error(y, M, n_bins=nb, strategy=strategy, min_bin_count=5)
            assert e[f"{who}/mce_{strategy}"] == pytest.approx(mce, nan_ok=True)
            got, ref = s.reliability[who][strategy], reliability_bins(y, M, n_bins=nb, strategy=strategy)
            assert got.counts == ref.counts and got.edges == ref.edges and got.strategy == strategy
            np.testing.assert_allclose(got.accuracy, ref.accuracy)
            np.testing.assert_allclose(got.mean_confidence, ref.mean_confidence)
    for m in MODEL_METRICS:
        assert e[f"diff/{m}"] == pytest.approx(e[f"candidate/{m}"] - e[f"parent/{m}"], nan_ok=True)
    assert s.flip_matrix == flip_matrix(P, Q).tolist()
    np.testing.assert_allclose(s.per_class_loyalty, per_class_loyalty(P, Q))


def test_json_round_trip():
    P, Q, y = _data(n=80)
    P[:, 2] = 0.0  # parent never predicts class 2 -> NaN per-class loyalty
    P /= P.sum(1, keepdims=True)
    s = summarize_pair(P, Q, y, n_resamples=30)
    assert math.isnan(s.per_class_loyalty[2])
    d = json.loads(json.dumps(s.to_dict(), allow_nan=False))
    s2 = PairSummary.from_dict(d)
    assert s2.to_dict() == s.to_dict()
    assert s2.reliability["candidate"]["equal_mass"].counts == s.reliability["candidate"]["equal_mass"].counts
    assert s2.estimates["label_loyalty"] == s.estimates["label_loyalty"]


def test_settings_record_every_definition():
    P, Q, y = _data(n=100)
    st = summarize_pair(P, Q, y, n_resamples=10, random_state=5, base=math.e, confidence=0.9).settings
    assert st["base"] == math.e and st["random_state"] == 5 and st["confidence"] == 0.9
    assert st["n_bins_equal_width"] == 15 and st["n_bins_equal_mass"] == 10 and st["min_bin_count"] == 10
    assert st["n_resamples"] == 10 and st["bootstrap"] == "examples"
    assert "lowest" in st["argmax_ties"]


def test_no_resamples_gives_points_without_intervals():
    P, Q, y = _data(n=100)
    e = summarize_pair(P, Q, y, n_resamples=0).estimates["diff/brier_loss"]
    assert e.lower is None and e.upper is None and not math.isnan(e.value)


def test_tiny_inputs():
    s = summarize_pair([[0.7, 0.3]], [[0.2, 0.8]], [0], n_resamples=10)
    e = s.estimates["label_loyalty"]  # one example: Clopper-Pearson [0, 1 - 0.025], no bootstrap interval
    assert (e.value, e.lower) == (0.0, 0.0) and e.upper == pytest.approx(0.975, abs=1e-12)
    assert s.estimates["probability_loyalty"].lower is None
    assert math.isnan(s.estimates["parent/mce_equal_mass"].value)  # no bin reaches min_bin_count
    s3 = summarize_pair([[0.7, 0.3]] * 3, [[0.2, 0.8]] * 3, [0, 1, 1], n_resamples=10)
    assert s3.reliability["parent"]["equal_mass"].counts == (1, 1, 1, 0, 0, 0, 0, 0, 0, 0)


def test_paired_bootstrap_interval_of_diff_is_narrower_than_unpaired():
    # the candidate is the parent plus small noise: the paired difference is far more precise
    P, _, y = _data(n=2000, seed=9)
    rng = np.random.default_rng(9)
    Q = np.clip(P + rng.normal(scale=0.01, size=P.shape), 1e-9, None)
    Q /= Q.sum(1, keepdims=True)
    s = summarize_pair(P, Q, y, n_resamples=300)
    d, p = s.estimates["diff/brier_loss"], s.estimates["parent/brier_loss"]
    assert (d.upper - d.lower) < 0.2 * (p.upper - p.lower)


@pytest.mark.parametrize("kwargs, match", [
    ({"base": 1}, "base"),
    ({"n_bins_equal_width": 0}, "n_bins_equal_width"),
    ({"n_bins_equal_mass": 2.5}, "n_bins_equal_mass"),
    ({"min_bin_count": -1}, "min_bin_count"),
    ({"n_resamples": -5}, "n_resamples"),
    ({"confidence": 95}, "confidence"),
    ({"random_state": "seed"}, "random_state"),
    ({"bootstrap": "blocks"}, "blocks"),
    ({"n_groups": 1}, "n_groups"),
])
def test_option_errors_name_the_option(kwargs, match):
    P, Q, y = _data(n=20)
    with pytest.raises(InvalidInputError, match=match):
        summarize_pair(P, Q, y, **kwargs)


def test_label_errors():
    P, Q, y = _data(n=20)
    with pytest.raises(InvalidInputError, match="19 labels, expected 20"):
        summarize_pair(P, Q, y[:-1])
    with pytest.raises(InvalidInputError, match=r"outside \[0, 2\].*row 3: 7"):
        summarize_pair(P, Q, np.r_[y[:3], 7, y[4:]])


def test_pair_sums_of_two_partitions_merge_into_the_whole():
    """The state behind summarize_pair: sums of disjoint partitions add up to the state of all examples."""
    from mlflow_trusteq.metrics.bootstrap import assign_groups
    from mlflow_trusteq.metrics.pair import _contributions, _Layout, _PairSums

    rng = np.random.default_rng(4)
    n, k, n_groups = 3000, 3, 40
    P = rng.dirichlet(np.ones(k), n)
    Q = 0.8 * P + 0.2 * rng.dirichlet(np.ones(k), n)
    y = rng.integers(0, k, n)
    layout = _Layout(True, (("equal_width", 15), ("equal_mass", 10)))
    whole = _contributions(P, Q, y, 2.0, layout)  # the bins are fixed from the full sample
    groups = assign_groups(n, n_groups, np.random.default_rng(0))
    full = _PairSums.from_examples(whole, layout, groups, n_groups)
    halves = []
    for part in (slice(0, 1234), slice(1234, n)):
        c = _contributions(P[part], Q[part], y[part], 2.0, layout)
        binned = {m: {s: type(b)(b.n_bins, whole.binned[m][s].index[part], b.edges, b.confidence, b.correct)
                      for s, b in d.items()} for m, d in c.binned.items()}
        halves.append(_PairSums.from_examples(type(c)(c.pair, c.model, binned, c.flips), layout, groups[part],
                                              n_groups))
    merged = halves[0].merge(halves[1])
    np.testing.assert_allclose(merged.pair, full.pair, rtol=1e-12, atol=1e-12)
    for role in ("parent", "candidate"):
        np.testing.assert_allclose(merged.models[role], full.models[role], rtol=1e-12, atol=1e-12)
    point = summarize_pair(P, Q, y, n_resamples=0)
    for key, value in merged.total().compute(layout, 10).items():
        assert float(value) == pytest.approx(point.estimates[key].value, rel=1e-12, abs=1e-12), key
