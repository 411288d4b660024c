"""One exception tree for the whole package.

Every error a user can cause derives from :class:`TrustEqError`; the input errors are also
``ValueError`` so that generic ``except ValueError`` handlers keep working.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = [
    "TrustEqError",
    "InvalidInputError",
    "LabelMismatchError",
    "ModelAdapterError",
    "PolicyError",
    "VerdictError",
    "MissingDependencyError",
    "require",
]


class TrustEqError(Exception):
    """Base class of every error raised by mlflow-trusteq."""


class InvalidInputError(TrustEqError, ValueError):
    """Data, probabilities or arguments that cannot be judged (NaN, wrong shape, missing column...)."""


class LabelMismatchError(InvalidInputError):
    """Parent and candidate predict different label sets."""


class ModelAdapterError(TrustEqError, TypeError):
    """A model that cannot be turned into ``predict_proba(records) -> (n, k)``."""


class PolicyError(TrustEqError, ValueError):
    """A policy file or dict that is malformed (unknown metric, unknown key, bad value)."""


class VerdictError(TrustEqError):
    """A verdict that is missing, unsigned, or does not verify."""


class MissingDependencyError(TrustEqError, ImportError):
    """An optional dependency (torch, transformers, onnxruntime, shap, a word list...) is missing."""


def require(module: str, message: str) -> ModuleType:
    """Import an optional dependency, or raise :class:`MissingDependencyError` with ``message``.

    ``message`` says what needs it and how to install it.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(message) from exc
