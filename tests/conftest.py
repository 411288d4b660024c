"""Shared fixtures: real (tiny) models trained in seconds on the shipped SST-2 sample."""

from __future__ import annotations

import os
import pathlib
import sys

import numpy as np
import pytest

pytest_plugins = ["_strict_deps"]  # in CI a skip for a missing dependency fails the run

#: the training helpers live with the examples, outside the installed package
EXAMPLES_DIR = pathlib.Path(__file__).resolve().parents[1] / "examples"
if str(EXAMPLES_DIR) not in sys.path:
    sys.path.insert(0, str(EXAMPLES_DIR))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def sst2_small():
    """The shipped SST-2 train sample (3,000 rows) and the first 200 dev rows (real data)."""
    from mlflow_trusteq.datasets import load_sst2

    return load_sst2("train"), load_sst2("dev").iloc[:200].reset_index(drop=True)


@pytest.fixture(scope="session")
def tiny_bert(sst2_small, tmp_path_factory):
    """A tiny BERT (2 layers, hidden 32) fine-tuned for ~4 s on SST-2 (about 70% dev accuracy): (model, tokenizer, dir).

    The model is also saved with its tokenizer under ``dir`` (``save_pretrained``).
    """
    import torch

    from trusteq_training import fine_tune, tiny_bert_classifier

    torch.set_num_threads(2)
    train, _ = sst2_small
    model, tok = tiny_bert_classifier(labels=["negative", "positive"], seed=0)
    fine_tune(model, tok, list(train["sentence"]), list(train["label"]), epochs=2, lr=3e-3, seed=0)
    path = tmp_path_factory.mktemp("tiny_bert")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return model, tok, path


@pytest.fixture(scope="session")
def tfidf_pair(sst2_small):
    """Two scikit-learn text pipelines (TF-IDF + logistic regression) trained on different halves."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    train, _ = sst2_small
    half = len(train) // 2
    parent = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=1000)).fit(train["sentence"], train["label"])
    candidate = make_pipeline(TfidfVectorizer(min_df=2), LogisticRegression(C=0.3, max_iter=1000)).fit(
        train["sentence"][:half], train["label"][:half])
    return parent, candidate


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(autouse=True, scope="module")
def _isolate_mlflow_globals():
    """Each test module starts from the same MLflow tracking/registry URIs and active experiment."""
    import mlflow
    from mlflow.tracking import fluent

    saved = (mlflow.get_tracking_uri(), mlflow.get_registry_uri(), fluent._active_experiment_id,
             os.environ.get("MLFLOW_EXPERIMENT_ID"))
    yield
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(saved[0])
    mlflow.set_registry_uri(saved[1])
    fluent._active_experiment_id = saved[2]
    # mlflow.set_experiment() also exports MLFLOW_EXPERIMENT_ID, which would follow us to another store
    if saved[3] is None:
        os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    else:
        os.environ["MLFLOW_EXPERIMENT_ID"] = saved[3]
