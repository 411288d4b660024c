"""What the integration tests share: a real local MLflow registry (sqlite) with a real tiny-BERT parent and
real candidates, the trusteq evaluator run through ``mlflow.models.evaluate``, and headless chromium."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

LABELS = ["negative", "positive"]
# explicit requirements: MLflow's inference runs the model in a subprocess (slow, and noisy offline)
PIP_HF = ["torch==2.13.0", "transformers"]
#: Debian's chromium (installed by .ci/run), driven by Playwright's Python package; never `playwright install`
CHROMIUM = os.environ.get("TRUSTEQ_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def chromium():
    """``with chromium() as browser:`` a headless chromium (Playwright), closed when the block ends.

    Skips without the playwright package; fails (does not skip) without the chromium binary.
    """
    playwright = pytest.importorskip("playwright.sync_api")

    @contextlib.contextmanager
    def launch() -> Iterator:
        if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
            pytest.fail(f"chromium not found at {CHROMIUM!r}: .ci/run installs Debian's `chromium` package")
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                yield browser
            finally:
                browser.close()

    return launch


@pytest.fixture
def evaluate_trusteq():
    """``evaluate_trusteq(uri, data, **config) -> (EvaluationResult, run_id)``: ``mlflow.models.evaluate`` of a
    classifier (targets ``label``) with the trusteq evaluator and ``config`` as its config, in a new run."""
    import mlflow

    def evaluate(uri: str, data, **config):
        with mlflow.start_run() as run:
            result = mlflow.models.evaluate(uri, data, model_type="classifier", targets="label",
                                            evaluators="trusteq", evaluator_config=config)
        return result, run.info.run_id

    return evaluate


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


@pytest.fixture
def logged_tfidf_parent(local_registry, tfidf_pair) -> str:
    """The TF-IDF parent of ``tfidf_pair`` logged (not registered) to ``local_registry``; returns its model URI."""
    import mlflow

    parent, _ = tfidf_pair
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(parent, name="p", pip_requirements=["scikit-learn"])
    return info.model_uri
