"""``mlflow server --app-name trusteq-gate-auth``: basic-auth first, then the gate; the verify route is readable."""

from __future__ import annotations

import secrets

import pytest
import requests
from gate_helpers import KEY, add_version, evaluate
from mlflow import MlflowClient

from trusteq_gate.testing import gate_server

pytestmark = pytest.mark.slow

ADMIN_PASSWORD = "Adm1n-" + secrets.token_urlsafe(16)


def test_verify_route_is_readable_by_non_admins_and_the_honest_path_works(tmp_path, monkeypatch):
    env = {"TRUSTEQ_SIGNING_KEY": KEY, "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16),
           "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD}
    with gate_server(tmp_path, env=env, app_name="trusteq-gate-auth") as srv:
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN_PASSWORD)
        c = MlflowClient(srv.url, srv.url)
        c.create_registered_model("m")
        add_version(c, "m")
        add_version(c, "m", b"candidate")
        evaluate(c, "m", "2")
        password = "Us3r-" + secrets.token_urlsafe(16)
        r = requests.post(srv.url + "/api/2.0/mlflow/users/create", json={"username": "reader", "password": password},
                          auth=("admin", ADMIN_PASSWORD), timeout=30)
        assert r.status_code == 200, r.text
        for base in ("/api", "/ajax-api"):
            r = requests.get(srv.url + base + "/2.0/trusteq/verify", params={"name": "m", "version": "2"},
                             auth=("reader", password), timeout=30)
            assert r.status_code == 200, r.text
            assert r.json()["ok"] is True and r.json()["fields"]["content_checked"] is True
        r = requests.get(srv.url + "/api/2.0/trusteq/verify", params={"name": "m", "version": "2"}, timeout=30)
        assert r.status_code == 401  # authentication still comes first
        # the honest path for the admin
        c.set_registered_model_alias("m", "champion", "2")
        c.delete_registered_model_alias("m", "champion")
        with pytest.raises(Exception, match="PERMISSION_DENIED.*trusteq-gate"):
            c.set_registered_model_alias("m", "champion", "1")
