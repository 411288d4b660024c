"""Input checks for the public metric functions.

Every public function in :mod:`mlflow_trusteq.metrics` validates its inputs once, here, and then
calls private kernels that trust them. Each error is an
:class:`~mlflow_trusteq.InvalidInputError` whose message names the problem and quotes the bad
value (the first offending row where there is one).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from .._errors import InvalidInputError

__all__ = ["check_proba", "check_pair", "check_targets", "check_int", "check_base", "check_confidence",
           "check_strategy", "check_finite_or_nan", "check_generator", "PROBA_TOL", "ROW_SUM_ATOL"]

#: values may stray this far outside [0, 1] (float round-off) before they are an error; they are clipped
PROBA_TOL = 1e-6
#: rows must sum to 1 within this absolute tolerance
ROW_SUM_ATOL = 1e-4


def _row_repr(row: np.ndarray, max_items: int = 6) -> str:
    items = ", ".join(f"{v:.6g}" for v in row[:max_items])
    return f"[{items}{', ...' if row.size > max_items else ''}]"


def check_proba(P: Any, name: str = "P") -> np.ndarray:
    """Validate a probability matrix and return it as a C-contiguous ``float64`` ``(n, k)`` array.

    Raises :class:`InvalidInputError` when ``P`` is not 2-D, has no rows or fewer than two
    columns, holds NaN/inf, values outside ``[0, 1]`` (beyond a tolerance of ``1e-6``, which is
    clipped away) or rows that do not sum to 1 (``atol=1e-4``). The message names the first bad row.
    """
    try:
        arr = np.asarray(P, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name} must be a numeric (n_examples, n_classes) array, got "
                                f"{type(P).__name__}: {exc}") from None
    if arr.ndim != 2:
        raise InvalidInputError(f"{name} must be 2-D (n_examples, n_classes), got shape {arr.shape}")
    n, k = arr.shape
    if n == 0:
        raise InvalidInputError(f"{name} is empty: got shape {arr.shape}, need at least one example")
    if k < 2:
        raise InvalidInputError(f"{name} must have at least 2 class columns, got shape {arr.shape}")
    lo, hi = arr.min(), arr.max()  # NaN propagates through min/max: one cheap pass on clean data
    if not (np.isfinite(lo) and np.isfinite(hi)):
        finite = np.isfinite(arr)
        i = int(np.argmin(finite.all(axis=1)))
        raise InvalidInputError(f"{name} has NaN or infinite values; first at row {i}: {_row_repr(arr[i])}")
    if lo < -PROBA_TOL or hi > 1.0 + PROBA_TOL:
        bad = (arr < -PROBA_TOL) | (arr > 1.0 + PROBA_TOL)
        i = int(np.argmax(bad.any(axis=1)))
        raise InvalidInputError(f"{name} has values outside [0, 1] (probabilities expected; logits?); "
                                f"first at row {i}: {_row_repr(arr[i])}")
    sums = arr.sum(axis=1)
    if np.abs(sums - 1.0).max() > ROW_SUM_ATOL:
        i = int(np.argmax(np.abs(sums - 1.0) > ROW_SUM_ATOL))
        raise InvalidInputError(f"{name} rows must sum to 1 (atol {ROW_SUM_ATOL:g}); row {i} sums to "
                                f"{sums[i]:.6g}: {_row_repr(arr[i])}")
    if lo < 0.0 or hi > 1.0:
        arr = np.clip(arr, 0.0, 1.0)
    return np.ascontiguousarray(arr)


def check_pair(P: Any, Q: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate the parent's ``P`` and the candidate's ``Q``; they must have the same shape."""
    P = check_proba(P, "P")
    Q = check_proba(Q, "Q")
    if P.shape != Q.shape:
        raise InvalidInputError(f"P and Q must have the same shape (same examples, same classes), got "
                                f"P {P.shape} and Q {Q.shape}")
    return P, Q


