"""The server-side gate: ``mlflow server --app-name trusteq-gate``.

A Flask ``before_request`` hook on MLflow's own app, keyed by the *handler* a request is routed
to (so every path that reaches a handler is covered: ``/api/2.0/mlflow/...``,
``/ajax-api/2.0/mlflow/...`` and any static prefix).  The request body is parsed with MLflow's
own parser, exactly as the handler will parse it.  What is refused (HTTP 403,
``PERMISSION_DENIED``):

* ``SetRegisteredModelAlias`` on a version without a valid signed ``pass`` verdict;
* ``TransitionModelVersionStage`` to Staging or Production, same condition;
* ``CreateModelVersion`` from a registry source ``models:/NAME/...`` (a copy: the client's
  ``copy_model_version`` and the UI's "Promote model") when the source version has no valid pass
  verdict, or with ``trusteq.*`` tags that are not the source's own;
* writes and deletes of ``trusteq.*`` tags without the evaluator's credential (the
  ``X-TrustEq-Tag-Auth`` header, an HMAC with the signing key over that exact write), except
  ``trusteq.parent`` (lineage) on a version that has no signed verdict yet.

Never refused: deleting an alias, transitions to None/Archived, aliases of GenAI prompts (they
share the registry but are not models; whether a registered model is a prompt is fixed at its
creation: the gate refuses later changes of the ``mlflow.prompt.is_prompt`` tag), anything else.

``TRUSTEQ_GATE_MODELS`` and ``TRUSTEQ_GATE_ALIASES`` (comma-separated shell patterns, default
``*``) narrow which registered models and aliases are gated.
"""

from __future__ import annotations

import fnmatch
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

from trusteq_gate.signing import (
    TAG_AUTH_HEADER,
    TAG_PARENT,
    TAG_SIGNATURE,
    Decision,
    Keyring,
    SigningKeyError,
    check_tag_write_token,
    check_version,
    is_trusteq_tag,
)

__all__ = ["VERIFY_PATH", "GateConfig", "install_gate", "create_app", "create_app_with_basic_auth"]

_logger = logging.getLogger("trusteq_gate")

_PROMOTION_STAGES = {"staging", "production"}

_IS_PROMPT_TAG = "mlflow.prompt.is_prompt"

VERIFY_PATH = "/2.0/trusteq/verify"
"""Read-only endpoint (under /api and /ajax-api): what the gate would decide for ?name=&version=."""


class GateConfig:
    """The gate's settings: keyring (None: nothing verifies) and the gated model/alias patterns."""

    def __init__(self, keyring: Keyring | None, models: str = "*", aliases: str = "*") -> None:
        self.keyring = keyring
        self.models = [p.strip() for p in models.split(",") if p.strip()]
        self.aliases = [p.strip() for p in aliases.split(",") if p.strip()]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GateConfig:
        env = os.environ if environ is None else environ
        try:
            keyring: Keyring | None = Keyring.from_env(env)
            _logger.info("trusteq-gate: verifying verdicts with %r", keyring)
        except SigningKeyError as e:
            _logger.error("trusteq-gate: %s Every promotion will be refused until a key is set.", e)
            keyring = None
        return cls(keyring, env.get("TRUSTEQ_GATE_MODELS", "*"), env.get("TRUSTEQ_GATE_ALIASES", "*"))

    def model_gated(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in self.models)

    def alias_gated(self, alias: str) -> bool:
        return any(fnmatch.fnmatchcase(alias, p) for p in self.aliases)


def _deny(message: str):
    from flask import make_response
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import PERMISSION_DENIED

    exc = MlflowException(message, error_code=PERMISSION_DENIED)
    resp = make_response(exc.serialize_as_json(), exc.get_http_status_code())
    resp.mimetype = "application/json"
    _logger.warning("trusteq-gate refused %s %s: %s", _request().method, _request().path, message)
    return resp


