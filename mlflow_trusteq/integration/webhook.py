"""A receiver for MLflow webhooks: evaluate every new candidate version and record its verdict.

MLflow (3.3+) POSTs ``model_version.created`` events to a registered webhook URL, signed with the
webhook's secret::

    X-MLflow-Delivery-Id: <uuid>      X-MLflow-Timestamp: <unix seconds>
    X-MLflow-Signature: v1,<base64(HMAC-SHA256(secret, f"{delivery_id}.{timestamp}.{body}"))>

The receiver verifies the signature (constant-time), refuses stale timestamps and replayed
delivery ids, answers ``202`` at once and evaluates in a background worker (MLflow's delivery
times out after ``MLFLOW_WEBHOOK_REQUEST_TIMEOUT`` seconds, an evaluation takes longer): a new
version whose tags name a parent (``trusteq.parent``) is compared with that parent and the
signed verdict is recorded on it.  Versions without the lineage tag are ignored.

Settings (environment, or arguments of :func:`create_webhook_app`):

``TRUSTEQ_WEBHOOK_SECRET``        the secret given to ``MlflowClient().create_webhook(..., secret=)``
``TRUSTEQ_WEBHOOK_DATA``          evaluation data (.csv, .tsv or .parquet)
``TRUSTEQ_WEBHOOK_LABEL_COLUMN``  its gold-label column
``TRUSTEQ_WEBHOOK_POLICY``        a policy TOML file (default: the built-in policy)
``TRUSTEQ_WEBHOOK_STATE``         sqlite file of the delivery ids already received (default
                                  ``trusteq-webhook-deliveries.sqlite3`` in the working directory):
                                  a delivery replayed after a restart is not evaluated again
``TRUSTEQ_SIGNING_KEY`` (etc.)    the verdict signing key, as for the evaluator
``MLFLOW_TRACKING_URI``           the tracking server to read models from and record verdicts on

On the tracking server: ``MLFLOW_WEBHOOK_ALLOWED_SCHEMES=https`` (the default; add ``http`` only
for an in-cluster receiver), ``MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS=true`` when the receiver has a
private address, and ``MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY`` so that webhook secrets are stored
encrypted.  Webhooks need a SQL backend store.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .._errors import InvalidInputError

__all__ = ["create_webhook_app", "verify_webhook_signature", "WebhookState"]

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-MLflow-Signature"
TIMESTAMP_HEADER = "X-MLflow-Timestamp"
DELIVERY_ID_HEADER = "X-MLflow-Delivery-Id"
SIGNATURE_VERSION = "v1"


def verify_webhook_signature(secret: str, *, delivery_id: str, timestamp: str, body: bytes, signature: str,
                             max_age_s: float = 300.0, now: float | None = None) -> str | None:
    """None when the MLflow webhook signature is valid and fresh, else the reason it is not.

    .. math:: \\mathrm{sig} = \\mathrm{v1,}\\ \\mathrm{base64}(\\mathrm{HMAC\\text{-}SHA256}(
              \\mathrm{secret},\\ \\mathrm{delivery\\_id} \\,.\\, \\mathrm{timestamp} \\,.\\, \\mathrm{body}))
    """
    if not (delivery_id and timestamp and signature):
        return f"missing {DELIVERY_ID_HEADER}, {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header"
    try:
        ts = int(timestamp)
    except ValueError:
        return f"{TIMESTAMP_HEADER} is not a unix timestamp: {timestamp!r}"
    now = time.time() if now is None else now
    if abs(now - ts) > max_age_s:
        return f"stale delivery: timestamp {ts} is more than {max_age_s:.0f} s from now"
    version, _, sig_b64 = signature.partition(",")
    if version != SIGNATURE_VERSION or not sig_b64:
        return f"unsupported signature format {signature[:20]!r}"
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "body is not UTF-8"
    mac = hmac.new(secret.encode("utf-8"), f"{delivery_id}.{timestamp}.{text}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(base64.b64encode(mac).decode("ascii"), sig_b64):
        return "signature does not match"
    return None


DEFAULT_STATE_FILE = "trusteq-webhook-deliveries.sqlite3"


class WebhookState:
    """Background jobs and seen delivery ids of one receiver (``app.extensions['trusteq_webhook']``).

    The delivery ids are kept in a sqlite file (``state_path``), so they survive a restart and
    are shared by several receiver processes on one host; an id is remembered for
    ``keep_s`` seconds (longer than the receiver's replay window: an older delivery is refused by
    its timestamp anyway).
    """

    def __init__(self, state_path: str | os.PathLike[str], keep_s: float = 3600.0) -> None:
        self.jobs: list[Future] = []
        self.state_path = Path(state_path)
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        self._keep_s = keep_s
        self._lock = threading.Lock()
        with self._db() as db:
            db.execute("CREATE TABLE IF NOT EXISTS deliveries (delivery_id TEXT PRIMARY KEY, received_s REAL)")
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="trusteq-webhook")

    def _db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.state_path, timeout=30, isolation_level=None)

    def first_time(self, delivery_id: str) -> bool:
        """Record ``delivery_id``; False when it was received before (by this or an earlier process)."""
        now = time.time()
        with self._lock:
            db = self._db()
            try:
                db.execute("BEGIN IMMEDIATE")
                db.execute("DELETE FROM deliveries WHERE received_s < ?", (now - self._keep_s,))
                cur = db.execute("INSERT OR IGNORE INTO deliveries VALUES (?, ?)", (delivery_id, now))
                db.execute("COMMIT")
                return cur.rowcount == 1
            finally:
                db.close()

    def wait(self, timeout: float | None = None) -> list[Any]:
        """Wait for every submitted evaluation; returns their results (raises the first error)."""
        return [job.result(timeout=timeout) for job in list(self.jobs)]


def _malformed(event: Any) -> str | None:
    """Why a (signed, parsed) delivery is not an MLflow webhook event, or None."""
    if not isinstance(event, dict):
        return f"the body is a JSON {type(event).__name__}, expected an object"
    for key in ("entity", "action"):
        if not isinstance(event.get(key), str):
            return f"'{key}' is missing or not a string"
    if not isinstance(event.get("data"), dict):
        return f"'data' is {'missing' if 'data' not in event else type(event['data']).__name__}, expected an object"
    return None


def _default_evaluate(data: Any, targets: str | None, policy: str | None) -> Callable[..., Any]:
    def evaluate(name: str, version: str) -> Any:
        from . import evaluate_version

        frame = data
        if isinstance(frame, (str, os.PathLike)):
            from .._data import read_table

            frame = read_table(str(frame))
        return evaluate_version(name, version, data=frame, targets=targets, policy=policy)

    return evaluate


def create_webhook_app(
    *,
    secret: str | None = None,
    evaluate: Callable[[str, str], Any] | None = None,
    data: Any = None,
    targets: str | None = None,
    policy: str | None = None,
    max_age_s: float = 300.0,
    state_path: str | os.PathLike[str] | None = None,
) -> Any:
    """A Flask app receiving MLflow webhooks at ``POST /`` (and ``POST /webhook``).

    Parameters
    ----------
    secret : str, optional
        The webhook secret; default ``TRUSTEQ_WEBHOOK_SECRET``.  Required.
    evaluate : callable, optional
        ``evaluate(name, version)``: judge a new version and record its verdict.  Default:
        :func:`mlflow_trusteq.integration.evaluate_version` on ``data`` / ``targets`` /
        ``policy`` (defaults ``TRUSTEQ_WEBHOOK_DATA``, ``..._LABEL_COLUMN``, ``..._POLICY``).
    max_age_s : float
        Deliveries whose timestamp is further than this from now are refused (replay window).
    state_path : path, optional
        The sqlite file of delivery ids already received; default ``TRUSTEQ_WEBHOOK_STATE`` or
        ``trusteq-webhook-deliveries.sqlite3`` in the working directory.

    Responses: ``202`` evaluation queued, ``200`` ignored (other event, no lineage tag, a
    repeated delivery), ``400`` malformed, ``401`` bad or stale signature.
    """
    from flask import Flask, jsonify, request

    secret = _secret(secret)
    evaluate = evaluate or _evaluate_from_settings(data, targets, policy)
    state = WebhookState(state_path or os.environ.get("TRUSTEQ_WEBHOOK_STATE") or DEFAULT_STATE_FILE,
                         keep_s=max(3600.0, 4 * max_age_s))
    app = Flask("trusteq_webhook")
    app.extensions["trusteq_webhook"] = state
    run = _logged(evaluate)

    def receive() -> Any:
        try:
            headers = request.headers
            name, version = _accept(request.get_data(cache=False), delivery_id=headers.get(DELIVERY_ID_HEADER, ""),
                                    timestamp=headers.get(TIMESTAMP_HEADER, ""),
                                    signature=headers.get(SIGNATURE_HEADER, ""), secret=secret,
                                    max_age_s=max_age_s, state=state)
        except _Answer as answer:
            return jsonify(answer.body), answer.status
        state.jobs.append(state.pool.submit(run, name, version))
        return jsonify({"status": "queued", "model_version": f"models:/{name}/{version}"}), 202

    for rule in ("/", "/webhook"):
        app.add_url_rule(rule, f"receive{rule.replace('/', '_')}", receive, methods=["POST"])
    app.add_url_rule("/health", "health", lambda: "OK")
    return app


def _secret(secret: str | None) -> str:
    secret = secret or os.environ.get("TRUSTEQ_WEBHOOK_SECRET")
    if not secret:
        raise InvalidInputError("No webhook secret: set TRUSTEQ_WEBHOOK_SECRET (or pass secret=) to the secret "
                                "given to MlflowClient().create_webhook(..., secret=...)")
    return secret


def _evaluate_from_settings(data: Any, targets: str | None, policy: str | None) -> Callable[[str, str], Any]:
    """The default ``evaluate(name, version)``: the arguments, else the ``TRUSTEQ_WEBHOOK_*`` environment."""
    data = data if data is not None else os.environ.get("TRUSTEQ_WEBHOOK_DATA")
    if data is None:
        raise InvalidInputError("No evaluation data: set TRUSTEQ_WEBHOOK_DATA to a .csv/.tsv/.parquet file "
                                "(or pass data=)")
    return _default_evaluate(data, targets or os.environ.get("TRUSTEQ_WEBHOOK_LABEL_COLUMN"),
                             policy or os.environ.get("TRUSTEQ_WEBHOOK_POLICY"))


def _logged(evaluate: Callable[[str, str], Any]) -> Callable[[str, str], Any]:
    """``evaluate`` as the background job runs it: logged, a failure logged (no verdict) and re-raised."""
    def run(name: str, version: str) -> Any:
        logger.info("webhook: evaluating models:/%s/%s", name, version)
        try:
            return evaluate(name, version)
        except Exception:
            logger.exception("webhook: evaluation of models:/%s/%s failed; no verdict recorded", name, version)
            raise

    return run


class _Answer(Exception):
    """A delivery answered without an evaluation: the JSON body and the HTTP status."""

    def __init__(self, status: int, outcome: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.body = {"status": outcome, "reason": reason}


def _accept(body: bytes, *, delivery_id: str, timestamp: str, signature: str, secret: str, max_age_s: float,
            state: WebhookState) -> tuple[str, str]:
    """The new version a delivery asks to evaluate, in the order of the checks; else raises :class:`_Answer`."""
    why = verify_webhook_signature(secret, delivery_id=delivery_id, timestamp=timestamp, body=body,
                                   signature=signature, max_age_s=max_age_s)
    if why is not None:
        logger.warning("webhook: refused a delivery: %s", why)
        raise _Answer(401, "refused", why)
    event = _parse_event(body)
    if not state.first_time(delivery_id):
        raise _Answer(200, "ignored", "repeated delivery id")
    kind = (event["entity"], event["action"])
    if kind != ("model_version", "created"):
        raise _Answer(200, "ignored", f"event {kind[0]}.{kind[1]}")
    return _new_version(event["data"])


def _parse_event(body: bytes) -> dict[str, Any]:
    try:
        event = json.loads(body)
    except ValueError as e:
        raise _Answer(400, "malformed", f"not JSON: {e}") from None
    why = _malformed(event)
    if why is not None:
        raise _Answer(400, "malformed", f"not an MLflow webhook payload: {why}")
    return event


def _new_version(payload: Mapping[str, Any]) -> tuple[str, str]:
    """The name and version of a ``model_version.created`` payload whose tags name a parent."""
    name, version = payload.get("name"), payload.get("version")
    if not isinstance(name, str) or not name or not isinstance(version, (str, int)) \
            or not str(version).isascii() or not str(version).isdigit():
        raise _Answer(400, "malformed", "payload without model name/version")
    version = str(version)
    tags = payload.get("tags")
    if tags is not None and not isinstance(tags, dict):
        raise _Answer(400, "malformed", f"'data.tags' is a {type(tags).__name__}, expected an object")
    if not (tags or {}).get("trusteq.parent"):
        raise _Answer(200, "ignored", f"models:/{name}/{version} names no parent (tag trusteq.parent)")
    return name, version
