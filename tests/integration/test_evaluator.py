"""End to end: mlflow.models.evaluate(..., evaluators="trusteq") on a real local MLflow store."""

from __future__ import annotations

import json

import mlflow
import pytest
from mlflow import MlflowClient

from mlflow_trusteq import InvalidInputError, LabelMismatchError
from mlflow_trusteq.integration.registry import get_parent, set_parent, verify_verdict

pytestmark = pytest.mark.slow


def test_passing_candidate_logs_everything_and_gets_a_signed_pass(registered_models, sst2_small, evaluate_trusteq):
    name = registered_models
    _, dev = sst2_small
    result, run_id = evaluate_trusteq(f"models:/{name}/2", dev.iloc[:200], parent=f"models:/{name}/1", n_resamples=300)
    m = result.metrics
    assert m["trusteq/verdict"] == 1.0
    assert m["trusteq/label_loyalty"] >= 0.99 and m["trusteq/label_loyalty/ci_lower"] >= 0.95
    assert not any(k.startswith("trusteq/parent/") for k in m), "parent numbers attributed to the candidate"
    run = MlflowClient().get_run(run_id)
    assert run.data.metrics["trusteq/parent/accuracy"] == pytest.approx(m["trusteq/candidate/accuracy"], abs=0.02)
    assert run.data.tags["trusteq.verdict"] == "pass" and run.data.tags["trusteq.status"] == "done"
    arts = {a.path for a in MlflowClient().list_artifacts(run_id, "trusteq")}
    for expected in ("report.html", "verdict.json", "report.json", "policy.json", "reliability_equal_mass.png",
                     "confidence.png", "flip_matrix.png"):
        assert f"trusteq/{expected}" in arts
    verdict = json.loads(mlflow.artifacts.load_text(f"runs:/{run_id}/trusteq/verdict.json"))
    assert verdict["verdict"] == "pass" and verdict["parent"] == f"models:/{name}/1"
    html = mlflow.artifacts.load_text(f"runs:/{run_id}/trusteq/report.html")
    assert "PASS" in html and "label_loyalty" in html.replace(" ", "_").lower()
    tags = MlflowClient().get_model_version(name, "2").tags
    assert tags["trusteq.verdict"] == "pass" and tags["trusteq.run_id"] == run_id
    assert tags["trusteq.parent"] == f"models:/{name}/1" and tags["trusteq.signature"]
    decision = verify_verdict(MlflowClient(), name, "2")
    assert decision.ok, decision.reasons


def test_failing_candidate_gets_a_signed_fail_with_reasons(registered_models, sst2_small, evaluate_trusteq):
    name = registered_models
    _, dev = sst2_small
    result, run_id = evaluate_trusteq(f"models:/{name}/3", dev.iloc[:200], parent=f"models:/{name}/1", n_resamples=300)
    assert result.metrics["trusteq/verdict"] == 0.0
    assert result.metrics["trusteq/label_loyalty"] < 0.95
    tags = MlflowClient().get_model_version(name, "3").tags
    assert tags["trusteq.verdict"] == "fail"
    reasons = json.loads(tags["trusteq.reasons"])
    assert any("label_loyalty" in r for r in reasons)
    decision = verify_verdict(MlflowClient(), name, "3")
    assert not decision.ok


def test_parent_from_the_lineage_tag(registered_models, sst2_small, evaluate_trusteq):
    name = registered_models
    _, dev = sst2_small
    client = MlflowClient()
    set_parent(client, name, "2", f"models:/{name}/1")
    assert get_parent(client, name, "2") == f"models:/{name}/1"
    result, _ = evaluate_trusteq(f"models:/{name}/2", dev.iloc[:80], parent="lineage", n_resamples=100)
    assert result.metrics["trusteq/label_loyalty"] >= 0.99


def test_bad_configurations_get_clear_errors(registered_models, sst2_small, evaluate_trusteq):
    name = registered_models
    _, dev = sst2_small
    with pytest.raises(InvalidInputError, match="names itself as its parent"):
        evaluate_trusteq(f"models:/{name}/2", dev.iloc[:20], parent=f"models:/{name}/2")
    with pytest.raises(Exception, match=r"(?i)version.*99|not found|does not exist"):
        evaluate_trusteq(f"models:/{name}/2", dev.iloc[:20], parent=f"models:/{name}/99")
    with pytest.raises(InvalidInputError, match=r"unknown trusteq evaluator_config key\(s\) \['parnet'\]"):
        evaluate_trusteq(f"models:/{name}/2", dev.iloc[:20], parent=f"models:/{name}/1", parnet="x")