def _request():
    from flask import request

    return request


def _store():
    from mlflow.server.handlers import _get_model_registry_store

    return _get_model_registry_store()


def _lookup(store: Any) -> Callable[[str, str], tuple[str, Mapping[str, str]] | None]:
    from mlflow.exceptions import MlflowException

    def lookup(name: str, version: str) -> tuple[str, Mapping[str, str]] | None:
        try:
            mv = store.get_model_version(name, version)
        except MlflowException:
            return None
        return mv.source, dict(mv.tags)

    return lookup


def _decide(cfg: GateConfig, store: Any, name: str, version: str) -> Decision:
    mv = store.get_model_version(name, str(version))
    return check_version(name=mv.name, version=str(mv.version), source=mv.source, tags=dict(mv.tags),
                         keyring=cfg.keyring, lookup=_lookup(store))


def _parse(proto_cls: Any) -> Any:
    from mlflow.server.handlers import _get_request_message

    return _get_request_message(proto_cls())


def _refusal(what: str, decision: Decision) -> str:
    return f"trusteq-gate: {what} is refused. " + " ".join(r if r.endswith(".") else r + "." for r in decision.reasons)


# --- rules, one per handler ------------------------------------------------------------------

def _rule_set_alias(cfg: GateConfig):
    from mlflow.protos.model_registry_pb2 import SetRegisteredModelAlias

    msg = _parse(SetRegisteredModelAlias)
    if not (cfg.model_gated(msg.name) and cfg.alias_gated(msg.alias)):
        return None
    store = _store()
    if store.get_registered_model(msg.name)._is_prompt():
        return None  # GenAI prompts share the registry; they are not models and carry no verdict
    decision = _decide(cfg, store, msg.name, msg.version)
    if decision.ok:
        return None
    return _deny(_refusal(f"Setting alias {msg.alias!r} on models:/{msg.name}/{msg.version}", decision))


def _rule_transition(cfg: GateConfig):
    from mlflow.protos.model_registry_pb2 import TransitionModelVersionStage

    msg = _parse(TransitionModelVersionStage)
    if msg.stage.strip().lower() not in _PROMOTION_STAGES or not cfg.model_gated(msg.name):
        return None
    decision = _decide(cfg, _store(), msg.name, msg.version)
    if decision.ok:
        return None
    return _deny(_refusal(f"Transitioning models:/{msg.name}/{msg.version} to stage {msg.stage!r}", decision))


def _copy_source(store: Any, source: str) -> tuple[str, str] | None:
    """(name, version) of the registered version a ``models:/`` source points to, else None."""
    from mlflow.store.artifact.utils.models import _parse_model_uri, get_model_name_and_version

    if not source.strip().lower().startswith("models:"):
        return None
    parsed = _parse_model_uri(source)  # raises MlflowException for a malformed URI, as the handler does
    if parsed.model_id is not None:
        return None  # a logged model (models:/m-...), not a registered version
    name, version = get_model_name_and_version(store, source)
    return name, str(version)


def _rule_create_version(cfg: GateConfig):
    from mlflow.protos.model_registry_pb2 import CreateModelVersion

    msg = _parse(CreateModelVersion)
    tq = {t.key: t.value for t in msg.tags if is_trusteq_tag(t.key)}
    store = _store()
    origin = _copy_source(store, msg.source)
    if origin is None:
        extra = sorted(k for k in tq if k != TAG_PARENT)
        if extra:
            return _deny(f"trusteq-gate: creating a version of {msg.name!r} with tag(s) {extra} is refused: "
                         "trusteq.* tags other than the lineage tag 'trusteq.parent' are written only by the "
                         "trusteq evaluator after an evaluation.")
        return None
    src_name, src_version = origin
    if not (cfg.model_gated(src_name) or cfg.model_gated(msg.name)):
        return None
    decision = _decide(cfg, store, src_name, src_version)
    what = f"Copying (promoting) models:/{src_name}/{src_version} into {msg.name!r}"
    if not decision.ok:
        return _deny(_refusal(what, decision))
    src_tags = dict(store.get_model_version(src_name, src_version).tags)
    changed = sorted(k for k, v in tq.items() if src_tags.get(k) != v)
    if changed:
        return _deny(f"trusteq-gate: {what} is refused: the copy's trusteq tag(s) {changed} differ from the "
                     "source version's; a copy may only carry the source's verdict unchanged.")
    return None


