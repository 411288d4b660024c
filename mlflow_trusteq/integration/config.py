"""The evaluator's configuration is the package's one config object (see :mod:`mlflow_trusteq._config`)."""

from __future__ import annotations

from .._config import TrustEqConfig

__all__ = ["TrustEqConfig"]
