"""diff/brier_loss when the candidate differs from its parent on few examples: the sparse interval (issue 10).

With about 4 (n = 200) or 20 (n = 1,000) informative examples the bootstrap-t covered 0.68 and
0.90 (``benchmarks/bench_coverage.py``, scenario ``sparse``); :func:`sparse_mean_interval` is
distribution-free and from sums only.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from mlflow_trusteq import InvalidInputError
from mlflow_trusteq.metrics import interval_kind, min_examples, summarize_pair
from mlflow_trusteq.metrics.calibration import _brier
from mlflow_trusteq.metrics.intervals import (
    INTERVAL_KINDS,
    SPARSE_TAU,
    _sparse_mean,
    _studentized,
    _use_sparse,
    sparse_mean_interval,
)

from tests.metrics._bench import ROOT, bench  # noqa: E402,F401


def _by_hand(n, d, bound=2.0, alpha=0.05):
    """The interval from its definition, with scipy's beta quantiles: share x Hoeffding bound, each side."""
    delta = alpha / 4
    out = []
    for v in (d[d > SPARSE_TAU], -d[d < -SPARSE_TAU]):
        k = v.size
        share = 1.0 if k == n else stats.beta.ppf(1 - delta, k + 1, n - k)
        mean = bound if k == 0 else min(bound, v.mean() + bound * math.sqrt(math.log(1 / delta) / (2 * k)))
        out.append(share * mean)
    return -out[1] - SPARSE_TAU, out[0] + SPARSE_TAU


def test_sparse_interval_by_hand():
    rng = np.random.default_rng(3)
    d = np.zeros(1000)
    d[:12] = rng.uniform(0, 1.5, 12)
    d[12:20] = -rng.uniform(0, 0.5, 8)
    lo, hi = sparse_mean_interval(1000, 12, d[:12].sum(), 8, -d[12:20].sum(), bound=2.0)
    assert (lo, hi) == pytest.approx(_by_hand(1000, d), abs=1e-12)
    # identical models: +- bound (1 - (alpha / 4)^(1/n)) + tau, the same on both sides
    lo, hi = sparse_mean_interval(200, 0, 0.0, 0, 0.0, bound=2.0)
    assert hi == -lo == pytest.approx(2 * (1 - 0.0125 ** (1 / 200)) + SPARSE_TAU, abs=1e-15)
    # a margin of 0.05 on a Brier difference needs 174 identical examples (min_examples' note)
    assert sparse_mean_interval(174, 0, 0, 0, 0, bound=2.0)[1] <= 0.05 < sparse_mean_interval(173, 0, 0, 0, 0,
                                                                                                bound=2.0)[1]
    assert sparse_mean_interval(50, 3, 6.0, 0, 0.0, bound=2.0)[1] <= 2.0  # never beyond the range


@pytest.mark.parametrize("call, match", [
    (lambda: sparse_mean_interval(10, 6, 1.0, 5, 1.0, bound=2.0), "up \\+ down"),
    (lambda: sparse_mean_interval(10, 1, 3.0, 0, 0.0, bound=2.0), "up_sum"),
    (lambda: sparse_mean_interval(10, 1, 1.0, 1, -0.5, bound=2.0), "down_sum"),
    (lambda: sparse_mean_interval(10, 1, float("nan"), 0, 0.0, bound=2.0), "up_sum"),
    (lambda: sparse_mean_interval(10, 1.5, 1.0, 0, 0.0, bound=2.0), "up"),
    (lambda: sparse_mean_interval(10, 1, 1.0, 0, 0.0, bound=0.0), "bound"),
    (lambda: sparse_mean_interval(10, 1, 1.0, 0, 0.0, bound=2.0, confidence=1.0), "confidence"),
])
def test_sparse_interval_validates(call, match):
    with pytest.raises(InvalidInputError, match=match):
        call()


def test_sparse_interval_covers_the_sparse_scenario():
    # no resampling, so many replications are cheap: coverage >= 0.95 by construction, here measured
    true = bench.truth("sparse")["diff/brier_loss"]
    for n, reps in ((200, 1500), (1000, 400)):
        rng = np.random.default_rng(n)
        hit = 0
        for _ in range(reps):
            P, Q, y, _ = bench.draw("sparse", n, rng)
            d = _brier(y, Q) - _brier(y, P)
            up, down = d[d > SPARSE_TAU], -d[d < -SPARSE_TAU]
            if up.size + down.size == 0:  # no informative example: the bootstrap's [0, 0] is kept, a miss here
                assert not _use_sparse(n, 0)
                continue
            assert _use_sparse(n, up.size + down.size)
            lo, hi = _sparse_mean(n, up.size, up.sum(), down.size, down.sum(), 2.0, 0.95)
            hit += lo <= true <= hi
        assert hit / reps >= 0.95, (n, hit / reps)