def _tag_write_rule(cfg: GateConfig, *, op: str, name: str, version: str, key: str, value: str):
    if not version and key.strip().lower() == _IS_PROMPT_TAG:
        return _deny(f"trusteq-gate: changing tag {key!r} of registered model {name!r} is refused: whether a "
                     "registered model is a prompt is fixed when it is created (prompts are exempt from the gate, "
                     "so turning a model into a prompt would bypass it).")
    if not is_trusteq_tag(key):
        return None
    if version and key == TAG_PARENT:
        mv = _store().get_model_version(name, version)
        if TAG_SIGNATURE not in mv.tags:
            return None  # lineage may be named (and renamed) until a verdict is signed
    why = check_tag_write_token(cfg.keyring, _request().headers.get(TAG_AUTH_HEADER), op=op, name=name,
                                version=version, key=key, value=value)
    if why is None:
        return None
    target = f"models:/{name}/{version}" if version else f"registered model {name!r}"
    return _deny(f"trusteq-gate: {'writing' if op == 'set' else 'deleting'} tag {key!r} on {target} is refused: "
                 f"{why}. Tags in the 'trusteq.' namespace are written only by the trusteq evaluator "
                 "(with the signing key); the lineage tag 'trusteq.parent' can be set until a verdict is "
                 "recorded. Run a trusteq evaluation to record a verdict.")


def _rule_set_mv_tag(cfg: GateConfig):
    from mlflow.protos.model_registry_pb2 import SetModelVersionTag

    m = _parse(SetModelVersionTag)
    return _tag_write_rule(cfg, op="set", name=m.name, version=str(m.version), key=m.key, value=m.value)


def _rule_delete_mv_tag(cfg: GateConfig):
    from mlflow.protos.model_registry_pb2 import DeleteModelVersionTag

    m = _parse(DeleteModelVersionTag)
    return _tag_write_rule(cfg, op="delete", name=m.name, version=str(m.version), key=m.key, value="")


def _rule_set_rm_tag(cfg: GateConfig):
    from mlflow.protos.model_registry_pb2 import SetRegisteredModelTag

    m = _parse(SetRegisteredModelTag)
    return _tag_write_rule(cfg, op="set", name=m.name, version="", key=m.key, value=m.value)


def _rule_delete_rm_tag(cfg: GateConfig):
    from mlflow.protos.model_registry_pb2 import DeleteRegisteredModelTag

    m = _parse(DeleteRegisteredModelTag)
    return _tag_write_rule(cfg, op="delete", name=m.name, version="", key=m.key, value="")


def _rules() -> dict[str, Callable[[GateConfig], Any]]:
    """Flask endpoint name (the handler's ``__name__``) -> rule."""
    from mlflow.protos.model_registry_pb2 import (
        CreateModelVersion,
        DeleteModelVersionTag,
        DeleteRegisteredModelTag,
        SetModelVersionTag,
        SetRegisteredModelAlias,
        SetRegisteredModelTag,
        TransitionModelVersionStage,
    )
    from mlflow.server.handlers import HANDLERS

    by_proto = {
        SetRegisteredModelAlias: _rule_set_alias,
        TransitionModelVersionStage: _rule_transition,
        CreateModelVersion: _rule_create_version,
        SetModelVersionTag: _rule_set_mv_tag,
        DeleteModelVersionTag: _rule_delete_mv_tag,
        SetRegisteredModelTag: _rule_set_rm_tag,
        DeleteRegisteredModelTag: _rule_delete_rm_tag,
    }
    return {HANDLERS[proto].__name__: rule for proto, rule in by_proto.items()}


