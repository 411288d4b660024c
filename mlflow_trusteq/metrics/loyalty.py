"""Fidelity of a candidate to its parent: label and probability loyalty, flips.

``P`` is the parent's ``(n, k)`` probability matrix, ``Q`` the candidate's, with the same rows
(examples) and columns (classes). A model's predicted label is ``argmax`` of its row; **ties go to
the lowest class index** (numpy's ``argmax`` rule), so ``[0.5, 0.5]`` predicts class 0.

Definitions (Xu et al., EMNLP 2021; SPEC.md "Fidelity"):

.. math::

    \\mathrm{LL} = \\frac{1}{n}\\sum_i [\\hat p_i = \\hat q_i], \\qquad
    \\mathrm{PL} = \\frac{1}{n}\\sum_i 1 - \\sqrt{\\mathrm{JS}_b(P_i \\| Q_i)}

with :math:`\\mathrm{JS}_b(p\\|q) = \\tfrac12 \\mathrm{KL}_b(p\\|m) + \\tfrac12 \\mathrm{KL}_b(q\\|m)`,
:math:`m = (p+q)/2`, in log base ``b`` (2 by default, so JS and PL lie in [0, 1]).
"""

from __future__ import annotations

import math

import numpy as np

from ._validation import check_base, check_pair, check_targets

__all__ = [
    "label_loyalty_score",
    "js_divergence",
    "probability_loyalty_score",
    "negative_flip_rate",
    "positive_flip_rate",
    "flip_matrix",
    "per_class_loyalty",
]


# ----------------------------------------------------------------------------- private kernels
def _predict(P: np.ndarray) -> np.ndarray:
    """Predicted labels; ties go to the lowest index."""
    return np.argmax(P, axis=1)


