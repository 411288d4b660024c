"""ONNX Runtime sessions -> :class:`~mlflow_trusteq.adapters.ProbaModel` (text and tabular).

onnxruntime is imported lazily. Labels travel inside the ONNX file as the metadata property
``trusteq.labels`` (a JSON list), written by ``export_onnx`` in ``examples/trusteq_training.py``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import InvalidInputError, ModelAdapterError, ModelOutputError, require
from ._base import BaseAdapter, TextBatchingMixin, normalise_tabular_records

logger = logging.getLogger(__name__)

__all__ = ["OnnxTextAdapter", "OnnxTabularAdapter", "LABELS_METADATA_KEY", "load_session", "is_onnx_session",
           "session_settings"]

#: Key of the ONNX ``metadata_props`` entry that holds the label names (a JSON list).
LABELS_METADATA_KEY = "trusteq.labels"

_TEXT_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_INT_TYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}
_FLOAT_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16}


def _ort() -> Any:
    return require("onnxruntime", "onnxruntime is needed for ONNX models: pip install 'mlflow-trusteq[onnx]'")


def is_onnx_session(obj: Any) -> bool:
    """True for an ``onnxruntime.InferenceSession`` (checked without importing onnxruntime)."""
    return any(c.__name__ == "InferenceSession" and c.__module__.startswith("onnxruntime")
               for c in type(obj).__mro__)


def load_session(session_or_path: Any, *, providers: Sequence[Any] | None = None) -> tuple[Any, str | None]:
    """An ``InferenceSession`` and the model file's path (``None`` if unknown)."""
    if is_onnx_session(session_or_path):
        return session_or_path, getattr(session_or_path, "_model_path", None)
    if isinstance(session_or_path, (str, os.PathLike)):
        path = Path(session_or_path)
        if not path.is_file():
            raise ModelAdapterError(f"ONNX model file not found: {str(path)!r}")
        ort = _ort()
        session = ort.InferenceSession(str(path), providers=list(providers or ["CPUExecutionProvider"]))
        return session, str(path)
    raise ModelAdapterError(
        "expected an onnxruntime.InferenceSession or a path to a .onnx file, got "
        f"{type(session_or_path).__name__}")


def session_settings(session: Any) -> dict[str, Any]:
    """The options of an ONNX Runtime session that change its numbers or its speed.

    ``graph_optimization_level`` (fusions change float rounding), intra- and inter-op threads
    (``0``: ONNX Runtime's default, one per physical core), the execution mode and the execution
    providers in the order they are tried.
    """
    out: dict[str, Any] = {"onnxruntime_version": getattr(_ort(), "__version__", None),
                           "execution_providers": list(session.get_providers())}
    try:
        opts = session.get_session_options()
    except Exception:  # a session-like object without options: record what there is
        logger.debug("session %r has no session options", session, exc_info=True)
        return out
    level = getattr(opts, "graph_optimization_level", None)
    mode = getattr(opts, "execution_mode", None)
    out.update({"graph_optimization_level": getattr(level, "name", None if level is None else str(level)),
                "intra_op_num_threads": getattr(opts, "intra_op_num_threads", None),
                "inter_op_num_threads": getattr(opts, "inter_op_num_threads", None),
                "execution_mode": getattr(mode, "name", None if mode is None else str(mode))})
    return out


def _file_size(path: str | None) -> int | None:
    if not path or not os.path.isfile(path):
        return None
    return os.path.getsize(path)


def _labels_from_metadata(session: Any) -> list[str] | None:
    meta = session.get_modelmeta().custom_metadata_map
    raw = meta.get(LABELS_METADATA_KEY)
    if raw is None:
        return None
    try:
        labels = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ModelAdapterError(f"ONNX metadata {LABELS_METADATA_KEY!r} is not a JSON list: {raw!r}") from exc
    if not isinstance(labels, list):
        raise ModelAdapterError(f"ONNX metadata {LABELS_METADATA_KEY!r} is not a JSON list: {raw!r}")
    return [str(x) for x in labels]


def _pick_output(session: Any, output_name: str | None, *, name: str) -> str:
    outputs = session.get_outputs()
    names = [o.name for o in outputs]
    if output_name is not None:
        if output_name not in names:
            raise ModelAdapterError(f"ONNX model {name!r} has no output {output_name!r}; outputs: {names}")
        return output_name
    # skl2onnx ZipMap output: seq(map(...)); else a float tensor of rank 2
    for o in outputs:
        if o.type.startswith("seq(map("):
            return o.name
    for preferred in ("probabilities", "output_probability", "probs", "logits"):
        if preferred in names:
            return preferred
    float_outputs = [o for o in outputs if o.type in _FLOAT_TYPES and len(o.shape or ()) == 2]
    if float_outputs:
        return float_outputs[0].name
    raise ModelAdapterError(
        f"ONNX model {name!r} has no probability-like output (a float tensor (n, k) or a ZipMap "
        f"seq(map)): outputs {[(o.name, o.type, o.shape) for o in outputs]}; pass output_name=")


