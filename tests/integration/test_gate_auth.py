"""`mlflow server --app-name trusteq-gate-auth`: MLflow's basic-auth and the gate together."""

from __future__ import annotations

import secrets

import pytest
import requests

from mlflow_trusteq.integration import registry
from trusteq_gate.signing import Keyring
from trusteq_gate.testing import gate_server, register_files

pytestmark = pytest.mark.slow
pytest.importorskip("flask_wtf", reason="MLflow's basic-auth needs `pip install mlflow[auth]` (Flask-WTF)")

KEY = secrets.token_hex(32)
ADMIN_PASSWORD = "Adm1n-" + secrets.token_urlsafe(16)


def test_basic_auth_and_gate_combined(tmp_path, monkeypatch):
    from mlflow import MlflowClient

    env = {"TRUSTEQ_SIGNING_KEY": KEY, "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16),
           "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD}
    with gate_server(tmp_path, env=env, app_name="trusteq-gate-auth") as srv:
        base = srv.url + "/api/2.0/mlflow"
        # authentication comes first: no credentials, no answer from the gate
        r = requests.post(base + "/registered-models/alias", json={"name": "m", "alias": "champion", "version": "1"},
                          timeout=30)
        assert r.status_code == 401

        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN_PASSWORD)
        client = MlflowClient(srv.url, srv.url)
        client.create_registered_model("m")
        register_files(client, "m", {"model.bin": b"parent"})
        register_files(client, "m", {"model.bin": b"candidate"})
        # an authenticated admin is still refused without a verdict
        with pytest.raises(Exception, match="PERMISSION_DENIED.*trusteq-gate"):
            client.set_registered_model_alias("m", "champion", "2")
        registry.record_verdict(client, "m", "2", verdict="pass", run_id="r", parent_uri="models:/m/1",
                                data_digest="d", policy_digest="p", reasons=[], keyring=Keyring.from_secret(KEY))

        # a read-only user cannot promote even a passing version: basic-auth refuses
        password = "Us3r-" + secrets.token_urlsafe(16)
        r = requests.post(srv.url + "/api/2.0/mlflow/users/create", json={"username": "reader", "password": password},
                          auth=("admin", ADMIN_PASSWORD), timeout=30)
        assert r.status_code == 200, r.text
        r = requests.post(base + "/registered-models/alias", json={"name": "m", "alias": "champion", "version": "2"},
                          auth=("reader", password), timeout=30)
        assert r.status_code == 403 and "trusteq-gate" not in r.text
        # the admin with a verdict can
        client.set_registered_model_alias("m", "champion", "2")
        assert client.get_model_version_by_alias("m", "champion").version == "2"
