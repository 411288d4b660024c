"""mlflow-trusteq: is a compressed model trust-equivalent to its parent?

The public API:

- :func:`compare` (parent, candidate, data -> :class:`TrustReport` of :class:`Estimate`), configured by
  :class:`TrustEqConfig` (with :class:`AlignmentConfig` and :class:`RobustnessConfig` for the
  optional sections);
- :class:`Policy` judges a report into a :class:`Verdict`;
- :func:`compare_candidates` (parent, several candidates, data -> :class:`CandidateComparison`):
  each candidate measured and judged against one parent scored once, the Pareto fronts marked;
- :func:`as_proba_model` turns a model into the ``predict_proba`` adapter ``compare`` scores;
- the error tree, rooted at :class:`TrustEqError`.

Sub-facades: :mod:`mlflow_trusteq.metrics` (the metric functions), :mod:`mlflow_trusteq.report`
(displays, HTML), :mod:`mlflow_trusteq.integration` (MLflow logging, registry, evaluator).

Importing this package is cheap (numpy, no more): torch, transformers, onnxruntime and shap
load only when used, and :func:`as_proba_model` and the section configs on first access.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._config import TrustEqConfig
from ._types import Estimate
from ._errors import (
    InvalidInputError,
    LabelMismatchError,
    MissingDependencyError,
    ModelAdapterError,
    ModelOutputError,
    PolicyError,
    TrustEqError,
    VerdictError,
)

# eager, so that the name ``compare`` is the function even after ``import mlflow_trusteq.compare``
from .compare import TrustReport, compare  # numpy only; pandas loads when compare() runs
from .policy import Policy, Verdict
from .candidates import CandidateComparison, compare_candidates

if TYPE_CHECKING:
    from .adapters import as_proba_model
    from .attack import RobustnessConfig
    from .explain import AlignmentConfig

from ._version import __version__

__all__ = [
    "__version__",
    "compare",
    "compare_candidates",
    "CandidateComparison",
    "TrustReport",
    "Estimate",
    "TrustEqConfig",
    "AlignmentConfig",
    "RobustnessConfig",
    "Policy",
    "Verdict",
    "as_proba_model",
    "TrustEqError",
    "InvalidInputError",
    "LabelMismatchError",
    "ModelAdapterError",
    "ModelOutputError",
    "PolicyError",
    "VerdictError",
    "MissingDependencyError",
]

#: public name -> the module that defines it (imported on first access)
_LAZY = {
    "as_proba_model": "adapters",
    "AlignmentConfig": "explain",
    "RobustnessConfig": "attack",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mlflow_trusteq' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
