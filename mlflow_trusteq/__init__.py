"""mlflow-trusteq: is a compressed model trust-equivalent to its parent?

Importing this package is cheap: torch, transformers, onnxruntime and shap load only when used.
"""

from __future__ import annotations

from ._errors import (
    InvalidInputError,
    LabelMismatchError,
    MissingDependencyError,
    ModelAdapterError,
    PolicyError,
    TrustEqError,
    VerdictError,
)
from ._types import Estimate, MetricInfo, metric_info

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "Estimate",
    "MetricInfo",
    "metric_info",
    "TrustEqError",
    "InvalidInputError",
    "LabelMismatchError",
    "ModelAdapterError",
    "PolicyError",
    "VerdictError",
    "MissingDependencyError",
]
