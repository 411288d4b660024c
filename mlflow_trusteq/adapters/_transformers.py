"""Hugging Face transformers sequence classifiers -> :class:`~mlflow_trusteq.adapters.ProbaModel`.

torch and transformers are imported lazily, inside the functions that need them.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterator, Sequence
from typing import Any


from .._errors import ModelAdapterError, require
from ._base import BaseAdapter, TextBatchingMixin

logger = logging.getLogger(__name__)

__all__ = ["TransformersAdapter", "is_transformers_model", "is_transformers_pipeline"]

_TEXT_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def _torch() -> Any:
    return require("torch", "torch is needed for transformers models: pip install torch==2.13.0 (the CPU build), "
                            "then pip install 'mlflow-trusteq[transformers]'")


def is_transformers_model(obj: Any) -> bool:
    """True for a transformers ``PreTrainedModel`` (checked without importing transformers)."""
    return any(c.__name__ == "PreTrainedModel" and c.__module__.startswith("transformers")
               for c in type(obj).__mro__)


def is_transformers_pipeline(obj: Any) -> bool:
    """True for a transformers ``Pipeline`` (checked without importing transformers)."""
    return any(c.__name__ == "Pipeline" and c.__module__.startswith("transformers")
               for c in type(obj).__mro__)


def _param_bytes(model: Any) -> int:
    return int(sum(p.numel() * p.element_size() for p in model.parameters())
               + sum(b.numel() * b.element_size() for b in model.buffers()))


class TransformersAdapter(TextBatchingMixin, BaseAdapter):
    """A transformers sequence classifier and its tokenizer as a :class:`ProbaModel`.

    Records are single texts (one column) or text pairs (two columns, encoded as
    ``tokenizer(first, second)``). Prediction runs under ``torch.inference_mode()`` with the model
    in ``eval()`` mode. Inputs are tokenised without padding, **sorted by length and grouped by a
    budget of padded tokens** (:func:`~mlflow_trusteq.adapters._base.iter_token_budget_batches`),
    padded to the longest input of each batch, and the scores are written back in input order.
    Logits are soft-maxed in float64.

    Parameters
    ----------
    model : transformers.PreTrainedModel or transformers.Pipeline
        A ``*ForSequenceClassification`` model (single-label), or a text-classification
        pipeline (its ``model`` and ``tokenizer`` are used).
    tokenizer : transformers tokenizer, optional
        Required with a model; taken from the pipeline otherwise.
    labels : sequence of str, optional
        Defaults to ``config.id2label`` in index order.
    max_length : int
        Truncation length in tokens.
    batch_size : int
        Most inputs per forward pass.
    max_tokens_per_batch : int
        Most padded tokens (``rows x longest``) per forward pass.
    device : str
        torch device; the model is moved there if it is elsewhere.
    name : str, optional

    Notes
    -----
    ``size_bytes`` is the bytes of the parameters and buffers (about the size of the saved
    ``model.safetensors`` in float32).
    """

    input_kind = "text"
    output_kind = "logits"

    def __init__(self, model: Any, tokenizer: Any = None, *, labels: Sequence[Any] | None = None,
                 max_length: int = 128, batch_size: int = 64, max_tokens_per_batch: int = 8192,
                 device: str | None = "cpu", name: str | None = None) -> None:
        if is_transformers_pipeline(model):
            pipe = model
            tokenizer = tokenizer if tokenizer is not None else getattr(pipe, "tokenizer", None)
            model = pipe.model
            if device is None or device == "cpu":
                device = str(getattr(pipe, "device", "cpu"))
        if not is_transformers_model(model):
            raise ModelAdapterError(
                f"expected a transformers PreTrainedModel or Pipeline, got {type(model).__name__}")
        config = model.config
        name = name or getattr(config, "_name_or_path", "") or type(model).__name__
        if tokenizer is None:
            raise ModelAdapterError(
                f"transformers model {name!r} needs its tokenizer: pass "
                "tokenizer=AutoTokenizer.from_pretrained(...)")
        if not type(model).__name__.endswith("ForSequenceClassification"):
            raise ModelAdapterError(
                f"transformers model {name!r} is a {type(model).__name__}; trusteq needs a sequence "
                "classifier (*ForSequenceClassification) whose logits are class scores")
        if getattr(config, "problem_type", None) in ("multi_label_classification", "regression"):
            raise ModelAdapterError(
                f"transformers model {name!r} has problem_type={config.problem_type!r}; only single-label "
                "classification gives one probability vector per input")
        if int(config.num_labels) < 2:
            raise ModelAdapterError(f"transformers model {name!r} has num_labels={config.num_labels}; "
                                    "need >= 2")
        if labels is None:
            id2label = getattr(config, "id2label", None) or {}
            labels = [str(id2label.get(i, id2label.get(str(i), f"LABEL_{i}")))
                      for i in range(config.num_labels)]
        elif len(list(labels)) != int(config.num_labels):
            raise ModelAdapterError(
                f"labels={list(labels)} has {len(list(labels))} names but model {name!r} has "
                f"{config.num_labels} labels")
        for arg, value in (("max_length", max_length), ("max_tokens_per_batch", max_tokens_per_batch)):
            if int(value) < 1:
                raise ModelAdapterError(f"Expected `{arg}` >= 1, got {value}")
        torch = _torch()
        current = next(model.parameters()).device
        if device is not None and torch.device(device) != current:
            model.to(device)
        self.device = str(next(model.parameters()).device)
        model.eval()
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        self.max_tokens_per_batch = int(max_tokens_per_batch)
        accepted = set(inspect.signature(model.forward).parameters)
        self.input_names = tuple(k for k in _TEXT_INPUTS if k in accepted
                                 and k in getattr(tokenizer, "model_input_names", _TEXT_INPUTS))
        super().__init__(labels, name=name, size_bytes=_param_bytes(model), batch_size=batch_size)

    def _iter_scores(self, inputs: Any) -> Iterator[tuple[Any, Any]]:
        torch = _torch()
        with torch.inference_mode():
            for positions, arrays in self._token_batches(inputs):
                feed = {k: torch.from_numpy(v).to(self.device) for k, v in arrays.items()}
                logits = self.model(**feed).logits
                yield positions, logits.detach().to("cpu", torch.float64).numpy()

    def scoring_settings(self) -> dict[str, Any]:
        """The batch plan, the tokenizer's truncation, and torch's threads, dtype and device."""
        torch = _torch()
        param = next(self.model.parameters())
        return {**super().scoring_settings(), **self.tokenizer_settings(),
                "torch_version": str(torch.__version__), "torch_num_threads": int(torch.get_num_threads()),
                "torch_num_interop_threads": int(torch.get_num_interop_threads()),
                "torch_dtype": str(param.dtype).removeprefix("torch."), "device": self.device}
