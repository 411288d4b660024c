"""Helpers of the plugin's own tests: real ``mlflow server --app-name trusteq-gate`` processes."""

from __future__ import annotations

import secrets
import uuid

import pytest

from trusteq_gate.client import sign_and_write_verdict
from trusteq_gate.signing import Keyring
from trusteq_gate.testing import API_PATHS, assert_denied, gate_server, register_files, rest
from trusteq_gate.testing import registry_snapshot as snapshot

KEY = secrets.token_hex(32)
RING = Keyring.from_secret(KEY)
PATHS = list(API_PATHS)
__all__ = ["KEY", "RING", "PATHS", "snapshot", "rest", "assert_denied", "uvicorn_server", "new_name", "new_model",
           "add_version", "create_model_raw", "add_version_raw", "evaluate"]


@pytest.fixture(scope="session")
def uvicorn_server(tmp_path_factory):
    with gate_server(tmp_path_factory.mktemp("gate-uvicorn"), env={"TRUSTEQ_SIGNING_KEY": KEY}) as srv:
        yield srv


def new_name(prefix: str = "m") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def add_version(client, name: str, content: bytes = b"weights", tags=None):
    """A version of ``name`` with real files (a run's artifact folder)."""
    return register_files(client, name, {"model.bin": content, "MLmodel": b"flavors: {}\n"}, tags=tags)


def new_model(client, prefix: str, n_versions: int) -> str:
    """A new registered model with versions 1..n (files ``weights <i>``); returns its name."""
    name = new_name(prefix)
    client.create_registered_model(name)
    for i in range(1, n_versions + 1):
        add_version(client, name, f"weights {i}".encode())
    return name


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
