r"""Confidence intervals whose coverage is measured: score intervals, a paired difference, bias correction.

Which interval each metric of :func:`~mlflow_trusteq.metrics.summarize_pair` gets (the coverage
of each is measured by ``benchmarks/bench_coverage.py``, README "What is measured"):

- **A proportion** ``k / n`` (flip rates, accuracy): the Wilson score interval,
  :func:`wilson_interval`. It needs no resampling, is never empty or of zero width, and keeps
  its level near 0 and 1, where the percentile bootstrap collapses to ``[1, 1]``.
  Label loyalty, near 1 for a close copy and gated on its lower bound, gets the exact
  Clopper-Pearson interval, :func:`clopper_pearson_interval`: its coverage is at least the
  level for every ``n`` and true loyalty, and each bound misses at most ``(1 - level) / 2`` of
  the time. Wilson's (0.84 at worst near 1) and the modified Wilson interval of Brown, Cai &
  DasGupta (:func:`modified_wilson_interval`, 0.929 at worst for ``200 <= n <= 1000``, its upper
  bound missing up to 0.066) do not guarantee that (``tests/metrics/test_coverage_label_loyalty.py``).
- **A paired difference of proportions** (``diff/accuracy`` = positive minus negative flip
  rate): the adjusted Wald interval of Bonett & Price (2012), :func:`paired_difference_interval`.
- **A mean of one per-example quantity** (probability loyalty, Brier, log loss and their
  differences): the studentized bootstrap (bootstrap-t): each paired resample ``r`` gives
  :math:`t^*_r = (\hat\theta^*_r - \hat\theta) / \widehat{se}^*_r`, and the interval is
  :math:`[\hat\theta - t^*_{1-\alpha/2}\,\widehat{se},\ \hat\theta - t^*_{\alpha/2}\,\widehat{se}]`;
  the percentile interval is too short for these heavy-tailed differences at ``n = 200``.
- **A mean of a sparse bounded difference** (``diff/brier_loss``: a per-example difference in
  ``[-2, 2]``): when 1 to :data:`SPARSE_MAX_INFORMATIVE` - 1 examples (and at most half of them)
  differ by more than :data:`SPARSE_TAU`, the distribution-free interval :func:`sparse_mean_interval`
  (on each side, the share of the examples above (below) by Clopper-Pearson and their mean by
  Hoeffding, each at ``1 - alpha / 4``); the bootstrap-t otherwise. With 4 or 20 informative examples no resample
  shows the rare large differences that make the mean (the bootstrap-t covered 0.68 and 0.90).
- **A mean of a per-example quantity in [0, 1]** (probability loyalty): the same bootstrap-t,
  with the resamples of zero spread kept (their :math:`t^*` is infinite) and each bound within
  the Wilson interval of the mean, ``_studentized_bounded``: with few informative examples (a
  candidate that differs from its parent on 2 % of the examples) the plain bootstrap-t covered
  0.85 at ``n = 200``, and it could leave ``[0, 1]``.
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
import numpy as np
from scipy.special import betaincinv, gammaincinv, ndtr, ndtri

from .._errors import InvalidInputError
from ._validation import check_confidence, check_finite_or_nan, check_int

__all__ = ["wilson_interval", "modified_wilson_interval", "clopper_pearson_interval", "paired_difference_interval",
           "bias_corrected_interval", "sparse_mean_interval", "min_examples",
           "MIN_BOOTSTRAP_EXAMPLES", "SPARSE_MAX_INFORMATIVE", "SPARSE_TAU", "MIN_INFORMATIVE_CALIBRATION",
           "INTERVAL_KINDS"]

#: below this many examples a bootstrap interval is not trusted (its coverage, README "What is measured")
MIN_BOOTSTRAP_EXAMPLES = 100
#: below this many informative examples (and at most half of all) a bounded difference gets :func:`sparse_mean_interval`
SPARSE_MAX_INFORMATIVE = 100
#: a per-example difference at most this large (in absolute value) is not informative: above float32 rounding
#: (a float32 copy of a model moves a Brier score by about 1e-7), far below any margin
SPARSE_TAU = 1e-6
#: below this many informative examples a paired calibration difference gets its range, [-1, 1], as interval
MIN_INFORMATIVE_CALIBRATION = 5
#: the interval families, as recorded in the settings of a pair summary
INTERVAL_KINDS = {
    "wilson": "Wilson score interval of a proportion",
    "wilson_modified": "Wilson score interval of a proportion, with the Poisson bound on the side of 1 to 4 "
                       "failures (or successes) (Brown, Cai & DasGupta 2001)",
    "clopper_pearson": "exact Clopper-Pearson interval of a proportion (beta quantiles; coverage >= the level for "
                       "every n and p, each bound missing at most (1 - level) / 2)",
    "paired_difference": "Bonett-Price adjusted Wald interval of a paired difference of proportions",
    "studentized": "studentized (bootstrap-t) interval of a mean, paired resamples",
    "studentized_sparse": f"studentized (bootstrap-t) interval of a mean of a per-example difference in [-2, 2], "
                          f"paired resamples; when 1 to {SPARSE_MAX_INFORMATIVE - 1} examples (and at most half) "
                          f"differ by more than {SPARSE_TAU:g}: the distribution-free sparse interval instead (on "
                          f"each side the share of the examples above, or below, by Clopper-Pearson times the upper "
                          f"Hoeffding bound of their mean, each at 1 - alpha/4; a gate then needs more data)",
    "studentized_bounded": "studentized (bootstrap-t) interval of a mean of a quantity in [0, 1], paired resamples, "
                           "infinite t* kept, each bound within the Wilson interval of the mean",
    "bias_corrected": "bias-corrected percentile bootstrap, paired (same resamples for both models and all metrics)",
    "bias_corrected_or_range": f"bias-corrected percentile bootstrap, paired (same resamples for both models and "
                               f"all metrics); when 1 to {MIN_INFORMATIVE_CALIBRATION - 1} examples differ "
                               f"between the models (a Brier difference above {SPARSE_TAU:g}): the range [-1, 1], "
                               f"since no resampling of so few shows the difference (a gate then needs more data)",
    "percentile": "percentile bootstrap, paired (as in the studies; coverage not claimed)",
    "normal": "estimate +- z times the standard deviation of the paired bootstrap replicates",
}


def _z(confidence: float) -> float:
    return float(ndtri(0.5 + confidence / 2.0))


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


def _poisson_cut(n: np.ndarray | float) -> np.ndarray:
    """The largest count ``x*`` whose bound :func:`_wilson_modified` replaces: 2 (n <= 50), 3 (n <= 100), else 4."""
    n = np.asarray(n, dtype=np.float64)
    return np.where(n <= 50, 2.0, np.where(n <= 100, 3.0, 4.0))


def _wilson_modified(k: np.ndarray | float, n: np.ndarray | float, z: float,
                     confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Modified Wilson bounds for arrays of counts (no checks); ``n > 0``, see :func:`modified_wilson_interval`."""
    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    lo, hi = _wilson(k, n, z)
    alpha = 1.0 - confidence
    cut = _poisson_cut(n)
    x = n - k
    poisson_lo = gammaincinv(np.maximum(k, 1.0), alpha) / n  # = chi2.ppf(alpha, 2 k) / (2 n)
    poisson_hi = 1.0 - gammaincinv(np.maximum(x, 1.0), alpha) / n
    # only for the rarer outcome (2 x < n), where the Poisson law approximates the binomial one
    lo = np.where((k >= 1) & (k <= cut) & (2 * k < n), np.minimum(lo, poisson_lo), lo)
    hi = np.where((x >= 1) & (x <= cut) & (2 * x < n), np.maximum(hi, poisson_hi), hi)
    return np.clip(lo, 0.0, 1.0), np.clip(hi, 0.0, 1.0)


