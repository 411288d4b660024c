"""Label loyalty near 1: the modified Wilson interval (Brown, Cai & DasGupta 2001), issue 10.

Exact coverage by enumeration of the binomial law (no simulation noise): the plain Wilson
interval dips to 0.92 at the ``sparse`` scenario's loyalty 0.995 with ``n = 200`` (about one
expected disagreement) and to 0.84 at worst; the modified one must not.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from mlflow_trusteq import InvalidInputError
from mlflow_trusteq.metrics import interval_kind, min_examples, summarize_pair, wilson_interval
from mlflow_trusteq.metrics.intervals import _wilson, _wilson_modified, modified_wilson_interval

Z = 1.959963984540054


def _coverage(kernel, n: int, ps: np.ndarray) -> np.ndarray:
    """Exact ``P(p in CI)`` for each ``p``, summing over the counts near ``n`` (the rest has mass < 1e-12)."""
    k = np.arange(max(0, n - 80), n + 1)
    lo, hi = kernel(k, n)
    pmf = stats.binom.pmf(k[None, :], n, ps[:, None])
    return (pmf * ((lo[None, :] <= ps[:, None]) & (ps[:, None] <= hi[None, :]))).sum(1)


def plain(k, n):
    return _wilson(k, n, Z)


def modified(k, n):
    return _wilson_modified(k, n, Z, 0.95)


def test_exact_coverage_near_one_plain_wilson_fails_modified_passes():
    sparse = np.array([0.995])  # the sparse scenario's true label loyalty
    assert _coverage(plain, 200, sparse)[0] < 0.93  # 0.920: the cell the benchmark flagged
    assert _coverage(modified, 200, sparse)[0] >= 0.95  # 0.981
    lam = np.concatenate([np.linspace(0.005, 1, 200), np.linspace(1, 12, 400)])  # expected disagreements
    for n in (200, 311, 500, 812, 1000):
        worst_plain = _coverage(plain, n, 1 - lam / n).min()
        worst_mod = _coverage(modified, n, 1 - lam / n).min()
        assert worst_plain < 0.86, (n, worst_plain)  # 0.84 at about 0.18 expected disagreements
        assert worst_mod >= 0.928, (n, worst_mod)  # 0.9286: Wilson's own dip at 4 expected ones


def test_modified_wilson_poisson_branch_by_hand():
    # one disagreement of 200: upper bound 1 - chi2_{2, 0.05} / (2 * 200); lower bound Wilson's
    lo, hi = modified_wilson_interval(199, 200)
    w_lo, _ = wilson_interval(199, 200)
    assert lo == pytest.approx(w_lo, abs=1e-15)
    assert hi == pytest.approx(1 - stats.chi2.ppf(0.05, 2) / 400, abs=1e-12)
    assert hi == pytest.approx(1 + np.log(0.95) / 200, abs=1e-12)  # chi2 with 2 d.f.: -2 log(1 - q)
    # four disagreements of 300 (x* = 4 above n = 100), and the mirror image: 4 successes
    assert modified_wilson_interval(296, 300)[1] == pytest.approx(1 - stats.chi2.ppf(0.05, 8) / 600, abs=1e-12)
    assert modified_wilson_interval(4, 300)[0] == pytest.approx(stats.chi2.ppf(0.05, 8) / 600, abs=1e-12)
    assert modified_wilson_interval(3, 80, confidence=0.9)[0] == pytest.approx(stats.chi2.ppf(0.1, 6) / 160)
    # beyond x* the plain Wilson interval: 5 of 300, 3 of 50 (x* = 2 up to n = 50), 0 and n
    for k, n in ((295, 300), (5, 300), (47, 50), (0, 200), (200, 200), (100, 200)):
        assert modified_wilson_interval(k, n) == pytest.approx(wilson_interval(k, n), abs=1e-15), (k, n)


def test_modified_wilson_contains_wilson_and_validates():
    for n in (1, 7, 50, 51, 100, 101, 200, 1000):
        k = np.arange(n + 1)
        lo, hi = modified(k, n)
        w_lo, w_hi = plain(k, n)
        assert (lo <= w_lo + 1e-15).all() and (hi >= w_hi - 1e-15).all() and (lo >= 0).all() and (hi <= 1).all()
    with pytest.raises(InvalidInputError, match="successes"):
        modified_wilson_interval(201, 200)
    with pytest.raises(InvalidInputError, match="confidence"):
        modified_wilson_interval(1, 200, confidence=1.5)


def test_summarize_pair_uses_the_modified_interval_for_label_loyalty():
    rng = np.random.default_rng(0)
    P = rng.dirichlet([1, 1], 200)
    Q = P.copy()
    Q[0] = Q[0, ::-1] if P[0, 0] != 0.5 else [0.9, 0.1]  # one disagreement
    s = summarize_pair(P, Q, rng.integers(0, 2, 200), n_resamples=20)
    e = s.estimates["label_loyalty"]
    assert (e.lower, e.upper) == pytest.approx(modified_wilson_interval(199, 200), abs=1e-12)
    assert e.upper > wilson_interval(199, 200)[1]
    flips = s.estimates["negative_flip_rate"]  # the other proportions keep the plain Wilson interval
    k = round(flips.value * 200)
    assert (flips.lower, flips.upper) == pytest.approx(wilson_interval(k, 200), abs=1e-12)
    assert interval_kind("label_loyalty") == "wilson_modified"
    assert "label_loyalty" in s.settings["interval"]["wilson_modified"]
    assert min_examples("wilson_modified", threshold=0.95) == min_examples("wilson", threshold=0.95) == 73
