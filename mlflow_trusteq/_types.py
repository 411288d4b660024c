"""Small value types shared by every layer.

Report keys
-----------
A :class:`~mlflow_trusteq.compare.TrustReport` holds a flat mapping ``key -> Estimate``. Keys are
``/``-separated paths; the last segment is the *base metric name*, whose :class:`MetricInfo`
(direction, bounds) is looked up in :data:`METRIC_INFO`. The conventions:

- fidelity, one value for the pair: ``label_loyalty``, ``probability_loyalty``,
  ``negative_flip_rate``, ``positive_flip_rate`` (loyalty per parent class and the flip matrix
  are fields of the report, not keys);
- per model and their paired difference (candidate minus parent): ``parent/<m>``,
  ``candidate/<m>``, ``diff/<m>`` for ``accuracy``, ``ece_equal_width``, ``ece_equal_mass``,
  ``mce_equal_width``, ``mce_equal_mass``, ``brier_loss``, ``log_loss``;
- efficiency: ``speedup``, ``size_ratio``, ``parent/throughput``, ``candidate/throughput``;
- sections add their own prefix: ``alignment/<method>/...``, ``robustness/<recipe>/...``.

When logged to MLflow every key gets the ``trusteq/`` namespace.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Estimate", "MetricInfo", "METRIC_INFO", "register_metric", "metric_info"]


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


@dataclass(frozen=True)
class MetricInfo:
    """Metadata that travels with a metric: which way is better, and its range."""

    name: str
    higher_is_better: bool
    lower_bound: float | None = 0.0
    upper_bound: float | None = 1.0
    description: str = ""


METRIC_INFO: dict[str, MetricInfo] = {}


def register_metric(info: MetricInfo) -> MetricInfo:
    """Add (or replace) the metadata of a base metric name."""
    METRIC_INFO[info.name] = info
    return info


def metric_info(key: str) -> MetricInfo:
    """Metadata of a report key, looked up by its last path segment.

    Raises ``KeyError`` naming the key when the base metric is unknown.
    """
    base = key.rsplit("/", 1)[-1]
    try:
        return METRIC_INFO[base]
    except KeyError:
        raise KeyError(f"unknown metric {key!r} (base name {base!r}); known: {sorted(METRIC_INFO)}") from None


for _info in [
    MetricInfo("label_loyalty", True, description="share of examples where both models predict the same label"),
    MetricInfo("probability_loyalty", True, description="mean of 1 - sqrt(JS(P||Q)) over examples"),
    MetricInfo("negative_flip_rate", False, description="parent right, candidate wrong, over n"),
    MetricInfo("positive_flip_rate", False, description="parent wrong, candidate right, over n"),
    MetricInfo("accuracy", True),
    MetricInfo("ece_equal_width", False, description="expected calibration error, equal-width bins"),
    MetricInfo("ece_equal_mass", False, description="expected calibration error, equal-mass bins"),
    MetricInfo("mce_equal_width", False, description="maximum calibration error, equal-width bins"),
    MetricInfo("mce_equal_mass", False, description="maximum calibration error, equal-mass bins"),
    MetricInfo("brier_loss", False, 0.0, 2.0, "multi-class Brier score, summed over classes"),
    MetricInfo("log_loss", False, 0.0, None, "negative log-likelihood (natural log)"),
    MetricInfo("speedup", True, 0.0, None, "candidate throughput / parent throughput, same batches"),
    MetricInfo("size_ratio", False, 0.0, None, "candidate size on disk / parent size on disk"),
    MetricInfo("throughput", True, 0.0, None, "rows per second"),
    # attribution alignment (sections register the same names; here so that a policy can name them)
    MetricInfo("top_k_jaccard", True, description="Jaccard of the two top-k feature sets by |attribution|"),
    MetricInfo("feature_agreement", True, description="|topk(a) & topk(b)| / k"),
    MetricInfo("rank_correlation", True, -1.0, 1.0, "Spearman correlation of the attributions"),
    MetricInfo("sign_agreement", True, description="share of the parent's top-k with the same sign"),
    # robustness
    MetricInfo("after_attack_accuracy", True, description="share of attacked examples still classified correctly"),
    MetricInfo("attack_success_rate", False,
               description="share of attacked examples whose label the attack flipped"),
    MetricInfo("mean_queries", True, 0.0, None, "mean model queries per attacked example"),
    MetricInfo("median_queries", True, 0.0, None, "median model queries per attacked example"),
    MetricInfo("words_changed", True, description="mean fraction of words changed by a successful attack"),
    MetricInfo("transfer_rate", False,
               description="share of adversarial texts found against one model that the other also misclassifies"),
]:
    register_metric(_info)


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