def _clopper_pearson(k: np.ndarray | float, n: np.ndarray | float,
                     confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Clopper-Pearson bounds for arrays of counts (no checks); ``n > 0``: beta quantiles, 0 at ``k = 0``, 1 at
    ``k = n``."""
    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    a = (1.0 - confidence) / 2.0
    with np.errstate(invalid="ignore"):
        lo = np.where(k <= 0, 0.0, betaincinv(np.maximum(k, 1.0), np.maximum(n - k + 1.0, 1.0), a))
        hi = np.where(k >= n, 1.0, betaincinv(k + 1.0, np.maximum(n - k, 1.0), 1.0 - a))
    return np.clip(lo, 0.0, 1.0), np.clip(hi, 0.0, 1.0)


def _one_sign_bound(n: float, k: float, total: float, bound: float, delta: float) -> float:
    """Upper confidence bound of :math:`E[d^+]` at level ``1 - 2 delta``: ``k`` of ``n`` values of ``d^+`` in
    ``(0, bound]`` summing to ``total``, the share by Clopper-Pearson, their mean by Hoeffding (no checks)."""
    share = float(_clopper_pearson(k, n, 1.0 - 2.0 * delta)[1])
    mean = bound if k <= 0 else min(bound, total / k + bound * math.sqrt(math.log(1.0 / delta) / (2.0 * k)))
    return share * max(mean, 0.0)


def _sparse_mean(n: float, up: float, up_sum: float, down: float, down_sum: float, bound: float,
                 confidence: float, tau: float = SPARSE_TAU) -> tuple[float, float]:
    r"""Distribution-free bounds of :math:`E[d]`, ``d`` in ``[-bound, bound]``, from the ``up`` values
    :math:`d > \tau` (summing to ``up_sum``) and the ``down`` ones :math:`d < -\tau` (their :math:`|d|` summing to
    ``down_sum``) of ``n`` (see :func:`sparse_mean_interval`; no checks)."""
    delta = (1.0 - confidence) / 4.0
    hi = _one_sign_bound(n, up, up_sum, bound, delta)
    lo = _one_sign_bound(n, down, down_sum, bound, delta)
    return -lo - tau, hi + tau


def _use_sparse(n: float, k: float) -> bool:
    """Whether a bounded difference is sparse enough for :func:`sparse_mean_interval`: few informative examples.

    None is not sparse: two models that agree on every example up to :data:`SPARSE_TAU` (a float32
    copy) keep the bootstrap's interval, which is what they are (the sparse interval of no informative
    example, ``+-2 (1 - (alpha/4)^(1/n))``, would fail a float32 export on fewer than 174 examples).
    """
    return 0 < k < SPARSE_MAX_INFORMATIVE and 2 * k <= n


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


def _quantiles_keeping_infinite(t: np.ndarray, qs: tuple[float, float]) -> tuple[float, float]:
    """numpy's (linear) quantiles of ``t``, where infinite values take part: a quantile that reaches one is infinite."""
    if np.isfinite(t).all():
        lo, hi = np.quantile(t, qs)
        return float(lo), float(hi)
    s = np.sort(t)
    out = []
    for q in qs:
        pos = q * (s.size - 1)
        i = math.floor(pos)
        j = min(i + 1, s.size - 1)
        a, b = float(s[i]), float(s[j])
        if a == -math.inf or (pos == i and math.isinf(a)):
            out.append(a)
        elif b == math.inf and pos > i:
            out.append(math.inf)
        else:
            out.append(a + (pos - i) * (b - a))
    return out[0], out[1]


