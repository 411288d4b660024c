"""The model-update metrics against independent references: hand-computed cases, statsmodels, brute force."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.proportion import proportion_confint

from mlflow_trusteq import InvalidInputError
from mlflow_trusteq._keys import METRIC_INFO
from mlflow_trusteq.metrics import summarize_pair
from mlflow_trusteq.metrics.update import (
    MCNEMAR_EXACT_BELOW,
    UPDATE_KEYS,
    aurc,
    backward_error_compatibility,
    backward_trust_compatibility,
    disagreement_split,
    mcnemar_test,
    summarize_update,
)


def _onehot(labels, k=3, conf=0.8):
    labels = np.asarray(labels)
    P = np.full((labels.size, k), (1 - conf) / (k - 1))
    P[np.arange(labels.size), labels] = conf
    return P


def _data(n=500, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, k, n), rng.dirichlet(np.full(k, 0.6), size=n), rng.dirichlet(np.full(k, 0.6), size=n)


# ----------------------------------------------------------------------------- hand-computed cases
# ten examples, gold all 0: parent right on 0-5; candidate right on 0-2 and 6-7; example 8 both wrong with
# different labels, example 9 both wrong with the same label
Y = np.zeros(10, dtype=int)
PARENT = _onehot([0, 0, 0, 0, 0, 0, 1, 1, 1, 2])
CANDIDATE = _onehot([0, 0, 0, 1, 2, 1, 0, 0, 2, 2])


def test_split_of_disagreement_by_hand():
    s = disagreement_split(Y, PARENT, CANDIDATE)
    # negative flips: 3, 4, 5; positive flips: 6, 7; wrong to other wrong: 8 (9 is wrong to the same wrong)
    assert (s.n, s.negative_flips, s.positive_flips, s.wrong_to_other_wrong) == (10, 3, 2, 1)
    assert s.estimates["negative_flip_rate"].value == 0.3
    assert s.estimates["wrong_to_other_wrong_rate"].value == 0.1
    # the three kinds of disagreement add up to 1 - label loyalty
    loyalty = summarize_pair(PARENT, CANDIDATE, n_resamples=0).estimates["label_loyalty"].value
    assert 0.3 + 0.2 + 0.1 == pytest.approx(1 - loyalty)
    lo, hi = proportion_confint(1, 10, alpha=0.05, method="wilson")
    e = s.estimates["wrong_to_other_wrong_rate"]
    assert (e.lower, e.upper) == (pytest.approx(lo), pytest.approx(hi))


def test_backward_compatibility_by_hand():
    # parent right on 6 examples, candidate also right on 3 of them: BTC = 3/6
    assert backward_trust_compatibility(Y, PARENT, CANDIDATE) == 0.5
    # candidate wrong on 5 (3, 4, 5, 8, 9); parent also wrong on 8, 9: BEC = 2/5
    assert backward_error_compatibility(Y, PARENT, CANDIDATE) == 0.4
    s = summarize_update(Y, PARENT, CANDIDATE, n_resamples=0)
    for key, k, n in (("backward_trust_compatibility", 3, 6), ("backward_error_compatibility", 2, 5)):
        lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
        e = s.estimates[key]
        assert (e.value, e.lower, e.upper) == (k / n, pytest.approx(lo), pytest.approx(hi))


def test_backward_compatibility_without_denominator_is_nan():
    right = _onehot(np.zeros(5, dtype=int))
    assert np.isnan(backward_error_compatibility(np.zeros(5, dtype=int), right, right))  # no candidate error
    assert np.isnan(backward_trust_compatibility(np.ones(5, dtype=int), right, right))  # parent never right
    s = summarize_update(np.zeros(5, dtype=int), right, right, n_resamples=0)
    assert s.estimates["backward_error_compatibility"].lower is None


def test_aurc_by_hand_and_by_brute_force():
    # confidences .9 .8 .7 .6, errors on the 3rd: risks 0, 0, 1/3, 1/4 at coverage 1/4, ..., 1
    P = np.array([[.9, .1], [.8, .2], [.7, .3], [.6, .4]])
    assert aurc([0, 0, 1, 0], P) == pytest.approx((0 + 0 + 1 / 3 + 1 / 4) / 4)
    y, P, _ = _data(n=300, seed=4)  # continuous confidences: no ties
    err = P.argmax(1) != y
    order = np.argsort(-P.max(1))
    brute = np.mean([err[order[:i]].mean() for i in range(1, len(y) + 1)])
    assert aurc(y, P) == pytest.approx(brute, abs=1e-12)


def test_aurc_tied_confidences_are_accepted_together():
    # two tied examples, one wrong: the curve has one point there (coverage 1, risk 1/2), in any order
    P = np.array([[.7, .3], [.7, .3]])
    assert aurc([0, 1], P) == aurc([1, 0], P) == 0.5
    y, P, _ = _data(n=200, seed=2)
    P = np.round(P, 1)
    P = P / P.sum(1, keepdims=True)
    perm = np.random.default_rng(0).permutation(200)
    assert aurc(y[perm], P[perm]) == pytest.approx(aurc(y, P), abs=1e-12)


# ----------------------------------------------------------------------------- McNemar against statsmodels
def _pair_with_flips(b, c, both_right=20, both_wrong=5):
    """Gold 0; b negative flips, c positive flips (binary models)."""
    parent = [0] * both_right + [0] * b + [1] * c + [1] * both_wrong
    candidate = [0] * both_right + [1] * b + [0] * c + [1] * both_wrong
    y = np.zeros(len(parent), dtype=int)
    return y, _onehot(parent, k=2), _onehot(candidate, k=2)


@pytest.mark.parametrize("b, c", [(0, 0), (0, 3), (7, 2), (12, 12), (5, 19), (30, 12), (40, 41), (100, 60),
                                  (13, 12)])
def test_mcnemar_matches_statsmodels(b, c):
    y, P, Q = _pair_with_flips(b, c)
    r = mcnemar_test(y, P, Q)
    table = np.array([[20, b], [c, 5]])  # rows: parent right / wrong; columns: candidate right / wrong
    exact = b + c < MCNEMAR_EXACT_BELOW
    assert r.method == ("exact" if exact else "chi2_corrected")
    assert (r.negative_flips, r.positive_flips) == (b, c)
    ref = sm_mcnemar(table, exact=exact, correction=True)
    if exact or b != c:
        assert r.statistic == pytest.approx(ref.statistic)
        assert r.p_value == pytest.approx(ref.pvalue)
    else:  # statsmodels' corrected gap (|b - c| - 1)^2 is 1 at b == c; the correction is clipped at 0 here
        assert (r.statistic, r.p_value) == (0.0, 1.0)


def test_mcnemar_forced_methods_match_statsmodels():
    y, P, Q = _pair_with_flips(30, 12)
    r = mcnemar_test(y, P, Q, exact=True)
    ref = sm_mcnemar(np.array([[20, 30], [12, 5]]), exact=True)
    assert (r.method, r.p_value) == ("exact", pytest.approx(ref.pvalue))
    y, P, Q = _pair_with_flips(3, 9)
    r = mcnemar_test(y, P, Q, exact=False)
    ref = sm_mcnemar(np.array([[20, 3], [9, 5]]), exact=False, correction=True)
    assert (r.method, r.statistic, r.p_value) == ("chi2_corrected", pytest.approx(ref.statistic),
                                                  pytest.approx(ref.pvalue))


# ----------------------------------------------------------------------------- invariances (as test_common)
def test_identical_models():
    y, P, _ = _data()
    s = summarize_update(y, P, P.copy(), n_resamples=100)
    est = s.estimates
    assert est["wrong_to_other_wrong_rate"].value == 0.0
    assert est["backward_trust_compatibility"].value == est["backward_error_compatibility"].value == 1.0
    assert (est["mcnemar_statistic"].value, est["mcnemar_p_value"].value) == (0.0, 1.0)
    d = est["diff/aurc"]
    assert (d.value, d.lower, d.upper) == (0.0, 0.0, 0.0)
    assert est["parent/aurc"].value == est["candidate/aurc"].value


def test_swap_of_parent_and_candidate():
    y, P, Q = _data(seed=1)
    a, b = summarize_update(y, P, Q, n_resamples=0), summarize_update(y, Q, P, n_resamples=0)
    # BTC and BEC are directional and swap into each other's complement relations; AURC's difference flips sign
    assert a.estimates["diff/aurc"].value == pytest.approx(-b.estimates["diff/aurc"].value)
    assert a.estimates["backward_trust_compatibility"].value != pytest.approx(
        b.estimates["backward_trust_compatibility"].value)
    assert a.estimates["wrong_to_other_wrong_rate"].value == b.estimates["wrong_to_other_wrong_rate"].value
    assert a.estimates["mcnemar_p_value"].value == pytest.approx(b.estimates["mcnemar_p_value"].value)
    assert a.split.negative_flips == b.split.positive_flips


def test_permutation_of_examples_leaves_values_unchanged():
    y, P, Q = _data(seed=3)
    perm = np.random.default_rng(0).permutation(len(y))
    a, b = summarize_update(y, P, Q, n_resamples=0), summarize_update(y[perm], P[perm], Q[perm], n_resamples=0)
    for key in UPDATE_KEYS:
        assert a.estimates[key].value == pytest.approx(b.estimates[key].value, abs=1e-12), key


def test_every_key_is_registered_with_its_direction():
    for key in UPDATE_KEYS:
        info = METRIC_INFO[key.rsplit("/", 1)[-1]]
        assert info.description and info.skipped_under == "update"
    assert not METRIC_INFO["aurc"].higher_is_better
    assert METRIC_INFO["backward_trust_compatibility"].higher_is_better


def test_aurc_interval_brackets_the_estimate_and_is_reproducible():
    y, P, Q = _data(n=400, seed=8)
    a = summarize_update(y, P, Q, n_resamples=300, random_state=3)
    b = summarize_update(y, P, Q, n_resamples=300, random_state=3)
    for key in ("parent/aurc", "candidate/aurc", "diff/aurc"):
        e = a.estimates[key]
        assert e.lower < e.value < e.upper and e == b.estimates[key]


# ----------------------------------------------------------------------------- coverage by simulation
def test_flip_rate_intervals_cover_at_their_level():
    """Wilson intervals of the wrong-to-other-wrong and negative flip rates cover the true rate (~95 %)."""
    rng = np.random.default_rng(11)
    n, reps, k = 200, 400, 3
    # per example: parent right w.p. .8; candidate flips it w.p. .1; when the parent is wrong the candidate
    # is right w.p. .3, else wrong with the other wrong label w.p. .5
    p_neg = 0.8 * 0.1
    p_w2ow = 0.2 * 0.7 * 0.5
    hits = {"negative_flip_rate": 0, "wrong_to_other_wrong_rate": 0}
    for _ in range(reps):
        y = np.zeros(n, dtype=int)
        parent_right = rng.random(n) < 0.8
        parent = np.where(parent_right, 0, rng.integers(1, k, n))
        u = rng.random(n)
        other = np.where(parent == 1, 2, 1)
        candidate = np.where(parent_right, np.where(u < 0.1, rng.integers(1, k, n), 0),
                             np.where(u < 0.3, 0, np.where(rng.random(n) < 0.5, other, parent)))
        est = disagreement_split(y, _onehot(parent), _onehot(candidate)).estimates
        for key, truth in (("negative_flip_rate", p_neg), ("wrong_to_other_wrong_rate", p_w2ow)):
            hits[key] += est[key].lower <= truth <= est[key].upper
    for key, h in hits.items():
        assert 0.92 <= h / reps <= 0.985, (key, h / reps)


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("call, match", [
    (lambda: aurc([0, 1], np.array([[0.5, 0.6], [0.5, 0.5]])), "sum to 1"),
    (lambda: aurc([0, 3], np.array([[0.5, 0.5], [0.5, 0.5]])), "outside"),
    (lambda: disagreement_split([0], np.array([[1.0, 0.0]]), np.array([[1.0, 0.0, 0.0]])), "same shape"),
    (lambda: mcnemar_test([0], np.array([[1.0, 0.0]]), np.array([[1.0, 0.0]]), exact="yes"), "exact"),
    (lambda: summarize_update([0], np.array([[1.0, 0.0]]), np.array([[1.0, 0.0]]), n_resamples=-1), "n_resamples"),
    (lambda: summarize_update([0, 1], np.array([[1.0, 0.0]] * 2), np.array([[1.0, 0.0]] * 2), confidence=1.5),
     "confidence"),
])
def test_bad_input_is_a_clear_error(call, match):
    with pytest.raises(InvalidInputError, match=match):
        call()


# ----------------------------------------------------------------------------- counts of a whole table
def test_counts_of_a_whole_table_give_its_metrics_with_the_aurcs_from_a_sample():
    """What the Spark engine does: the counted metrics from a table's counts, the AURCs from a sample of it."""
    from mlflow_trusteq.metrics.update import UpdateCounts, _correctness

    rng = np.random.default_rng(3)
    n, k = 5000, 3
    y = rng.integers(0, k, n)
    P, Q = rng.dirichlet(np.ones(k), n), rng.dirichlet(np.ones(k), n)
    whole = summarize_update(y, P, Q, n_resamples=0)
    halves = [_correctness(y[s], P[s], Q[s])[3].counts() for s in (slice(0, 1234), slice(1234, n))]
    merged = UpdateCounts(*(a + b for a, b in zip(vars(halves[0]).values(), vars(halves[1]).values())))
    assert merged == _correctness(y, P, Q)[3].counts()  # the counts add up over disjoint rows
    rows = slice(0, 400)
    mixed = summarize_update(y[rows], P[rows], Q[rows], n_resamples=0, counts=merged)
    for key in ("wrong_to_other_wrong_rate", "backward_trust_compatibility", "backward_error_compatibility",
                "mcnemar_statistic", "mcnemar_p_value"):
        assert mixed.estimates[key] == whole.estimates[key], key
    assert mixed.estimates["parent/aurc"] == summarize_update(y[rows], P[rows], Q[rows],
                                                              n_resamples=0).estimates["parent/aurc"]
    assert mixed.to_dict()["n_examples"] == n
    with pytest.raises(InvalidInputError, match="inconsistent update counts"):
        UpdateCounts(10, 3, 5, 4, 1, 0)  # more negative flips than the parent has right answers
