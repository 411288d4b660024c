"""The intervals: against independent references, and their coverage on a few cells (issue 10).

The full coverage table is ``python benchmarks/bench_coverage.py``; here exact coverages (by
enumeration of the binomial / trinomial law, no simulation noise) and two small simulations.
"""

from __future__ import annotations


import numpy as np
import pytest
from scipy import stats

from mlflow_trusteq import InvalidInputError
from mlflow_trusteq.metrics import (
    bias_corrected_interval,
    debiased_squared_ece,
    min_examples,
    paired_difference_interval,
    summarize_pair,
    wilson_interval,
)
from mlflow_trusteq.metrics.intervals import _paired, _wilson, clopper_pearson_interval

from tests.metrics._bench import ROOT, bench  # noqa: E402,F401
Z = 1.959963984540054


@pytest.mark.parametrize("k, n", [(0, 1), (1, 1), (0, 10), (3, 10), (10, 10), (0, 200), (1, 200), (190, 200),
                                  (199, 200), (200, 200), (7, 1000), (500, 1000), (996, 1000)])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
@pytest.mark.parametrize("ours, scipy_method, statsmodels_method", [
    (wilson_interval, "wilson", "wilson"), (clopper_pearson_interval, "exact", "beta")])
def test_score_and_exact_intervals_match_scipy_and_statsmodels(k, n, confidence, ours, scipy_method,
                                                               statsmodels_method):
    lo, hi = ours(k, n, confidence=confidence)
    ref = stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method=scipy_method)
    assert (lo, hi) == pytest.approx((ref.low, ref.high), abs=1e-10)
    smp = pytest.importorskip("statsmodels.stats.proportion")
    s_lo, s_hi = smp.proportion_confint(k, n, alpha=1 - confidence, method=statsmodels_method)
    # statsmodels' beta method gives NaN for the bound at 0 or n successes (0 and 1 by definition)
    assert (lo, hi) == pytest.approx((np.nan_to_num(s_lo), np.nan_to_num(s_hi, nan=1.0)), abs=1e-10)


def test_summarize_pair_uses_clopper_pearson_for_label_loyalty():
    rng = np.random.default_rng(0)
    P = rng.dirichlet([1, 1], 150)
    Q = np.where(rng.random((150, 1)) < 0.1, P[:, ::-1], P)
    same = int((P.argmax(1) == Q.argmax(1)).sum())
    e = summarize_pair(P, Q, n_resamples=50).estimates["label_loyalty"]
    ref = stats.binomtest(same, 150).proportion_ci(method="exact")
    assert (e.lower, e.upper) == pytest.approx((ref.low, ref.high), abs=1e-12)


def test_paired_difference_by_hand():
    # Bonett & Price (2012): b = 5, c = 2, n = 100 -> p12 = 6/102, p21 = 3/102
    p12, p21 = 6 / 102, 3 / 102
    d = p21 - p12
    se = np.sqrt((p12 + p21 - d * d) / 102)
    assert paired_difference_interval(5, 2, 100) == pytest.approx((d - Z * se, d + Z * se), abs=1e-12)
    lo, hi = paired_difference_interval(0, 0, 10)
    assert hi == -lo == pytest.approx(Z * np.sqrt(2) / 12)


def test_exact_coverage_of_wilson_near_one():
    # P(p in CI) = sum_k Binom(k; n, p) [p in CI(k)]: the percentile bootstrap gave 0.82 at p = 0.984, n = 200
    for n, p in ((200, 0.95), (200, 0.984), (1000, 0.995), (50, 0.95)):
        k = np.arange(n + 1)
        lo, hi = _wilson(k, n, Z)
        cover = stats.binom.pmf(k, n, p)[(lo <= p) & (p <= hi)].sum()
        assert cover >= (0.93 if n >= 200 else 0.92), (n, p, cover)


def test_exact_coverage_of_the_paired_difference():
    # trinomial: b (negative flips), c (positive flips), rest; the truth d = p_c - p_b
    n = 200
    for p_b, p_c in ((0.012, 0.011), (0.03, 0.02), (0.05, 0.01)):
        b, c = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
        ok = b + c <= n
        b, c = b[ok], c[ok]
        logpmf = (stats.multinomial.logpmf(np.column_stack([b, c, n - b - c]), n, [p_b, p_c, 1 - p_b - p_c]))
        lo, hi = _paired(b, c, n, Z)
        d = p_c - p_b
        cover = np.exp(logpmf)[(lo <= d) & (d <= hi)].sum()
        assert cover >= 0.93, (p_b, p_c, cover)