def install_gate(flask_app: Any, config: GateConfig | None = None) -> GateConfig:
    """Register the gate's ``before_request`` hook on MLflow's Flask app.

    Raises
    ------
    RuntimeError
        When a handler the gate must guard is not routed by this MLflow (an MLflow upgrade moved
        it): the server must not start with a hole in the gate.
    """
    from mlflow.exceptions import MlflowException

    cfg = config or GateConfig.from_env()
    rules = _rules()
    missing = sorted(set(rules) - set(flask_app.view_functions))
    if missing:
        raise RuntimeError(f"trusteq-gate: MLflow's app has no endpoint(s) {missing}; this MLflow version is not "
                           "supported by trusteq-gate (pinned to mlflow 3.17).")

    def trusteq_gate_before_request():
        rule = rules.get(_request().endpoint or "")
        if rule is None:
            return None
        try:
            return rule(cfg)
        except MlflowException as e:  # the handler would fail the same way: answer as it would
            from flask import make_response

            resp = make_response(e.serialize_as_json(), e.get_http_status_code())
            resp.mimetype = "application/json"
            return resp
        except Exception as e:  # fail closed
            _logger.exception("trusteq-gate: error while checking %s", _request().path)
            return _deny(f"trusteq-gate could not check this request and refuses it (fail closed): "
                         f"{type(e).__name__}: {e}")

    flask_app.before_request(trusteq_gate_before_request)

    def trusteq_gate_verify():
        """GET ?name=&version= -> the gate's Decision as JSON (read-only; what a promotion would meet)."""
        from flask import jsonify

        req = _request()
        name, version = req.args.get("name", ""), req.args.get("version", "")
        if not name or not version:
            from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

            exc = MlflowException("Both 'name' and 'version' query parameters are required.",
                                  error_code=INVALID_PARAMETER_VALUE)
            return exc.serialize_as_json(), exc.get_http_status_code(), {"Content-Type": "application/json"}
        try:
            decision = _decide(cfg, _store(), name, version)
        except MlflowException as e:
            return e.serialize_as_json(), e.get_http_status_code(), {"Content-Type": "application/json"}
        return jsonify(decision.to_dict())

    from mlflow.server.handlers import _add_static_prefix

    for prefix in ("/api", "/ajax-api"):
        flask_app.add_url_rule(_add_static_prefix(f"{prefix}{VERIFY_PATH}"), f"trusteq_gate_verify{prefix}",
                               trusteq_gate_verify, methods=["GET"])
    _logger.info("trusteq-gate installed on %d endpoint(s): %s", len(rules), sorted(rules))
    return cfg


def _serve(flask_app: Any) -> Any:
    from mlflow.environment_variables import _MLFLOW_SGI_NAME

    if _MLFLOW_SGI_NAME.get() == "uvicorn":
        from mlflow.server.fastapi_app import create_fastapi_app

        return create_fastapi_app(flask_app)
    return flask_app


def create_app() -> Any:
    """``mlflow.app`` entry point ``trusteq-gate``: MLflow's server with the promotion gate."""
    from mlflow.server import app as flask_app

    install_gate(flask_app)
    return _serve(flask_app)


def create_app_with_basic_auth() -> Any:
    """``mlflow.app`` entry point ``trusteq-gate-auth``: MLflow's basic-auth, then the gate.

    Basic-auth's hooks run first (authentication and permissions), the gate's after them, so a
    user needs both the registry permission and a valid verdict to promote.
    """
    from mlflow.server import app as flask_app
    from mlflow.server.auth import create_app as basic_auth_create_app

    served = basic_auth_create_app(flask_app)
    install_gate(flask_app)
    return served
