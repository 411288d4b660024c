"""MLflow models: log for real to a local sqlite store, load back by URI, unwrap the raw model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlflow.pyfunc import PythonModel

from mlflow_trusteq import ModelAdapterError
from mlflow_trusteq.adapters import (
    OnnxTextAdapter,
    PyfuncOutputAdapter,
    SklearnAdapter,
    TransformersAdapter,
    as_proba_model,
)
from mlflow_trusteq.integration.onnx_models import log_onnx_text_model

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory):
    import mlflow

    root = tmp_path_factory.mktemp("mlflow")
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    # the registry too: once pinned (by an earlier module), it would not follow the tracking URI
    mlflow.set_tracking_uri(f"sqlite:///{root}/mlflow.db")
    mlflow.set_registry_uri(f"sqlite:///{root}/mlflow.db")
    exp = mlflow.create_experiment("adapters", artifact_location=(root / "artifacts").as_uri())
    mlflow.set_experiment(experiment_id=exp)
    yield root
    mlflow.set_tracking_uri(previous[0])
    mlflow.set_registry_uri(previous[1])


def test_sklearn_model_by_version_alias_and_runs_uri(mlflow_store, tfidf_pair, sst2_small):
    import mlflow

    parent, _ = tfidf_pair
    _, dev = sst2_small
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(parent, name="model", registered_model_name="sk-sentiment",
                                        pip_requirements=["scikit-learn"])
    client = mlflow.MlflowClient()
    client.set_registered_model_alias("sk-sentiment", "champion", info.registered_model_version)
    want = parent.predict_proba(dev["sentence"])
    for uri in ["models:/sk-sentiment/1", "models:/sk-sentiment@champion", info.model_uri,
                f"runs:/{run.info.run_id}/model"]:
        model = as_proba_model(uri)
        assert isinstance(model, SklearnAdapter), uri
        assert model.name == uri and model.labels == ("0", "1")
        assert model.size_bytes > 0
        np.testing.assert_allclose(model.predict_proba(dev[["sentence"]]), want, atol=1e-15)
    loaded = mlflow.pyfunc.load_model("models:/sk-sentiment/1")
    np.testing.assert_allclose(as_proba_model(loaded).predict_proba(dev[["sentence"]]), want, atol=1e-15)


def test_transformers_pipeline_model(mlflow_store, tiny_bert):
    import mlflow
    from transformers import pipeline

    model, tok, _ = tiny_bert
    pipe = pipeline("text-classification", model=model, tokenizer=tok)
    with mlflow.start_run():
        mlflow.transformers.log_model(pipe, name="model", registered_model_name="hf-sentiment",
                                             pip_requirements=["transformers", "torch"])
    texts = ["a moving, funny film", "tedious", "not bad at all"]
    want = TransformersAdapter(model, tok).predict_proba(texts)
    adapter = as_proba_model("models:/hf-sentiment/1")
    assert isinstance(adapter, TransformersAdapter)
    assert adapter.labels == ("negative", "positive")
    np.testing.assert_allclose(adapter.predict_proba(texts), want, atol=1e-6)
    # the pyfunc itself only gives the top label: not enough, hence the unwrap
    loaded = mlflow.pyfunc.load_model("models:/hf-sentiment/1")
    out = loaded.predict(pd.DataFrame({"text": texts}))
    assert "label" in getattr(out, "columns", [])
    np.testing.assert_allclose(as_proba_model(loaded).predict_proba(texts), want, atol=1e-6)


def test_onnx_text_model_carries_its_tokenizer(mlflow_store, tiny_bert, tiny_bert_onnx, sst2_small):
    import mlflow

    model, tok, _ = tiny_bert
    _, int8 = tiny_bert_onnx
    _, dev = sst2_small
    with mlflow.start_run():
        log_onnx_text_model(int8, tok, registered_model_name="onnx-sentiment",
                            pip_requirements=["onnxruntime", "transformers"])
    records = dev[["sentence"]].iloc[:50]
    want = OnnxTextAdapter(str(int8), tok).predict_proba(records)
    adapter = as_proba_model("models:/onnx-sentiment/1")
    assert isinstance(adapter, OnnxTextAdapter)
    assert adapter.labels == ("negative", "positive")
    assert adapter.size_bytes > 0
    np.testing.assert_allclose(adapter.predict_proba(records), want, atol=1e-7)
    loaded = mlflow.pyfunc.load_model("models:/onnx-sentiment/1")
    np.testing.assert_allclose(as_proba_model(loaded).predict_proba(records), want, atol=1e-7)


def test_onnx_without_tokenizer_is_refused(mlflow_store, tiny_bert_onnx):
    import mlflow
    import onnx

    fp32, _ = tiny_bert_onnx
    with mlflow.start_run():
        info = mlflow.onnx.log_model(onnx.load(str(fp32)), name="model", pip_requirements=["onnxruntime"])
    with pytest.raises(ModelAdapterError, match="no tokenizer travels with it.*log_onnx_text_model"):
        as_proba_model(info.model_uri)


class _TopLabel(PythonModel):
    """A custom pyfunc that, like a transformers pyfunc, returns only the top label."""

    def predict(self, context, model_input, params=None):
        return pd.DataFrame({"label": ["positive"] * len(model_input)})


class _Scores(PythonModel):
    def predict(self, context, model_input, params=None):
        n = len(model_input)
        return pd.DataFrame({"positive": np.full(n, 0.75), "negative": np.full(n, 0.25)})


def test_pyfunc_without_unwrap_path(mlflow_store):
    import mlflow
    top, scores = _TopLabel(), _Scores()
    with mlflow.start_run():
        top_info = mlflow.pyfunc.log_model(name="top", python_model=top, pip_requirements=["pandas"])
        scores_info = mlflow.pyfunc.log_model(name="scores", python_model=scores,
                                              pip_requirements=["pandas"])
    with pytest.raises(ModelAdapterError, match="pyfunc output is not enough.*top label"):
        as_proba_model(top_info.model_uri)
    with pytest.raises(ModelAdapterError, match=r"returned columns \['label'\]"):
        as_proba_model(top_info.model_uri, labels=["negative", "positive"]).predict_proba(["x"])
    model = as_proba_model(scores_info.model_uri, labels=["negative", "positive"])
    assert isinstance(model, PyfuncOutputAdapter)
    np.testing.assert_allclose(model.predict_proba(pd.DataFrame({"text": ["a", "b"]})), [[0.25, 0.75]] * 2)


class _TextScores(PythonModel):
    """Label-named columns that hold words, not scores."""

    def predict(self, context, model_input, params=None):
        n = len(model_input)
        return pd.DataFrame({"positive": ["high"] * n, "negative": ["low"] * n})


def test_bad_output_is_one_error_type_whichever_adapter_finds_it(mlflow_store):
    """Non-numeric output from a pyfunc and from a plain callable: the same type, both an input and an adapter error."""
    import mlflow

    from mlflow_trusteq import InvalidInputError, ModelOutputError

    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="words", python_model=_TextScores(), pip_requirements=["pandas"])
    pyfunc = as_proba_model(info.model_uri, labels=["negative", "positive"])
    plain = as_proba_model(lambda records: np.array([["high", "low"]] * len(records)), labels=["negative", "positive"])
    for model in (pyfunc, plain):
        with pytest.raises(ModelOutputError, match="non-numeric") as err:
            model.predict_proba(pd.DataFrame({"text": ["a", "b"]}))
        assert isinstance(err.value, InvalidInputError) and isinstance(err.value, ModelAdapterError)
        assert isinstance(err.value, ValueError) and isinstance(err.value, TypeError)


def test_bad_uris():
    with pytest.raises(ModelAdapterError, match="not found"):
        as_proba_model("no/such/model/dir")
    with pytest.raises(ModelAdapterError, match="could not download"):
        as_proba_model("models:/no-such-model-anywhere/1")
