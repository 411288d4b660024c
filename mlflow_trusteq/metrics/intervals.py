r"""Confidence intervals whose coverage is measured: score intervals, a paired difference, bias correction.

Which interval each metric of :func:`~mlflow_trusteq.metrics.summarize_pair` gets (the coverage
of each is measured by ``benchmarks/bench_coverage.py``, README "What is measured"):

- **A proportion** ``k / n`` (label loyalty, flip rates, accuracy): the Wilson score interval,
  :func:`wilson_interval`. It needs no resampling, is never empty or of zero width, and keeps
  its level near 0 and 1, where the percentile bootstrap collapses to ``[1, 1]``.
- **A paired difference of proportions** (``diff/accuracy`` = positive minus negative flip
  rate): the adjusted Wald interval of Bonett & Price (2012), :func:`paired_difference_interval`.
- **A mean of one per-example quantity** (probability loyalty, Brier, log loss and their
  differences): the studentized bootstrap (bootstrap-t): each paired resample ``r`` gives
  :math:`t^*_r = (\hat\theta^*_r - \hat\theta) / \widehat{se}^*_r`, and the interval is
  :math:`[\hat\theta - t^*_{1-\alpha/2}\,\widehat{se},\ \hat\theta - t^*_{\alpha/2}\,\widehat{se}]`;
  the percentile interval is too short for these heavy-tailed differences at ``n = 200``.
- **The difference of the debiased squared ECEs**: the bias-corrected percentile bootstrap,
  :func:`bias_corrected_interval`, on the same paired resamples. **The debiased squared ECE of
  one model**: the estimate ± z times the bootstrap standard deviation; for a calibrated model
  its true value, 0, is the boundary of the parameter space, where percentile and BC bootstraps
  fail (the resamples are not centred on the estimate, and a squared gap cannot be resampled
  below 0), while the bootstrap spread is conservative there.
- **The binned ECEs and MCEs** (kept for comparison with the studies): the percentile bootstrap,
  as in the studies. Their intervals miss a calibrated model's 0 (the estimator is biased
  upward), so no default check reads them.

:func:`min_examples` says how many examples a threshold needs before its interval can pass at
all: the policy does not judge a check on fewer (it fails it and says how many are needed).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
from scipy.special import ndtr, ndtri

from .._errors import InvalidInputError
from ._validation import check_confidence

__all__ = ["wilson_interval", "paired_difference_interval", "bias_corrected_interval", "min_examples",
           "MIN_BOOTSTRAP_EXAMPLES", "INTERVAL_KINDS"]

#: below this many examples a bootstrap interval is not trusted (its coverage, README "What is measured")
MIN_BOOTSTRAP_EXAMPLES = 100
#: the interval families, as recorded in the settings of a pair summary
INTERVAL_KINDS = {
    "wilson": "Wilson score interval of a proportion",
    "paired_difference": "Bonett-Price adjusted Wald interval of a paired difference of proportions",
    "studentized": "studentized (bootstrap-t) interval of a mean, paired resamples",
    "bias_corrected": "bias-corrected percentile bootstrap, paired (same resamples for both models and all metrics)",
    "percentile": "percentile bootstrap, paired (as in the studies; coverage not claimed)",
    "normal": "estimate +- z times the standard deviation of the paired bootstrap replicates",
}


def _z(confidence: float) -> float:
    return float(ndtri(0.5 + confidence / 2.0))


def _check_count(value: Any, name: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
            or value != int(value):
        raise InvalidInputError(f"Expected `{name}` to be a whole number, got {value!r}")
    if value < minimum:
        raise InvalidInputError(f"Expected `{name}` >= {minimum}, got {value!r}")
    return int(value)


# ----------------------------------------------------------------------------- vectorised kernels
def _wilson(k: np.ndarray | float, n: np.ndarray | float, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Wilson bounds for arrays of counts (no checks); ``n > 0``."""
    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    p = k / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * np.sqrt(np.maximum(p * (1 - p) / n + z2 / (4 * n * n), 0.0))
    lo = np.where(k <= 0, 0.0, np.clip(centre - half, 0.0, 1.0))
    hi = np.where(k >= n, 1.0, np.clip(centre + half, 0.0, 1.0))
    return lo, hi


