r"""Where an ONNX Runtime int8 candidate departs from its ONNX parent: a per-layer comparison of activations.

Turned on with ``onnx_layers=True`` (or a number of layers to list; off by default). Both models are
augmented with ONNX Runtime's quantization debugging utilities
(:func:`onnxruntime.quantization.qdq_loss_debug.modify_model_output_intermediate_tensors`: every
float tensor a node produces becomes a graph output), both are run on the same few inputs
(:func:`~onnxruntime.quantization.qdq_loss_debug.collect_activations`, graph optimisations off, so
tensors keep their names), and the tensors are matched **by name**. A dynamically quantized model
(``quantize_dynamic``: ``DynamicQuantizeLinear`` + ``MatMulInteger``) keeps the names of the float
tensors it does not replace (layer norms, additions, GELUs, softmaxes, and the float outputs of the
quantized MatMuls), so those are the layers compared; ``create_activation_matching`` pairs the
tensors of QDQ models only, so it is not used. For each matched tensor, over all inputs:

.. math::

    \mathrm{relative\ L2} = \frac{\lVert c - p \rVert_2}{\lVert p \rVert_2}, \qquad
    \mathrm{SQNR} = 20 \log_{10} \frac{\lVert p \rVert_2}{\lVert c - p \rVert_2}\ \mathrm{dB}

(SQNR by :func:`~onnxruntime.quantization.qdq_loss_debug.compute_signal_to_quantization_noice_ratio`),
over the entries finite in both (attention masks hold ``-inf``). Tensors of operators that only move
values (``Reshape``, ``Transpose``, ``Gather``...) repeat their input's error and are not listed. The
report lists the ``top_k`` tensors with the largest relative error, in graph order of the
parent among ties. The result is plain data kept in ``report.settings["onnx_layers"]``, shown in the
report's "Model update" section and logged as ``trusteq/onnx_layers.csv``.
"""

from __future__ import annotations

import logging
import math
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import InvalidInputError

__all__ = ["compare_layers", "LayerComparison", "DEFAULT_TOP_K", "DEFAULT_N_INPUTS", "QUANTIZED_OPS"]

logger = logging.getLogger(__name__)

DEFAULT_TOP_K = 10
#: how many rows of the data are run through both augmented models
DEFAULT_N_INPUTS = 8
#: operators that mark an ONNX Runtime int8 model (dynamic, QDQ or QOperator format)
QUANTIZED_OPS = frozenset({"DynamicQuantizeLinear", "MatMulInteger", "QuantizeLinear", "DequantizeLinear",
                           "QLinearMatMul", "QLinearConv", "DynamicQuantizeMatMul", "QGemm", "MatMulIntegerToFloat"})


#: operators that only move or relabel values (their output repeats their input's error): not listed
_LAYOUT_OPS = frozenset({"Reshape", "Transpose", "Squeeze", "Unsqueeze", "Identity", "Flatten", "Expand", "Concat",
                         "Split", "Slice", "Gather", "Shape", "Cast"})


@dataclass(frozen=True)
class LayerComparison:
    """The per-tensor errors (all matched tensors, sorted by relative L2, worst first) and what was run."""

    rows: list[dict[str, Any]]
    n_inputs: int
    n_parent_tensors: int
    candidate_quantized: bool
    top_k: int

    def to_dict(self) -> dict[str, Any]:
        return {"top": self.rows[: self.top_k], "n_compared": len(self.rows), "n_inputs": self.n_inputs,
                "n_parent_tensors": self.n_parent_tensors, "candidate_quantized": self.candidate_quantized,
                "matching": "by tensor name", "sorted_by": "relative_l2"}


def compare_layers(parent: Any, candidate: Any, records: Any, *, top_k: int = DEFAULT_TOP_K,
                   n_inputs: int = DEFAULT_N_INPUTS) -> LayerComparison:
    """Compare the intermediate activations of two ONNX adapters on the first ``n_inputs`` rows of ``records``.

    Raises
    ------
    InvalidInputError
        When either model is not an ONNX Runtime model read from a ``.onnx`` file, or no tensor of
        the parent's graph is found in the candidate's.
    """
    if top_k < 1 or n_inputs < 1:
        raise InvalidInputError(f"Expected top_k >= 1 and n_inputs >= 1, got {top_k}, {n_inputs}")
    paths = [_onnx_path(m, role) for m, role in ((parent, "parent"), (candidate, "candidate"))]
    feeds = list(_feeds(parent, records.iloc[:n_inputs]))
    with tempfile.TemporaryDirectory(prefix="trusteq-layers-") as tmp:
        acts = [_activations(p, Path(tmp) / f"{role}.onnx", feeds) for p, role in zip(paths, ("parent", "candidate"))]
    order = _node_outputs(paths[0])
    rows = _errors(acts[0], acts[1], order)
    if not rows:
        raise InvalidInputError("no intermediate tensor of the parent's graph has a same-named, same-shaped "
                                "tensor in the candidate's graph: the two graphs cannot be compared layer by layer")
    return LayerComparison(rows, len(records.iloc[:n_inputs]), len(acts[0]), _is_quantized(paths[1]), top_k)