def check_targets(y: Any, n: int, k: int, name: str = "y") -> np.ndarray:
    """Validate gold labels as integer class indices in ``[0, k)``, one per example; return ``int64``.

    Class *names* are not accepted here: map them to column indices first (the column order of
    the probability matrices).
    """
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise InvalidInputError(f"{name} must be 1-D (one label per example), got shape {arr.shape}")
    if arr.shape[0] != n:
        raise InvalidInputError(f"{name} has {arr.shape[0]} labels, expected {n} (one per row of the "
                                f"probabilities)")
    if arr.dtype.kind == "b":
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iuf":
        first = arr[0].item() if hasattr(arr[0], "item") else arr[0]
        raise InvalidInputError(f"{name} must hold integer class indices in [0, {k - 1}], got dtype "
                                f"{arr.dtype} (first value {first!r}); map class names to column indices")
    if arr.dtype.kind == "f":
        nan = ~np.isfinite(arr)
        if nan.any():
            i = int(np.argmax(nan))
            raise InvalidInputError(f"{name} has NaN or infinite labels; first at row {i}: {arr[i].item()!r}")
        frac = arr != np.round(arr)
        if frac.any():
            i = int(np.argmax(frac))
            raise InvalidInputError(f"{name} must hold integer class indices, got {arr[i].item()!r} at row {i}")
    out = (arr < 0) | (arr >= k)
    if out.any():
        i = int(np.argmax(out))
        raise InvalidInputError(f"{name} has labels outside [0, {k - 1}] (k={k} classes); first at row {i}: "
                                f"{arr[i].item()!r}")
    return arr.astype(np.int64, copy=False)


def check_int(value: Any, name: str, *, minimum: int, whole_floats: bool = False) -> int:
    """An integer option ``>= minimum`` (bools refused; with ``whole_floats`` also a float such as ``10.0``).

    Counts given to the interval helpers (``wilson_interval(k, n)``) may be whole floats; options
    (``n_resamples``, ``n_bins``) must be integers.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidInputError(f"Expected `{name}` to be an integer, got {value!r}")
    if isinstance(value, numbers.Integral):
        count = int(value)
    elif whole_floats and math.isfinite(float(value)) and float(value).is_integer():
        count = int(float(value))
    else:
        what = "a whole number" if whole_floats else "an integer"
        raise InvalidInputError(f"Expected `{name}` to be {what}, got {value!r}")
    if count < minimum:
        raise InvalidInputError(f"Expected `{name}` >= {minimum}, got {value}")
    return count


def check_finite_or_nan(values: Any, name: str) -> np.ndarray:
    """``values`` as ``float64``; NaN allowed (the callers drop it), infinities are an error naming the first."""
    try:
        v = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"`{name}` must be numeric, got {type(values).__name__}: {exc}") from None
    if np.isinf(v).any():
        i = int(np.argmax(np.isinf(v).ravel()))
        raise InvalidInputError(f"`{name}` has infinite values; first at position {i}: {v.ravel()[i]!r}")
    return v


def check_generator(rng: Any, name: str = "rng") -> np.random.Generator:
    """A numpy ``Generator`` (not a seed: the callers that take seeds make the generator)."""
    if not isinstance(rng, np.random.Generator):
        raise InvalidInputError(f"Expected `{name}` to be a numpy Generator, got {type(rng).__name__}")
    return rng


def check_base(base: Any) -> float:
    """A logarithm base: a real number > 0 and != 1."""
    if isinstance(base, bool) or not isinstance(base, numbers.Real) or not math.isfinite(base) \
            or base <= 0 or base == 1:
        raise InvalidInputError(f"Expected `base` > 0 and != 1 (2 or math.e), got {base!r}")
    return float(base)


def check_confidence(confidence: Any) -> float:
    """A confidence level strictly between 0 and 1."""
    if isinstance(confidence, bool) or not isinstance(confidence, numbers.Real) or not 0.0 < float(confidence) < 1.0:
        raise InvalidInputError(f"Expected 0 < `confidence` < 1, got {confidence!r}")
    return float(confidence)


def check_strategy(strategy: Any) -> str:
    """A binning strategy: ``"equal_width"`` or ``"equal_mass"``."""
    if strategy not in ("equal_width", "equal_mass"):
        raise InvalidInputError(f"Expected `strategy` in ('equal_width', 'equal_mass'), got {strategy!r}")
    return str(strategy)
