"""Helpers of the plugin's own tests: real ``mlflow server --app-name trusteq-gate`` processes."""

from __future__ import annotations

import json
import secrets
import uuid

import pytest

from trusteq_gate.client import sign_and_write_verdict
from trusteq_gate.signing import Keyring
from trusteq_gate.testing import gate_server, register_files

KEY = secrets.token_hex(32)
RING = Keyring.from_secret(KEY)
PATHS = ["/api/2.0/mlflow", "/ajax-api/2.0/mlflow"]


@pytest.fixture(scope="session")
def uvicorn_server(tmp_path_factory):
    with gate_server(tmp_path_factory.mktemp("gate-uvicorn"), env={"TRUSTEQ_SIGNING_KEY": KEY}) as srv:
        yield srv


def new_name(prefix: str = "m") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def add_version(client, name: str, content: bytes = b"weights", tags=None):
    """A version of ``name`` with real files (a run's artifact folder)."""
    return register_files(client, name, {"model.bin": content, "MLmodel": b"flavors: {}\n"}, tags=tags)


def create_model_raw(server, name: str, tags=None) -> None:
    """``registered-models/create`` by raw REST (MLflow's client refuses a prompt tag; its server does not)."""
    r = rest(server, "/api/2.0/mlflow", "POST", "/registered-models/create",
             {"name": name, "tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]})
    assert r.status_code == 200, r.text


def add_version_raw(server, client, name: str, content: bytes = b"weights"):
    """Like :func:`add_version`, but the version is created by a raw REST call (as an attacker would:
    MLflow's client refuses model versions in a registered model tagged as a prompt, its server does not)."""
    import tempfile
    from pathlib import Path

    run = client.create_run("0")
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "model.bin").write_bytes(content)
        client.log_artifacts(run.info.run_id, tmp, "model")
    r = rest(server, "/api/2.0/mlflow", "POST", "/model-versions/create",
             {"name": name, "source": f"runs:/{run.info.run_id}/model", "run_id": run.info.run_id})
    assert r.status_code == 200, r.text
    return r.json()["model_version"]


def evaluate(client, name: str, version: str, verdict: str = "pass", reasons=(), run_id: str = "run-1"):
    """What the trusteq evaluator records after an evaluation: a signed verdict bound to the files."""
    return sign_and_write_verdict(client, name, str(version), RING, verdict=verdict, run_id=run_id,
                                  parent=f"models:/{name}/1", data_digest="sha256:data",
                                  policy_digest="sha256:policy", reasons=list(reasons))


def snapshot(server) -> str:
    """The whole registry, timestamps included, as canonical JSON."""
    import requests

    rms = requests.get(server.url + "/api/2.0/mlflow/registered-models/search",
                       params={"max_results": 1000}, timeout=30).json().get("registered_models", [])
    mvs = requests.get(server.url + "/api/2.0/mlflow/model-versions/search",
                       params={"max_results": 10000}, timeout=30).json().get("model_versions", [])
    for rm in rms:
        rm.pop("latest_versions", None)
    return json.dumps({"models": sorted(rms, key=lambda r: r["name"]),
                       "versions": sorted(mvs, key=lambda v: (v["name"], int(v["version"])))}, sort_keys=True)


def rest(server, base, method, path, body=None, headers=None):
    import requests

    return requests.request(method, server.url + base + path, json=body,
                            headers={"Content-Type": "application/json", **(headers or {})}, timeout=30)


def assert_denied(resp, *needles) -> str:
    assert resp.status_code == 403, resp.text
    body = resp.json()
    assert body["error_code"] == "PERMISSION_DENIED", body
    for n in needles:
        assert n in body["message"], body["message"]
    return body["message"]