def _kind_of_output(output_name: str) -> str:
    """What an output's name says it holds: ``"logits"``, ``"proba"``, or ``"auto"`` (decide from the values).

    Decided once per model from the graph, never per batch: a logits model whose scores happen to fall in
    [0, 1] for one batch (an attacked sentence, a short batch) must not be read differently from the rest.
    """
    lowered = output_name.lower()
    if "logit" in lowered:
        return "logits"
    if "prob" in lowered:
        return "proba"
    return "auto"


def _zipmap_to_array(rows: list[dict[Any, float]], *, name: str) -> tuple[np.ndarray, list[str]]:
    if not rows:
        return np.empty((0, 0)), []
    keys = list(rows[0].keys())
    try:
        arr = np.array([[r[k] for k in keys] for r in rows], dtype=np.float64)
    except KeyError as exc:
        raise ModelOutputError(f"ONNX model {name!r}: ZipMap rows have different keys ({exc})") from exc
    return arr, [str(k) for k in keys]


class OnnxTextAdapter(TextBatchingMixin, BaseAdapter):
    """An ONNX text classifier (e.g. an exported BERT) plus its tokenizer as a :class:`ProbaModel`.

    The session is fed exactly its declared inputs among ``input_ids``, ``attention_mask`` and
    ``token_type_ids`` (zeros when the tokenizer has none), in the declared integer type (int64
    for exported transformers). Batching is the same token-budget scheme as
    :class:`~mlflow_trusteq.adapters.TransformersAdapter` (shared code), so both
    models see identically padded batches. Output: the ``logits`` output (or the first float
    output of shape (n, k)); logits are detected and soft-maxed.

    Parameters
    ----------
    session_or_path : onnxruntime.InferenceSession or path
    tokenizer : transformers tokenizer
    labels : sequence of str, optional
        Default: the ``trusteq.labels`` ONNX metadata written by ``export_onnx`` (examples/trusteq_training.py).
    max_length, batch_size, max_tokens_per_batch
        As for the transformers adapter.
    output_name : str, optional
        Which output holds the class scores.
    providers : list, optional
        ONNX Runtime execution providers when a path is given (default CPU).
    name : str, optional
    size_bytes : int, optional
        Default: the file size of the ``.onnx`` file.
    """

    input_kind = "text"
    output_kind = "auto"

    def __init__(self, session_or_path: Any, tokenizer: Any, labels: Sequence[Any] | None = None, *,
                 max_length: int = 128, batch_size: int = 64, max_tokens_per_batch: int = 8192,
                 output_name: str | None = None, providers: Sequence[Any] | None = None,
                 name: str | None = None, size_bytes: int | None = None) -> None:
        session, path = load_session(session_or_path, providers=providers)
        name = name or (str(path) if path else "onnx-text-model")
        if tokenizer is None:
            raise ModelAdapterError(
                f"ONNX text model {name!r} needs its tokenizer: pass "
                "tokenizer=AutoTokenizer.from_pretrained(...) "
                "(or log it with mlflow_trusteq.integration.onnx_models.log_onnx_text_model so it travels "
                "with the model)")
        inputs = session.get_inputs()
        unknown = [i.name for i in inputs if i.name not in _TEXT_INPUTS]
        if unknown:
            raise ModelAdapterError(
                f"ONNX model {name!r} declares inputs {[i.name for i in inputs]}; a text model may only take "
                f"{list(_TEXT_INPUTS)} (unknown: {unknown}). A tabular model? use OnnxTabularAdapter")
        if "input_ids" not in [i.name for i in inputs]:
            raise ModelAdapterError(f"ONNX text model {name!r} has no `input_ids` input: "
                                    f"{[i.name for i in inputs]}")
        self._dtypes = {}
        for i in inputs:
            if i.type not in _INT_TYPES:
                raise ModelAdapterError(f"ONNX model {name!r}: input {i.name!r} has type {i.type}; "
                                        "expected int64/int32")
            self._dtypes[i.name] = _INT_TYPES[i.type]
        self.input_names = tuple(i.name for i in inputs)
        self.output_name = _pick_output(session, output_name, name=name)
        self.output_kind = _kind_of_output(self.output_name)
        if labels is None:
            labels = _labels_from_metadata(session)
            if labels is None:
                raise ModelAdapterError(
                    f"ONNX model {name!r} carries no {LABELS_METADATA_KEY!r} metadata; pass labels=[...] "
                    "in output column order (the examples' export_onnx writes them)")
        self.session = session
        self.path = path
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        self.max_tokens_per_batch = int(max_tokens_per_batch)
        size = size_bytes if size_bytes is not None else _file_size(path)
        super().__init__(labels, name=name, size_bytes=size, batch_size=batch_size)

    def _iter_scores(self, inputs: Any) -> Iterator[tuple[Any, Any]]:
        for positions, arrays in self._token_batches(inputs):
            feed = {k: arrays[k].astype(self._dtypes[k], copy=False) for k in self.input_names}
            out = self.session.run([self.output_name], feed)[0]
            yield positions, out

    def scoring_settings(self) -> dict[str, Any]:
        """The batch plan, the tokenizer's truncation and the ONNX Runtime session's options."""
        return {**super().scoring_settings(), **self.tokenizer_settings(), **session_settings(self.session)}


