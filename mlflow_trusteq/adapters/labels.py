"""Label order: match the candidate's columns to the parent's, and encode gold targets."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._errors import InvalidInputError, LabelMismatchError

logger = logging.getLogger(__name__)

__all__ = ["align_labels", "encode_targets"]


def align_labels(parent: Sequence[Any], candidate: Sequence[Any]) -> np.ndarray:
    """Column permutation that puts the candidate's probabilities in the parent's label order.

    Parameters
    ----------
    parent, candidate : sequence of str
        The ``labels`` of the two models (compared as strings).

    Returns
    -------
    numpy.ndarray of int, shape (k,)
        ``perm`` such that ``Q[:, perm]`` has the columns of the parent's ``labels``:
        ``candidate[perm[j]] == parent[j]``. The identity when the lists are equal.

    Raises
    ------
    LabelMismatchError
        When the two label *sets* differ (or contain duplicates): both label lists are in the
        message. A different order of the same set is not an error; it is logged at INFO.

    Examples
    --------
    >>> align_labels(["neg", "pos"], ["pos", "neg"]).tolist()
    [1, 0]
    """
    p = [str(x) for x in parent]
    c = [str(x) for x in candidate]
    if p == c and len(set(p)) == len(p):
        return np.arange(len(p), dtype=np.int64)
    if len(set(p)) != len(p) or len(set(c)) != len(c) or set(p) != set(c):
        only_p = sorted(set(p) - set(c))
        only_c = sorted(set(c) - set(p))
        raise LabelMismatchError(
            f"parent and candidate predict different labels: parent {p}, candidate {c}"
            + (f" (only in parent: {only_p}; only in candidate: {only_c})" if only_p or only_c else
               " (duplicate label names)")
            + ". Give both models the same label names (labels=[...] when wrapping a model).")
    index = {name: i for i, name in enumerate(c)}
    perm = np.array([index[name] for name in p], dtype=np.int64)
    logger.info("candidate labels %s are in another order than the parent's %s; reordering columns %s",
                c, p, perm.tolist())
    return perm


def encode_targets(y: Any, labels: Sequence[Any], *, name: str = "targets") -> np.ndarray:
    """Gold targets -> integer column indices into ``labels``: the one rule, used everywhere.

    ``compare()``, :func:`~mlflow_trusteq.explain.measure_alignment` and
    :func:`~mlflow_trusteq.attack.measure_robustness` all map gold labels with this function, so
    the same targets give the same class indices in every section.

    Rules, in order: (1) if every value, as a string, is a label name, it maps to that label's
    index; (2) else if every value is integer-like (``0``, ``1.0``, ``"1"``) within ``0..k-1``,
    it is the index itself (gold ``0/1`` against labels ``("negative", "positive")``);
    (3) anything else raises. The rule is decided once for the whole array, never value by value.

    Parameters
    ----------
    y : array-like of shape (n,)
        Gold labels: label names or class indices.
    labels : sequence of str
        The models' label names in column order.
    name : str, default "targets"
        The argument's name in error messages.

    Returns
    -------
    numpy.ndarray of int64, shape (n,)

    Raises
    ------
    InvalidInputError
        When ``y`` is not 1-D, has a missing value (NaN or None; the first row is named), or holds
        values that are neither label names nor indices (naming them).

    Examples
    --------
    >>> encode_targets(["pos", "neg"], ["neg", "pos"]).tolist()
    [1, 0]
    >>> encode_targets([0, 1, 1], ["negative", "positive"]).tolist()
    [0, 1, 1]
    """
    names = [str(x) for x in labels]
    raw = np.asarray(y)
    if raw.ndim != 1:
        raise InvalidInputError(f"`{name}` must be 1-D (one gold label per example), got shape {raw.shape}")
    if raw.size == 0:
        return np.empty(0, dtype=np.int64)
    _check_no_missing(raw, name)
    # decide on the distinct values only (millions of rows, a handful of labels), then map back
    distinct, inverse = np.unique(raw if raw.dtype != object else raw.astype(str), return_inverse=True)
    values = distinct.astype(object)
    as_str = [_as_label_string(v) for v in values]
    index = {label: i for i, label in enumerate(names)}
    if all(s in index for s in as_str):
        return np.array([index[s] for s in as_str], dtype=np.int64)[inverse]
    ints = [_as_int(v) for v in values]
    k = len(names)
    if all(i is not None and 0 <= i < k for i in ints):
        return np.array(ints, dtype=np.int64)[inverse]
    unknown = sorted({s for s, i in zip(as_str, ints) if s not in index and (i is None or not 0 <= i < k)})
    raise InvalidInputError(
        f"`{name}` contains values that are neither label names {names} nor indices 0..{k - 1}: "
        f"{unknown[:10]}{' ...' if len(unknown) > 10 else ''}")


def _check_no_missing(raw: np.ndarray, name: str) -> None:
    """Raise naming the first row whose gold label is missing (NaN, None, NaT)."""
    if raw.dtype.kind in "fcOM":
        import pandas as pd

        missing = np.flatnonzero(pd.isna(raw))
        if missing.size:
            raise InvalidInputError(f"gold label missing (NaN) in `{name}` at row {int(missing[0])}")


def _as_label_string(v: Any) -> str:
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v)


def _as_int(v: Any) -> int | None:
    if isinstance(v, (bool, np.bool_)):
        return int(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return int(v) if np.isfinite(v) and float(v).is_integer() else None
    if isinstance(v, str):
        try:
            f = float(v)
        except ValueError:
            return None
        return int(f) if np.isfinite(f) and f.is_integer() else None
    return None
