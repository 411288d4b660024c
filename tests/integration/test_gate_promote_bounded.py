"""`trusteq promote` / `trusteq verify` against a tracking server that fails: bounded time, a clear message, exit 1."""

from __future__ import annotations

import http.server
import socket
import threading
import time

import pytest
from click.testing import CliRunner

from mlflow_trusteq.cli._promote import promote_command, verify_command
from trusteq_gate.testing import free_port


class _Failing(http.server.BaseHTTPRequestHandler):
    def _answer(self):
        self.send_response(503)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"upstream unavailable")

    do_GET = do_POST = do_DELETE = do_PATCH = _answer

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture()
def failing_server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    t.join(10)


@pytest.fixture()
def silent_server():
    """Accepts connections and never answers."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    yield f"http://127.0.0.1:{s.getsockname()[1]}"
    s.close()


@pytest.mark.parametrize("kind", ["5xx", "down", "silent"])
@pytest.mark.parametrize("keyed", [True, False])
def test_promote_and_verify_fail_fast_with_a_message(kind, keyed, failing_server, silent_server, monkeypatch):
    uri = {"5xx": failing_server, "down": f"http://127.0.0.1:{free_port()}", "silent": silent_server}[kind]
    for var in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)  # MLflow's defaults: 7 retries, 120 s, minutes in all
    env = {"TRUSTEQ_SIGNING_KEY": "k" * 64 if keyed else "", "TRUSTEQ_SIGNING_KEY_FILE": "",
           "TRUSTEQ_SIGNING_KEYS_FILE": ""}
    runner = CliRunner()
    for cmd, args in ((promote_command, ["m", "2", "--alias", "champion"]), (verify_command, ["m", "2"])):
        start = time.monotonic()
        res = runner.invoke(cmd, [*args, "--tracking-uri", uri, "--timeout", "2"], env=env)
        elapsed = time.monotonic() - start
        assert res.exit_code == 1, (res.exit_code, res.output, res.exception)
        assert elapsed < 20, elapsed
        assert "127.0.0.1" in res.output or "cannot read models:/m/2" in res.output, res.output
    import os

    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ  # restored after the command
