"""Start a real ``mlflow server --app-name trusteq-gate`` for tests and staging checks.

>>> with gate_server(tmp_dir, env={"TRUSTEQ_SIGNING_KEY": key}) as server:  # doctest: +SKIP
...     requests.get(server.url + "/health")
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["API_PATHS", "GateServer", "assert_denied", "free_port", "gate_server", "register_files",
           "registry_snapshot", "rest"]

API_PATHS = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow")
"""The two prefixes MLflow routes its REST handlers under (the UI uses the second): every attack tries both."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class GateServer:
    url: str
    pid: int
    backend_uri: str
    log_path: Path

    def client(self) -> Any:
        """An ``mlflow.MlflowClient`` whose tracking and registry URIs are this server."""
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.url, registry_uri=self.url)


@contextlib.contextmanager
def gate_server(
    workdir: str | os.PathLike[str],
    *,
    env: Mapping[str, str] | None = None,
    app_name: str = "trusteq-gate",
    workers: int = 1,
    flavour: str = "uvicorn",
    startup_timeout_s: float = 180.0,
) -> Iterator[GateServer]:
    """Run ``mlflow server --app-name <app_name>`` on 127.0.0.1 with a sqlite store in ``workdir``.

    ``flavour`` is ``"uvicorn"`` (MLflow's default) or ``"gunicorn"`` (``--gunicorn-opts``).

    The server runs in its own process group, which is stopped (SIGTERM, then SIGKILL) by its
    id on exit.  Raises ``RuntimeError`` with the server log when it does not become healthy.
    """
    import requests

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    backend = f"sqlite:///{workdir / 'mlflow.db'}"
    log_path = workdir / "server.log"
    cmd = [sys.executable, "-m", "mlflow", "server", "--app-name", app_name, "--backend-store-uri", backend,
           "--default-artifact-root", str(workdir / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
           "--workers", str(workers)]
    if flavour == "uvicorn":
        cmd += ["--uvicorn-opts", "--timeout-graceful-shutdown 3"]
    elif flavour == "gunicorn":
        cmd += ["--gunicorn-opts", "--graceful-timeout 3 --timeout 120"]
    else:
        raise ValueError(f"flavour must be 'uvicorn' or 'gunicorn', got {flavour!r}")
    full_env = {**os.environ, **(env or {})}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=full_env, cwd=workdir,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}")
            if _app_failed(log_path):
                raise RuntimeError(f"mlflow server's app failed to load (it serves nothing):\n"
                                   f"{log_path.read_text()[-4000:]}")
            try:
                if requests.get(url + "/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server not healthy after {startup_timeout_s} s:\n"
                                   f"{log_path.read_text()[-4000:]}")
            time.sleep(0.3)
        yield GateServer(url, proc.pid, backend, log_path)
    finally:
        _stop(proc)


def _app_failed(log_path: Path) -> bool:
    """The gate's app factory raised (the web server's worker is gone; MLflow's job runner may linger)."""
    text = log_path.read_text(errors="replace")
    return "Traceback (most recent call last)" in text and "trusteq_gate/app.py" in text and "in create_app" in text


def _stop(proc: subprocess.Popen[bytes]) -> None:
    for sig, wait_s in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)  # the server's own process group (start_new_session): its id
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(wait_s)


def register_files(client: Any, name: str, files: Mapping[str, bytes], *, tags: Mapping[str, str] | None = None,
                   experiment_id: str = "0") -> Any:
    """A model version of ``name`` whose source is a run's artifact folder holding ``files``.

    The files are logged through the client (a run in ``experiment_id``), so the version has
    real content the gate can digest.  Returns the ``ModelVersion``.
    """
    import tempfile

    run = client.create_run(experiment_id)
    with tempfile.TemporaryDirectory() as tmp:
        for rel, data in files.items():
            p = Path(tmp, rel)
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
        client.log_artifacts(run.info.run_id, tmp, "model")
    client.set_terminated(run.info.run_id)
    return client.create_model_version(name, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id,
                                       tags=dict(tags or {}))


def rest(server: GateServer, base: str, method: str, path: str, body: Any = None,
         headers: Mapping[str, str] | None = None, data: str | None = None) -> Any:
    """One raw REST request to ``server`` (``base`` one of :data:`API_PATHS`); ``data`` sends a raw body."""
    import requests

    return requests.request(method, server.url + base + path, json=body if data is None else None, data=data,
                            headers={"Content-Type": "application/json", **(headers or {})}, timeout=30)


def registry_snapshot(server: GateServer) -> str:
    """The whole registry, timestamps included, as canonical JSON (a refused request must leave it unchanged)."""
    import json

    import requests

    rms = requests.get(server.url + "/api/2.0/mlflow/registered-models/search",
                       params={"max_results": 1000}, timeout=30).json().get("registered_models", [])
    mvs = requests.get(server.url + "/api/2.0/mlflow/model-versions/search",
                       params={"max_results": 10000}, timeout=30).json().get("model_versions", [])
    for rm in rms:
        rm.pop("latest_versions", None)  # derived from the versions, which are compared in full
    return json.dumps({"models": sorted(rms, key=lambda r: r["name"]),
                       "versions": sorted(mvs, key=lambda v: (v["name"], int(v["version"])))}, sort_keys=True)


def assert_denied(resp: Any, *needles: str) -> str:
    """``resp`` is the gate's refusal (403 PERMISSION_DENIED) and its message holds every needle; returns it."""
    assert resp.status_code == 403, resp.text
    body = resp.json()
    assert body["error_code"] == "PERMISSION_DENIED", body
    for n in needles:
        assert n in body["message"], body["message"]
    return str(body["message"])
