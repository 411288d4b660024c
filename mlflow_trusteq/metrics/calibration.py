r"""Calibration of one model against gold labels: reliability bins, ECE, MCE, Brier, log loss.

``y`` holds integer class indices (columns of ``Q``); ``Q`` is an ``(n, k)`` probability matrix.
The confidence of example ``i`` is :math:`c_i = \max_j Q_{ij}`, its prediction
:math:`\hat y_i = \arg\max_j Q_{ij}` (ties to the lowest index), correctness
:math:`a_i = [\hat y_i = y_i]`.

Bin rules (one rule each, tested at the edges)
----------------------------------------------
``"equal_width"`` (default 15 bins, Guo et al. 2017)
    Edges ``linspace(0, 1, M + 1)``. Bin ``b`` is the half-open interval ``(e_b, e_{b+1}]``; the
    first bin is closed, ``[0, e_1]``. A confidence on an interior edge goes to the **lower** bin,
    and a confidence of exactly 1.0 falls in the last bin, never in an extra one.
``"equal_mass"`` (default 10 bins in the trust-equivalence study)
    Confidences are sorted (a *stable* sort, so ties keep example order) and the sorted order is
    split into ``M`` groups of near-equal size with ``np.array_split`` (the first ``n % M`` groups
    hold one more). The assignment is by **rank**: tied confidences on a boundary may fall in two
    adjacent bins. The reported edges are taken from the sorted confidences: ``edges[b]`` is the
    smallest confidence in bin ``b`` and ``edges[M]`` the largest confidence overall.

With per-bin count :math:`|B_b|`, accuracy :math:`\mathrm{acc}_b` and mean confidence
:math:`\mathrm{conf}_b`:

.. math::

    \mathrm{ECE} = \sum_b \frac{|B_b|}{n}\,|\mathrm{acc}_b - \mathrm{conf}_b|, \qquad
    \mathrm{MCE} = \max_{b:\,|B_b| \ge m} |\mathrm{acc}_b - \mathrm{conf}_b|
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._validation import check_int, check_proba, check_strategy, check_targets

__all__ = [
    "ReliabilityBins",
    "reliability_bins",
    "expected_calibration_error",
    "debiased_squared_ece",
    "max_calibration_error",
    "brier_loss",
    "log_loss",
    "LOG_LOSS_EPS",
]

#: probabilities are clipped to ``[LOG_LOSS_EPS, 1]`` before the log in :func:`log_loss`
LOG_LOSS_EPS = 1e-15


# ----------------------------------------------------------------------------- private kernels
def _equal_width_bins(conf: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Bin index per example for ``(e_b, e_{b+1}]`` bins (first bin closed) and the edges.

    Same result as ``clip(searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)``, computed
    as ``ceil(conf * n_bins) - 1`` and corrected by one against the exact edges (round-off).
    """
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.ceil(conf * n_bins).astype(np.intp)
    idx -= 1
    np.clip(idx, 0, n_bins - 1, out=idx)
    idx -= (conf <= edges[idx]) & (idx > 0)
    idx += (conf > edges[idx + 1]) & (idx < n_bins - 1)
    return idx, edges


