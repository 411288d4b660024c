"""Label loyalty near 1: the exact Clopper-Pearson interval (issue 10).

Exact coverage by enumeration of the binomial law (no simulation noise). Plain Wilson dips to
0.84 near 1; the modified Wilson interval of Brown, Cai & DasGupta (2001), the previous label
loyalty interval, to 0.929 for ``200 <= n <= 1000`` (below the issue's 0.93) with its upper bound
missing up to 0.066; Clopper-Pearson keeps 0.95, each bound missing at most 0.025.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from mlflow_trusteq import InvalidInputError
from mlflow_trusteq.metrics import interval_kind, min_examples, summarize_pair, wilson_interval
from mlflow_trusteq.metrics.intervals import (
    INTERVAL_KINDS,
    _clopper_pearson,
    _wilson,
    _wilson_modified,
    clopper_pearson_interval,
    modified_wilson_interval,
)

Z = 1.959963984540054
#: expected disagreements n (1 - p): dense near 0, then up to 20 (beyond, the intervals hardly differ near 1)
LAMBDA = np.concatenate([np.linspace(0.005, 1, 200), np.linspace(1, 20, 800)])


def _exact(kernel, n: int, ps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact coverage, ``P(lower > p)`` and ``P(upper < p)`` for each ``p``, over the counts near ``n`` (the rest
    has mass < 1e-12 for up to 20 expected failures)."""
    k = np.arange(max(0, n - 120), n + 1)
    lo, hi = kernel(k, n)
    pmf = stats.binom.pmf(k[None, :], n, ps[:, None])
    above = (pmf * (lo[None, :] > ps[:, None])).sum(1)
    below = (pmf * (hi[None, :] < ps[:, None])).sum(1)
    return 1.0 - above - below, above, below


def plain(k, n):
    return _wilson(k, n, Z)


def modified(k, n):
    return _wilson_modified(k, n, Z, 0.95)


def exact(k, n):
    return _clopper_pearson(k, n, 0.95)


@pytest.mark.parametrize("n", [200, 348, 500, 812, 977, 1000])
def test_exact_coverage_near_one(n):
    ps = 1 - LAMBDA / n
    cover, lower_miss, upper_miss = _exact(exact, n, ps)
    assert cover.min() >= 0.95, cover.min()  # 0.9503 at worst over every n in [200, 1000]
    assert lower_miss.max() <= 0.025 + 1e-12 and upper_miss.max() <= 0.025 + 1e-12  # the gate reads the lower one
    # what it replaces: plain Wilson's dip near 1, and the modified Wilson interval's (its upper bound misses)
    assert _exact(plain, n, ps)[0].min() < 0.86
    mod_cover, _, mod_upper_miss = _exact(modified, n, ps)
    assert mod_cover.min() < 0.95 and mod_upper_miss.max() > 0.04
    if n in (348, 977):  # 0.9287 at about 4 expected disagreements (n = 977): below the 0.93
        assert mod_cover.min() < 0.93


def test_clopper_pearson_by_hand_and_validates():
    # all agree: lower bound (alpha / 2)^(1/n); none agrees: upper bound 1 - (alpha / 2)^(1/n)
    assert clopper_pearson_interval(200, 200) == pytest.approx((0.025 ** (1 / 200), 1.0), abs=1e-13)
    assert clopper_pearson_interval(0, 200) == pytest.approx((0.0, 1 - 0.025 ** (1 / 200)), abs=1e-13)
    with pytest.raises(InvalidInputError, match="successes"):
        clopper_pearson_interval(201, 200)
    with pytest.raises(InvalidInputError, match="successes"):
        clopper_pearson_interval(1.5, 200)
    with pytest.raises(InvalidInputError, match="confidence"):
        clopper_pearson_interval(1, 200, confidence=1.5)


def test_min_examples_of_the_exact_interval():
    need = min_examples("clopper_pearson", threshold=0.95)
    assert need == 72  # ln(0.025) / ln(0.95) = 71.9
    assert clopper_pearson_interval(need, need)[0] >= 0.95 > clopper_pearson_interval(need - 1, need - 1)[0]
    need_hi = min_examples("clopper_pearson", threshold=0.02, higher_is_better=False)
    assert clopper_pearson_interval(0, need_hi)[1] <= 0.02 < clopper_pearson_interval(0, need_hi - 1)[1]
    assert min_examples("clopper_pearson", threshold=1.0) == 10**9
    assert min_examples("clopper_pearson", margin=0.1) == 1


def test_summarize_pair_uses_the_exact_interval_for_label_loyalty():
    rng = np.random.default_rng(0)
    P = rng.dirichlet([1, 1], 200)
    Q = P.copy()
    Q[0] = Q[0, ::-1] if P[0, 0] != 0.5 else [0.9, 0.1]  # one disagreement
    s = summarize_pair(P, Q, rng.integers(0, 2, 200), n_resamples=20)
    e = s.estimates["label_loyalty"]
    ref = stats.binomtest(199, 200).proportion_ci(method="exact")
    assert (e.lower, e.upper) == pytest.approx((ref.low, ref.high), abs=1e-10)
    assert e.upper > modified_wilson_interval(199, 200)[1]  # not the old interval (its upper bound missed 0.066)
    flips = s.estimates["negative_flip_rate"]  # the other proportions keep the Wilson interval
    k = round(flips.value * 200)
    assert (flips.lower, flips.upper) == pytest.approx(wilson_interval(k, 200), abs=1e-12)
    assert interval_kind("label_loyalty") == "clopper_pearson"
    assert s.settings["interval"]["clopper_pearson"] == INTERVAL_KINDS["clopper_pearson"] + ": label_loyalty"
    assert "label_loyalty" not in s.settings["interval"]["wilson"]


def test_modified_wilson_poisson_branch_by_hand():
    # kept for comparison (no key uses it): one disagreement of 200, upper bound 1 - chi2_{2, 0.05} / (2 * 200)
    lo, hi = modified_wilson_interval(199, 200)
    w_lo, _ = wilson_interval(199, 200)
    assert lo == pytest.approx(w_lo, abs=1e-15)
    assert hi == pytest.approx(1 - stats.chi2.ppf(0.05, 2) / 400, abs=1e-12)
    assert modified_wilson_interval(296, 300)[1] == pytest.approx(1 - stats.chi2.ppf(0.05, 8) / 600, abs=1e-12)
    assert modified_wilson_interval(4, 300)[0] == pytest.approx(stats.chi2.ppf(0.05, 8) / 600, abs=1e-12)
    for k, n in ((295, 300), (5, 300), (47, 50), (0, 200), (200, 200), (100, 200)):
        assert modified_wilson_interval(k, n) == pytest.approx(wilson_interval(k, n), abs=1e-15), (k, n)
    with pytest.raises(InvalidInputError, match="successes"):
        modified_wilson_interval(201, 200)
