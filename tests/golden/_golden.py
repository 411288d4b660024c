"""Golden reports: ``report.json`` and ``verdict.json`` for fixed seeds on two real pairs.

Recorded before the restructuring of issue 11 so that moves, splits and merges can be shown to
change no number. What varies from run to run is dropped before comparing: timestamps and the
timing-based efficiency numbers (``speedup``, seconds, throughput).

Regenerate (only when a number is *meant* to change, and say so in the commit)::

    python -m tests.golden._golden
"""

from __future__ import annotations

import json
import pathlib
import re
from typing import Any

HERE = pathlib.Path(__file__).parent
_VOLATILE_KEY = re.compile(r"(created_at|speedup|seconds|throughput|_per_s|latency|timing|duration)")


def scrub(obj: Any) -> Any:
    """Drop the keys whose values depend on the clock, and local paths, recursively."""
    if isinstance(obj, dict):
        return {k: scrub(v) for k, v in obj.items() if not _VOLATILE_KEY.search(str(k))}
    if isinstance(obj, list):
        return [scrub(v) for v in obj]
    if isinstance(obj, str) and obj.startswith(("/", "file:/")):
        return "<local path>"  # where the checkout and its venv live, not a number
    return obj


def _canonical(obj: Any) -> str:
    return json.dumps(scrub(obj), indent=1, sort_keys=True, allow_nan=True) + "\n"


def sklearn_pair_reports() -> dict[str, str]:
    """TF-IDF + logistic regression pair on 200 SST-2 dev rows, alignment and char attack on."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from mlflow_trusteq.attack.runner import RobustnessConfig
    from mlflow_trusteq.compare import compare
    from mlflow_trusteq.datasets import load_sst2
    from mlflow_trusteq.explain.alignment import AlignmentConfig
    from mlflow_trusteq.policy import Policy

    train, dev = load_sst2("train"), load_sst2("dev").iloc[:200].reset_index(drop=True)
    half = len(train) // 2
    parent = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=1000)).fit(train["sentence"], train["label"])
    candidate = make_pipeline(TfidfVectorizer(min_df=2), LogisticRegression(C=0.3, max_iter=1000)).fit(
        train["sentence"][:half], train["label"][:half])
    report = compare(parent, candidate, dev, targets="label", n_resamples=200, random_state=0,
                     alignment=AlignmentConfig(n_examples=4, lime_num_samples=64, shap_max_evals=64),
                     robustness=RobustnessConfig(recipes=("char",), n_examples=6, query_budget=20))
    verdict = Policy.default().judge(report)
    return {"report.json": _canonical(report.to_dict()), "verdict.json": _canonical(verdict.to_dict())}


def tiny_bert_pair_reports() -> dict[str, str]:
    """Tiny BERT fine-tuned for seconds vs its 1-layer truncation, 120 SST-2 dev rows, no optional stages."""
    import copy

    import torch

    from mlflow_trusteq.compare import compare
    from mlflow_trusteq.datasets import load_sst2
    from mlflow_trusteq.policy import Policy
    from trusteq_training import fine_tune, tiny_bert_classifier

    torch.set_num_threads(1)
    train, dev = load_sst2("train").iloc[:600], load_sst2("dev").iloc[:120].reset_index(drop=True)
    model, tok = tiny_bert_classifier(labels=["negative", "positive"], seed=0)
    fine_tune(model, tok, list(train["sentence"]), list(train["label"]), epochs=1, lr=3e-3, seed=0)
    model.eval()
    small = copy.deepcopy(model)
    small.bert.encoder.layer = small.bert.encoder.layer[:1]
    small.config.num_hidden_layers = 1
    report = compare(model, small, dev, parent_kwargs={"tokenizer": tok}, candidate_kwargs={"tokenizer": tok},
                     targets="label", n_resamples=200, random_state=0)
    verdict = Policy.default().judge(report)
    return {"report.json": _canonical(report.to_dict()), "verdict.json": _canonical(verdict.to_dict())}


PAIRS = {"sklearn_pair": sklearn_pair_reports, "tiny_bert_pair": tiny_bert_pair_reports}


def main() -> None:
    import sys

    sys.path.insert(0, str(HERE.parents[1] / "examples"))  # trusteq_training (tests/conftest.py does it under pytest)
    for name, make in PAIRS.items():
        folder = HERE / name
        folder.mkdir(exist_ok=True)
        for fname, text in make().items():
            (folder / fname).write_text(text)
            print(f"wrote {folder / fname}")


if __name__ == "__main__":
    main()