def _studentized_bounded(t_reps: np.ndarray, estimate: float, se: float, n: float,
                         confidence: float) -> tuple[float, float]:
    r"""Bootstrap-t bounds of the mean of a per-example quantity in ``[0, 1]``, within its Wilson interval.

    Unlike :func:`_studentized`, infinite :math:`t^*_r` are kept: a resample whose examples are
    all equal (``se* = 0``; with few informative examples, e.g. a candidate that differs from its
    parent on 4 examples out of 200, about ``e^{-4}`` of the resamples) is the far tail of the
    studentized statistic, and dropping it made the interval too short on the optimistic side
    (coverage 0.85 at ``n = 200``, ``benchmarks/bench_coverage.py``, scenario ``sparse``). Each
    bound is then kept within the Wilson interval of the mean (``k = n * estimate``), which holds
    for any quantity in ``[0, 1]`` (its variance is at most :math:`\mu(1 - \mu)`): a bound the
    bootstrap cannot give (an infinite :math:`t^*` quantile, or ``se == 0``) is the Wilson bound.
    """
    z = _z(confidence)
    est = min(max(float(estimate), 0.0), 1.0)
    w_lo, w_hi = _wilson(est * n, n, z)
    lo, hi = -math.inf, math.inf
    t = np.asarray(t_reps, dtype=np.float64)
    t = t[~np.isnan(t)]
    if se > 0.0 and math.isfinite(se) and t.size > 0:
        alpha = (1.0 - confidence) / 2.0
        t_lo, t_hi = _quantiles_keeping_infinite(t, (alpha, 1.0 - alpha))
        if math.isfinite(t_hi):
            lo = estimate - t_hi * se
        if math.isfinite(t_lo):
            hi = estimate - t_lo * se
    return max(lo, float(w_lo)), min(hi, float(w_hi))


