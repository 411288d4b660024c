"""Any model -> ``predict_proba(records) -> (n, k)`` probabilities in a known label order.

*Probabilities are the contract*: every model trusteq judges becomes a :class:`ProbaModel`.
:func:`as_proba_model` wraps what users have: a scikit-learn estimator, a transformers model
(with its tokenizer) or pipeline, an ONNX Runtime session or ``.onnx`` file, an MLflow model
(URI, local directory or loaded pyfunc), or a plain function. Logits are detected and
soft-maxed (:func:`to_probabilities`); the labels of two models are matched with
:func:`align_labels`, where a different label set is an error, never a silent reorder.

Importing this package does not import torch, transformers or onnxruntime.

Examples
--------
>>> from mlflow_trusteq.adapters import as_proba_model, align_labels  # doctest: +SKIP
>>> parent = as_proba_model("models:/sentiment/1")  # doctest: +SKIP
>>> candidate = as_proba_model("models:/sentiment@int8")  # doctest: +SKIP
>>> perm = align_labels(parent.labels, candidate.labels)  # doctest: +SKIP
>>> P = parent.predict_proba(df[["sentence"]])  # doctest: +SKIP
>>> Q = candidate.predict_proba(df[["sentence"]])[:, perm]  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from .._errors import ModelAdapterError
from ._base import (
    BaseAdapter,
    ProbaModel,
    iter_token_budget_batches,
    normalise_text_records,
    plan_token_batches,
    softmax,
    to_probabilities,
)
from ._callable import CallableAdapter
from ._plan import BatchPlan
from .labels import align_labels, encode_targets
from ._onnx import LABELS_METADATA_KEY, OnnxTabularAdapter, OnnxTextAdapter, is_onnx_session
from ._pyfunc import PyfuncOutputAdapter, from_mlflow, is_pyfunc_model
from ._sklearn import SklearnAdapter, is_sklearn_estimator
from ._transformers import TransformersAdapter, is_transformers_model, is_transformers_pipeline

__all__ = [
    "ProbaModel",
    "as_proba_model",
    "BatchPlan",
    "BaseAdapter",
    "SklearnAdapter",
    "TransformersAdapter",
    "OnnxTextAdapter",
    "OnnxTabularAdapter",
    "PyfuncOutputAdapter",
    "CallableAdapter",
    "from_mlflow",
    "align_labels",
    "encode_targets",
    "to_probabilities",
    "softmax",
    "normalise_text_records",
    "plan_token_batches",
    "iter_token_budget_batches",
    "LABELS_METADATA_KEY",
]

_SUPPORTED = (
    "a ProbaModel (has predict_proba and labels), an MLflow model URI (models:/name/version, "
    "models:/name@alias, runs:/...) or local MLflow model directory, a .onnx file, a loaded "
    "mlflow.pyfunc.PyFuncModel, a fitted scikit-learn classifier or Pipeline, a transformers "
    "PreTrainedModel (with tokenizer=) or text-classification Pipeline, an onnxruntime.InferenceSession, "
    "or a callable records -> scores (with labels=)"
)


def _is_proba_model(obj: Any) -> bool:
    return (callable(getattr(obj, "predict_proba", None)) and hasattr(obj, "labels")
            and hasattr(obj, "name") and not is_sklearn_estimator(obj))


def as_proba_model(obj: Any, *, tokenizer: Any = None, labels: Sequence[Any] | None = None,
                   name: str | None = None, **kw: Any) -> ProbaModel:
    """Wrap any supported model as a :class:`ProbaModel`.

    Parameters
    ----------
    obj
        One of: a :class:`ProbaModel` (returned as is); a ``str`` / ``Path`` (MLflow model URI,
        local MLflow model directory, or ``.onnx`` file); an ``mlflow.pyfunc.PyFuncModel``; a
        fitted scikit-learn classifier or Pipeline; a transformers ``PreTrainedModel`` (needs
        ``tokenizer``) or ``Pipeline``; an ``onnxruntime.InferenceSession`` (text with
        ``tokenizer``, tabular without); a callable ``records -> scores`` (needs ``labels``).
    tokenizer : transformers tokenizer, optional
        For transformers models and ONNX text models.
    labels : sequence of str, optional
        Class names in output order; overrides what the model says (same number of classes).
    name : str, optional
        Name used in messages and reports.
    **kw
        Passed to the adapter: ``batch_size``, ``max_length``, ``max_tokens_per_batch``,
        ``device``, ``input_kind``, ``kind``...

    Raises
    ------
    ModelAdapterError
        For an unsupported object (the message lists what is supported), a missing tokenizer
        or labels, or a model that cannot give class probabilities.
    """
    if isinstance(obj, BaseAdapter) or (_is_proba_model(obj) and not is_transformers_pipeline(obj)):
        if labels is not None and tuple(str(x) for x in labels) != tuple(obj.labels):
            raise ModelAdapterError(
                f"labels={list(labels)} given for a ProbaModel that already has labels {list(obj.labels)}")
        return obj
    if isinstance(obj, (str, os.PathLike)):
        return from_mlflow(obj, tokenizer=tokenizer, labels=labels, name=name, **kw)
    if is_pyfunc_model(obj):
        return from_mlflow(obj, tokenizer=tokenizer, labels=labels, name=name, **kw)
    if is_transformers_pipeline(obj) or is_transformers_model(obj):
        return TransformersAdapter(obj, tokenizer, labels=labels, name=name, **kw)
    if is_onnx_session(obj):
        if tokenizer is not None:
            return OnnxTextAdapter(obj, tokenizer, labels, name=name, **kw)
        return OnnxTabularAdapter(obj, labels, name=name, **kw)
    if is_sklearn_estimator(obj):
        return SklearnAdapter(obj, labels=labels, name=name, **kw)
    if callable(obj):
        if labels is None:
            raise ModelAdapterError(
                f"a callable model ({getattr(obj, '__qualname__', type(obj).__name__)}) needs labels=[...] "
                "naming its output columns")
        return CallableAdapter(obj, labels, name=name, **kw)
    raise ModelAdapterError(f"cannot use a {type(obj).__module__}.{type(obj).__qualname__} as a model; "
                            f"supported: {_SUPPORTED}")
