"""The robustness attacks on real data, and batched vs one-text-per-call queries.

1. **Real data.** A parent fine-tuned on the shipped SST-2 train sample (tiny BERT by default,
   ``--parent minilm`` for MiniLM-L6) and its candidate, the same model exported to ONNX and
   quantized to int8 with ONNX Runtime (``recipes.export_onnx`` / ``recipes.quantize_int8``).
   Both recipes (``word``: WordNet synonym swap; ``char``: DeepWordBug edits) on ``--n-examples``
   SST-2 dev examples that both classify correctly, budget ``--budget`` queries per example and
   model. Prints after-attack accuracy, queries and transfer rate of both.
2. **Batching.** The same attacks on ``--n-speed`` examples against the parent, once with the
   batched queries (all candidates of one word position in one ``predict_proba`` call) and once
   through a wrapper that sends each text alone (the naive alternative); both give identical
   outcomes (checked) and the ratio of wall times is printed.

Run: ``python benchmarks/bench_attack.py`` (a few minutes on 2 cores). Writes
``benchmarks/results/attack.json`` and ``benchmarks/results/attack.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))  # trusteq_training

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class OneAtATime:
    """The naive alternative: every text goes to the model in its own predict_proba call."""

    def __init__(self, model):
        self.model, self.labels, self.name = model, model.labels, f"one-at-a-time({model.name})"
        self.size_bytes = None

    def predict_proba(self, records):
        return np.vstack([self.model.predict_proba(records.iloc[[i]]) for i in range(len(records))])


def build_models(kind: str, seed: int, workdir: Path):
    import torch

    from mlflow_trusteq.adapters import as_proba_model
    from mlflow_trusteq.datasets import load_sst2
    from trusteq_training import export_onnx, fine_tune, minilm_path, quantize_int8, tiny_bert_classifier

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    train = load_sst2("train")
    if kind == "tiny_bert":
        model, tok = tiny_bert_classifier(labels=["negative", "positive"], seed=seed)
        fine_tune(model, tok, list(train["sentence"]), list(train["label"]), epochs=2, lr=3e-3, seed=seed)
    else:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        path = str(minilm_path())
        tok = AutoTokenizer.from_pretrained(path)
        torch.manual_seed(seed)
        model = AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=2, id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1})
        fine_tune(model, tok, list(train["sentence"]), list(train["label"]), epochs=1, lr=5e-5, seed=seed)
    fp32 = export_onnx(model, tok, workdir / "model.onnx")
    int8 = quantize_int8(fp32, workdir / "model.int8.onnx")
    parent = as_proba_model(model, tokenizer=tok, name=kind)
    candidate = as_proba_model(str(int8), tokenizer=tok, name=f"{kind}-int8-onnx")
    return parent, candidate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parent", choices=["tiny_bert", "minilm"], default="tiny_bert")
    ap.add_argument("--n-examples", type=int, default=100)
    ap.add_argument("--budget", type=int, default=200)
    ap.add_argument("--n-speed", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = ap.parse_args()

    from mlflow_trusteq.attack import RobustnessConfig, attack_text, make_recipe, measure_robustness
    from mlflow_trusteq.datasets import load_sst2

    dev = load_sst2("dev")
    records, y = dev[["sentence"]], dev["label"].to_numpy()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        parent, candidate = build_models(args.parent, args.seed, Path(tmp))
        t_build = time.perf_counter() - t0
        cfg = RobustnessConfig(recipes=("word", "char"), n_examples=args.n_examples, query_budget=args.budget,
                               random_state=args.seed, progress=False)
        t0 = time.perf_counter()
        res = measure_robustness(parent, candidate, records, y, config=cfg)
        t_attack = time.perf_counter() - t0

        # batched vs one text per call, same examples and outcomes
        speed = {}
        idx = res.table()["index"].drop_duplicates().to_numpy()[: args.n_speed]
        for name in ("word", "char"):
            recipe = make_recipe(name, random_state=args.seed)
            times = {}
            outs = {}
            for label, model in (("batched", parent), ("one_at_a_time", OneAtATime(parent))):
                t0 = time.perf_counter()
                outs[label] = [attack_text(model, records.iloc[i], int(y[i]), recipe=recipe, query_budget=args.budget,
                                           example_key=int(i)) for i in idx]
                times[label] = time.perf_counter() - t0
            same = all(a.perturbed == b.perturbed and a.queries == b.queries and a.status == b.status
                       for a, b in zip(outs["batched"], outs["one_at_a_time"]))
            speed[name] = {"examples": len(idx), "queries": int(sum(o.queries for o in outs["batched"])),
                           "batched_s": times["batched"], "one_at_a_time_s": times["one_at_a_time"],
                           "speedup": times["one_at_a_time"] / times["batched"], "identical_outcomes": same}

    est = {k: v.to_dict() for k, v in res.estimates().items()}
    out = {"parent": args.parent, "candidate": f"{args.parent} exported to ONNX, dynamic int8 (onnxruntime)",
           "data": "SST-2 dev (872 rows, shipped)", "settings": res.settings, "estimates": est,
           "seconds": {"build_models": t_build, "attacks": t_attack}, "batching": speed,
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform()}}
    outdir = Path(args.out)
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "attack.json").write_text(json.dumps(out, indent=2, default=str))

    def f(key: str) -> str:
        e = res.estimates()[key]
        if e.value != e.value:
            return "–"
        return f"{e.value:.3f} [{e.lower:.3f}, {e.upper:.3f}]" if e.lower is not None else f"{e.value:.3f}"

    lines = [f"# Robustness on SST-2 dev: {args.parent} (parent) vs its int8 ONNX export (candidate)", "",
             f"Clean accuracy on all 872 dev rows: parent {res.settings['parent_accuracy']:.3f}, candidate "
             f"{res.settings['candidate_accuracy']:.3f}. Attacked: {res.settings['n_attacked']} examples that both "
             f"classify correctly (of {res.settings['n_both_correct']}), budget {args.budget} queries per example "
             f"and model, at most 30% of the words changed, seed {args.seed}.", "",
             "| recipe | model | after-attack acc. | success rate | mean queries | median queries | words changed |",
             "|---|---|---|---|---|---|---|"]
    for r in ("word", "char"):
        for m in ("parent", "candidate"):
            lines.append(f"| {r} | {m} | {f(f'{r}/{m}/after_attack_accuracy')} | {f(f'{r}/{m}/attack_success_rate')} "
                         f"| {f(f'{r}/{m}/mean_queries')} | {f(f'{r}/{m}/median_queries')} "
                         f"| {f(f'{r}/{m}/words_changed')} |")
        lines.append(f"| {r} | candidate − parent | {f(f'{r}/diff/after_attack_accuracy')} | | "
                     f"{f(f'{r}/diff/mean_queries')} | | |")
    lines += ["", f"Each its own correct ({res.settings['n_own_sample']} rows drawn from all dev rows; a row a model "
              "gets wrong counts as wrong: TextAttack's accuracy under attack, the study's number):", "",
              "| recipe | model | accuracy | after-attack accuracy |", "|---|---|---|---|"]
    for r in ("word", "char"):
        for m in ("parent", "candidate"):
            lines.append(f"| {r} | {m} | {f(f'{r}/own/{m}/accuracy')} | {f(f'{r}/own/{m}/after_attack_accuracy')} |")
        lines.append(f"| {r} | candidate − parent | | {f(f'{r}/own/diff/after_attack_accuracy')} |")
    lines += ["", "| recipe | transfer parent → candidate | transfer candidate → parent |", "|---|---|---|"]
    for r in ("word", "char"):
        lines.append(f"| {r} | {f(f'{r}/transfer_rate')} | {f(f'{r}/reverse/transfer_rate')} |")
    lines += ["", "Batched queries vs one text per predict_proba call (parent, same outcomes):", "",
              "| recipe | examples | queries | batched s | one-at-a-time s | speed-up | identical |",
              "|---|---|---|---|---|---|---|"]
    for r, s in speed.items():
        lines.append(f"| {r} | {s['examples']} | {s['queries']} | {s['batched_s']:.2f} | {s['one_at_a_time_s']:.2f} "
                     f"| {s['speedup']:.1f}× | {s['identical_outcomes']} |")
    lines += ["", f"Model building {t_build:.0f} s, attacks {t_attack:.0f} s on {os.cpu_count()} CPUs."]
    md = "\n".join(lines)
    (outdir / "attack.md").write_text(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
