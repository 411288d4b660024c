"""Slices reach MLflow through the evaluator: headline metrics, the slice table, the section page, the verdict."""

from __future__ import annotations

import json

import mlflow
import pytest
from mlflow import MlflowClient

from mlflow_trusteq.integration import evaluate_and_log


def test_slices_are_logged_and_judged(logged_tfidf_parent, tfidf_pair, sst2_small):
    _, candidate = tfidf_pair
    _, dev = sst2_small
    policy = {"name": "sliced", "checks": {"label_loyalty": {"threshold": 0.5, "slices": "all"}}}
    config = {"parent": logged_tfidf_parent, "n_resamples": 100, "slices": "builtin", "policy": policy,
              "consistency": False}
    out = evaluate_and_log(candidate, dev, targets="label", config=config)
    run = MlflowClient().get_run(out.run_id)
    for key in ("trusteq/slices/worst/label_loyalty", "trusteq/slices/worst/label_loyalty/ci_lower",
                "trusteq/slices/worst/probability_loyalty"):
        assert key in run.data.metrics, key
    report = out.report
    worst = report.slices().worst().estimates["label_loyalty"]
    assert run.data.metrics["trusteq/slices/worst/label_loyalty"] == pytest.approx(worst.value)
    assert report.slices().specs == ("parent_class", "parent_confidence", "input_length")
    assert run.data.params["trusteq.slices"] == "parent_class,parent_confidence,input_length"
    assert "Bonferroni over" in run.data.params["trusteq.slices.correction"]
    assert "trusteq/slices.html" in {a.path for a in MlflowClient().list_artifacts(out.run_id, "trusteq")}
    table = json.loads(mlflow.artifacts.load_text(f"runs:/{out.run_id}/trusteq_slices.json"))
    assert len(table["data"]) == len(report.slices().slices)
    assert {"spec", "slice", "n", "label_loyalty", "label_loyalty/ci_lower"} <= set(table["columns"])
    page = mlflow.artifacts.load_text(f"runs:/{out.run_id}/trusteq/report.html")
    assert "Where the candidate breaks: slices" in page and "slices/each/label_loyalty" in page
    verdict = json.loads(mlflow.artifacts.load_text(f"runs:/{out.run_id}/trusteq/verdict.json"))
    each = next(c for c in verdict["checks"] if c["metric"] == "slices/each/label_loyalty")
    assert each["status"] in ("pass", "fail", "skipped")
    assert verdict["extra"]["slices"]["slices/each/label_loyalty"]["m"] == len(report.slices().slices)
    from mlflow_trusteq.integration import load_evaluation

    back, _, _ = load_evaluation(out.run_id)
    assert back.slices().to_dict() == report.slices().to_dict()
