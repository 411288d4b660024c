"""One exception tree for the whole package.

Every error a user can cause derives from :class:`TrustEqError`; the input errors are also
``ValueError`` so that generic ``except ValueError`` handlers keep working::

    Exception
    └── TrustEqError
        ├── InvalidInputError (+ ValueError)     data, probabilities or arguments that cannot be judged
        │   ├── LabelMismatchError               parent and candidate predict different label sets
        │   └── ModelOutputError (+ ModelAdapterError)
        │                                        a model returned output that is not class scores
        ├── ModelAdapterError (+ TypeError)      a model that cannot be wrapped as predict_proba
        │   └── ModelOutputError                 (the same class: bad output at prediction time)
        ├── PolicyError (+ ValueError)           a malformed policy file or dict
        ├── VerdictError                         a verdict missing, unsigned or not verifying
        └── MissingDependencyError (+ ImportError)
                                                 an optional dependency is not installed

:class:`ModelOutputError` is the one type for a bad model output, whichever adapter or stage finds
it (a non-numeric or mis-shaped batch, NaN scores, columns that are not the model's labels). It is
both an input error (the model gave data that cannot be judged) and an adapter error (the model
does not keep the ``predict_proba`` contract), so handlers written for either catch it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = [
    "TrustEqError",
    "InvalidInputError",
    "LabelMismatchError",
    "ModelAdapterError",
    "ModelOutputError",
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


class ModelOutputError(InvalidInputError, ModelAdapterError):
    """A model returned output that cannot be read as class scores (non-numeric, wrong shape, NaN...)."""


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