def _mass_sizes(n: int, n_bins: int) -> np.ndarray:
    sizes = np.full(n_bins, n // n_bins, dtype=np.int64)
    sizes[: n % n_bins] += 1
    return sizes


def _equal_mass_bins_sort(conf: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Reference implementation of the equal-mass rule: a full stable sort."""
    n = conf.shape[0]
    order = np.argsort(conf, kind="stable")
    sizes = _mass_sizes(n, n_bins)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    idx = np.empty(n, dtype=np.intp)
    idx[order] = np.repeat(np.arange(n_bins), sizes)
    sorted_conf = conf[order]
    edges = np.empty(n_bins + 1)
    edges[:-1] = sorted_conf[np.minimum(starts[:-1], n - 1)]
    edges[-1] = sorted_conf[-1]
    return idx, edges


def _equal_mass_bins(conf: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Bin index per example by rank in the stably sorted confidences, and edges from the sorted values.

    Identical to :func:`_equal_mass_bins_sort` but without the ``O(n log n)`` sort: the order
    statistics at the group boundaries come from ``np.partition``; an example strictly between
    two boundary values is binned by value, and the examples *equal* to a boundary value get their
    stable rank (``#{c < v}`` plus their position among the ties in example order).
    """
    n = conf.shape[0]
    if n < 4 * n_bins or n_bins == 1:
        return _equal_mass_bins_sort(conf, n_bins)
    starts = np.cumsum(_mass_sizes(n, n_bins))[:-1]  # ranks where bins 1..M-1 begin, all < n
    part = np.partition(conf, np.concatenate([[0], starts, [n - 1]]))
    v = part[starts]  # nondecreasing boundary values
    idx = np.zeros(n, dtype=np.intp)  # number of boundaries strictly below each value
    for b in v:
        idx += conf > b
    for u in np.unique(v):
        ties = np.flatnonzero(conf == u)  # example order = stable order among equal values
        ranks = np.count_nonzero(conf < u) + np.arange(ties.size)
        idx[ties] = np.searchsorted(starts, ranks, side="right")
    edges = np.empty(n_bins + 1)
    edges[0] = part[0]
    edges[1:-1] = v
    edges[-1] = part[n - 1]
    return idx, edges


def _bin_index(conf: np.ndarray, n_bins: int, strategy: str) -> tuple[np.ndarray, np.ndarray]:
    if strategy == "equal_width":
        return _equal_width_bins(conf, n_bins)
    return _equal_mass_bins(conf, n_bins)


def _bin_sums(idx: np.ndarray, conf: np.ndarray, correct: np.ndarray,
              n_bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    counts = np.bincount(idx, minlength=n_bins).astype(np.float64)
    s_conf = np.bincount(idx, weights=conf, minlength=n_bins)
    s_corr = np.bincount(idx, weights=correct, minlength=n_bins)
    return counts, s_conf, s_corr


def _ece_from_sums(counts: np.ndarray, s_conf: np.ndarray, s_corr: np.ndarray) -> np.ndarray:
    """ECE from per-bin sums; works on arrays of shape ``(..., n_bins)``."""
    return np.abs(s_corr - s_conf).sum(axis=-1) / counts.sum(axis=-1)


def _debiased_sq_from_sums(counts: np.ndarray, s_gap: np.ndarray, s_sq_gap: np.ndarray) -> np.ndarray:
    """Debiased squared ECE from per-bin sums of ``d = a - c`` and ``d^2``; shape ``(..., n_bins)`` -> ``(...)``.

    Per bin ``(S_b^2 - Q_b) / (n_b - 1)`` (the U-statistic of ``sum_{i != j} d_i d_j``); bins with
    fewer than two examples contribute 0; the total is divided by all ``n``.
    """
    ok = counts >= 2
    with np.errstate(invalid="ignore", divide="ignore"):
        term = np.where(ok, (s_gap * s_gap - s_sq_gap) / np.where(ok, counts - 1.0, 1.0), 0.0)
    return term.sum(axis=-1) / counts.sum(axis=-1)


def _mce_from_sums(counts: np.ndarray, s_conf: np.ndarray, s_corr: np.ndarray,
                   min_bin_count: int) -> np.ndarray:
    """MCE over bins with ``count >= max(min_bin_count, 1)``; NaN where none qualify. Shape ``(...)``."""
    ok = counts >= max(min_bin_count, 1)
    gap = np.abs(s_corr - s_conf) / np.where(ok, counts, 1.0)
    gap = np.where(ok, gap, -1.0).max(axis=-1)
    return np.where(gap < 0, np.nan, gap)


def _conf_correct(y: np.ndarray, Q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.argmax(Q, axis=1)
    conf = Q[np.arange(Q.shape[0]), pred]
    return conf, (pred == y).astype(np.float64)


def _brier(y: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """Per-example multi-class Brier: ``sum_j (Q_ij - [j = y_i])^2 = sum_j Q_ij^2 - 2 Q_iy + 1``."""
    qy = Q[np.arange(Q.shape[0]), y]
    return np.einsum("ij,ij->i", Q, Q) - 2.0 * qy + 1.0


def _nll(y: np.ndarray, Q: np.ndarray) -> np.ndarray:
    qy = Q[np.arange(Q.shape[0]), y]
    return -np.log(np.clip(qy, LOG_LOSS_EPS, 1.0))


def _check_calib(y: Any, Q: Any, n_bins: Any = None, strategy: Any = None):
    Q = check_proba(Q, "Q")
    y = check_targets(y, *Q.shape)
    if n_bins is not None:
        check_int(n_bins, "n_bins", minimum=1)
    if strategy is not None:
        check_strategy(strategy)
    return y, Q


# ----------------------------------------------------------------------------- results
def _nan_to_none(values: tuple[float, ...]) -> list[float | None]:
    return [None if math.isnan(v) else float(v) for v in values]


def _none_to_nan(values: list[Any]) -> tuple[float, ...]:
    return tuple(float("nan") if v is None else float(v) for v in values)


@dataclass(frozen=True)
class ReliabilityBins:
    """Per-bin counts, mean confidence and accuracy of one model: the data of a reliability diagram.

    Attributes
    ----------
    strategy : {"equal_width", "equal_mass"}
        The bin rule (see the module docstring).
    edges : tuple of float, length ``n_bins + 1``
    counts : tuple of int, length ``n_bins``
    mean_confidence, accuracy : tuple of float, length ``n_bins``
        NaN for an empty bin.
    gap : tuple of float, length ``n_bins``
        ``accuracy - mean_confidence``, signed: negative means over-confident. NaN for an empty bin.
    """

    strategy: str
    edges: tuple[float, ...]
    counts: tuple[int, ...]
    mean_confidence: tuple[float, ...]
    accuracy: tuple[float, ...]
    gap: tuple[float, ...]

    @property
    def n_bins(self) -> int:
        return len(self.counts)

    @property
    def n(self) -> int:
        """Number of examples binned."""
        return int(sum(self.counts))

    @property
    def ece(self) -> float:
        """Expected calibration error from these bins."""
        n = self.n
        return float(sum(c * abs(g) for c, g in zip(self.counts, self.gap) if c > 0) / n) if n else math.nan

    @classmethod
    def _from_sums(cls, strategy: str, edges: np.ndarray, counts: np.ndarray, s_conf: np.ndarray,
                   s_corr: np.ndarray) -> ReliabilityBins:
        with np.errstate(invalid="ignore", divide="ignore"):
            conf = np.where(counts > 0, s_conf / counts, np.nan)
            acc = np.where(counts > 0, s_corr / counts, np.nan)
        return cls(strategy=strategy, edges=tuple(float(e) for e in edges),
                   counts=tuple(int(c) for c in counts), mean_confidence=tuple(float(v) for v in conf),
                   accuracy=tuple(float(v) for v in acc), gap=tuple(float(v) for v in acc - conf))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (NaN as ``None``)."""
        return {"strategy": self.strategy, "edges": list(self.edges), "counts": list(self.counts),
                "mean_confidence": _nan_to_none(self.mean_confidence), "accuracy": _nan_to_none(self.accuracy),
                "gap": _nan_to_none(self.gap)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ReliabilityBins:
        return cls(strategy=str(d["strategy"]), edges=tuple(float(e) for e in d["edges"]),
                   counts=tuple(int(c) for c in d["counts"]), mean_confidence=_none_to_nan(d["mean_confidence"]),
                   accuracy=_none_to_nan(d["accuracy"]), gap=_none_to_nan(d["gap"]))


# ----------------------------------------------------------------------------- public API
def reliability_bins(y: np.ndarray, Q: np.ndarray, *, n_bins: int = 15,
                     strategy: str = "equal_width") -> ReliabilityBins:
    """Bin examples by confidence and report each bin's count, mean confidence and accuracy.

    Parameters
    ----------
    y : array-like of shape (n,)
        Gold labels as class indices in ``[0, k)``.
    Q : array-like of shape (n, k)
        Class probabilities of the model.
    n_bins : int, default 15
    strategy : {"equal_width", "equal_mass"}, default "equal_width"
        See the module docstring for the exact edge rules.

    Examples
    --------
    >>> b = reliability_bins([0, 1], [[0.9, 0.1], [0.6, 0.4]], n_bins=2)
    >>> b.counts, b.accuracy
    ((0, 2), (nan, 0.5))
    """
    y, Q = _check_calib(y, Q, n_bins, strategy)
    conf, correct = _conf_correct(y, Q)
    idx, edges = _bin_index(conf, n_bins, strategy)
    return ReliabilityBins._from_sums(strategy, edges, *_bin_sums(idx, conf, correct, n_bins))


def expected_calibration_error(y: np.ndarray, Q: np.ndarray, *, n_bins: int = 15,
                               strategy: str = "equal_width") -> float:
    r"""Expected calibration error of the top-label confidence.

    .. math:: \mathrm{ECE} = \sum_b \frac{|B_b|}{n}\,|\mathrm{acc}(B_b) - \mathrm{conf}(B_b)|

    Binned ECE is biased upward on small samples and for well-calibrated models; compare two
    models through the paired bootstrap of :func:`~mlflow_trusteq.metrics.summarize_pair`.

    Examples
    --------
    >>> expected_calibration_error([0, 1], [[0.9, 0.1], [0.6, 0.4]], n_bins=2)
    0.25
    """
    y, Q = _check_calib(y, Q, n_bins, strategy)
    conf, correct = _conf_correct(y, Q)
    idx, _ = _bin_index(conf, n_bins, strategy)
    return float(_ece_from_sums(*_bin_sums(idx, conf, correct, n_bins)))


def debiased_squared_ece(y: np.ndarray, Q: np.ndarray, *, n_bins: int = 15) -> float:
    r"""Debiased squared (:math:`\ell_2`) calibration error of the top-label confidence, equal-width bins.

    With :math:`d_i = a_i - c_i` (correctness minus confidence), per bin :math:`S_b = \sum_{i \in B_b} d_i`
    and :math:`Q_b = \sum_{i \in B_b} d_i^2`:

    .. math::

        \widehat{\mathrm{CE}^2} = rac{1}{n} \sum_{b:\,|B_b| \ge 2} rac{S_b^2 - Q_b}{|B_b| - 1}
        = \sum_b rac{|B_b|}{n}\left[ar d_b^{\,2} - rac{s_b^2}{|B_b|}ight]

    an unbiased estimate (given the bin counts) of :math:`\sum_b \Pr(B_b)\,\mathrm{E}[a - c \mid B_b]^2`,
    the squared calibration error of the binned model (Kumar, Liang & Ma 2019, "Verified
    uncertainty calibration", the debiased estimator; theirs uses :math:`ar a_b(1 - ar a_b)`,
    the same when the confidences of a bin are equal). It can be negative (a calibrated model
    scores about 0 either way); the binned ECE is biased upward by about
    :math:`\sqrt{2/(\pi n_b)}` per bin instead, so its interval misses a calibrated model's 0
    (README, "What is measured"). Bins as in :func:`expected_calibration_error`
    (``"equal_width"``), so the target is fixed in advance of the data.

    Examples
    --------
    >>> round(debiased_squared_ece([0, 0, 1, 1], [[0.6, 0.4], [0.6, 0.4], [0.6, 0.4], [0.6, 0.4]], n_bins=2), 4)
    -0.0733
    """
    y, Q = _check_calib(y, Q, n_bins, "equal_width")
    conf, correct = _conf_correct(y, Q)
    idx, _ = _equal_width_bins(conf, n_bins)
    gap = correct - conf
    counts = np.bincount(idx, minlength=n_bins).astype(np.float64)
    s = np.bincount(idx, weights=gap, minlength=n_bins)
    q = np.bincount(idx, weights=gap * gap, minlength=n_bins)
    return float(_debiased_sq_from_sums(counts, s, q))


def max_calibration_error(y: np.ndarray, Q: np.ndarray, *, n_bins: int = 15, strategy: str = "equal_width",
                          min_bin_count: int = 10) -> float:
    r"""Maximum calibration gap over the bins holding at least ``min_bin_count`` examples.

    .. math:: \mathrm{MCE} = \max_{b:\,|B_b| \ge m} |\mathrm{acc}(B_b) - \mathrm{conf}(B_b)|

    Bins with fewer examples are ignored (their gap is mostly noise); returns NaN when no bin
    qualifies. ``min_bin_count=1`` gives the textbook maximum over non-empty bins.

    Examples
    --------
    >>> max_calibration_error([0, 1], [[0.9, 0.1], [0.6, 0.4]], n_bins=2, min_bin_count=1)
    0.25
    """
    y, Q = _check_calib(y, Q, n_bins, strategy)
    min_bin_count = check_int(min_bin_count, "min_bin_count", minimum=0)
    conf, correct = _conf_correct(y, Q)
    idx, _ = _bin_index(conf, n_bins, strategy)
    return float(_mce_from_sums(*_bin_sums(idx, conf, correct, n_bins), min_bin_count))


def brier_loss(y: np.ndarray, Q: np.ndarray) -> float:
    r"""Multi-class Brier score: mean over examples of the squared error summed over classes.

    .. math:: \mathrm{BS} = \frac{1}{n}\sum_i \sum_j (Q_{ij} - [y_i = j])^2 \in [0, 2]

    For two classes this is twice scikit-learn's ``brier_score_loss`` on the positive class.

    Examples
    --------
    >>> brier_loss([0], [[0.75, 0.25]])
    0.125
    """
    y, Q = _check_calib(y, Q)
    return float(np.mean(_brier(y, Q)))


def log_loss(y: np.ndarray, Q: np.ndarray) -> float:
    r"""Negative log-likelihood of the gold class, natural log, probabilities clipped at ``1e-15``.

    .. math:: \mathrm{NLL} = -\frac{1}{n}\sum_i \ln \max(Q_{i y_i}, 10^{-15})

    Examples
    --------
    >>> round(log_loss([0], [[0.5, 0.5]]), 6)
    0.693147
    """
    y, Q = _check_calib(y, Q)
    return float(np.mean(_nll(y, Q)))
