"""Log an ONNX text classifier to MLflow with its tokenizer, so trusteq can load it back.

The writing side of the format that :func:`mlflow_trusteq.adapters.from_mlflow` reads (see
:mod:`mlflow_trusteq.adapters._pyfunc`): the tokenizer travels as MLflow *extra files* under
``extra_files/trusteq_tokenizer/``, and the labels in the ``MLmodel`` metadata and in the ONNX
``metadata_props`` (``trusteq.labels``).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._errors import ModelAdapterError
from ..adapters._onnx import LABELS_METADATA_KEY
from ..adapters._pyfunc import TOKENIZER_SUBDIR

__all__ = ["log_onnx_text_model"]


def log_onnx_text_model(onnx_path: str | os.PathLike[str], tokenizer: Any, *, name: str = "model",
                        labels: Sequence[str] | None = None, registered_model_name: str | None = None,
                        **kw: Any) -> Any:
    """Log an ONNX text classifier together with its tokenizer, so trusteq can load it back.

    Parameters
    ----------
    onnx_path : path
        The ``.onnx`` file (e.g. from ``export_onnx`` or ``quantize_int8`` in
        ``examples/trusteq_training.py``).
    tokenizer : transformers tokenizer
        Saved with ``save_pretrained`` into ``extra_files/trusteq_tokenizer/`` of the model.
    name : str
        The model's name in the run (``mlflow.onnx.log_model(name=...)``).
    labels : sequence of str, optional
        Class names in output order; default: the file's ``trusteq.labels`` metadata. Written both
        into the ONNX ``metadata_props`` and into the MLmodel ``metadata``.
    registered_model_name : str, optional
        Also register a new version of this registered model.
    **kw
        Passed to ``mlflow.onnx.log_model`` (``signature``, ``input_example``, ``metadata`` ...).

    Returns
    -------
    mlflow.models.model.ModelInfo

    Examples
    --------
    >>> info = log_onnx_text_model("int8.onnx", tok, registered_model_name="sentiment")  # doctest: +SKIP
    >>> as_proba_model(info.model_uri).predict_proba(["a fine film"])  # doctest: +SKIP
    """
    import mlflow

    path = _check_inputs(onnx_path, tokenizer)
    proto, labels = _load_with_labels(path, labels)
    metadata = dict(kw.pop("metadata", None) or {})
    metadata["trusteq"] = {"tokenizer": TOKENIZER_SUBDIR, "labels": labels, "task": "text-classification"}
    extra_files = list(kw.pop("extra_files", None) or [])
    if "pip_requirements" not in kw and "conda_env" not in kw:
        # the tokenizer is loaded with transformers, which requirement inference cannot see
        kw["extra_pip_requirements"] = [*(kw.get("extra_pip_requirements") or []), "transformers"]
    with tempfile.TemporaryDirectory() as tmp:
        tok_dir = Path(tmp) / Path(TOKENIZER_SUBDIR).name
        tokenizer.save_pretrained(str(tok_dir))
        return mlflow.onnx.log_model(proto, name=name, registered_model_name=registered_model_name,
                                     metadata=metadata, extra_files=[str(tok_dir), *extra_files], **kw)


def _check_inputs(onnx_path: str | os.PathLike[str], tokenizer: Any) -> Path:
    path = Path(onnx_path)
    if not path.is_file():
        raise ModelAdapterError(f"ONNX model file not found: {str(path)!r}")
    if tokenizer is None or not hasattr(tokenizer, "save_pretrained"):
        raise ModelAdapterError("log_onnx_text_model needs a transformers tokenizer, got "
                                f"{type(tokenizer).__name__}")
    return path


def _load_with_labels(path: Path, labels: Sequence[str] | None) -> tuple[Any, list[str]]:
    """The ONNX model and its labels: the given ones (written into its ``metadata_props``), else its metadata's."""
    import onnx

    proto = onnx.load(str(path))
    if labels is not None:
        names = [str(x) for x in labels]
        _set_metadata_prop(proto, LABELS_METADATA_KEY, json.dumps(names))
        return proto, names
    props = {p.key: p.value for p in proto.metadata_props}
    if LABELS_METADATA_KEY not in props:
        raise ModelAdapterError(
            f"{str(path)!r} carries no {LABELS_METADATA_KEY!r} metadata: pass labels=[...] in output order")
    return proto, [str(x) for x in json.loads(props[LABELS_METADATA_KEY])]


def _set_metadata_prop(proto: Any, key: str, value: str) -> None:
    for p in proto.metadata_props:
        if p.key == key:
            p.value = value
            return
    entry = proto.metadata_props.add()
    entry.key, entry.value = key, value