def _bias_corrected(reps: np.ndarray, estimate: np.ndarray | float, z: float) -> tuple[np.ndarray, np.ndarray]:
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
def _counts(successes: int, n: int) -> tuple[int, int]:
    """``(successes, n)`` of a proportion, checked: whole numbers, ``0 <= successes <= n``, ``n >= 1``."""
    n = check_int(n, "n", minimum=1, whole_floats=True)
    k = check_int(successes, "successes", minimum=0, whole_floats=True)
    if k > n:
        raise InvalidInputError(f"Expected `successes` <= n = {n}, got {k}")
    return k, n


def _two_counts(a: int, b: int, n: int, names: tuple[str, str]) -> tuple[int, int, int]:
    """Two disjoint counts of ``n``, checked: whole numbers, ``>= 0``, ``a + b <= n``, ``n >= 1``."""
    n = check_int(n, "n", minimum=1, whole_floats=True)
    ka = check_int(a, names[0], minimum=0, whole_floats=True)
    kb = check_int(b, names[1], minimum=0, whole_floats=True)
    if ka + kb > n:
        raise InvalidInputError(f"Expected {names[0]} + {names[1]} <= n = {n}, got {ka} + {kb}")
    return ka, kb, n


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
    k, n = _counts(successes, n)
    lo, hi = _wilson(k, n, _z(check_confidence(confidence)))
    return float(lo), float(hi)