def test_summarize_pair_uses_it_when_few_examples_differ():
    # the sparse scenario through summarize_pair, against the old bootstrap-t on the same samples
    true = bench.truth("sparse")["diff/brier_loss"]
    rng = np.random.default_rng(5)
    new = old = 0
    reps = 60
    for _ in range(reps):
        P, Q, y, _ = bench.draw("sparse", 200, rng)
        s = summarize_pair(P, Q, y, n_resamples=200, random_state=int(rng.integers(2**31)))
        e = s.estimates["diff/brier_loss"]
        new += e.lower <= true <= e.upper
        d = _brier(y, Q) - _brier(y, P)
        assert (e.lower, e.upper) == pytest.approx(_by_hand(200, d), abs=1e-12)
        # the old interval, bootstrap-t of the same sample (its own resamples; t* of zero spread dropped)
        C = np.random.default_rng(0).multinomial(200, np.full(200, 1 / 200), size=200)
        m, se = d.mean(), d.std() / math.sqrt(200)
        ms = C @ d / 200
        ses = np.sqrt(np.maximum(C @ d ** 2 / 200 - ms ** 2, 0.0) / 200)
        with np.errstate(divide="ignore", invalid="ignore"):
            lo, hi = _studentized((ms - m) / ses, m, se, 0.95)
        old += lo is not None and lo <= true <= hi
    assert new / reps >= 0.95 and old / reps < 0.85, (new / reps, old / reps)
    assert interval_kind("diff/brier_loss") == "studentized_sparse"
    assert s.settings["interval"]["studentized_sparse"] == INTERVAL_KINDS["studentized_sparse"] + ": diff/brier_loss"
    assert "diff/brier_loss" not in s.settings["interval"]["studentized"]  # log loss keeps the bootstrap-t
    assert "diff/log_loss" in s.settings["interval"]["studentized"]


def test_identical_models_keep_the_bootstrap_and_so_do_dense_ones():
    P, Q, y, _ = bench.draw("noisy", 300, np.random.default_rng(1))
    same = summarize_pair(P, P, y, n_resamples=100).estimates["diff/brier_loss"]
    # no informative example is not sparse: the bootstrap's interval of identical models, not +-0.029
    assert (same.value, same.lower, same.upper) == (0.0, 0.0, 0.0)
    assert sparse_mean_interval(300, 0, 0, 0, 0, bound=2.0)[1] == pytest.approx(2 * (1 - 0.0125 ** (1 / 300)) + 1e-6)
    e = summarize_pair(P, Q, y, n_resamples=100).estimates["diff/brier_loss"]  # every example differs
    assert not _use_sparse(300, 300)
    assert (e.lower, e.upper) != pytest.approx(_by_hand(300, _brier(y, Q) - _brier(y, P)))
    assert e.upper - e.lower < 0.05
    # the grouped bootstrap (and a Spark state) reads the same sums: the same sparse interval
    Q2 = P.copy()
    Q2[:3] = Q[:3]
    a = summarize_pair(P, Q2, y, n_resamples=50).estimates["diff/brier_loss"]
    b = summarize_pair(P, Q2, y, n_resamples=50, bootstrap="groups", n_groups=40).estimates["diff/brier_loss"]
    assert (a.lower, a.upper) == pytest.approx((b.lower, b.upper), abs=1e-12)
    assert min_examples("studentized_sparse", margin=0.05) == 100  # the favourable sample is a dense one


def test_use_sparse_rule():
    assert not _use_sparse(200, 0) and _use_sparse(200, 1) and _use_sparse(1000, 99) and not _use_sparse(1000, 100)
    assert _use_sparse(50, 25) and not _use_sparse(50, 26)  # at most half: a dense n = 50 keeps the bootstrap


def test_a_calibration_difference_on_1_to_4_differing_examples_gets_its_range():
    """diff/ece_sq_debiased: the bias-corrected bootstrap of a difference that 1 to 4 examples make is nearly
    [0, 0], and missed the true difference (1.2e-5 in the sparse scenario) in 9 % of samples with 1 or 2
    differing examples of 200. From 1 to MIN_INFORMATIVE_CALIBRATION - 1 the interval is the range [-1, 1];
    with none (every difference below SPARSE_TAU) and from 5 on, the bootstrap's."""
    from mlflow_trusteq.metrics.intervals import MIN_INFORMATIVE_CALIBRATION

    rng = np.random.default_rng(0)
    P = rng.dirichlet([2, 2], 200)
    y = (rng.random(200) < P[:, 1]).astype(int)
    for k in (1, MIN_INFORMATIVE_CALIBRATION - 1, MIN_INFORMATIVE_CALIBRATION):
        Q = P.copy()
        Q[:k] = P[:k, ::-1]  # k examples differ
        e = summarize_pair(P, Q, y, n_resamples=200).estimates["diff/ece_sq_debiased"]
        if k < MIN_INFORMATIVE_CALIBRATION:
            assert (e.lower, e.upper) == (-1.0, 1.0), k
        else:
            assert -1.0 < e.lower <= e.value <= e.upper < 1.0, k
    assert interval_kind("diff/ece_sq_debiased") == "bias_corrected_or_range"
    assert "[-1, 1]" in INTERVAL_KINDS["bias_corrected_or_range"]


@pytest.mark.parametrize("noise", [5e-10, 3e-8])
def test_rounding_noise_is_not_informative_and_passes_the_default_margins(noise):
    """A float32 copy moves probabilities by about 1e-8, its Brier differences below SPARSE_TAU = 1e-6: no
    informative example, so the bootstrap's tiny intervals, well within the default margins. With SPARSE_TAU =
    1e-9 rounding noise of this size counted as informative on a fraction of the examples (68 of 300 at 5e-10):
    the Hoeffding term made the Brier interval about +-0.09, and a loyal float32 export of a scikit-learn
    pipeline failed the gate."""
    rng = np.random.default_rng(1)
    P = rng.dirichlet([2, 2], 300)
    y = (rng.random(300) < P[:, 1]).astype(int)
    e = rng.normal(scale=noise, size=300)
    Q = np.column_stack([P[:, 0] - e, P[:, 1] + e])
    est = summarize_pair(P, Q, y, n_resamples=200).estimates
    brier, ece = est["diff/brier_loss"], est["diff/ece_sq_debiased"]
    assert -1e-6 < brier.lower <= brier.upper < 1e-6
    assert -0.0025 < ece.lower <= ece.upper < 0.0025
