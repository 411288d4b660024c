"""Bootstrap machinery: reproducibility, coverage, and the grouped scheme against the example scheme."""

from __future__ import annotations

import numpy as np
import pytest

from mlflow_trusteq import InvalidInputError
from mlflow_trusteq.metrics import (
    bootstrap_ci,
    assign_groups,
    bootstrap_counts,
    mean_ci,
    percentile_interval,
    summarize_pair,
)


def _agree(n, p, rng, k=2):
    """Parent/candidate pair whose labels agree with probability ``p`` (i.i.d.), with gold labels."""
    P = rng.dirichlet(np.ones(k), size=n)
    same = rng.random(n) < p
    Q = np.where(same[:, None], P, P[:, ::-1])  # reversed columns flip the argmax (k=2, no ties a.s.)
    y = rng.integers(0, k, n)
    return P, Q, y


def test_mean_ci_same_seed_same_result_and_contains_mean():
    v = np.random.default_rng(0).random(200)
    a, b = mean_ci(v, random_state=3), mean_ci(v, random_state=3)
    assert a == b
    assert a.lower < a.value < a.upper
    assert mean_ci(v, random_state=4) != a


def test_mean_ci_errors_and_degenerate():
    with pytest.raises(InvalidInputError, match="n_resamples"):
        mean_ci([1.0, 2.0], n_resamples=0)
    with pytest.raises(InvalidInputError, match="confidence"):
        mean_ci([1.0, 2.0], confidence=1.5)
    assert mean_ci([np.nan, 2.0]).lower is None


def test_bootstrap_counts_rows_are_multinomial_draws_and_chunking_is_complete():
    rng = np.random.default_rng(0)
    chunks = list(bootstrap_counts(50, n_resamples=23, rng=rng, max_cells=500))
    assert len(chunks) == 3  # 10 + 10 + 3 rows
    C = np.vstack(chunks)
    assert C.shape == (23, 50)
    np.testing.assert_array_equal(C.sum(axis=1), 50)
    assert (C >= 0).all() and C.dtype == np.float64
    again = np.vstack(list(bootstrap_counts(50, n_resamples=23, rng=np.random.default_rng(0), max_cells=500)))
    np.testing.assert_array_equal(C, again)


def test_assign_groups_covers_range():
    g = assign_groups(10_000, 100, np.random.default_rng(0))
    assert g.shape == (10_000,) and g.min() == 0 and g.max() == 99
    assert np.bincount(g).min() > 50  # about 100 each
    assert assign_groups(5, 100, np.random.default_rng(0)).max() < 5


def test_percentile_interval_drops_nan_and_handles_all_nan():
    lo, hi = percentile_interval(np.r_[np.arange(101.0), np.nan], confidence=0.9)
    assert lo == pytest.approx(5.0) and hi == pytest.approx(95.0)
    assert percentile_interval(np.array([np.nan, np.nan])) == (None, None)


def test_summarize_pair_same_seed_same_result_other_seed_differs():
    P, Q, y = _agree(400, 0.9, np.random.default_rng(0))
    a = summarize_pair(P, Q, y, n_resamples=200, random_state=7)
    b = summarize_pair(P, Q, y, n_resamples=200, random_state=7)
    c = summarize_pair(P, Q, y, n_resamples=200, random_state=8)
    assert a.estimates == b.estimates
    assert a.estimates["probability_loyalty"] != c.estimates["probability_loyalty"]  # bootstrapped
    assert a.estimates["label_loyalty"] == c.estimates["label_loyalty"]  # Wilson: no resampling
    assert a.settings["random_state"] == 7


def test_mean_type_cis_contain_point_estimate():
    P, Q, y = _agree(1000, 0.85, np.random.default_rng(1), k=2)
    s = summarize_pair(P, Q, y, n_resamples=500)
    for key, e in s.estimates.items():
        if "ece" in key or "mce" in key:
            continue  # binned ECE/MCE are biased; their percentile interval need not contain the point
        assert e.lower <= e.value <= e.upper, key


