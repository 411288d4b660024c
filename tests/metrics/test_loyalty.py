"""Loyalty metrics against scipy/sklearn references and hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from sklearn.metrics import accuracy_score, confusion_matrix

from mlflow_trusteq.metrics import (
    flip_matrix,
    js_divergence,
    label_loyalty_score,
    negative_flip_rate,
    per_class_loyalty,
    positive_flip_rate,
    probability_loyalty_score,
)


def _pair(n=300, k=3, seed=0, zeros=True):
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.full(k, 0.7), size=n)
    Q = rng.dirichlet(np.full(k, 0.7), size=n)
    if zeros:  # exact zeros in both, including rows where P and Q are disjoint
        P[:10, 0] = 0.0
        P[:10] /= P[:10].sum(1, keepdims=True)
        Q[5:15, 1] = 0.0
        Q[5:15] /= Q[5:15].sum(1, keepdims=True)
        P[20], Q[20] = np.eye(k)[0], np.eye(k)[1]
    return P, Q


@pytest.mark.parametrize("k", [2, 3, 5])
def test_js_divergence_matches_scipy_squared_distance_base2(k):
    P, Q = _pair(k=k)
    ref = jensenshannon(P, Q, base=2, axis=1) ** 2
    np.testing.assert_allclose(js_divergence(P, Q), ref, atol=1e-12)
    assert js_divergence(P, Q).shape == (P.shape[0],)


def test_js_divergence_natural_base_matches_scipy_default():
    P, Q = _pair()
    np.testing.assert_allclose(js_divergence(P, Q, base=math.e), jensenshannon(P, Q, axis=1) ** 2, atol=1e-12)


def test_js_divergence_bounds_and_disjoint_rows():
    np.testing.assert_allclose(js_divergence([[1.0, 0.0]], [[0.0, 1.0]]), [1.0])
    np.testing.assert_allclose(js_divergence([[1.0, 0.0]], [[0.0, 1.0]], base=math.e), [math.log(2)])
    P, Q = _pair()
    js = js_divergence(P, Q)
    assert js.min() >= 0.0 and js.max() <= 1.0


@pytest.mark.parametrize("base", [2, math.e])
def test_probability_loyalty_matches_scipy(base):
    P, Q = _pair()
    kw = {"base": 2} if base == 2 else {}
    ref = np.mean(1.0 - jensenshannon(P, Q, axis=1, **kw))
    assert probability_loyalty_score(P, Q, base=base) == pytest.approx(ref, abs=1e-10)


def test_probability_loyalty_natural_base_floor_is_0_167():
    # the study's base-e convention: even disjoint predictions score 1 - sqrt(ln 2)
    assert probability_loyalty_score([[1.0, 0.0]], [[0.0, 1.0]], base=math.e) == pytest.approx(
        1 - math.sqrt(math.log(2)))
    assert probability_loyalty_score([[1.0, 0.0]], [[0.0, 1.0]]) == 0.0


def test_label_loyalty_matches_sklearn_accuracy_of_argmaxes():
    P, Q = _pair(k=4)
    assert label_loyalty_score(P, Q) == pytest.approx(accuracy_score(P.argmax(1), Q.argmax(1)))


def test_argmax_ties_go_to_lowest_index():
    tie = [[0.5, 0.5]]
    assert label_loyalty_score(tie, [[0.6, 0.4]]) == 1.0
    assert label_loyalty_score(tie, [[0.4, 0.6]]) == 0.0
    assert flip_matrix([[0.25, 0.25, 0.25, 0.25]], [[0.1, 0.45, 0.45, 0.0]]).tolist()[0] == [0, 1, 0, 0]


def test_flip_rates_hand_computed():
    y = [0, 0, 1, 1, 1]
    P = [[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.2, 0.8]]  # preds 0 0 1 0 1: right right right wrong right
    Q = [[0.4, 0.6], [0.7, 0.3], [0.3, 0.7], [0.1, 0.9], [0.9, 0.1]]  # preds 1 0 1 1 0: wrong right right right wrong
    assert negative_flip_rate(y, P, Q) == pytest.approx(2 / 5)  # rows 0 and 4
    assert positive_flip_rate(y, P, Q) == pytest.approx(1 / 5)  # row 3
    # swapping the models swaps the two rates
    assert negative_flip_rate(y, Q, P) == pytest.approx(1 / 5)
    assert positive_flip_rate(y, Q, P) == pytest.approx(2 / 5)


def test_flip_rates_equal_accuracy_difference():
    P, Q = _pair(k=3, seed=4)
    y = np.random.default_rng(1).integers(0, 3, P.shape[0])
    acc_p, acc_q = accuracy_score(y, P.argmax(1)), accuracy_score(y, Q.argmax(1))
    assert positive_flip_rate(y, P, Q) - negative_flip_rate(y, P, Q) == pytest.approx(acc_q - acc_p)


def test_flip_matrix_matches_sklearn_confusion_matrix():
    P, Q = _pair(k=4, seed=2)
    F = flip_matrix(P, Q)
    np.testing.assert_array_equal(F, confusion_matrix(P.argmax(1), Q.argmax(1), labels=range(4)))
    assert F.dtype.kind == "i" and F.sum() == P.shape[0]
    assert np.trace(F) / F.sum() == pytest.approx(label_loyalty_score(P, Q))


def test_per_class_loyalty_hand_computed_and_nan_for_unpredicted_class():
    P = [[0.9, 0.1, 0.0], [0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.2, 0.7, 0.1]]  # parent: 0 0 1 1, never 2
    Q = [[0.9, 0.1, 0.0], [0.1, 0.1, 0.8], [0.1, 0.8, 0.1], [0.1, 0.8, 0.1]]  # cand:   0 2 1 1
    out = per_class_loyalty(P, Q)
    assert out[0] == 0.5 and out[1] == 1.0 and math.isnan(out[2])
