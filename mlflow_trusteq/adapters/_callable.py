"""A plain function ``records -> scores`` as a :class:`~mlflow_trusteq.adapters.ProbaModel`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._errors import InvalidInputError, ModelAdapterError
from ._base import BaseAdapter, normalise_tabular_records, normalise_text_records

__all__ = ["CallableAdapter"]


def _looks_textual(records: Any) -> bool:
    if isinstance(records, pd.DataFrame):
        return 1 <= records.shape[1] <= 2 and all(
            records[c].dtype == object or pd.api.types.is_string_dtype(records[c]) for c in records.columns)
    if isinstance(records, pd.Series):
        return records.dtype == object or pd.api.types.is_string_dtype(records)
    if isinstance(records, (list, tuple)) and records:
        first = records[0]
        return isinstance(first, str) or (
            isinstance(first, tuple) and len(first) == 2 and isinstance(first[0], str))
    return False


class CallableAdapter(BaseAdapter):
    """Wrap ``fn(batch) -> scores``: probabilities or logits ``(b, k)``, or a binary score ``(b,)``.

    The function is called on batches of at most ``batch_size`` records. What it receives
    depends on ``input_kind``: ``"text"`` -> a ``list[str]`` or ``list[tuple[str, str]]``;
    ``"tabular"`` -> a DataFrame slice or 2-D array; ``"auto"`` -> text when the records are
    strings (a DataFrame of one or two string columns, a list of strings or pairs). Its output
    goes through :func:`~mlflow_trusteq.adapters._base.to_probabilities` with ``kind``.

    Parameters
    ----------
    fn : callable
    labels : sequence of str
        Column order of ``fn``'s output.
    batch_size : int
    kind : {"auto", "proba", "logits"}
    input_kind : {"auto", "text", "tabular"}
    name : str, optional
    size_bytes : int, optional
    """

    def __init__(self, fn: Callable[[Any], Any], labels: Sequence[Any], *, batch_size: int = 256,
                 kind: str = "auto", input_kind: str = "auto", name: str | None = None,
                 size_bytes: int | None = None) -> None:
        if not callable(fn):
            raise ModelAdapterError(f"expected a callable, got {type(fn).__name__}")
        if kind not in ("auto", "proba", "logits"):
            raise InvalidInputError(f'Expected `kind` in ("auto", "proba", "logits"), got {kind!r}')
        if input_kind not in ("auto", "text", "tabular"):
            raise InvalidInputError(
                f'Expected `input_kind` in ("auto", "text", "tabular"), got {input_kind!r}')
        self.fn = fn
        self.output_kind = kind
        self._input_kind = input_kind
        super().__init__(labels, name=str(name or getattr(fn, "__qualname__", type(fn).__name__)),
                         size_bytes=size_bytes, batch_size=batch_size)

    def _normalise(self, records: Any) -> Any:
        text = self._input_kind == "text" or (self._input_kind == "auto" and _looks_textual(records))
        if text:
            return normalise_text_records(records, name=self.name)
        return normalise_tabular_records(records, name=self.name)

    def _score_batch(self, batch: Any) -> np.ndarray:
        return np.asarray(self.fn(batch))
