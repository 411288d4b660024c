"""A batch plan: how a model's inputs are grouped, padded and truncated when it is scored.

A model whose outputs depend on what else is in its batch (ONNX Runtime *dynamic* int8
quantization computes its activation scales per batch tensor, padding included) does not serve
like it was evaluated unless both use the same plan. :class:`BatchPlan` names the plan:

- ``batch_size``: most rows per model call (1: every row alone, as many servers run);
- ``padding_side``: ``"right"`` or ``"left"`` (text models; default: the tokenizer's);
- ``max_length``: truncation length in tokens (text models);
- ``sort``: ``"length"`` (rows sorted by token length, then grouped, trusteq's default for text)
  or ``"none"`` (rows grouped in data order, as a server's dynamic batcher sees them);
- ``max_tokens_per_batch``: the padded-token budget of one call (text models).

A field left ``None`` keeps the adapter's own value. :meth:`BaseAdapter.with_batch_plan
<mlflow_trusteq.adapters.BaseAdapter.with_batch_plan>` applies a plan to a model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from .._errors import InvalidInputError

__all__ = ["BatchPlan", "PADDING_SIDES", "SORTS", "TEXT_ONLY_FIELDS"]

PADDING_SIDES = ("right", "left")
SORTS = ("length", "none")
#: the plan fields that only a text model (a tokenizer) can take
TEXT_ONLY_FIELDS = ("padding_side", "max_length", "sort", "max_tokens_per_batch")


@dataclass(frozen=True)
class BatchPlan:
    """How inputs are batched when a model is scored; ``None`` keeps the model's own setting.

    Parameters
    ----------
    batch_size : int, optional
        Most rows per model call, >= 1.
    padding_side : {"right", "left"}, optional
        Where a text batch is padded.
    max_length : int, optional
        Truncation length in tokens, >= 1.
    sort : {"length", "none"}, optional
        ``"length"``: sort by token length before grouping; ``"none"``: group in data order.
    max_tokens_per_batch : int, optional
        Most padded tokens (rows x longest) per call, >= 1.

    Examples
    --------
    >>> BatchPlan.from_value({"batch_size": 1}).to_dict()["batch_size"]
    1
    >>> BatchPlan(batch_size=0)
    Traceback (most recent call last):
    ...
    mlflow_trusteq._errors.InvalidInputError: batch plan: `batch_size` must be a positive integer, got 0
    """

    batch_size: int | None = None
    padding_side: str | None = None
    max_length: int | None = None
    sort: str | None = None
    max_tokens_per_batch: int | None = None

    def __post_init__(self) -> None:
        for key in ("batch_size", "max_length", "max_tokens_per_batch"):
            value = getattr(self, key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise InvalidInputError(f"batch plan: `{key}` must be a positive integer, got {value!r}")
        if self.padding_side is not None and self.padding_side not in PADDING_SIDES:
            raise InvalidInputError(f"batch plan: `padding_side` must be one of {PADDING_SIDES}, "
                                    f"got {self.padding_side!r}")
        if self.sort is not None and self.sort not in SORTS:
            raise InvalidInputError(f"batch plan: `sort` must be one of {SORTS}, got {self.sort!r}")

    @classmethod
    def from_value(cls, value: BatchPlan | Mapping[str, Any] | None) -> BatchPlan:
        """A plan from a plan, a mapping of its fields (unknown keys are an error) or ``None`` (all kept)."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            known = {f.name for f in fields(cls)}
            unknown = sorted(set(value) - known)
            if unknown:
                raise InvalidInputError(f"unknown batch plan key(s) {unknown}; known: {sorted(known)}")
            return cls(**dict(value))
        raise InvalidInputError(f"a batch plan is a mapping of {[f.name for f in fields(cls)]}, got {value!r}")

    def given(self) -> dict[str, Any]:
        """The fields this plan sets (those not ``None``)."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """One line for a report: ``batch_size=1, sort=none`` (``model's own`` when nothing is set)."""
        given = self.given()
        return ", ".join(f"{k}={v}" for k, v in given.items()) if given else "the model's own plan"
