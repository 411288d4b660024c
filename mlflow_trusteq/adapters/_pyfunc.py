"""MLflow models (URIs, local model directories, loaded pyfunc models) -> :class:`ProbaModel`.

MLflow's generic pyfunc ``predict`` is not enough to judge trust-equivalence: a transformers
pyfunc returns only the top label and its score, an ONNX pyfunc returns a dict of raw output
tensors without label names. So this module reads the model's ``MLmodel`` flavours and
**unwraps the raw model**:

============  ==============================================================================
flavour       what is loaded
============  ==============================================================================
sklearn       ``mlflow.sklearn.load_model`` -> :class:`SklearnAdapter`
transformers  ``mlflow.transformers.load_model(..., return_type="components")`` ->
              :class:`TransformersAdapter`
onnx          an ``onnxruntime.InferenceSession`` over the model's ``.onnx`` file ->
              :class:`OnnxTextAdapter` when a tokenizer travels with the model (see below),
              else :class:`OnnxTabularAdapter`
other         the pyfunc's ``predict``, only if it returns numeric ``(n, k)`` scores with
              label-named columns; otherwise :class:`ModelAdapterError`
============  ==============================================================================

How an ONNX text model carries its tokenizer
--------------------------------------------
:func:`mlflow_trusteq.integration.onnx_models.log_onnx_text_model` logs the ONNX graph with
``mlflow.onnx.log_model`` and stores the
tokenizer (``save_pretrained`` files) as MLflow *extra files*, i.e. in the directory
``extra_files/trusteq_tokenizer/`` inside the logged model. The ``MLmodel`` file's ``metadata``
says where it is and what the labels are::

    metadata:
      trusteq:
        tokenizer: extra_files/trusteq_tokenizer
        labels: [negative, positive]
        task: text-classification

The labels are also written into the ONNX file's ``metadata_props`` (``trusteq.labels``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import ModelAdapterError, ModelOutputError
from ._base import BaseAdapter, ProbaModel, dir_size_bytes, normalise_tabular_records
from ._onnx import OnnxTabularAdapter, OnnxTextAdapter
from ._sklearn import SklearnAdapter
from ._transformers import TransformersAdapter

logger = logging.getLogger(__name__)

__all__ = ["from_mlflow", "PyfuncOutputAdapter", "is_pyfunc_model", "TOKENIZER_SUBDIR"]

#: Where ``integration.onnx_models.log_onnx_text_model`` puts the tokenizer inside the logged model.
TOKENIZER_SUBDIR = "extra_files/trusteq_tokenizer"
_TEXT_INPUTS = {"input_ids", "attention_mask", "token_type_ids"}


def is_pyfunc_model(obj: Any) -> bool:
    """True for a loaded ``mlflow.pyfunc.PyFuncModel`` (checked by class name and module)."""
    return any(c.__name__ == "PyFuncModel" and c.__module__.startswith("mlflow") for c in type(obj).__mro__)


# --------------------------------------------------------------------------------------------
# loading


def _local_model_dir(uri: str | os.PathLike[str]) -> Path:
    s = os.fspath(uri)
    p = Path(s)
    if p.exists():
        if p.is_dir() and (p / "MLmodel").is_file():
            return p
        raise ModelAdapterError(f"{s!r} is neither an MLflow model directory (no MLmodel file) nor a "
                                ".onnx file")
    if ":" not in s:
        raise ModelAdapterError(f"model {s!r} not found: not a local path and not an MLflow model URI "
                                "(models:/name/version, models:/name@alias, runs:/<run_id>/<path>)")
    import mlflow

    try:
        local = mlflow.artifacts.download_artifacts(artifact_uri=s)
    except Exception as exc:  # noqa: BLE001 - MLflow raises many types; say what failed
        raise ModelAdapterError(f"could not download MLflow model {s!r}: {exc}") from exc
    d = Path(local)
    if not (d / "MLmodel").is_file():
        raise ModelAdapterError(f"{s!r} is not an MLflow model (no MLmodel file in {str(d)!r})")
    return d


#: how :attr:`ProbaModel.size_bytes` was measured for a model that comes from MLflow (``compare`` reads it)
SIZE_KIND = "mlflow_model_folder"
#: written into a model folder by MLflow itself when it loads ``models:/name/version``: not the model's
_MLFLOW_META_FILES = frozenset({"registered_model_meta"})


def mlflow_model_bytes(model_dir: str | os.PathLike[str]) -> int:
    """The size of an MLflow model: the bytes of the files of its folder (MLflow's own metadata aside)."""
    root = Path(model_dir)
    return sum(f.stat().st_size for f in root.rglob("*")
               if f.is_file() and f.relative_to(root).as_posix() not in _MLFLOW_META_FILES)


def _pyfunc_model_bytes(model: Any) -> int | None:
    """:func:`mlflow_model_bytes` of a loaded pyfunc model, read from its logged model's artifacts."""
    from mlflow import MlflowClient
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    meta = model.metadata
    model_id = getattr(model, "model_id", None) or getattr(meta, "model_id", None)
    try:
        if model_id:
            uri = MlflowClient().get_logged_model(model_id).artifact_location
        elif getattr(meta, "run_id", None) and getattr(meta, "artifact_path", None):
            from mlflow.store.artifact.runs_artifact_repo import RunsArtifactRepository

            uri = RunsArtifactRepository.get_underlying_uri(f"runs:/{meta.run_id}/{meta.artifact_path}")
        else:
            return None
        repo = get_artifact_repository(uri)

        def total(path: str | None) -> int:
            out = 0
            for info in repo.list_artifacts(path):
                if info.is_dir:
                    out += total(info.path)
                elif info.path.rsplit("/", 1)[-1] not in _MLFLOW_META_FILES or "/" in info.path:
                    out += int(info.file_size or 0)
            return out

        return total(None) or None
    except Exception:  # noqa: BLE001 - a store without the logged model: the size is then unknown
        logger.debug("cannot size the pyfunc model's folder", exc_info=True)
        return None


def _trusteq_meta(model_meta: Any) -> dict[str, Any]:
    meta = getattr(model_meta, "metadata", None) or {}
    value = meta.get("trusteq") or {}
    return value if isinstance(value, dict) else {}


def _onnx_adapter(session_or_path: Any, model_dir: Path | None, trusteq_meta: dict[str, Any], *,
                  tokenizer: Any, labels: Sequence[Any] | None, name: str, size_bytes: int | None,
                  kw: dict[str, Any]) -> ProbaModel:
    from ._onnx import load_session

    session, _ = load_session(session_or_path)
    labels = labels if labels is not None else trusteq_meta.get("labels")
    is_text = any(i.name in _TEXT_INPUTS for i in session.get_inputs())
    if tokenizer is None and trusteq_meta.get("tokenizer") and model_dir is not None:
        tok_dir = model_dir / trusteq_meta["tokenizer"]
        if not tok_dir.is_dir():
            raise ModelAdapterError(f"model {name!r} says its tokenizer is in {str(tok_dir)!r}, which "
                                    "does not exist")
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(tok_dir))
    if tokenizer is not None:
        return OnnxTextAdapter(session, tokenizer, labels, name=name, size_bytes=size_bytes, **kw)
    if is_text:
        raise ModelAdapterError(
            f"ONNX model {name!r} takes token ids ({[i.name for i in session.get_inputs()]}) but no "
            "tokenizer "
            "travels with it: pass tokenizer=..., or log it with "
            "mlflow_trusteq.integration.onnx_models.log_onnx_text_model(onnx_path, tokenizer, ...)")
    return OnnxTabularAdapter(session, labels, name=name, size_bytes=size_bytes, **kw)