def modified_wilson_interval(successes: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    r"""Wilson score interval with the Poisson bound next to a count of 1 to ``x*`` (Brown, Cai & DasGupta 2001).

    Near 0 and 1 the Wilson interval's coverage dips far below its level: with :math:`\lambda = n(1 - p)`
    expected failures its bound on the side of the failures is too close to 1 when there are 1 to 4
    of them (coverage 0.92 for label loyalty 0.995 at ``n = 200``, 0.84 at worst). Brown, Cai & DasGupta
    (2001, section 4.1.1) replace, for ``x = 1, ..., x*`` successes, the lower bound by the Poisson one
    :math:`\lambda_x / n` with :math:`P(\mathrm{Poisson}(\lambda_x) \ge x) = \alpha`, i.e.
    :math:`\lambda_x = \tfrac12 \chi^2_{2x,\,\alpha}` (:math:`\alpha = 1 -` confidence), and
    likewise the upper bound for ``x`` failures; ``x* = 2`` for ``n <= 50`` and 3 for ``n <= 100``
    (theirs), 4 above (the paper gives none; with 4 the exact worst coverage over ``p`` for
    ``200 <= n <= 1000`` is 0.929, the Wilson interval's own oscillation at about 4 expected failures,
    against 0.839 for the plain interval; README "What is measured"); only for the rarer outcome
    (fewer than ``n / 2``, so ``n = 1`` keeps the Wilson interval). A bound is only ever moved
    outward, so the interval contains the Wilson interval, and it equals it at 0 and ``n`` successes.

    Examples
    --------
    >>> lo, hi = modified_wilson_interval(199, 200)
    >>> round(lo, 4), round(hi, 4)
    (0.9722, 0.9997)
    """
    k, n = _counts(successes, n)
    confidence = check_confidence(confidence)
    lo, hi = _wilson_modified(k, n, _z(confidence), confidence)
    return float(lo), float(hi)


def clopper_pearson_interval(successes: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    r"""Exact (Clopper-Pearson) interval of the proportion ``successes / n``: label loyalty's.

    With :math:`\alpha = 1 -` confidence, the bounds are the beta quantiles
    :math:`B(\alpha/2;\ k, n - k + 1)` and :math:`B(1 - \alpha/2;\ k + 1, n - k)` (0 at ``k = 0``,
    1 at ``k = n``), the same as ``scipy.stats.binomtest(k, n).proportion_ci(method="exact")`` and
    ``statsmodels`` ``proportion_confint(method="beta")``. Each bound misses the true proportion at
    most :math:`\alpha/2` of the time for every ``n`` and ``p``, so the coverage is at least the
    level: for label loyalty near 1 the Wilson interval's dips to 0.84 and the modified Wilson
    interval's to 0.929 (``200 <= n <= 1000``); this one's exact minimum there is 0.950, for an
    expected width about 4 % above the modified Wilson interval's (README "What is measured").

    Examples
    --------
    >>> lo, hi = clopper_pearson_interval(199, 200)
    >>> round(lo, 4), round(hi, 4)
    (0.9725, 0.9999)
    """
    k, n = _counts(successes, n)
    lo, hi = _clopper_pearson(k, n, check_confidence(confidence))
    return float(lo), float(hi)


def sparse_mean_interval(n: int, up: int, up_sum: float, down: int, down_sum: float, *, bound: float,
                         confidence: float = 0.95, tau: float = SPARSE_TAU) -> tuple[float, float]:
    r"""Distribution-free interval of the mean of a per-example difference that is mostly 0.

    Of ``n`` examples of :math:`d_i \in [-b, b]` (``bound`` :math:`b`; 2 for a difference of
    multi-class Brier scores), ``up`` have :math:`d_i > \tau`, summing to ``up_sum``, and ``down`` have
    :math:`d_i < -\tau`, their :math:`|d_i|` summing to ``down_sum``. With :math:`d^+ = d\,[d > \tau]`
    and :math:`d^- = -d\,[d < -\tau]`, :math:`E[d^-] - \tau \le E[d]`... precisely
    :math:`-E[d^-] - \tau \le E[d] \le E[d^+] + \tau`, and :math:`E[d^+] = \pi^+\mu^+` with
    :math:`\pi^+ = P(d > \tau)`, :math:`\mu^+ = E[d \mid d > \tau] \in (0, b]`. At :math:`\delta = \alpha / 4`:

    - :math:`\pi^+ \le` the Clopper-Pearson upper bound of ``up / n`` (one-sided level :math:`1 - \delta`);
    - given ``up``, those values are independent draws of the conditional law, so
      :math:`\mu^+ \le \hat\mu^+ + b\sqrt{\ln(1/\delta) / (2\,\mathrm{up})}` (Hoeffding, one-sided;
      :math:`\hat\mu^+ =` ``up_sum / up``; :math:`b` when ``up = 0``), clipped to :math:`b`;

    the upper bound is the product of the two, plus :math:`\tau`, and the lower bound the same from
    the ``down`` values. By the union bound each side misses at most :math:`\alpha / 2` and the
    coverage is at least :math:`1 - \alpha`, for every law and every ``n``, with no resampling, and
    from sums only (so partitions merge). The bootstrap-t cannot give that when few examples
    differ: with 4 (or 20) informative examples its resamples never show the rare large
    differences that make the mean (coverage 0.68 at ``n = 200``, 0.90 at ``n = 1,000``,
    ``benchmarks/bench_coverage.py``, scenario ``sparse``). The price is width: identical
    models on 200 examples give :math:`\pm 0.043` for a Brier difference, and 4 informative examples
    of 200 about :math:`\pm 0.07`, so a margin of 0.05 needs more evidence.

    Examples
    --------
    >>> lo, hi = sparse_mean_interval(200, 0, 0.0, 0, 0.0, bound=2.0)  # identical on 200 examples
    >>> round(lo, 4), round(hi, 4)
    (-0.0433, 0.0433)
    """
    k_up, k_down, n = _two_counts(up, down, n, ("up", "down"))
    b, t = _check_bound(bound, "bound"), _check_bound(tau, "tau")
    if b is None or b <= 0 or t is None or t < 0:
        raise InvalidInputError(f"Expected `bound` > 0 and `tau` >= 0, got {bound!r} and {tau!r}")
    sums = []
    for name, total, k in (("up_sum", up_sum, k_up), ("down_sum", down_sum, k_down)):
        v = _check_bound(total, name)
        if v is None or v < 0 or v > k * b:
            raise InvalidInputError(f"Expected `{name}` in [0, {name[:-4]} * bound], got {total!r}")
        sums.append(v)
    return _sparse_mean(float(n), float(k_up), sums[0], float(k_down), sums[1], b, check_confidence(confidence), t)


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
    b, c, n = _two_counts(only_first, only_second, n, ("only_first", "only_second"))
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
    rep = check_finite_or_nan(replicates, "replicates").ravel()
    if isinstance(estimate, bool) or not isinstance(estimate, numbers.Real) or not math.isfinite(estimate):
        raise InvalidInputError(f"Expected a finite `estimate`, got {estimate!r}")
    z = _z(check_confidence(confidence))
    if rep.size == 0:
        return None, None
    lo, hi = _bias_corrected(rep, np.float64(estimate), z)
    if np.isnan(lo):
        return None, None
    return float(lo), float(hi)


def _check_bound(value: float | None, name: str) -> float | None:
    """``None`` or a finite real number (a threshold or a margin)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise InvalidInputError(f"Expected `{name}` to be a finite number or None, got {value!r}")
    return float(value)


def _min_examples_exact(threshold: float | None, margin: float | None, higher_is_better: bool, confidence: float,
                        big: int) -> int:
    """:func:`min_examples` of the Clopper-Pearson interval (the favourable sample: 0 or ``n`` successes)."""
    if margin is not None or threshold is None:
        return 1
    t = threshold if higher_is_better else 1.0 - threshold  # the bound 1 - t of all failures mirrors t
    if t <= 0:
        return 1
    if t >= 1:
        return big
    log_a = math.log((1.0 - confidence) / 2.0)
    return max(1, math.ceil(log_a / math.log(t) - 1e-9))


def min_examples(kind: str, *, threshold: float | None = None, margin: float | None = None,
                 higher_is_better: bool = True, confidence: float = 0.95) -> int:
    r"""The fewest examples at which the most favourable sample could pass a check, for each interval kind.

    ``"wilson"`` (a proportion): all successes give the lower bound :math:`n / (n + z^2)`, so a
    threshold :math:`t` on the lower bound needs :math:`n \ge t z^2 / (1 - t)`; all failures give
    the upper bound :math:`z^2 / (n + z^2)`, so a bound :math:`t` on the upper bound needs
    :math:`n \ge z^2 (1 - t) / t`.

    ``"paired_difference"``: no discordant pair gives :math:`\pm z\sqrt2 / (n + 2)`, so a
    tolerated loss :math:`t < 0` (or a margin :math:`m`) needs :math:`n \ge z \sqrt 2 / |t| - 2`.

    ``"clopper_pearson"``: all successes give the lower bound :math:`(\alpha/2)^{1/n}`, so a threshold
    :math:`t` on the lower bound needs :math:`n \ge \ln(\alpha/2) / \ln t`; all failures give the
    upper bound :math:`1 - (\alpha/2)^{1/n}`, so a bound :math:`t` on it needs
    :math:`n \ge \ln(\alpha/2) / \ln(1 - t)`.

    ``"studentized"``, ``"studentized_bounded"``, ``"studentized_sparse"``, ``"bias_corrected"``,
    ``"bias_corrected_or_range"``, ``"percentile"``, ``"normal"``: a bootstrap interval of an all-equal
    sample has width 0 whatever ``n``; :data:`MIN_BOOTSTRAP_EXAMPLES` (100; the coverage table
    shows these intervals short at ``n = 50``). (For ``"studentized_sparse"`` the favourable sample
    is one whose small differences are spread over every example, so the bootstrap-t applies; a
    sample identical on all but a few examples gets :func:`sparse_mean_interval`, which a margin
    ``m`` lets pass only from :math:`n \ge \ln(\alpha/4) / \ln(1 - m / b)` examples, 174 for
    a Brier difference and ``m = 0.05``.)

    A threshold no sample can reach (e.g. a loyalty of 1 on the lower bound) gives a very large
    number, never an error: the check then fails with that number in its reason.

    Examples
    --------
    >>> min_examples("wilson", threshold=0.95)
    73
    >>> min_examples("paired_difference", threshold=-0.02)
    137
    >>> min_examples("clopper_pearson", threshold=0.95)
    72
    """
    z = _z(check_confidence(confidence))
    threshold, margin = _check_bound(threshold, "threshold"), _check_bound(margin, "margin")
    if not isinstance(higher_is_better, (bool, np.bool_)):
        raise InvalidInputError(f"Expected `higher_is_better` to be True or False, got {higher_is_better!r}")
    higher_is_better = bool(higher_is_better)
    big = 10**9
    if kind in ("studentized", "studentized_bounded", "studentized_sparse", "bias_corrected", "bias_corrected_or_range",
                "percentile", "normal"):
        return MIN_BOOTSTRAP_EXAMPLES
    if kind == "clopper_pearson":
        return _min_examples_exact(threshold, margin, higher_is_better, confidence, big)
    if kind in ("wilson", "wilson_modified"):  # the favourable sample (0 or n successes) is not modified
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