def test_bias_corrected_interval_reference_and_validation():
    rep = np.random.default_rng(0).normal(size=4001)
    # replicates centred on the estimate: BC is the percentile interval
    assert bias_corrected_interval(rep, float(np.median(rep))) == pytest.approx(
        tuple(np.quantile(rep, [0.025, 0.975])), abs=1e-3)
    # shifted: z0 = Phi^-1(0.8413) = 1 moves the quantiles to Phi(2 -+ 1.96)
    lo, hi = bias_corrected_interval(rep, 1.0)
    assert (lo, hi) == pytest.approx(tuple(np.quantile(rep, [stats.norm.cdf(2 - Z), stats.norm.cdf(2 + Z)])),
                                     abs=0.03)
    with pytest.raises(InvalidInputError):
        bias_corrected_interval(np.array([0.0, np.inf]), 0.0)
    with pytest.raises(InvalidInputError):
        bias_corrected_interval(rep, float("nan"))


@pytest.mark.parametrize("call", [
    lambda: wilson_interval(2.5, 10), lambda: wilson_interval(11, 10), lambda: wilson_interval(1, 0),
    lambda: wilson_interval(1, float("inf")), lambda: wilson_interval(True, 10),
    lambda: wilson_interval(1, 10, confidence=95), lambda: paired_difference_interval(6, 5, 10),
    lambda: min_examples("bogus", threshold=0.9),
])
def test_interval_helpers_validate(call):
    with pytest.raises(InvalidInputError):
        call()


def test_debiased_ece_by_hand_and_unbiased_for_a_calibrated_model():
    # one bin (n_bins=1): d = a - c; (S^2 - Q) / (n - 1) / n
    y = [0, 1, 1]
    Q = [[0.7, 0.3], [0.4, 0.6], [0.2, 0.8]]
    d = np.array([1 - 0.7, 1 - 0.6, 1 - 0.8])
    assert debiased_squared_ece(y, Q, n_bins=1) == pytest.approx((d.sum() ** 2 - (d ** 2).sum()) / 2 / 3)
    rng = np.random.default_rng(0)
    vals = []
    for _ in range(200):
        P, _, yy, _ = bench.draw("noisy", 300, rng)
        vals.append(debiased_squared_ece(yy, P))
    vals = np.array(vals)
    assert abs(vals.mean()) < 3 * vals.std() / np.sqrt(len(vals))  # centred on the true 0


def test_simulated_coverage_few_cells():
    # the gated calibration difference covers; the binned ECE's interval never contains a calibrated 0
    cov = bench.coverage("overconf", 200, 30, n_resamples=300, seed=1)
    assert cov["diff/ece_sq_debiased"]["coverage"] >= 0.8
    assert cov["diff/brier_loss"]["coverage"] >= 0.8
    assert cov["parent/ece_equal_width"]["coverage"] <= 0.1


# ------------------------------------------------------------------ probability loyalty: few informative examples
def _old_studentized_coverage(cells):
    """What the plain bootstrap-t (non-finite t* dropped, no Wilson bound) would give on the same cells."""
    from mlflow_trusteq.metrics.intervals import _studentized

    return np.mean([_studentized(t, est, se, 0.95)[0] <= true <= _studentized(t, est, se, 0.95)[1]
                    for t, est, se, true in cells])


def _sparse_cells(n, reps, seed):
    """``reps`` samples of the ``sparse`` scenario: (t*, estimate, se, truth) of probability loyalty, and the
    interval summarize_pair reports."""
    from mlflow_trusteq.metrics.loyalty import _js

    true = bench.truth("sparse")["probability_loyalty"]
    rng = np.random.default_rng(seed)
    cells, reported = [], []
    for _ in range(reps):
        P, Q, _, _ = bench.draw("sparse", n, rng)
        state = int(rng.integers(2**31))
        e = summarize_pair(P, Q, n_resamples=500, random_state=state).estimates["probability_loyalty"]
        reported.append((e.lower, e.upper))
        x = 1.0 - np.sqrt(_js(P, Q, 2.0))
        C = np.vstack(list(bench_counts(n, state)))
        m, se = x.mean(), np.sqrt(max((x ** 2).mean() - x.mean() ** 2, 0.0) / n)
        ms = C @ x / n
        ses = np.sqrt(np.maximum(C @ x ** 2 / n - ms ** 2, 0.0) / n)
        with np.errstate(divide="ignore", invalid="ignore"):
            cells.append(((ms - m) / ses, m, se, true))
    return cells, reported, true