def _onnx_path(model: Any, role: str) -> str:
    path = getattr(model, "path", None)
    if getattr(model, "session", None) is None or not path or not Path(str(path)).is_file():
        raise InvalidInputError(f"onnx_layers: the {role} {getattr(model, 'name', model)!r} is not an ONNX Runtime "
                                "model read from an .onnx file; the per-layer comparison needs two")
    return str(path)


def _feeds(model: Any, records: Any) -> Iterator[dict[str, np.ndarray]]:
    """One input feed per row, as the parent's adapter feeds its session (text: its tokenizer)."""
    session = model.session
    tokenizer = getattr(model, "tokenizer", None)
    for i in range(len(records)):
        row = records.iloc[i : i + 1]
        if tokenizer is not None:
            texts = [row.iloc[0, j] for j in range(row.shape[1])]
            enc = tokenizer(*texts, truncation=True, max_length=getattr(model, "max_length", 128),
                            return_tensors="np")
            dtypes = getattr(model, "_dtypes", {})
            feed = {}
            for inp in session.get_inputs():
                arr = enc.get(inp.name, np.zeros_like(enc["input_ids"]))
                feed[inp.name] = np.asarray(arr).astype(dtypes.get(inp.name, np.int64))
            yield feed
        else:
            yield {session.get_inputs()[0].name: row.to_numpy(dtype=np.float32)}


class _Reader:
    """A ``CalibrationDataReader`` over fixed feeds (``get_next`` -> feed or ``None``)."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self._it = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        return iter(self.get_next, None)


def _activations(path: str, augmented: Path, feeds: list[dict[str, np.ndarray]]) -> dict[str, list[np.ndarray]]:
    from onnxruntime.quantization.qdq_loss_debug import collect_activations, modify_model_output_intermediate_tensors

    modify_model_output_intermediate_tensors(path, str(augmented))
    return collect_activations(str(augmented), _Reader(feeds))  # type: ignore[arg-type]


def _node_outputs(path: str) -> dict[str, tuple[int, str]]:
    """Tensor name -> (position in the parent's graph, the op type that produces it)."""
    import onnx

    graph = onnx.load(path, load_external_data=False).graph
    return {out: (i, node.op_type) for i, node in enumerate(graph.node) for out in node.output}


def _is_quantized(path: str) -> bool:
    import onnx

    return any(n.op_type in QUANTIZED_OPS for n in onnx.load(path, load_external_data=False).graph.node)


def _errors(parent: dict[str, list[np.ndarray]], candidate: dict[str, list[np.ndarray]],
            order: dict[str, tuple[int, str]]) -> list[dict[str, Any]]:
    from onnxruntime.quantization.qdq_loss_debug import compute_signal_to_quantization_noice_ratio as sqnr

    rows: list[dict[str, Any]] = []
    for name, p_list in parent.items():
        c_list = candidate.get(name)
        if c_list is None or len(c_list) != len(p_list) or any(a.shape != b.shape for a, b in zip(p_list, c_list)):
            continue
        if order.get(name, (0, ""))[1] in _LAYOUT_OPS:
            continue  # the same values as the op's input, moved: listed once, at the op that computes them
        p = np.concatenate([a.ravel() for a in p_list]).astype(np.float64)
        c = np.concatenate([a.ravel() for a in c_list]).astype(np.float64)
        finite = np.isfinite(p) & np.isfinite(c)  # attention masks hold -inf: compared where both are finite
        if not finite.any():
            continue
        p, c = p[finite], c[finite]
        norm = float(np.linalg.norm(p))
        diff = float(np.linalg.norm(c - p))
        rel = diff / norm if norm > 0 else (0.0 if diff == 0 else math.inf)
        position, op = order.get(name, (len(order), ""))
        rows.append({"tensor": name, "op_type": op, "position": position, "relative_l2": rel,
                     "sqnr_db": float(sqnr([p], [c])), "numel": int(p.size)})
    rows.sort(key=lambda r: (-r["relative_l2"], r["position"]))
    return rows