def _from_model_dir(model_dir: Path, *, tokenizer: Any, labels: Sequence[Any] | None, name: str,
                    kw: dict[str, Any]) -> ProbaModel:
    from mlflow.models import Model

    model_meta = Model.load(str(model_dir))
    flavors = model_meta.flavors
    size = mlflow_model_bytes(model_dir)
    if "sklearn" in flavors:
        import mlflow.sklearn

        estimator = mlflow.sklearn.load_model(str(model_dir))
        adapter: Any = SklearnAdapter(estimator, labels=labels, name=name, **kw)
    elif "transformers" in flavors:
        import mlflow.transformers

        components = mlflow.transformers.load_model(str(model_dir), return_type="components")
        adapter = TransformersAdapter(components["model"], tokenizer or components.get("tokenizer"),
                                      labels=labels, name=name, **kw)
    elif "onnx" in flavors:
        onnx_file = model_dir / flavors["onnx"]["data"]
        adapter = _onnx_adapter(str(onnx_file), model_dir, _trusteq_meta(model_meta), tokenizer=tokenizer,
                                labels=labels, name=name, size_bytes=size, kw=kw)
    elif "python_function" in flavors:
        import mlflow.pyfunc

        adapter = PyfuncOutputAdapter(mlflow.pyfunc.load_model(str(model_dir)), labels=labels, name=name,
                                      size_bytes=size, **kw)
    else:
        raise ModelAdapterError(f"MLflow model {name!r} has flavours {sorted(flavors)} and no "
                                "python_function "
                                "flavour; trusteq reads sklearn, transformers, onnx and pyfunc models")
    adapter.size_bytes = size
    adapter.size_kind = SIZE_KIND
    return adapter


