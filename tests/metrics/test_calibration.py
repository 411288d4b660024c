"""Calibration metrics against sklearn references, hand-computed cases and the documented edge rules."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss
from sklearn.metrics import log_loss as sk_log_loss

from mlflow_trusteq.metrics import (
    ReliabilityBins,
    brier_loss,
    expected_calibration_error,
    log_loss,
    max_calibration_error,
    reliability_bins,
)
from mlflow_trusteq.metrics.calibration import _equal_mass_bins, _equal_mass_bins_sort


def _binary_from_conf(conf, correct):
    """Two-class probabilities whose top confidence is ``conf`` (>= 0.5) and labels with the given correctness."""
    conf = np.asarray(conf, dtype=float)
    Q = np.column_stack([conf, 1.0 - conf])  # predicts class 0 (ties at 0.5 go to class 0 too)
    y = np.where(np.asarray(correct, dtype=bool), 0, 1)
    return y, Q


def _model(n=2000, k=3, seed=0):
    rng = np.random.default_rng(seed)
    Q = rng.dirichlet(np.full(k, 0.5), size=n)
    y = np.array([rng.choice(k, p=q ** 1.5 / (q ** 1.5).sum()) for q in Q])  # miscalibrated on purpose
    return y, Q


def test_equal_width_bins_match_sklearn_calibration_curve_away_from_edges():
    y, Q = _model(n=5000, k=3)
    conf, pred = Q.max(1), Q.argmax(1)
    n_bins = 10
    away = np.abs(conf * n_bins - np.round(conf * n_bins)) > 1e-6  # sklearn and we agree off the edges
    y, Q, conf, pred = y[away], Q[away], conf[away], pred[away]
    correct = (pred == y).astype(float)
    prob_true, prob_pred = calibration_curve(correct, conf, n_bins=n_bins, strategy="uniform")
    bins = reliability_bins(y, Q, n_bins=n_bins)
    nonempty = np.array(bins.counts) > 0
    np.testing.assert_allclose(np.array(bins.accuracy)[nonempty], prob_true, atol=1e-12)
    np.testing.assert_allclose(np.array(bins.mean_confidence)[nonempty], prob_pred, atol=1e-12)
    np.testing.assert_allclose(bins.edges, np.linspace(0, 1, n_bins + 1))


def test_equal_width_edges_by_hand():
    q = np.array([[1.0, 0.0]])
    assert reliability_bins([0], q, n_bins=15).counts[-1] == 1  # confidence exactly 1.0: last bin
    assert len(reliability_bins([0], q, n_bins=15).counts) == 15  # never an extra bin
    q3 = np.array([[1 / 3, 1 / 3, 1 / 3]])  # 1/3 is the edge between bins 0 and 1 of 3 -> lower bin
    assert reliability_bins([0], q3, n_bins=3).counts == (1, 0, 0)
    assert reliability_bins([0], [[0.5, 0.5]], n_bins=2).counts == (1, 0)  # on the interior edge -> lower
    assert reliability_bins([0], [[0.5, 0.5]], n_bins=4).counts == (0, 1, 0, 0)  # (.25, .5]


def test_equal_width_edge_counts_explained():
    # rows predict: .5 (class 0), .6, .8, .8000001, 1.0 (class 0), and [0.4, 0.6] predicts class 1 at .6
    y, Q = _binary_from_conf([0.5, 0.6, 0.8, 0.8000001, 1.0, 0.4], [1] * 6)
    b = reliability_bins(y, Q, n_bins=5)
    # (.4,.6]: 0.5, 0.6, 0.6 ; (.6,.8]: 0.8 ; (.8,1]: 0.8000001, 1.0
    assert b.counts == (0, 0, 3, 1, 2)
    assert b.accuracy[2] == pytest.approx(2 / 3)  # the [0.4, 0.6] row predicts class 1, gold is 0


def test_ece_and_mce_hand_computed():
    # 4 examples, 2 bins: (0,.5] gets nothing here; (.5,1]: conf .9 (right), .9 (right), .6 (wrong), .7 (right)
    y, Q = _binary_from_conf([0.9, 0.9, 0.6, 0.7], [1, 1, 0, 1])
    # one bin: acc 3/4, conf (0.9+0.9+0.6+0.7)/4 = 0.775 -> ECE = 0.025
    assert expected_calibration_error(y, Q, n_bins=2) == pytest.approx(0.025)
    # 10 bins: (.5,.6]: .6 wrong -> gap .6 ; (.6,.7]: .7 right -> .3 ; (.8,.9]: .9,.9 right -> .1 each
    assert expected_calibration_error(y, Q, n_bins=10) == pytest.approx((0.6 + 0.3 + 2 * 0.1) / 4)
    assert max_calibration_error(y, Q, n_bins=10, min_bin_count=1) == pytest.approx(0.6)
    assert max_calibration_error(y, Q, n_bins=10, min_bin_count=2) == pytest.approx(0.1)  # small bins ignored
    assert np.isnan(max_calibration_error(y, Q, n_bins=10, min_bin_count=3))  # none qualifies
    assert np.isnan(max_calibration_error(y, Q, n_bins=10))  # default min_bin_count=10


def test_ece_equals_weighted_gap_of_reliability_bins():
    y, Q = _model()
    for strategy, nb in (("equal_width", 15), ("equal_mass", 10)):
        b = reliability_bins(y, Q, n_bins=nb, strategy=strategy)
        assert expected_calibration_error(y, Q, n_bins=nb, strategy=strategy) == pytest.approx(b.ece)
        gaps = [abs(g) for c, g in zip(b.counts, b.gap) if c >= 10]
        assert max_calibration_error(y, Q, n_bins=nb, strategy=strategy) == pytest.approx(max(gaps))


def test_equal_mass_sizes_follow_array_split_and_edges_come_from_sorted_confidences():
    y, Q = _model(n=1003)
    b = reliability_bins(y, Q, n_bins=10, strategy="equal_mass")
    assert b.counts == tuple(len(a) for a in np.array_split(np.arange(1003), 10))
    conf = np.sort(Q.max(1))
    starts = np.cumsum([0] + list(b.counts))[:-1]
    np.testing.assert_array_equal(b.edges[:-1], conf[starts])
    assert b.edges[-1] == conf[-1]
    # every bin's members lie between its edges
    mc = np.array(b.mean_confidence)
    assert np.all(mc >= np.array(b.edges[:-1]) - 1e-12) and np.all(mc <= np.array(b.edges[1:]) + 1e-12)


def test_equal_mass_ties_broken_by_stable_sort():
    # six examples, all confidence 0.7, 3 bins -> examples (0,1), (2,3), (4,5) in example order
    y, Q = _binary_from_conf([0.7] * 6, [1, 1, 0, 0, 1, 0])
    b = reliability_bins(y, Q, n_bins=3, strategy="equal_mass")
    assert b.counts == (2, 2, 2)
    assert b.accuracy == (1.0, 0.0, 0.5)


@pytest.mark.parametrize("decimals", [1, 2, 3])
def test_equal_mass_fast_path_equals_full_stable_sort(decimals):
    rng = np.random.default_rng(decimals)
    for n, nb in [(40, 10), (1000, 10), (997, 7), (5000, 15)]:
        conf = np.round(rng.random(n), decimals)  # many ties across bin boundaries
        got, ref = _equal_mass_bins(conf, nb), _equal_mass_bins_sort(conf, nb)
        np.testing.assert_array_equal(got[0], ref[0])
        np.testing.assert_array_equal(got[1], ref[1])


def test_equal_mass_with_fewer_examples_than_bins():
    b = reliability_bins([0, 1], [[0.9, 0.1], [0.6, 0.4]], n_bins=5, strategy="equal_mass")
    assert b.counts == (1, 1, 0, 0, 0)
    assert np.isnan(b.accuracy[-1])


def test_brier_binary_is_twice_sklearn_positive_class_brier():
    rng = np.random.default_rng(3)
    p1 = rng.random(500)
    Q = np.column_stack([1 - p1, p1])
    y = rng.integers(0, 2, 500)
    assert brier_loss(y, Q) == pytest.approx(2 * brier_score_loss(y, p1))


def test_brier_multiclass_matches_sklearn_unscaled():
    y, Q = _model(k=4)
    assert brier_loss(y, Q) == pytest.approx(brier_score_loss(y, Q, labels=range(4), scale_by_half=False))
    assert brier_loss([0], [[1.0, 0.0]]) == 0.0 and brier_loss([1], [[1.0, 0.0]]) == 2.0


def test_log_loss_matches_sklearn_and_clips():
    y, Q = _model(k=3)
    Q = 0.98 * Q + 0.02 / 3  # away from 0 so clipping conventions do not matter
    assert log_loss(y, Q) == pytest.approx(sk_log_loss(y, Q, labels=range(3)))
    assert log_loss([1], [[1.0, 0.0]]) == pytest.approx(-np.log(1e-15))


def test_reliability_bins_round_trip_json():
    y, Q = _model(n=50)
    b = reliability_bins(y, Q, n_bins=15)
    assert any(c == 0 for c in b.counts)  # has NaN bins
    d = json.loads(json.dumps(b.to_dict()))
    b2 = ReliabilityBins.from_dict(d)
    assert b2.counts == b.counts and b2.edges == b.edges and b2.strategy == "equal_width"
    np.testing.assert_array_equal(np.array(b2.accuracy), np.array(b.accuracy))  # NaN == NaN positions
    np.testing.assert_array_equal(np.array(b2.gap), np.array(b.gap))
