"""Attribution-stage throughput: trusteq's paired LIME+SHAP vs raw forward and vs naive shap/lime.

One run on this machine with MiniLM-L6 (fine-tuned briefly on SST-2, cached under
benchmarks/.cache/) as the parent and its 3-layer truncation as the candidate:

- ours: ``measure_alignment`` (LIME + SHAP, noise floor on); rate = model evaluations requested by
  the explainers / wall time (deduplicated inputs are requested but scored once);
- (a) raw forward: the same adapters on exactly the inputs they were given, in one call each;
- (b) naive: ``shap.Explainer`` over a transformers pipeline (max_evals equal to ours) and
  ``lime``'s ``LimeTextExplainer().explain_instance`` with a plain predict function (the pipeline
  on the list), at equal numbers of model evaluations per example.

Writes benchmarks/results/explain.json and explain.md. Usage: ``python benchmarks/bench_explain.py``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
logger = logging.getLogger("bench_explain")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # _cache
sys.path.insert(0, str(HERE.parent))  # run from a fresh clone without installing
sys.path.insert(0, str(HERE.parent / "examples"))  # trusteq_training
N_EXAMPLES = int(os.environ.get("BENCH_EXPLAIN_N", 4))
LIME_SAMPLES, SHAP_EVALS = 500, 500


def _parent():
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from mlflow_trusteq.datasets import load_sst2
    from trusteq_training import fine_tune, minilm_path

    from _cache import cached_dir

    def build(out: Path) -> None:
        tok = AutoTokenizer.from_pretrained(str(minilm_path()))
        model = AutoModelForSequenceClassification.from_pretrained(
            str(minilm_path()), num_labels=2, id2label={0: "negative", 1: "positive"},
            label2id={"negative": 0, "positive": 1})
        train = load_sst2("train").iloc[:1600]
        torch.manual_seed(0)
        fine_tune(model, tok, list(train["sentence"]), list(train["label"]), epochs=1, lr=5e-5, seed=0, progress=True)
        model.save_pretrained(out)
        tok.save_pretrained(out)

    cache = cached_dir(HERE / ".cache" / "minilm-sst2", build)  # untracked; built on first use
    return AutoModelForSequenceClassification.from_pretrained(cache).eval(), AutoTokenizer.from_pretrained(cache)


class _Recorder:
    """Forwards to an adapter and keeps every input it was asked to score."""

    def __init__(self, inner):
        self.inner, self.labels, self.name, self.size_bytes = inner, inner.labels, inner.name, None
        self.seen: list = []

    def predict_proba(self, records):
        self.seen.extend(records.itertuples(index=False, name=None))
        return self.inner.predict_proba(records)


def main() -> dict:
    import pandas as pd
    import torch

    from mlflow_trusteq.adapters import as_proba_model
    from mlflow_trusteq.datasets import load_sst2
    from mlflow_trusteq.explain import AlignmentConfig, measure_alignment
    from mlflow_trusteq.explain._features import text_features
    from mlflow_trusteq.explain._shap import shap_text
    from trusteq_training import truncate_layers

    torch.set_num_threads(2)
    t0 = time.perf_counter()
    model, tok = _parent()
    small = truncate_layers(model, 3).eval()
    fit_s = time.perf_counter() - t0
    parent = _Recorder(as_proba_model(model, tokenizer=tok))
    candidate = _Recorder(as_proba_model(small, tokenizer=tok))
    dev = load_sst2("dev")
    rec = dev[["sentence"]].iloc[:200].reset_index(drop=True)
    pred = parent.inner.predict_proba(rec).argmax(1)
    # warm-up: shap's numba kernels compile once per process (~15 s), not part of any rate
    shap_text(text_features(["warm up the explainer now"]), lambda xs: np.zeros(len(xs)), max_evals=20)
    parent.seen.clear()

    cfg = AlignmentConfig(n_examples=N_EXAMPLES, lime_num_samples=LIME_SAMPLES, shap_max_evals=SHAP_EVALS,
                          progress=False, random_state=0)
    t0 = time.perf_counter()
    result = measure_alignment(parent, candidate, rec, parent_pred=pred, config=cfg)
    ours_s = time.perf_counter() - t0
    ev = result.n_evaluations
    requested = ev["parent_requested"] + ev["candidate_requested"]
    scored = len(parent.seen) + len(candidate.seen)

    t0 = time.perf_counter()
    for r in (parent, candidate):
        r.inner.predict_proba(pd.DataFrame(r.seen, columns=["sentence"]))
    raw_s = time.perf_counter() - t0

    # naive use, same examples, same models
    import shap
    from lime.lime_text import LimeTextExplainer
    from transformers import pipeline

    texts = [rec["sentence"].iloc[i] for i in result.settings["rows"]]
    naive = {}
    for who, m in (("parent", model), ("candidate", small)):
        pipe = pipeline("text-classification", model=m, tokenizer=tok, top_k=None, device=-1)
        calls = {"n": 0}

        def predict(xs, pipe=pipe, calls=calls):
            xs = list(xs)
            calls["n"] += len(xs)
            out = pipe(xs)
            return np.array([[d["score"] for d in sorted(o, key=lambda d: d["label"])] for o in out])

        t0 = time.perf_counter()
        for t in texts:
            LimeTextExplainer(random_state=0).explain_instance(t, predict, num_samples=LIME_SAMPLES, labels=(1,))
        naive[f"lime_{who}"] = (calls["n"], time.perf_counter() - t0)
        explainer = shap.Explainer(pipe)
        t0 = time.perf_counter()
        explainer(texts, max_evals=SHAP_EVALS, silent=True)
        # shap does not expose its call count: credit it with its full budget (favours the naive side)
        naive[f"shap_{who}"] = (SHAP_EVALS * len(texts), time.perf_counter() - t0)
    naive_evals = sum(n for n, _ in naive.values())
    naive_s = sum(s for _, s in naive.values())
    out = {
        "device": "2-core CPU", "model": "MiniLM-L6 fine-tuned on 1,600 SST-2 rows (parent), 3-layer truncation "
        "(candidate)", "n_examples": N_EXAMPLES, "lime_num_samples": LIME_SAMPLES, "shap_max_evals": SHAP_EVALS,
        "setup_s": fit_s, "ours_s": ours_s, "ours_requested_evals": requested, "ours_scored_evals": scored,
        "ours_evals_per_s": requested / ours_s, "ours_scored_per_s": scored / ours_s,
        "raw_forward_s": raw_s, "raw_forward_per_s": scored / raw_s,
        "ratio_vs_raw_forward": (scored / ours_s) / (scored / raw_s),
        "naive": {k: {"evals": n, "seconds": s} for k, (n, s) in naive.items()},
        "naive_evals_per_s": naive_evals / naive_s,
        "speedup_vs_naive": (requested / ours_s) / (naive_evals / naive_s),
        "alignment": {k: v.to_dict() for k, v in result.estimates().items()},
    }
    table = ["| stage | evaluations | seconds | evals/s |", "|---|---|---|---|",
             f"| trusteq LIME+SHAP (paired, noise floor) | {requested} requested / {scored} scored | {ours_s:.1f} | "
             f"{requested / ours_s:.1f} |",
             f"| (a) raw forward, same inputs | {scored} | {raw_s:.1f} | {scored / raw_s:.1f} |",
             f"| (b) naive shap.Explainer(pipeline) + LimeTextExplainer | {naive_evals} | {naive_s:.1f} | "
             f"{naive_evals / naive_s:.1f} |",
             "", f"attribution stage vs raw forward (scored rows/s): {out['ratio_vs_raw_forward']:.2f}",
             f"speed-up vs naive (evaluations/s): {out['speedup_vs_naive']:.1f}x"]
    md = "\n".join(table)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "explain.json").write_text(json.dumps(out, indent=2))
    (HERE / "results" / "explain.md").write_text(md + "\n")
    logger.info("\n%s", md)
    return out


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main()
