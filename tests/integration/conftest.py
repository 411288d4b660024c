"""A real local MLflow registry (sqlite) with a real tiny-BERT parent and real candidates."""

from __future__ import annotations

import secrets

import pytest

LABELS = ["negative", "positive"]
# explicit requirements: MLflow's inference runs the model in a subprocess (slow, and noisy offline)
PIP_HF = ["torch==2.13.0", "transformers"]


@pytest.fixture(scope="module")
def signing_key():
    key = secrets.token_hex(32)
    mp = pytest.MonkeyPatch()
    mp.setenv("TRUSTEQ_SIGNING_KEY", key)
    mp.delenv("TRUSTEQ_SIGNING_KEY_FILE", raising=False)
    mp.delenv("TRUSTEQ_SIGNING_KEYS_FILE", raising=False)
    yield key
    mp.undo()


@pytest.fixture(scope="module")
def local_registry(tmp_path_factory, signing_key):
    """A sqlite tracking + registry store; returns its URI. The fluent API points at it."""
    import mlflow

    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    exp = mlflow.create_experiment("trusteq-tests", artifact_location=(root / "artifacts").as_uri())
    mlflow.set_experiment(experiment_id=exp)
    yield uri
    mlflow.set_tracking_uri(previous)


@pytest.fixture(scope="module")
def registered_models(local_registry, tiny_bert, sst2_small, tmp_path_factory):
    """models:/tiny-sst2: v1 parent (transformers), v2 ONNX fp32 export (passes), v3 other tiny BERT (fails)."""
    import mlflow
    from transformers import pipeline

    from mlflow_trusteq.integration.onnx_models import log_onnx_text_model
    from trusteq_training import export_onnx, fine_tune, tiny_bert_classifier

    model, tok, _ = tiny_bert
    train, _ = sst2_small
    name = "tiny-sst2"
    with mlflow.start_run(run_name="parent"):
        mlflow.transformers.log_model(pipeline("text-classification", model=model, tokenizer=tok), name="model",
                                      registered_model_name=name, task="text-classification",
                                      pip_requirements=PIP_HF)
    onnx_path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    export_onnx(model, tok, onnx_path)
    with mlflow.start_run(run_name="onnx"):
        log_onnx_text_model(onnx_path, tok, name="model", labels=LABELS, registered_model_name=name,
                            pip_requirements=["onnxruntime", "transformers"])
    other, other_tok = tiny_bert_classifier(labels=LABELS, seed=7)
    fine_tune(other, other_tok, list(train["sentence"][:600]), list(train["label"][:600]), epochs=1, lr=3e-3, seed=7)
    with mlflow.start_run(run_name="other"):
        mlflow.transformers.log_model(pipeline("text-classification", model=other, tokenizer=other_tok),
                                      name="model", registered_model_name=name, task="text-classification",
                                      pip_requirements=PIP_HF)
    return name
