"""The webhook receiver: signature verification over real HTTP, and a real MLflow server delivering.

Signatures are made with MLflow's own webhook signer (the independent reference).  The
evaluation is injected as a small real function, so no model is trained here.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid

import pytest
import requests
from mlflow.webhooks.delivery import _generate_hmac_signature
from werkzeug.serving import make_server

from mlflow_trusteq._errors import InvalidInputError
from mlflow_trusteq.integration import registry
from mlflow_trusteq.integration.webhook import create_webhook_app, verify_webhook_signature
from trusteq_gate.signing import Keyring
from trusteq_gate.testing import free_port, gate_server, register_files

SECRET = "whsec-" + secrets.token_hex(16)
KEY = secrets.token_hex(32)


class Receiver:
    def __init__(self, app):
        self.app = app
        self.port = free_port()
        self.server = make_server("127.0.0.1", self.port, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}/webhook"
        self.state = app.extensions["trusteq_webhook"]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.thread.join(10)


def _post(url, event, *, secret=SECRET, delivery_id=None, ts=None, body=None, signature=None):
    body = body if body is not None else json.dumps(event)
    delivery_id = delivery_id or str(uuid.uuid4())
    ts = str(int(time.time()) if ts is None else ts)
    sig = signature if signature is not None else _generate_hmac_signature(secret, delivery_id, ts, body)
    headers = {"Content-Type": "application/json", "X-MLflow-Delivery-Id": delivery_id,
               "X-MLflow-Timestamp": ts, "X-MLflow-Signature": sig}
    return requests.post(url, data=body.encode(), headers=headers, timeout=30)


def _created(name="m", version="2", tags=None):
    return {"entity": "model_version", "action": "created", "timestamp": "2026-01-01T00:00:00+00:00",
            "data": {"name": name, "version": version, "source": "s3://b/2", "run_id": None,
                     "tags": {"trusteq.parent": "models:/m/1"} if tags is None else tags, "description": None}}


def test_signature_verification_matches_mlflows_signer():
    body = json.dumps(_created())
    sig = _generate_hmac_signature(SECRET, "d-1", "1700000000", body)
    assert verify_webhook_signature(SECRET, delivery_id="d-1", timestamp="1700000000", body=body.encode(),
                                    signature=sig, now=1700000000) is None
    bad = verify_webhook_signature("other-secret", delivery_id="d-1", timestamp="1700000000", body=body.encode(),
                                   signature=sig, now=1700000000)
    assert bad == "signature does not match"
    for kw in ({"delivery_id": "d-2"}, {"body": body.encode() + b" "}):
        args = {"delivery_id": "d-1", "timestamp": "1700000000", "body": body.encode(), **kw}
        assert verify_webhook_signature(SECRET, **args, signature=sig, now=1700000000) == "signature does not match"
    assert "stale" in verify_webhook_signature(SECRET, delivery_id="d-1", timestamp="1700000000",
                                               body=body.encode(), signature=sig, now=1700000000 + 301)
    assert "missing" in verify_webhook_signature(SECRET, delivery_id="", timestamp="1", body=b"", signature="")


def test_receiver_over_http_dispatches_only_verified_new_versions(tmp_path):
    calls = []

    def evaluate(name, version):
        calls.append((name, version))
        return f"judged {name}/{version}"

    with Receiver(create_webhook_app(secret=SECRET, evaluate=evaluate, state_path=tmp_path / "seen.db")) as rx:
        ok = _post(rx.url, _created(version="2"), delivery_id="del-1")
        assert ok.status_code == 202 and ok.json()["model_version"] == "models:/m/2"
        assert _post(rx.url, _created(version="2"), delivery_id="del-1").json()["status"] == "ignored"  # replay
        assert _post(rx.url, _created(version="3"), secret="wrong").status_code == 401
        assert _post(rx.url, _created(version="4"), ts=int(time.time()) - 3600).status_code == 401
        assert _post(rx.url, _created(version="5"), signature="v1,AAAA").status_code == 401
        assert _post(rx.url, _created(version="6", tags={})).json()["status"] == "ignored"  # no lineage
        other = {**_created(version="7"), "entity": "registered_model"}
        assert _post(rx.url, other).json()["status"] == "ignored"
        assert _post(rx.url, None, body="not json").status_code == 400
        assert rx.state.wait(timeout=30) == ["judged m/2"]
    assert calls == [("m", "2")]


@pytest.mark.parametrize("event, why", [
    ({**_created(), "data": None}, "'data' is NoneType"),
    ({**_created(), "data": [1, 2]}, "'data' is list"),
    (_created(tags=["trusteq.parent", "models:/m/1"]), "'data.tags' is a list"),
    ([1, 2, 3], "JSON list"),
    ({"entity": 1, "action": "created", "data": {}}, "'entity'"),
    ({**_created(), "data": {"name": "m", "version": {"n": 2}, "tags": {}}}, "name/version"),
])
def test_signed_but_malformed_payloads_are_a_400_not_a_500(tmp_path, event, why):
    calls = []
    app = create_webhook_app(secret=SECRET, evaluate=lambda n, v: calls.append((n, v)), state_path=tmp_path / "s.db")
    with Receiver(app) as rx:
        r = _post(rx.url, event)
        assert r.status_code == 400 and r.json()["status"] == "malformed", r.text
        assert why in r.json()["reason"], r.json()
    assert calls == []


def test_a_delivery_replayed_to_a_restarted_receiver_is_not_evaluated_again(tmp_path):
    calls = []
    state = tmp_path / "deliveries.sqlite3"
    event, delivery_id, ts = _created(version="2"), str(uuid.uuid4()), int(time.time())
    with Receiver(create_webhook_app(secret=SECRET, evaluate=lambda n, v: calls.append(v), state_path=state)) as rx:
        assert _post(rx.url, event, delivery_id=delivery_id, ts=ts).status_code == 202
        rx.state.wait(timeout=30)
    # the receiver restarts (a new process would open the same file); the captured delivery comes again
    with Receiver(create_webhook_app(secret=SECRET, evaluate=lambda n, v: calls.append(v), state_path=state)) as rx:
        again = _post(rx.url, event, delivery_id=delivery_id, ts=ts)
        assert again.status_code == 200 and again.json()["reason"] == "repeated delivery id", again.text
        assert _post(rx.url, _created(version="3")).status_code == 202  # a new delivery still is
        rx.state.wait(timeout=30)
    assert calls == ["2", "3"]


def test_receiver_needs_a_secret_and_data(monkeypatch):
    monkeypatch.delenv("TRUSTEQ_WEBHOOK_SECRET", raising=False)
    monkeypatch.delenv("TRUSTEQ_WEBHOOK_DATA", raising=False)
    with pytest.raises(InvalidInputError, match="TRUSTEQ_WEBHOOK_SECRET"):
        create_webhook_app(evaluate=lambda n, v: None)
    with pytest.raises(InvalidInputError, match="TRUSTEQ_WEBHOOK_DATA"):
        create_webhook_app(secret=SECRET)


@pytest.mark.slow
def test_mlflow_server_delivers_and_the_verdict_is_recorded(tmp_path):
    """A real gate server sends model_version.created; the receiver records a signed verdict."""
    from mlflow import MlflowClient

    ring = Keyring.from_secret(KEY)
    env = {"TRUSTEQ_SIGNING_KEY": KEY, "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
           "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true", "MLFLOW_WEBHOOK_CACHE_TTL": "1"}
    with gate_server(tmp_path / "srv", env=env) as srv:
        client = MlflowClient(srv.url, srv.url)

        def evaluate(name, version):  # a small real judge: the model file names its quality
            import mlflow.artifacts

            mv = client.get_model_version(name, version)
            path = mlflow.artifacts.download_artifacts(client.get_model_version_download_uri(name, version) +
                                                       "/model.bin", tracking_uri=srv.url)
            verdict = "pass" if open(path, "rb").read() == b"good" else "fail"
            return registry.record_verdict(client, name, version, verdict=verdict, run_id=f"run-{version}",
                                           parent_uri=mv.tags["trusteq.parent"], data_digest="sha256:d",
                                           policy_digest="sha256:p", reasons=[] if verdict == "pass"
                                           else ["loyalty too low"], keyring=ring)

        with Receiver(create_webhook_app(secret=SECRET, evaluate=evaluate, state_path=tmp_path / "seen.db")) as rx:
            client.create_webhook("trusteq", rx.url, events=["model_version.created"], secret=SECRET)
            client.create_registered_model("wh")
            register_files(client, "wh", {"model.bin": b"parent"})
            register_files(client, "wh", {"model.bin": b"good"}, tags={"trusteq.parent": "models:/wh/1"})
            register_files(client, "wh", {"model.bin": b"bad"}, tags={"trusteq.parent": "models:/wh/1"})
            deadline = time.monotonic() + 60
            while len(rx.state.jobs) < 2 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert len(rx.state.jobs) == 2, "the server did not deliver both webhooks"
            rx.state.wait(timeout=60)
        assert registry.verify_verdict(client, "wh", "2", keyring=ring).ok
        fail = registry.verify_verdict(client, "wh", "3", keyring=ring)
        assert not fail.ok and fail.signature_valid and fail.verdict_reasons == ("loyalty too low",)
        client.set_registered_model_alias("wh", "champion", "2")
        with pytest.raises(Exception, match="PERMISSION_DENIED"):
            client.set_registered_model_alias("wh", "champion", "3")
