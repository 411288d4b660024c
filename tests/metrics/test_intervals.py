"""The intervals: against independent references, and their coverage on a few cells (issue 10).

The full coverage table is ``python benchmarks/bench_coverage.py``; here exact coverages (by
enumeration of the binomial / trinomial law, no simulation noise) and two small simulations.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

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
from mlflow_trusteq.metrics.intervals import _paired, _wilson

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("bench_coverage", ROOT / "benchmarks" / "bench_coverage.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)
Z = 1.959963984540054


@pytest.mark.parametrize("k, n", [(0, 1), (1, 1), (0, 10), (3, 10), (10, 10), (190, 200), (200, 200), (7, 1000)])
@pytest.mark.parametrize("confidence", [0.9, 0.95])
def test_wilson_matches_scipy_and_statsmodels(k, n, confidence):
    lo, hi = wilson_interval(k, n, confidence=confidence)
    ref = stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    assert (lo, hi) == pytest.approx((ref.low, ref.high), abs=1e-12)
    smp = pytest.importorskip("statsmodels.stats.proportion")
    s_lo, s_hi = smp.proportion_confint(k, n, alpha=1 - confidence, method="wilson")
    assert (lo, hi) == pytest.approx((s_lo, s_hi), abs=1e-12)


def test_summarize_pair_uses_wilson_for_label_loyalty():
    rng = np.random.default_rng(0)
    P = rng.dirichlet([1, 1], 150)
    Q = np.where(rng.random((150, 1)) < 0.1, P[:, ::-1], P)
    same = int((P.argmax(1) == Q.argmax(1)).sum())
    e = summarize_pair(P, Q, n_resamples=50).estimates["label_loyalty"]
    ref = stats.binomtest(same, 150).proportion_ci(method="wilson")
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
