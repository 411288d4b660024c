"""Self-consistency through ``mlflow.models.evaluate(..., evaluators="trusteq")`` (issue 16), real models."""

from __future__ import annotations

import mlflow
import pytest
from mlflow import MlflowClient

pytestmark = pytest.mark.slow

LABELS = ["negative", "positive"]


@pytest.fixture(scope="module")
def onnx_runs(local_registry, tiny_bert, tmp_path_factory):
    """``runs:/`` URIs of the tiny BERT's float ONNX export and of its dynamic-int8 quantization."""
    from mlflow_trusteq.integration.onnx_models import log_onnx_text_model
    from trusteq_training import export_onnx, quantize_int8

    model, tok, _ = tiny_bert
    d = tmp_path_factory.mktemp("consistency_eval")
    fp32 = export_onnx(model, tok, d / "model.onnx")
    int8 = quantize_int8(fp32, d / "model.int8.onnx")
    uris = []
    for path in (fp32, int8):
        with mlflow.start_run(run_name=path.stem) as run:
            log_onnx_text_model(path, tok, name="model", labels=LABELS, pip_requirements=["onnxruntime"])
        uris.append(f"runs:/{run.info.run_id}/model")
    return tuple(uris)


def test_evaluate_logs_each_models_self_loyalty_and_what_changes_its_numbers(onnx_runs, sst2_small):
    parent_uri, candidate_uri = onnx_runs
    _, dev = sst2_small
    with mlflow.start_run() as run:
        mlflow.models.evaluate(candidate_uri, dev, model_type="classifier", targets="label", evaluators="trusteq",
                               evaluator_config={"parent": parent_uri, "record_verdict": False, "n_resamples": 200,
                                                 "consistency": {"n_samples": 80}})
    data = MlflowClient().get_run(run.info.run_id).data
    m, p = data.metrics, data.params
    assert m["trusteq/consistency/batch/parent/label_loyalty"] == 1.0
    assert m["trusteq/consistency/batch/parent/probability_loyalty"] >= 1 - 1e-3
    # the dynamic int8 model is not loyal to itself: its probabilities move with the batch
    assert m["trusteq/consistency/batch/candidate/probability_loyalty/ci_upper"] < 1.0
    assert m["trusteq/consistency/batch/diff/probability_loyalty/ci_upper"] < 0.0
    assert "trusteq/label_loyalty" in m  # beside its loyalty to the parent
    assert p["trusteq.consistency.n_sampled"] == "80" and p["trusteq.consistency.random_state"] == "0"
    assert p["trusteq.serving_plan.batch_size"] == "1" and p["trusteq.headline_plan"] == "evaluation"
    for role in ("parent", "candidate"):
        assert p[f"trusteq.{role}_scoring.graph_optimization_level"].startswith("ORT_")
        assert f"trusteq.{role}_scoring.intra_op_num_threads" in p
        assert p[f"trusteq.{role}_scoring.execution_providers"] == "CPUExecutionProvider"
        assert p[f"trusteq.{role}_scoring.truncation"] == "longest_first"
        assert p[f"trusteq.{role}_scoring.batch_plan.batch_size"] == "64"