def _js_nat(P: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """Per-row JS divergence in nats, with ``0 log 0 = 0``; exactly 0 where ``P[i] == Q[i]``."""
    M = 0.5 * (P + Q)
    with np.errstate(divide="ignore", invalid="ignore"):
        logM = np.log(M)
        tp = np.where(P > 0, P * (np.log(P) - logM), 0.0)
        tq = np.where(Q > 0, Q * (np.log(Q) - logM), 0.0)
    js = 0.5 * (tp.sum(axis=1) + tq.sum(axis=1))
    np.clip(js, 0.0, math.log(2.0), out=js)
    return js


def _js(P: np.ndarray, Q: np.ndarray, base: float) -> np.ndarray:
    js = _js_nat(P, Q)
    if base != math.e:
        js /= math.log(base)
    return js


def _flip_matrix(pp: np.ndarray, pq: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(pp * k + pq, minlength=k * k).reshape(k, k)


def _per_class_from_flips(F: np.ndarray) -> np.ndarray:
    rows = F.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(rows > 0, np.diag(F) / np.maximum(rows, 1), np.nan)


# ----------------------------------------------------------------------------- public API
def label_loyalty_score(P: np.ndarray, Q: np.ndarray) -> float:
    """Share of examples on which parent and candidate predict the same label.

    .. math:: \\mathrm{LL} = \\frac{1}{n}\\sum_i [\\arg\\max_j P_{ij} = \\arg\\max_j Q_{ij}]

    Ties in ``argmax`` go to the lowest class index.

    Parameters
    ----------
    P, Q : array-like of shape (n, k)
        Parent and candidate class probabilities (rows sum to 1).

    Returns
    -------
    float in [0, 1]; 1 means the candidate always agrees with the parent.

    Examples
    --------
    >>> label_loyalty_score([[0.9, 0.1], [0.4, 0.6]], [[0.8, 0.2], [0.7, 0.3]])
    0.5
    """
    P, Q = check_pair(P, Q)
    return float(np.mean(_predict(P) == _predict(Q)))


def js_divergence(P: np.ndarray, Q: np.ndarray, *, base: float = 2) -> np.ndarray:
    """Per-example Jensen-Shannon **divergence** (not the distance) between rows of ``P`` and ``Q``.

    .. math::

        \\mathrm{JS}_b(p\\|q) = \\tfrac12\\sum_j p_j\\log_b\\frac{p_j}{m_j}
        + \\tfrac12\\sum_j q_j\\log_b\\frac{q_j}{m_j}, \\quad m = \\tfrac{p+q}{2}

    with ``0 log 0 = 0``. In base 2 the value lies in ``[0, 1]``; in base e in ``[0, ln 2]``.
    ``scipy.spatial.distance.jensenshannon(P, Q, base=2, axis=1) ** 2`` gives the same numbers.

    Parameters
    ----------
    P, Q : array-like of shape (n, k)
    base : float, default 2
        Logarithm base.

    Returns
    -------
    ndarray of shape (n,)

    Examples
    --------
    >>> js_divergence([[1.0, 0.0]], [[0.0, 1.0]]).tolist()
    [1.0]
    """
    P, Q = check_pair(P, Q)
    return _js(P, Q, check_base(base))


def probability_loyalty_score(P: np.ndarray, Q: np.ndarray, *, base: float = 2) -> float:
    """Mean over examples of ``1 - sqrt(JS_b(P[i] || Q[i]))``.

    .. math:: \\mathrm{PL} = \\frac{1}{n}\\sum_i \\left(1 - \\sqrt{\\mathrm{JS}_b(P_i\\|Q_i)}\\right)

    With ``base=2`` (default) the score lies in ``[0, 1]``. The original study used scipy's
    default natural log, under which the score never falls below ``1 - sqrt(ln 2) ~ 0.167``; pass
    ``base=math.e`` to reproduce it.

    Examples
    --------
    >>> probability_loyalty_score([[0.9, 0.1]], [[0.9, 0.1]])
    1.0
    """
    P, Q = check_pair(P, Q)
    return float(np.mean(1.0 - np.sqrt(_js(P, Q, check_base(base)))))


def negative_flip_rate(y: np.ndarray, P: np.ndarray, Q: np.ndarray) -> float:
    """Share of examples the parent gets right and the candidate gets wrong (over all ``n``).

    .. math:: \\mathrm{NFR} = \\frac{1}{n}\\sum_i [\\hat p_i = y_i][\\hat q_i \\ne y_i]

    Examples
    --------
    >>> negative_flip_rate([0, 1], [[0.9, 0.1], [0.4, 0.6]], [[0.2, 0.8], [0.4, 0.6]])
    0.5
    """
    P, Q = check_pair(P, Q)
    y = check_targets(y, *P.shape)
    return float(np.mean((_predict(P) == y) & (_predict(Q) != y)))


def positive_flip_rate(y: np.ndarray, P: np.ndarray, Q: np.ndarray) -> float:
    """Share of examples the parent gets wrong and the candidate gets right (over all ``n``).

    .. math:: \\mathrm{PFR} = \\frac{1}{n}\\sum_i [\\hat p_i \\ne y_i][\\hat q_i = y_i]

    Examples
    --------
    >>> positive_flip_rate([0, 1], [[0.1, 0.9], [0.4, 0.6]], [[0.8, 0.2], [0.4, 0.6]])
    0.5
    """
    P, Q = check_pair(P, Q)
    y = check_targets(y, *P.shape)
    return float(np.mean((_predict(P) != y) & (_predict(Q) == y)))


def flip_matrix(P: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """The ``(k, k)`` count matrix of predicted labels: row = parent's label, column = candidate's.

    The diagonal holds the agreements; ``trace / n`` is the label loyalty.

    Examples
    --------
    >>> flip_matrix([[0.9, 0.1], [0.4, 0.6]], [[0.8, 0.2], [0.7, 0.3]]).tolist()
    [[1, 0], [1, 0]]
    """
    P, Q = check_pair(P, Q)
    return _flip_matrix(_predict(P), _predict(Q), P.shape[1])


def per_class_loyalty(P: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """Label loyalty within each class the parent predicts, shape ``(k,)``.

    .. math:: \\mathrm{LL}_c = \\frac{|\\{i: \\hat p_i = c, \\hat q_i = c\\}|}{|\\{i: \\hat p_i = c\\}|}

    NaN for a class the parent never predicts.

    Examples
    --------
    >>> per_class_loyalty([[0.9, 0.1], [0.8, 0.2]], [[0.9, 0.1], [0.3, 0.7]]).tolist()
    [0.5, nan]
    """
    P, Q = check_pair(P, Q)
    return _per_class_from_flips(_flip_matrix(_predict(P), _predict(Q), P.shape[1]))