def _paired(b: np.ndarray | float, c: np.ndarray | float, n: np.ndarray | float,
            z: float) -> tuple[np.ndarray, np.ndarray]:
    """Bonett-Price bounds of ``(c - b) / n`` for arrays of discordant counts (no checks)."""
    b = np.asarray(b, dtype=np.float64)
    c = np.asarray(c, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    p12 = (b + 1.0) / (n + 2.0)
    p21 = (c + 1.0) / (n + 2.0)
    d = p21 - p12
    se = np.sqrt(np.maximum(p12 + p21 - d * d, 0.0) / (n + 2.0))
    return np.clip(d - z * se, -1.0, 1.0), np.clip(d + z * se, -1.0, 1.0)


def _studentized(t_reps: np.ndarray, estimate: float, se: float,
                 confidence: float) -> tuple[float | None, float | None]:
    """Bootstrap-t bounds ``estimate - t*_{1-a/2} se, estimate - t*_{a/2} se`` (non-finite t* dropped).

    ``se == 0`` (every example equal) gives ``[estimate, estimate]``.
    """
    t = np.asarray(t_reps, dtype=np.float64)
    t = t[np.isfinite(t)]
    if se == 0.0:
        return estimate, estimate
    if t.size == 0 or not math.isfinite(se):
        return None, None
    alpha = (1.0 - confidence) / 2.0
    t_lo, t_hi = np.quantile(t, [alpha, 1.0 - alpha])
    return float(estimate - t_hi * se), float(estimate - t_lo * se)


def _bias_corrected(reps: np.ndarray, estimate: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    """BC bounds along the last axis of ``reps`` (NaN replicates ignored) for each ``estimate``."""
    reps = np.asarray(reps, dtype=np.float64)
    est = np.asarray(estimate, dtype=np.float64)[..., None]
    ok = ~np.isnan(reps)
    r = ok.sum(axis=-1)
    below = ((reps < est) & ok).sum(axis=-1) + 0.5 * ((reps == est) & ok).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.clip(below / np.maximum(r, 1), 0.5 / np.maximum(r, 1), 1.0 - 0.5 / np.maximum(r, 1))
        z0 = ndtri(frac)
    q_lo, q_hi = ndtr(2 * z0 - z), ndtr(2 * z0 + z)
    srt = np.sort(np.where(ok, reps, np.inf), axis=-1)  # NaN -> +inf, sorted last

    def pick(q: np.ndarray) -> np.ndarray:
        # linear interpolation between order statistics (numpy's default quantile rule), finite ones only
        pos = q * np.maximum(r - 1, 0)
        i = np.floor(pos).astype(np.intp)
        j = np.minimum(i + 1, np.maximum(r - 1, 0))
        a = np.take_along_axis(srt, i[..., None], -1)[..., 0]
        b = np.take_along_axis(srt, j[..., None], -1)[..., 0]
        with np.errstate(invalid="ignore"):
            out = a + (pos - i) * (b - a)
        return np.where(j == i, a, out)

    lo, hi = pick(q_lo), pick(q_hi)
    none = r == 0
    return np.where(none, np.nan, lo), np.where(none, np.nan, hi)


# ----------------------------------------------------------------------------- public API
def wilson_interval(successes: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    r"""Wilson score interval of the proportion ``successes / n``.

    .. math::

        \frac{\hat p + \frac{z^2}{2n} \pm z\sqrt{\frac{\hat p(1-\hat p)}{n} + \frac{z^2}{4n^2}}}
             {1 + \frac{z^2}{n}}, \qquad z = \Phi^{-1}\!\left(\tfrac{1 + \text{confidence}}{2}\right)

    The bound at 0 successes is exactly 0 and at ``n`` exactly 1; elsewhere the same as
    ``statsmodels.stats.proportion.proportion_confint(method="wilson")``.

    Examples
    --------
    >>> lo, hi = wilson_interval(10, 10)
    >>> round(lo, 4), hi
    (0.7225, 1.0)
    """
    n = _check_count(n, "n", minimum=1)
    k = _check_count(successes, "successes", minimum=0)
    if k > n:
        raise InvalidInputError(f"Expected `successes` <= n = {n}, got {k}")
    lo, hi = _wilson(k, n, _z(check_confidence(confidence)))
    return float(lo), float(hi)


def paired_difference_interval(only_first: int, only_second: int, n: int, *,
                               confidence: float = 0.95) -> tuple[float, float]:
    r"""Interval of a paired difference of proportions, ``(only_second - only_first) / n``.

    Of ``n`` paired Bernoulli outcomes, ``only_first`` are 1 for the first rule only (for
    ``diff/accuracy``: the parent right, the candidate wrong, a negative flip) and
    ``only_second`` for the second only. Bonett & Price (2012) add one to each discordant count:

    .. math::

        \tilde p_{12} = \frac{b + 1}{n + 2},\quad \tilde p_{21} = \frac{c + 1}{n + 2},\quad
        (\tilde p_{21} - \tilde p_{12}) \pm z \sqrt{\frac{\tilde p_{12} + \tilde p_{21}
        - (\tilde p_{21} - \tilde p_{12})^2}{n + 2}}

    clipped to ``[-1, 1]``. Unlike the Wald interval and the bootstrap it has width ``> 0`` when
    no pair is discordant.

    Examples
    --------
    >>> lo, hi = paired_difference_interval(0, 0, 100)
    >>> round(lo, 4), round(hi, 4)
    (-0.0272, 0.0272)
    """
    n = _check_count(n, "n", minimum=1)
    b = _check_count(only_first, "only_first", minimum=0)
    c = _check_count(only_second, "only_second", minimum=0)
    if b + c > n:
        raise InvalidInputError(f"Expected only_first + only_second <= n = {n}, got {b} + {c}")
    lo, hi = _paired(b, c, n, _z(check_confidence(confidence)))
    return float(lo), float(hi)


def bias_corrected_interval(replicates: np.ndarray, estimate: float, *,
                            confidence: float = 0.95) -> tuple[float | None, float | None]:
    r"""Bias-corrected (BC) percentile interval from bootstrap ``replicates`` of ``estimate``.

    With :math:`z_0 = \Phi^{-1}(\#\{\theta^* < \hat\theta\} / R + \tfrac12 \#\{\theta^* = \hat\theta\} / R)`
    the bounds are the :math:`\Phi(2 z_0 \mp z)` quantiles of the replicates (Efron 1987; BCa
    with acceleration 0). When the bootstrap distribution is not centred on the estimate (the
    debiased ECE, whose resamples are centred on its *biased* plug-in value) the percentile
    interval is shifted; the BC interval shifts it back. NaN replicates are dropped; ``(None,
    None)`` when none remains.

    Examples
    --------
    >>> bias_corrected_interval(np.arange(101.0), 50.0)
    (2.5, 97.5)
    """
    rep = np.asarray(replicates, dtype=np.float64).ravel()
    if np.isinf(rep).any():
        raise InvalidInputError("`replicates` has infinite values; a bootstrap replicate must be finite or NaN")
    if isinstance(estimate, bool) or not isinstance(estimate, numbers.Real) or not math.isfinite(estimate):
        raise InvalidInputError(f"Expected a finite `estimate`, got {estimate!r}")
    lo, hi = _bias_corrected(rep, np.float64(estimate), _z(check_confidence(confidence)))
    if np.isnan(lo):
        return None, None
    return float(lo), float(hi)


def min_examples(kind: str, *, threshold: float | None = None, margin: float | None = None,
                 higher_is_better: bool = True, confidence: float = 0.95) -> int:
    r"""The fewest examples at which the most favourable sample could pass a check, for each interval kind.

    ``"wilson"`` (a proportion): all successes give the lower bound :math:`n / (n + z^2)`, so a
    threshold :math:`t` on the lower bound needs :math:`n \ge t z^2 / (1 - t)`; all failures give
    the upper bound :math:`z^2 / (n + z^2)`, so a bound :math:`t` on the upper bound needs
    :math:`n \ge z^2 (1 - t) / t`.

    ``"paired_difference"``: no discordant pair gives :math:`\pm z\sqrt2 / (n + 2)`, so a
    tolerated loss :math:`t < 0` (or a margin :math:`m`) needs :math:`n \ge z \sqrt 2 / |t| - 2`.

    ``"studentized"``, ``"bias_corrected"``, ``"percentile"``, ``"normal"``: a bootstrap interval of an all-equal
    sample has width 0 whatever ``n``; :data:`MIN_BOOTSTRAP_EXAMPLES` (100; the coverage table
    shows these intervals short at ``n = 50``).

    A threshold no sample can reach (e.g. a loyalty of 1 on the lower bound) gives a very large
    number, never an error: the check then fails with that number in its reason.

    Examples
    --------
    >>> min_examples("wilson", threshold=0.95)
    73
    >>> min_examples("paired_difference", threshold=-0.02)
    137
    """
    z = _z(check_confidence(confidence))
    big = 10**9
    if kind in ("studentized", "bias_corrected", "percentile", "normal"):
        return MIN_BOOTSTRAP_EXAMPLES
    if kind == "wilson":
        if margin is not None or threshold is None:
            return 1
        t = float(threshold)
        if higher_is_better:
            if t <= 0:
                return 1
            return big if t >= 1 else max(1, math.ceil(t * z * z / (1 - t) - 1e-9))
        if t >= 1:
            return 1
        return big if t <= 0 else max(1, math.ceil(z * z * (1 - t) / t - 1e-9))
    if kind == "paired_difference":
        if margin is not None:
            tol = float(margin)
        elif threshold is not None:
            tol = -float(threshold) if higher_is_better else float(threshold)
            if tol <= 0:
                return 1  # a required gain: the favourable sample is not the all-concordant one
        else:
            return 1
        return big if tol <= 0 else max(1, math.ceil(z * math.sqrt(2.0) / tol - 2.0 - 1e-9))
    raise InvalidInputError(f"Expected `kind` in {sorted(INTERVAL_KINDS)}, got {kind!r}")
