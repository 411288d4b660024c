"""Alignment and robustness sections reach MLflow: metrics, their own pages, per-example tables."""

from __future__ import annotations

import json

import mlflow
from mlflow import MlflowClient

from mlflow_trusteq.integration import evaluate_and_log


def test_sections_are_logged(logged_tfidf_parent, tfidf_pair, sst2_small):
    _, candidate = tfidf_pair
    _, dev = sst2_small
    config = {"parent": logged_tfidf_parent, "n_resamples": 100,
              "alignment": {"n_examples": 4, "lime_num_samples": 150, "shap_max_evals": 120, "progress": False},
              "robustness": {"recipes": ["char"], "n_examples": 6, "query_budget": 40, "progress": False}}
    out = evaluate_and_log(candidate, dev.iloc[:200], targets="label", config=config)
    run = MlflowClient().get_run(out.run_id)
    metrics = run.data.metrics
    for key in ("trusteq/alignment/lime/top_k_jaccard", "trusteq/alignment/lime/noise_floor/top_k_jaccard",
                "trusteq/alignment/shap/rank_correlation", "trusteq/robustness/char/parent/after_attack_accuracy",
                "trusteq/robustness/char/transfer_rate"):
        assert key in metrics, key
    assert run.data.params["trusteq.alignment.top_k"] == "10"
    arts = {a.path for a in MlflowClient().list_artifacts(out.run_id, "trusteq")}
    for name in ("alignment.html", "robustness.html"):
        assert f"trusteq/{name}" in arts, name
    # the MLflow tables sit at the run's root, where EvaluationResult.tables finds them
    root = {a.path for a in MlflowClient().list_artifacts(out.run_id)}
    for name in ("trusteq_alignment.json", "trusteq_robustness.json", "trusteq_disagreements.json"):
        assert name in root, name
    page = mlflow.artifacts.load_text(f"runs:/{out.run_id}/trusteq/alignment.html")
    assert "noise floor" in page.lower()
    report_html = mlflow.artifacts.load_text(f"runs:/{out.run_id}/trusteq/report.html")
    assert "sec-alignment" in report_html or "Attribution" in report_html
    table = json.loads(mlflow.artifacts.load_text(f"runs:/{out.run_id}/trusteq_alignment.json"))
    assert len(table["data"]) == 4  # one row per explained example
    # the report round-trips with its sections
    from mlflow_trusteq.integration import load_evaluation

    report, verdict, _ = load_evaluation(out.run_id)
    assert report.alignment().settings["top_k"] == 10 and report.robustness() is not None
    from mlflow_trusteq.attack import RobustnessResult
    from mlflow_trusteq.explain import AlignmentResult

    for rep in (out.report, report):  # the sections are typed, in memory and read back alike
        assert isinstance(rep.sections["alignment"], AlignmentResult)
        assert isinstance(rep.sections["robustness"], RobustnessResult)
    assert report.to_dict()["sections"] == out.report.to_dict()["sections"]
    assert verdict.label == out.verdict.label
