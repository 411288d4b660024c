"""Token-budget batching vs the naive way of scoring texts with a transformers classifier.

Naive: fixed batches of ``batch_size`` in input order, each padded to its longest input
(``tokenizer(batch, padding=True)``) -- what a hand-written loop does. trusteq: inputs sorted by
length, batches bounded by a budget of padded tokens, order restored
(:func:`mlflow_trusteq.adapters.iter_token_budget_batches`). Also: ONNX Runtime fp32 and int8 on
the same inputs through the same batching. Prints the ratios and writes
``benchmarks/results/bench_adapters.json`` and ``.md``.

Run: ``python benchmarks/bench_adapters.py [--model minilm|tiny] [--n 872] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))  # trusteq_training

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
logger = logging.getLogger("bench_adapters")


def naive_proba(model, tok, texts, batch_size, max_length):
    import torch
    from scipy.special import softmax

    out = []
    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            enc = tok(texts[i:i + batch_size], padding=True, truncation=True, max_length=max_length,
                      return_tensors="pt")
            out.append(model(**enc).logits.double().numpy())
    return softmax(np.vstack(out), axis=1)


def best_of(fn, repeats):
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=["minilm", "tiny"], default="minilm")
    ap.add_argument("--n", type=int, default=872)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--max-length", type=int, default=128)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    import torch
    from transformers import AutoModelForSequenceClassification

    from mlflow_trusteq.adapters import OnnxTextAdapter, TransformersAdapter
    from mlflow_trusteq.datasets import load_sst2
    from trusteq_training import export_onnx, minilm_path, quantize_int8, tiny_bert_classifier

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    texts = list(load_sst2("dev")["sentence"][:args.n])
    if args.model == "minilm":
        model, _ = AutoModelForSequenceClassification.from_pretrained(str(minilm_path()), num_labels=2), None
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(minilm_path()))
    else:
        model, tok = tiny_bert_classifier(labels=["negative", "positive"])
    model.eval()
    adapter = TransformersAdapter(model, tok, batch_size=args.batch_size, max_length=args.max_length)
    t_naive, p_naive = best_of(lambda: naive_proba(model, tok, texts, args.batch_size, args.max_length),
                               args.repeats)
    t_budget, p_budget = best_of(lambda: adapter.predict_proba(texts), args.repeats)
    results = {
        "model": args.model, "n": len(texts), "batch_size": args.batch_size, "max_length": args.max_length,
        "max_tokens_per_batch": adapter.max_tokens_per_batch, "repeats": args.repeats,
        "torch_threads": torch.get_num_threads(), "machine": platform.platform(),
        "naive_s": t_naive, "token_budget_s": t_budget, "speedup_token_budget_vs_naive": t_naive / t_budget,
        "max_abs_diff_vs_naive": float(np.abs(p_naive - p_budget).max()),
    }
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_onnx(model, tok, Path(tmp) / "m.onnx")
        int8 = quantize_int8(fp32, Path(tmp) / "m.int8.onnx")
        o32 = OnnxTextAdapter(str(fp32), tok, batch_size=args.batch_size)
        o8 = OnnxTextAdapter(str(int8), tok, batch_size=args.batch_size)
        t32, p32 = best_of(lambda: o32.predict_proba(texts), args.repeats)
        t8, p8 = best_of(lambda: o8.predict_proba(texts), args.repeats)
        results.update({
            "onnx_fp32_s": t32, "onnx_int8_s": t8, "speedup_onnx_fp32_vs_torch": t_budget / t32,
            "speedup_int8_vs_fp32": t32 / t8, "size_ratio_int8_vs_fp32": o8.size_bytes / o32.size_bytes,
            "max_abs_diff_onnx_fp32_vs_torch": float(np.abs(p32 - p_budget).max()),
            "label_agreement_int8_vs_fp32": float(np.mean(p32.argmax(1) == p8.argmax(1))),
        })
    out_dir = Path(__file__).parent / "results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "bench_adapters.json").write_text(json.dumps(results, indent=2))
    lines = ["| measure | value |", "|---|---|"] + [
        f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in results.items()]
    (out_dir / "bench_adapters.md").write_text("# bench_adapters\n\n" + "\n".join(lines) + "\n")
    for line in lines:
        logger.info(line)


if __name__ == "__main__":
    main()
