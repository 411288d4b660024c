r"""Agreement between two attribution vectors over the same features (Krishna et al., 2022).

For attribution vectors :math:`a` (the reference, e.g. the parent) and :math:`b` over the same
:math:`d` features, let :math:`k' = \min(k, d)` and :math:`T_k(a)` the indices of the :math:`k'`
largest :math:`|a_j|` (ties broken by feature order). Then

.. math::

    \text{top\_k\_jaccard} = \frac{|T_k(a) \cap T_k(b)|}{|T_k(a) \cup T_k(b)|}, \qquad
    \text{feature\_agreement} = \frac{|T_k(a) \cap T_k(b)|}{k'},

    \text{rank\_correlation} = \rho_{\text{Spearman}}(|a|, |b|), \qquad
    \text{sign\_agreement} = \frac{1}{k'} \sum_{j \in T_k(a)} [\operatorname{sign} a_j = \operatorname{sign} b_j].

The rank correlation ranks features by importance (absolute attribution), over all features; it is
NaN when either vector has constant magnitude or :math:`d < 2`. Every measure is NaN when
:math:`d = 0`.
"""

from __future__ import annotations

import math

import numpy as np

from .._errors import InvalidInputError

__all__ = ["top_k", "top_k_jaccard", "feature_agreement", "rank_correlation", "sign_agreement",
           "agreement"]


def _check(a: np.ndarray, b: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise InvalidInputError(f"Expected attribution vectors of the same length, got {a.size} and {b.size}")
    if int(k) < 1:
        raise InvalidInputError(f"Expected `k` >= 1, got {k}")
    return a, b


def top_k(a: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``min(k, len(a))`` largest ``|a|``, largest first (ties: lower index first)."""
    a = np.asarray(a, dtype=np.float64).ravel()
    order = np.argsort(-np.abs(a), kind="stable")
    return order[:min(int(k), a.size)]


def top_k_jaccard(a: np.ndarray, b: np.ndarray, k: int = 10) -> float:
    """Jaccard index of the top-k sets of ``a`` and ``b`` by absolute attribution.

    >>> top_k_jaccard([3, 2, 1, 0], [0, 2, 1, 3], k=2)
    0.3333333333333333
    """
    a, b = _check(a, b, k)
    if a.size == 0:
        return math.nan
    sa, sb = set(top_k(a, k).tolist()), set(top_k(b, k).tolist())
    return len(sa & sb) / len(sa | sb)


def feature_agreement(a: np.ndarray, b: np.ndarray, k: int = 10) -> float:
    """``|top-k(a) ∩ top-k(b)| / min(k, d)``.

    >>> feature_agreement([3, 2, 1, 0], [0, 2, 1, 3], k=2)
    0.5
    """
    a, b = _check(a, b, k)
    if a.size == 0:
        return math.nan
    ta, tb = top_k(a, k), top_k(b, k)
    return len(set(ta.tolist()) & set(tb.tolist())) / ta.size


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman correlation of ``|a|`` and ``|b|`` (``scipy.stats.spearmanr``); NaN when undefined."""
    from scipy.stats import spearmanr

    a, b = _check(a, b, 1)
    aa, bb = np.abs(a), np.abs(b)
    if a.size < 2 or np.all(aa == aa[0]) or np.all(bb == bb[0]):
        return math.nan
    return float(spearmanr(aa, bb).statistic)


def sign_agreement(a: np.ndarray, b: np.ndarray, k: int = 10) -> float:
    """Share of the top-k features of ``a`` on which ``b`` has the same sign.

    >>> sign_agreement([3, -2, 1], [1, 2, -1], k=2)
    0.5
    """
    a, b = _check(a, b, k)
    if a.size == 0:
        return math.nan
    ta = top_k(a, k)
    return float(np.mean(np.sign(a[ta]) == np.sign(b[ta])))


def agreement(a: np.ndarray, b: np.ndarray, k: int = 10, *, a_full: np.ndarray | None = None,
              b_full: np.ndarray | None = None) -> dict[str, float]:
    """All four measures; the rank correlation uses ``a_full``/``b_full`` where given.

    ``a``/``b`` are the explanations whose top-k sets are compared (for LIME, the sparse
    explanation with ``num_features=k``); ``a_full``/``b_full`` the dense attributions over all
    features used for the rank correlation.
    """
    return {
        "top_k_jaccard": top_k_jaccard(a, b, k),
        "feature_agreement": feature_agreement(a, b, k),
        "rank_correlation": rank_correlation(a if a_full is None else a_full, b if b_full is None else b_full),
        "sign_agreement": sign_agreement(a, b, k),
    }