def from_mlflow(model: Any, *, tokenizer: Any = None, labels: Sequence[Any] | None = None,
                name: str | None = None, **kw: Any) -> ProbaModel:
    """An MLflow model as a :class:`ProbaModel`, unwrapping the flavour's raw model.

    Parameters
    ----------
    model : str, path or mlflow.pyfunc.PyFuncModel
        ``models:/name/version``, ``models:/name@alias``, ``runs:/<run_id>/<path>``, any artifact
        URI MLflow can download, a local MLflow model directory, or a loaded pyfunc model.
    tokenizer : optional
        Overrides the tokenizer of a transformers model or supplies one for an ONNX text model.
    labels : sequence of str, optional
        Overrides the label names (same number, output order).
    name : str, optional
        Default: the URI (or the pyfunc's model URI / class name).
    **kw
        Passed to the adapter (``batch_size``, ``max_length``, ``max_tokens_per_batch``...).

    Returns
    -------
    ProbaModel
        ``size_bytes`` is the bytes of the files of the model's MLflow folder (``registered_model_meta``,
        which MLflow writes there itself, aside), whether the model is named by a URI or loaded, and
        ``size_kind`` is ``"mlflow_model_folder"``.

    Raises
    ------
    ModelAdapterError
        When the model cannot give class probabilities (see the module docstring).
    """
    if is_pyfunc_model(model):
        adapter = _from_pyfunc_model(model, tokenizer=tokenizer, labels=labels, name=name, kw=kw)
        # the same rule as for a URI: the bytes of the model's MLflow folder, whatever the flavour
        size = _pyfunc_model_bytes(model)
        if size is not None:
            adapter.size_bytes, adapter.size_kind = size, SIZE_KIND  # type: ignore[attr-defined]
        return adapter
    if not isinstance(model, (str, os.PathLike)):
        raise ModelAdapterError("expected an MLflow model URI, a path or a PyFuncModel, got "
                                f"{type(model).__name__}")
    s = os.fspath(model)
    name = name or s
    if s.endswith(".onnx") and Path(s).is_file():
        return _onnx_adapter(s, None, {}, tokenizer=tokenizer, labels=labels, name=name,
                             size_bytes=Path(s).stat().st_size, kw=kw)
    return _from_model_dir(_local_model_dir(s), tokenizer=tokenizer, labels=labels, name=name, kw=kw)


def _from_pyfunc_model(model: Any, *, tokenizer: Any, labels: Sequence[Any] | None, name: str | None,
                       kw: dict[str, Any]) -> ProbaModel:
    meta = model.metadata
    flavors = meta.flavors
    name = name or getattr(meta, "model_uri", None) or getattr(meta, "artifact_path", None) or "pyfunc-model"
    name = str(name)
    raw = None
    if any(f in flavors for f in ("sklearn", "transformers", "onnx")):
        try:
            raw = model.get_raw_model()
        except NotImplementedError:
            raw = None
    if raw is not None and "sklearn" in flavors:
        return SklearnAdapter(raw, labels=labels, name=name, **kw)
    if raw is not None and "transformers" in flavors:
        return TransformersAdapter(raw, tokenizer, labels=labels, name=name, **kw)
    if raw is not None and "onnx" in flavors:
        model_path = getattr(raw, "_model_path", None)
        model_dir = Path(model_path).parent if model_path else None
        size = dir_size_bytes(model_dir) if model_dir is not None and model_dir.is_dir() else None
        return _onnx_adapter(raw, model_dir, _trusteq_meta(meta), tokenizer=tokenizer, labels=labels,
                             name=name, size_bytes=size, kw=kw)
    return PyfuncOutputAdapter(model, labels=labels, name=name, **kw)