def test_ci_coverage_on_simulated_bernoulli():
    # label loyalty ~ Bernoulli(0.9) over n=500: the 95% interval should cover 0.9 in ~95% of repeats
    rng = np.random.default_rng(12345)
    covered = 0
    repeats = 200
    for r in range(repeats):
        P, Q, _ = _agree(500, 0.9, rng)
        e = summarize_pair(P, Q, n_resamples=400, random_state=r).estimates["label_loyalty"]
        covered += e.lower <= 0.9 <= e.upper
    assert 0.88 <= covered / repeats <= 0.99, covered


def test_grouped_scheme_agrees_with_example_scheme():
    rng = np.random.default_rng(2)
    n, k = 50_000, 3
    L = rng.normal(size=(n, k)) * 2
    P = np.exp(L) / np.exp(L).sum(1, keepdims=True)
    L2 = L + rng.normal(size=(n, k))
    Q = np.exp(L2) / np.exp(L2).sum(1, keepdims=True)
    y = np.minimum((rng.random((n, 1)) > P.cumsum(1)).sum(1), k - 1)  # y ~ Categorical(P[i])
    ex = summarize_pair(P, Q, y, bootstrap="examples", n_resamples=400, random_state=0)
    gr = summarize_pair(P, Q, y, bootstrap="groups", n_groups=2000, n_resamples=400, random_state=0)
    assert ex.settings["bootstrap"] == "examples" and gr.settings["bootstrap"] == "groups(2000)"
    for key in ex.estimates:
        e, g = ex.estimates[key], gr.estimates[key]
        assert g.value == pytest.approx(e.value, abs=1e-12), key  # same point estimates
        if key.endswith("ece_sq_debiased"):
            # a U-statistic: resampled groups keep their within-group cross products, so the spread of
            # the grouped bootstrap is not the example bootstrap's (whose coverage the benchmark measures)
            continue
        width_e, width_g = e.upper - e.lower, g.upper - g.lower
        assert width_g == pytest.approx(width_e, rel=0.25), key
        assert abs((g.upper + g.lower) - (e.upper + e.lower)) / 2 < 0.25 * width_e, key


def test_auto_scheme_switches_at_20000():
    rng = np.random.default_rng(0)
    P, Q, _ = _agree(20_001, 0.9, rng)
    assert summarize_pair(P, Q, n_resamples=10).settings["bootstrap"] == "groups(2000)"
    assert summarize_pair(P[:20_000], Q[:20_000], n_resamples=10).settings["bootstrap"] == "examples"


# ------------------------------------------------------------------ issue 10, item 7: the helpers validate


@pytest.mark.parametrize("call", [
    lambda: bootstrap_ci(np.ones(5), n_resamples=2.5),
    lambda: bootstrap_ci(np.ones(5), n_resamples=True),
    lambda: bootstrap_ci(np.array([1.0, np.inf, 2.0])),
    lambda: bootstrap_ci(np.ones(5), confidence=True),
    lambda: bootstrap_ci(np.ones(5), random_state=-1),
    lambda: percentile_interval(np.array([0.0, np.inf])),
    lambda: percentile_interval(np.ones(3), confidence=1.5),
    lambda: list(bootstrap_counts(4, n_resamples=2.0, rng=np.random.default_rng(0))),
    lambda: list(bootstrap_counts(4.5, n_resamples=2, rng=np.random.default_rng(0))),
    lambda: list(bootstrap_counts(4, n_resamples=2, rng=0)),
    lambda: assign_groups(10, 2.5, np.random.default_rng(0)),
    lambda: assign_groups(10.0, 2, np.random.default_rng(0)),
])
def test_exported_interval_helpers_validate_their_inputs(call):
    with pytest.raises(InvalidInputError):
        call()
