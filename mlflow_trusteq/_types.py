"""Small value types shared by every layer.

Report keys (``section/method/role/metric``) and the metric registry live in
:mod:`mlflow_trusteq._keys`; :class:`MetricInfo` and :func:`metric_info` are re-exported here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._keys import METRIC_INFO, MetricInfo, metric_info, register_metric

__all__ = ["Estimate", "MetricInfo", "METRIC_INFO", "register_metric", "metric_info", "to_jsonable"]


@dataclass(frozen=True)
class Estimate:
    """A point estimate with an optional confidence interval.

    ``lower``/``upper`` are the bounds of a two-sided ``confidence`` interval (paired percentile
    bootstrap unless stated otherwise); ``None`` when no interval was computed.
    """

    value: float
    lower: float | None = None
    upper: float | None = None
    confidence: float | None = None

    def to_dict(self) -> dict[str, Any]:
        def clean(x: float | None) -> float | None:
            return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)

        return {"value": clean(self.value), "lower": clean(self.lower), "upper": clean(self.upper),
                "confidence": self.confidence}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Estimate:
        value = d.get("value")
        return cls(value=float("nan") if value is None else float(value), lower=d.get("lower"),
                   upper=d.get("upper"), confidence=d.get("confidence"))


def to_jsonable(obj: Any) -> Any:
    """Recursively turn objects with ``to_dict``, numpy scalars and arrays into JSON types.

    Non-finite floats become ``None`` (JSON has no NaN or infinity).
    """
    if hasattr(obj, "to_dict") and callable(obj.to_dict):
        return to_jsonable(obj.to_dict())
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