def bench_counts(n, state):
    """The count matrices summarize_pair draws with ``random_state=state`` (examples scheme, 500 resamples)."""
    from mlflow_trusteq.metrics import bootstrap_counts

    return bootstrap_counts(n, n_resamples=500, rng=np.random.default_rng(state))


def test_probability_loyalty_covers_with_few_informative_examples():
    # a candidate equal to its parent except on 2 % of the examples (about 4 of 200): resamples without any of
    # them have se* = 0; the old bootstrap-t dropped their infinite t* and covered about 0.85 (misses above)
    cells, reported, true = _sparse_cells(200, 120, seed=11)
    new = np.mean([lo <= true <= hi for lo, hi in reported])
    assert new >= 0.93, new
    assert _old_studentized_coverage(cells) < 0.9  # the same samples, the old rule
    assert all(0.0 <= lo <= hi <= 1.0 for lo, hi in reported)  # and never outside [0, 1]


def test_studentized_bounded_keeps_infinite_t_and_stays_within_wilson():
    from mlflow_trusteq.metrics.intervals import _studentized, _studentized_bounded

    t = np.r_[np.random.default_rng(0).normal(size=900), np.full(100, np.inf)]  # 10 % of resamples: se* = 0
    est, se, n = 0.99, 0.004, 200
    w_lo, w_hi = _wilson(est * n, n, Z)
    lo, hi = _studentized_bounded(t, est, se, n, 0.95)
    assert lo == pytest.approx(float(w_lo))  # the 97.5 % quantile of t* is infinite: the Wilson bound
    assert hi == pytest.approx(min(est - np.quantile(t, 0.025) * se, float(w_hi)))
    assert _studentized(t, est, se, 0.95)[0] > lo  # dropping them gave a shorter, optimistic bound
    # finite t*: the bootstrap-t bounds themselves (within Wilson), as before
    t = np.random.default_rng(1).normal(size=1000)
    lo, hi = _studentized_bounded(t, 0.9, 0.01, 200, 0.95)
    assert (lo, hi) == pytest.approx(_studentized(t, 0.9, 0.01, 0.95))
    # no spread at all: the Wilson interval of the mean
    assert _studentized_bounded(np.full(10, np.nan), 1.0, 0.0, 50, 0.95) == pytest.approx(
        (50 / (50 + Z * Z), 1.0))


# ------------------------------------------------------------------ issue 10, item 7: every exported helper validates
@pytest.mark.parametrize("call, match", [
    (lambda: wilson_interval(float("nan"), 10), "successes"),
    (lambda: wilson_interval(1, float("nan")), "`n`"),
    (lambda: wilson_interval(1, 10, confidence=float("nan")), "confidence"),
    (lambda: wilson_interval(1, 10, confidence=0.0), "confidence"),
    (lambda: wilson_interval(1, 10, confidence=1.0), "confidence"),
    (lambda: wilson_interval("3", 10), "successes"),
    (lambda: paired_difference_interval(1.5, 0, 10), "only_first"),
    (lambda: paired_difference_interval(0, float("inf"), 10), "only_second"),
    (lambda: paired_difference_interval(0, 0, 10, confidence=-0.5), "confidence"),
    (lambda: bias_corrected_interval(np.array(["a", "b"]), 0.0), "numeric"),
    (lambda: bias_corrected_interval(np.arange(5.0), float("inf")), "estimate"),
    (lambda: bias_corrected_interval(np.arange(5.0), 1.0, confidence=1.5), "confidence"),
    (lambda: min_examples("wilson", threshold=float("nan")), "threshold"),
    (lambda: min_examples("wilson", threshold=float("inf")), "threshold"),
    (lambda: min_examples("paired_difference", margin=float("nan")), "margin"),
    (lambda: min_examples("wilson", threshold="0.9"), "threshold"),
    (lambda: min_examples("wilson", threshold=0.9, higher_is_better="false"), "higher_is_better"),
    (lambda: min_examples("wilson", threshold=0.9, confidence=1.0), "confidence"),
])
def test_interval_helpers_name_the_bad_input(call, match):
    with pytest.raises(InvalidInputError, match=match):
        call()


def test_interval_helpers_accept_whole_floats_and_report_empty_input_as_not_measured():
    assert wilson_interval(3.0, 10.0) == wilson_interval(3, 10)
    assert paired_difference_interval(np.int64(2), 1, 50) == paired_difference_interval(2, 1, 50)
    assert min_examples("studentized_bounded", threshold=0.9) == 100
    # no replicate at all: no interval (the documented "not measured"), never an exception or a number
    assert bias_corrected_interval(np.array([]), 0.0) == (None, None)
