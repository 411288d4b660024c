"""Bootstrap confidence intervals.

Every interval in trusteq is a percentile bootstrap over *examples*. Where two models are
compared, both are resampled with the same indices (a paired bootstrap), so that the interval of
a difference reflects the models, not the sampling.
"""

from __future__ import annotations

import numpy as np

from .._errors import InvalidInputError
from .._types import Estimate

__all__ = ["mean_ci"]


def mean_ci(values: np.ndarray, *, n_resamples: int = 1000, confidence: float = 0.95,
            random_state: int | np.random.Generator | None = 0) -> Estimate:
    """Mean of per-example ``values`` with a percentile-bootstrap interval.

    NaN entries (examples where the quantity is undefined) are dropped first. Returns an
    ``Estimate`` whose bounds are ``None`` when fewer than two values remain.

    >>> mean_ci(np.array([0.0, 1.0, 1.0, 1.0])).value
    0.75
    """
    if n_resamples < 1:
        raise InvalidInputError(f"Expected `n_resamples` >= 1, got {n_resamples}")
    if not 0.0 < confidence < 1.0:
        raise InvalidInputError(f"Expected 0 < `confidence` < 1, got {confidence}")
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[~np.isnan(v)]
    if v.size == 0:
        return Estimate(float("nan"), None, None, confidence)
    point = float(v.mean())
    if v.size < 2:
        return Estimate(point, None, None, confidence)
    rng = np.random.default_rng(random_state)
    idx = rng.integers(0, v.size, size=(n_resamples, v.size))
    means = v[idx].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return Estimate(point, float(lo), float(hi), confidence)