class OnnxTabularAdapter(BaseAdapter):
    """An ONNX model over numeric features (sklearn-onnx, an exported MLP...) as a :class:`ProbaModel`.

    Inputs: one float tensor input ``(n, d)`` fed with the records as a 2-D array (a DataFrame's
    columns in order), or several inputs, each fed the DataFrame column of the same name as
    ``(n, 1)``. Output: skl2onnx's ZipMap (a list of ``{class: probability}`` dicts; the
    classes become the labels when none are given) or a float tensor ``(n, k)`` of
    probabilities or logits (detected).

    Parameters
    ----------
    session_or_path : onnxruntime.InferenceSession or path
    labels : sequence of str, optional
        Default: the ``trusteq.labels`` metadata, else the ZipMap's class keys (found on the first
        prediction of a probe row of zeros).
    batch_size : int
    output_name : str, optional
    providers : list, optional
    name : str, optional
    size_bytes : int, optional
        Default: the file size.
    """

    input_kind = "tabular"
    output_kind = "auto"

    def __init__(self, session_or_path: Any, labels: Sequence[Any] | None = None, *, batch_size: int = 4096,
                 output_name: str | None = None, providers: Sequence[Any] | None = None,
                 name: str | None = None, size_bytes: int | None = None) -> None:
        session, path = load_session(session_or_path, providers=providers)
        name = name or (str(path) if path else "onnx-tabular-model")
        inputs = session.get_inputs()
        for i in inputs:
            if i.type not in _FLOAT_TYPES and i.type not in _INT_TYPES:
                raise ModelAdapterError(
                    f"ONNX model {name!r}: input {i.name!r} has type {i.type}; OnnxTabularAdapter feeds "
                    "numeric "
                    "tensors only (a text model? use OnnxTextAdapter with its tokenizer)")
        self._inputs = [(i.name, _FLOAT_TYPES.get(i.type) or _INT_TYPES[i.type], i.shape) for i in inputs]
        self.output_name = _pick_output(session, output_name, name=name)
        self.output_kind = _kind_of_output(self.output_name)
        out_type = next(o for o in session.get_outputs() if o.name == self.output_name).type
        self._zipmap = out_type.startswith("seq(")
        self.session = session
        self.path = path
        if labels is None:
            labels = _labels_from_metadata(session)
        if labels is None and self._zipmap and len(inputs) == 1 and isinstance(inputs[0].shape[-1], int):
            probe = {inputs[0].name: np.zeros((1, inputs[0].shape[-1]), dtype=self._inputs[0][1])}
            _, labels = _zipmap_to_array(session.run([self.output_name], probe)[0], name=name)
        if labels is None:
            raise ModelAdapterError(
                f"ONNX model {name!r} has no labels: pass labels=[...] in output column order, or write them "
                f"into the ONNX metadata_props as {LABELS_METADATA_KEY!r} (a JSON list)")
        size = size_bytes if size_bytes is not None else _file_size(path)
        super().__init__(labels, name=name, size_bytes=size, batch_size=batch_size)

    def _normalise(self, records: Any) -> Any:
        return normalise_tabular_records(records, name=self.name)

    def _feed(self, batch: Any) -> dict[str, np.ndarray]:
        import pandas as pd

        if len(self._inputs) == 1:
            input_name, dtype, _ = self._inputs[0]
            arr = batch.to_numpy() if isinstance(batch, pd.DataFrame) else np.asarray(batch)
            try:
                return {input_name: arr.astype(dtype, copy=False)}
            except (TypeError, ValueError) as exc:
                raise InvalidInputError(f"model {self.name!r} needs numeric features: {exc}") from exc
        if not isinstance(batch, pd.DataFrame):
            raise InvalidInputError(
                f"ONNX model {self.name!r} has {len(self._inputs)} inputs {[n for n, _, _ in self._inputs]}; "
                "pass a DataFrame with one column per input")
        missing = [n for n, _, _ in self._inputs if n not in batch.columns]
        if missing:
            raise InvalidInputError(f"ONNX model {self.name!r} needs columns {missing}; records have "
                                    f"{list(batch.columns)}")
        return {n: batch[n].to_numpy().astype(dtype).reshape(-1, 1) for n, dtype, _ in self._inputs}

    def scoring_settings(self) -> dict[str, Any]:
        """The batch plan and the ONNX Runtime session's options."""
        return {**super().scoring_settings(), **session_settings(self.session)}

    def _score_batch(self, batch: Any) -> np.ndarray:
        out = self.session.run([self.output_name], self._feed(batch))[0]
        if self._zipmap:
            arr, keys = _zipmap_to_array(out, name=self.name)
            if keys and sorted(keys) == sorted(self.labels) and keys != list(self.labels):
                arr = arr[:, [keys.index(lab) for lab in self.labels]]
            return arr
        return np.asarray(out)