# --------------------------------------------------------------------------------------------
# a pyfunc of another flavour: only numeric (n, k) output with label columns will do


_NOT_ENOUGH = (
    "MLflow pyfunc output is not enough to judge trust-equivalence: trusteq needs one probability (or "
    "logit) per class and the class names, but a pyfunc's predict often returns only the top label "
    "(transformers pipelines return label + score) or unnamed raw tensors (ONNX). Log the model with its "
    "own flavour (mlflow.sklearn / mlflow.transformers / mlflow.onnx; for ONNX text models "
    "mlflow_trusteq.integration.onnx_models.log_onnx_text_model), or make the pyfunc's predict return a DataFrame with "
    "one numeric column per class named by the class, and pass labels=[...]."
)


def _signature_labels(model: Any) -> list[str] | None:
    sig = getattr(model.metadata, "signature", None)
    outputs = getattr(sig, "outputs", None) if sig is not None else None
    if outputs is None or not getattr(outputs, "has_input_names", lambda: False)():
        return None
    try:
        cols = outputs.inputs
    except AttributeError:  # pragma: no cover - mlflow internals
        return None
    names = [c.name for c in cols]
    numeric = all(str(getattr(c, "type", "")).lower().split(".")[-1] in ("double", "float", "integer", "long")
                  for c in cols)
    return names if numeric and len(names) >= 2 else None


class PyfuncOutputAdapter(BaseAdapter):
    """A pyfunc model whose ``predict`` already returns numeric class scores ``(n, k)``.

    Labels are ``labels=`` or the signature's numeric output column names. Each prediction
    batch must be a DataFrame whose columns are exactly the labels (reordered by name) or a
    numeric 2-D array of ``k`` columns; anything else raises :class:`ModelAdapterError` with the
    explanation of why pyfunc output is not enough.
    """

    input_kind = "tabular"
    output_kind = "auto"

    def __init__(self, model: Any, *, labels: Sequence[Any] | None = None, name: str | None = None,
                 size_bytes: int | None = None, batch_size: int = 1024) -> None:
        name = name or "pyfunc-model"
        flavors = sorted(model.metadata.flavors)
        if labels is None:
            labels = _signature_labels(model)
        if labels is None:
            raise ModelAdapterError(
                f"model {name!r} (flavours {flavors}) can only be read through its pyfunc predict, and its "
                f"signature declares no numeric per-class output columns. {_NOT_ENOUGH}")
        self.model = model
        super().__init__(labels, name=name, size_bytes=size_bytes, batch_size=batch_size)

    def _normalise(self, records: Any) -> Any:
        import pandas as pd

        if isinstance(records, (list, tuple)) and records and isinstance(records[0], (str, tuple)):
            records = pd.DataFrame(records)
        return normalise_tabular_records(records, name=self.name)

    def _score_batch(self, batch: Any) -> np.ndarray:
        import pandas as pd

        out = self.model.predict(batch)
        if isinstance(out, pd.DataFrame):
            cols = [str(c) for c in out.columns]
            if sorted(cols) != sorted(self.labels):
                raise ModelOutputError(
                    f"pyfunc model {self.name!r} returned columns {cols}, not the labels "
                    f"{list(self.labels)}. "
                    + _NOT_ENOUGH)
            out = out.set_axis(cols, axis=1)[list(self.labels)]
            if not all(pd.api.types.is_numeric_dtype(out[c]) for c in out.columns):
                raise ModelOutputError(
                    f"pyfunc model {self.name!r} returned non-numeric columns. " + _NOT_ENOUGH)
            return out.to_numpy(dtype=np.float64)
        arr = np.asarray(out) if not isinstance(out, dict) else None
        if arr is None or arr.dtype == object or not np.issubdtype(arr.dtype, np.number) or arr.ndim != 2:
            desc = f"a dict with keys {sorted(out)}" if isinstance(out, dict) else (
                f"{type(out).__name__} of shape {getattr(arr, 'shape', '?')} and dtype "
                f"{getattr(arr, 'dtype', '?')}")
            raise ModelOutputError(f"pyfunc model {self.name!r} returned {desc}, not numeric (n, k) scores. "
                                    + _NOT_ENOUGH)
        if arr.shape[1] != len(self.labels):
            raise ModelOutputError(
                f"pyfunc model {self.name!r} returned {arr.shape[1]} columns for {len(self.labels)} labels")
        return arr
