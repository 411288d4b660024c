"""Bootstrap confidence intervals.

The bootstrap behind the intervals that are not closed-form (which interval each metric gets:
:mod:`mlflow_trusteq.metrics.intervals`). Where two models are compared, both are resampled with
the same indices (a paired bootstrap), so that the interval of a difference reflects the models,
not the sampling. Every exported helper validates its inputs like the metric functions.

One bootstrap for one per-example quantity, :func:`bootstrap_ci` (``mean_ci`` is its mean);
one percentile rule, :func:`percentile_interval`, which it and the paired bootstrap of
:func:`~mlflow_trusteq.metrics.summarize_pair` both use.

Two resampling units are provided:

- ``"examples"``: the textbook bootstrap, ``n`` draws with replacement out of ``n`` examples.
- ``"groups(G)"``: for large ``n``, examples are first assigned at random to ``G`` groups
  (:func:`assign_groups`); every statistic is reduced to per-group sums, and
  ``G`` groups are drawn with replacement. With a random assignment the group sums are
  exchangeable, so the resampled totals have the same mean and (up to ``O(1/G)``) the same
  variance as under the example bootstrap, at a cost independent of ``n``.

Both are expressed as *count matrices* (:func:`bootstrap_counts`): row ``r`` says how many times
each unit is drawn in resample ``r``, so any statistic built from sums is a matrix product.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .._errors import InvalidInputError
from .._types import Estimate
from ._validation import check_confidence, check_finite_or_nan, check_generator, check_int

__all__ = ["mean_ci", "bootstrap_ci", "bootstrap_counts", "assign_groups", "percentile_interval"]


def mean_ci(values: np.ndarray, *, n_resamples: int = 1000, confidence: float = 0.95,
            random_state: int | np.random.Generator | None = 0) -> Estimate:
    """Mean of per-example ``values`` with a percentile-bootstrap interval (see :func:`bootstrap_ci`).

    >>> mean_ci(np.array([0.0, 1.0, 1.0, 1.0])).value
    0.75
    """
    return bootstrap_ci(values, statistic="mean", n_resamples=n_resamples, confidence=confidence,
                        random_state=random_state)


def bootstrap_ci(values: np.ndarray, *, statistic: str = "mean", n_resamples: int = 1000,
                 confidence: float = 0.95, random_state: int | np.random.Generator | None = 0) -> Estimate:
    """``statistic`` (``"mean"`` or ``"median"``) of per-example ``values`` with a percentile bootstrap.

    NaN entries (examples where the quantity is undefined) are dropped first. Returns an
    ``Estimate`` whose bounds are ``None`` when fewer than two values remain.

    >>> bootstrap_ci(np.array([1.0, 2.0, 9.0]), statistic="median").value
    2.0
    """
    reducers: dict[str, Callable[..., Any]] = {"mean": np.mean, "median": np.median}
    if statistic not in reducers:
        raise InvalidInputError(f"Expected `statistic` 'mean' or 'median', got {statistic!r}")
    n_resamples = check_int(n_resamples, "n_resamples", minimum=1)
    confidence = check_confidence(confidence)
    _check_random_state(random_state)
    reduce = reducers[statistic]
    v = check_finite_or_nan(values, "values").ravel()
    v = v[~np.isnan(v)]
    if v.size == 0:
        return Estimate(float("nan"), None, None, confidence)
    point = float(reduce(v))
    if v.size < 2:
        return Estimate(point, None, None, confidence)
    rng = np.random.default_rng(random_state)
    idx = rng.integers(0, v.size, size=(n_resamples, v.size))
    lo, hi = percentile_interval(reduce(v[idx], axis=1), confidence=confidence)
    return Estimate(point, lo, hi, confidence)


def _check_random_state(random_state: Any) -> None:
    if random_state is None or isinstance(random_state, np.random.Generator):
        return
    if isinstance(random_state, bool) or not isinstance(random_state, (int, np.integer)) or random_state < 0:
        raise InvalidInputError(f"Expected `random_state` to be None, an integer >= 0 or a numpy Generator, "
                                f"got {random_state!r}")


def assign_groups(n: int, n_groups: int, rng: np.random.Generator) -> np.ndarray:
    """Random assignment of ``n`` examples to ``min(n_groups, n)`` groups, shape ``(n,)``, ``intp``.

    Each example goes to a uniformly random group, independently of the others (group sizes are
    about ``n / G``, give or take ``sqrt(n / G)``); resampled statistics divide by the resample's
    own total count, so unequal sizes carry no bias.
    """
    n = check_int(n, "n", minimum=0)
    n_groups = check_int(n_groups, "n_groups", minimum=1)
    check_generator(rng)
    return rng.integers(0, max(min(n_groups, n), 1), size=n, dtype=np.intp)


def bootstrap_counts(n_units: int, *, n_resamples: int, rng: np.random.Generator,
                     max_cells: int = 4_000_000) -> Iterator[np.ndarray]:
    """Yield bootstrap count matrices in chunks, ``(r, n_units)`` ``float64``, ``r`` rows per chunk.

    Row ``r`` holds how many times each unit is drawn in one resample of ``n_units`` draws with
    replacement (a multinomial count vector summing to ``n_units``). Chunks hold at most
    ``max_cells`` cells, so memory stays bounded whatever ``n_resamples``. For a given ``rng`` state
    and ``max_cells`` the draws are reproducible.
    """
    n_units = check_int(n_units, "n_units", minimum=1)
    n_resamples = check_int(n_resamples, "n_resamples", minimum=1)
    max_cells = check_int(max_cells, "max_cells", minimum=1)
    check_generator(rng)
    per_chunk = max(1, min(n_resamples, max_cells // max(n_units, 1)))
    done = 0
    while done < n_resamples:
        r = min(per_chunk, n_resamples - done)
        idx = rng.integers(0, n_units, size=(r, n_units))
        idx += (np.arange(r, dtype=np.int64) * n_units)[:, None]
        yield np.bincount(idx.ravel(), minlength=r * n_units).reshape(r, n_units).astype(np.float64)
        done += r


def percentile_interval(replicates: np.ndarray, *, confidence: float = 0.95) -> tuple[float | None, float | None]:
    """Two-sided percentile interval of bootstrap ``replicates`` (NaN replicates dropped).

    Returns ``(None, None)`` when no finite replicate remains. Infinite replicates are an error.
    """
    confidence = check_confidence(confidence)
    rep = check_finite_or_nan(replicates, "replicates")
    rep = rep[~np.isnan(rep)]
    if rep.size == 0:
        return None, None
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(rep, [alpha, 1.0 - alpha])
    return float(lo), float(hi)