def test_evaluators_none_does_not_start_without_a_parent():
    """Through MLflow's own choice of evaluators: under ``evaluators=None`` trusteq needs a parent and a classifier;
    named explicitly it claims the evaluation (and explains what is wrong itself)."""
    from mlflow.models.evaluation.base import resolve_evaluators_and_configs

    def chosen(evaluators, config, model_type):
        return "trusteq" in {b.name for b in resolve_evaluators_and_configs(evaluators, config, model_type=model_type)}

    assert not chosen(None, {}, "classifier")
    assert not chosen(None, {"parent": "models:/a/1"}, "regressor")
    assert chosen(None, {"parent": "models:/a/1"}, "classifier")
    from mlflow_trusteq.integration.evaluator import TrustEqEvaluator

    assert TrustEqEvaluator.can_evaluate(model_type="classifier", evaluator_config={}), "named explicitly: claimed"


def test_label_mismatch_is_refused(local_registry, tfidf_pair, sst2_small, evaluate_trusteq):
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    train, dev = sst2_small
    parent, _ = tfidf_pair
    three = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=300)).fit(
        train["sentence"][:300], np.arange(300) % 3)
    with mlflow.start_run():
        p = mlflow.sklearn.log_model(parent, name="p", registered_model_name="sk-mismatch",
                                     pip_requirements=["scikit-learn"])
        c = mlflow.sklearn.log_model(three, name="c", registered_model_name="sk-mismatch",
                                     pip_requirements=["scikit-learn"])
    with pytest.raises(LabelMismatchError, match="label"):
        evaluate_trusteq(c.model_uri, dev.iloc[:30], parent=p.model_uri)


def test_failure_midway_leaves_no_pass_verdict(registered_models, sst2_small, monkeypatch, evaluate_trusteq):
    """An earlier pass is cleared first; a model that raises on a batch ends with no pass recorded."""
    from mlflow_trusteq.integration import evaluate_and_log

    name = registered_models
    _, dev = sst2_small
    client = MlflowClient()
    evaluate_trusteq(f"models:/{name}/2", dev, parent=f"models:/{name}/1", n_resamples=100)
    assert client.get_model_version(name, "2").tags["trusteq.verdict"] == "pass"

    import mlflow_trusteq.adapters as onnx_adapters

    original = onnx_adapters.OnnxTextAdapter.predict_proba
    calls = {"n": 0}

    def explode_on_second_batch(self, records):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("candidate crashed on batch 2")
        return original(self, records)

    monkeypatch.setattr(onnx_adapters.OnnxTextAdapter, "predict_proba", explode_on_second_batch)
    with pytest.raises(RuntimeError, match="crashed on batch 2"):
        evaluate_and_log(f"models:/{name}/2", dev.iloc[:120], targets="label",
                         config={"parent": f"models:/{name}/1", "n_resamples": 50})
    tags = client.get_model_version(name, "2").tags
    assert tags.get("trusteq.verdict") != "pass" and "trusteq.signature" not in tags
    assert not verify_verdict(client, name, "2").ok
    failed = client.search_runs([mlflow.get_experiment_by_name("trusteq-tests").experiment_id],
                                "tags.`trusteq.status` = 'error'")
    assert failed and "crashed on batch 2" in failed[0].data.tags["trusteq.error"]


def test_only_the_candidates_own_numbers_are_returned_to_mlflow():
    """The parent's numbers, core or in a section, are never attributed to the candidate's model."""
    from mlflow_trusteq.integration.evaluator import _is_parent_metric

    assert _is_parent_metric("trusteq/parent/accuracy") and _is_parent_metric("trusteq/parent/accuracy/ci_lower")
    assert _is_parent_metric("trusteq/robustness/char/parent/after_attack_accuracy")
    assert _is_parent_metric("trusteq/robustness/char/own/parent/accuracy/ci_upper")
    for own in ("trusteq/candidate/accuracy", "trusteq/diff/accuracy", "trusteq/label_loyalty", "trusteq/verdict",
                "trusteq/robustness/char/candidate/after_attack_accuracy", "trusteq/n_examples"):
        assert not _is_parent_metric(own), own
