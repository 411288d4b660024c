"""A tracking store that goes away mid-evaluation leaves no pass verdict behind and says so."""

from __future__ import annotations

import os
import secrets
import signal

import numpy as np
import pytest
from mlflow import MlflowClient

from mlflow_trusteq.adapters import as_proba_model
from mlflow_trusteq.integration import evaluate_and_log
from mlflow_trusteq.integration.registry import record_verdict, verify_verdict
from trusteq_gate.testing import gate_server

pytestmark = pytest.mark.slow

KEY = secrets.token_hex(32)


def test_store_dies_midway(tmp_path, tfidf_pair, sst2_small, monkeypatch):
    import mlflow

    monkeypatch.setenv("TRUSTEQ_SIGNING_KEY", KEY)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # fail fast once the store is gone
    parent, _ = tfidf_pair
    _, dev = sst2_small
    workdir = tmp_path / "store"
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    with gate_server(workdir, env={"TRUSTEQ_SIGNING_KEY": KEY}) as server:
        mlflow.set_tracking_uri(server.url)
        mlflow.set_registry_uri(server.url)
        mlflow.set_experiment("store-failure")  # not an experiment id left behind by another module
        client = MlflowClient(tracking_uri=server.url, registry_uri=server.url)
        with mlflow.start_run() as run:
            for _ in range(2):
                mlflow.sklearn.log_model(parent, name="m", registered_model_name="dies",
                                         pip_requirements=["scikit-learn"])
        # an earlier *pass* on version 2: the re-evaluation must not leave it standing
        record_verdict(client, "dies", "2", verdict="pass", run_id=run.info.run_id, parent_uri="models:/dies/1",
                       data_digest="d", policy_digest="p", reasons=[])
        assert verify_verdict(client, "dies", "2").ok

        def candidate_that_outlives_the_store(records):
            os.killpg(server.pid, signal.SIGKILL)  # the tracking server goes away mid-evaluation
            texts = records if isinstance(records, list) else list(records.iloc[:, 0])
            return parent.predict_proba(texts)

        candidate = as_proba_model(candidate_that_outlives_the_store, labels=["0", "1"])
        with pytest.raises(Exception) as info:
            evaluate_and_log(candidate, dev.iloc[:100], targets="label", client=client,
                             config={"parent": "models:/dies/1", "candidate": "models:/dies/2",
                                     "n_resamples": 50})
        assert "Connection" in type(info.value).__name__ or "connect" in str(info.value).lower() \
            or "Max retries" in str(info.value), repr(info.value)
    # bring the store back: the old pass was cleared before scoring, and no new one was written
    with gate_server(workdir, env={"TRUSTEQ_SIGNING_KEY": KEY}) as server:
        client = MlflowClient(tracking_uri=server.url, registry_uri=server.url)
        tags = client.get_model_version("dies", "2").tags
        assert tags.get("trusteq.verdict") != "pass" and "trusteq.signature" not in tags
        assert not verify_verdict(client, "dies", "2").ok
        assert np.all([not k.startswith("trusteq.") or k == "trusteq.parent" for k in tags])
    mlflow.set_tracking_uri(previous[0])
    mlflow.set_registry_uri(previous[1])
