"""The server-side gate: ``mlflow server --app-name trusteq-gate``.

A Flask ``before_request`` hook on MLflow's own app, keyed by the *handler* a request is routed
to (so every path that reaches a handler is covered: ``/api/2.0/mlflow/...``,
``/ajax-api/2.0/mlflow/...`` and any static prefix).  The request body is parsed with MLflow's
own parser, exactly as the handler will parse it.  What is refused (HTTP 403,
``PERMISSION_DENIED``), for gated models and aliases:

* ``SetRegisteredModelAlias`` on a version without a valid signed ``pass`` verdict whose
  signed content digest matches the version's files now;
* ``TransitionModelVersionStage`` to Staging or Production, same condition;
* ``CreateModelVersion`` that MLflow's handler will record as a copy of a registered version
  (decided by MLflow's own source resolution, so every spelling MLflow normalises into
  ``models:/NAME/N`` counts): refused when the source version has no valid pass, when the
  source is not the literal ``models:/NAME/N`` (``latest``, aliases, stages, odd spellings: the
  version checked must be the version copied), or when its ``trusteq.*`` tags differ from the
  source's;
* ``RenameRegisteredModel`` onto a gated name: the model's aliases and Staging/Production
  versions move with it, so each of them is checked as a promotion;
* writes and deletes of ``trusteq.*`` tags, on versions and registered models, by any route
  (set-tag, delete-tag, create with tags, rename), without the evaluator's single-use
  credential (``X-TrustEq-Tag-Auth``, see :mod:`trusteq_gate.ledger`), except ``trusteq.parent``
  (lineage) on a version that has no signed verdict yet;
* changing the ``mlflow.prompt.is_prompt`` tag of a registered model.

Never refused: deleting an alias, transitions to None/Archived, aliases on GenAI prompt
*versions* (a version whose source is MLflow's prompt placeholder: it holds a template, not a
model; whether the registered model is tagged as a prompt does not matter), anything else.

``TRUSTEQ_GATE_MODELS`` and ``TRUSTEQ_GATE_ALIASES`` (comma-separated shell patterns, default
``*``) narrow which registered models and aliases are gated.  ``TRUSTEQ_GATE_ALIAS_POLICIES``
names a file of per-alias (and per-stage) policies (:mod:`trusteq_gate.alias_policies`): an alias
listed there needs a signed passing outcome of its own policy, not the verdict's overall pass; a
malformed file stops the server from starting.

A refusal is one line: what was refused, the first reason, and a link to the details (the
evaluation's report in the MLflow UI, or the gate's verify endpoint for the version).
"""

from __future__ import annotations

import fnmatch
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

from trusteq_gate.alias_policies import AliasPolicies
from trusteq_gate.content import server_version_digest
from trusteq_gate.ledger import ledger_for
from trusteq_gate.signing import (
    MAX_VERSION,
    TAG_AUTH_HEADER,
    TAG_PARENT,
    TAG_SIGNATURE,
    Decision,
    Keyring,
    PolicyRequirement,
    SigningKeyError,
    check_tag_write_token,
    check_version,
    is_trusteq_tag,
    parse_version_number,
    tag_write_token_id,
)

__all__ = ["VERIFY_PATH", "GateConfig", "copy_origin", "install_gate", "create_app", "create_app_with_basic_auth"]

_logger = logging.getLogger("trusteq_gate")

_PROMOTION_STAGES = {"staging", "production"}

_IS_PROMPT_TAG = "mlflow.prompt.is_prompt"

VERIFY_PATH = "/2.0/trusteq/verify"
"""Read-only endpoint (under /api and /ajax-api): what the gate would decide for ?name=&version=
(and, with ``alias=`` or ``stage=``, under the policy the server requires for it)."""

REPORT_ARTIFACT = "trusteq/report.html"
"""Where the trusteq evaluator logs its report in the evaluation's run (a refusal links to it)."""


class GateConfig:
    """The gate's settings: keyring (None: nothing verifies), the gated patterns, the per-alias policies."""

    def __init__(self, keyring: Keyring | None, models: str = "*", aliases: str = "*",
                 policies: AliasPolicies | None = None) -> None:
        self.keyring = keyring
        self.models = [p.strip() for p in models.split(",") if p.strip()]
        self.aliases = [p.strip() for p in aliases.split(",") if p.strip()]
        self.policies = policies or AliasPolicies()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GateConfig:
        """The settings from the environment.

        Raises
        ------
        AliasPolicyError
            When ``TRUSTEQ_GATE_ALIAS_POLICIES`` names a file that is missing or malformed.
        """
        env = os.environ if environ is None else environ
        try:
            keyring: Keyring | None = Keyring.from_env(env)
            _logger.info("trusteq-gate: verifying verdicts with %r", keyring)
        except SigningKeyError as e:
            _logger.error("trusteq-gate: %s Every promotion will be refused until a key is set.", e)
            keyring = None
        policies = AliasPolicies.from_env(env)
        for rule in (*policies.aliases, *policies.stages):
            _logger.info("trusteq-gate: %s on models %s requires policy %r (%s)", rule.target, list(rule.models),
                         rule.requirement.name, ", ".join(d[:12] for d in rule.requirement.digests))
        return cls(keyring, env.get("TRUSTEQ_GATE_MODELS", "*"), env.get("TRUSTEQ_GATE_ALIASES", "*"), policies)

    def model_gated(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in self.models)

    def alias_gated(self, alias: str) -> bool:
        return any(fnmatch.fnmatchcase(alias, p) for p in self.aliases)

    def alias_rule(self, name: str, alias: str) -> tuple[bool, tuple[PolicyRequirement, ...]]:
        """``(gated, requirements)`` for setting ``alias`` on a version of ``name``.

        An alias with a policy of its own is gated even where the patterns would not gate it.
        """
        required = self.policies.for_alias(name, alias)
        return bool(required) or (self.model_gated(name) and self.alias_gated(alias)), required


def _deny(message: str) -> Any:
    from flask import make_response
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import PERMISSION_DENIED

    exc = MlflowException(message, error_code=PERMISSION_DENIED)
    resp = make_response(exc.serialize_as_json(), exc.get_http_status_code())
    resp.mimetype = "application/json"
    _logger.warning("trusteq-gate refused %s %s: %s", _request().method, _request().path, message)
    return resp


def _request() -> Any:
    from flask import request

    return request


def _store() -> Any:
    from mlflow.server.handlers import _get_model_registry_store

    return _get_model_registry_store()


def _version(version: Any) -> str:
    """The version number as the registry stores it, or a 400 that names the problem."""
    from mlflow.exceptions import MlflowException

    n = parse_version_number(version)
    if n is None:
        raise MlflowException.invalid_parameter_value(
            f"trusteq-gate: {str(version)[:40]!r} is not a model version number (an integer from 1 to {MAX_VERSION}).")
    return str(n)


def _lookup(store: Any) -> Callable[[str, str], tuple[str, Mapping[str, str]] | None]:
    from mlflow.exceptions import MlflowException

    def lookup(name: str, version: str) -> tuple[str, Mapping[str, str]] | None:
        try:
            mv = store.get_model_version(name, version)
        except MlflowException:
            return None
        return mv.source, dict(mv.tags)

    return lookup


def _decide(cfg: GateConfig, store: Any, name: str, version: str, required: tuple[PolicyRequirement, ...] = (),
            required_for: str = "this promotion") -> Decision:
    """The gate's decision for one version: signed pass (or the required policies' passes), files unchanged."""
    mv = store.get_model_version(name, _version(version))
    return check_version(name=mv.name, version=str(mv.version), source=mv.source, tags=dict(mv.tags),
                         keyring=cfg.keyring, lookup=_lookup(store),
                         content_of=lambda n, v: server_version_digest(store, n, v),
                         required=required, required_for=required_for)


def _is_prompt_version(mv: Any) -> bool:
    """A GenAI prompt version: its source is MLflow's prompt placeholder, so it serves no model files."""
    from mlflow.prompt.constants import _PROMPT_SOURCE_PLACEHOLDERS

    return mv.source in _PROMPT_SOURCE_PLACEHOLDERS and str(mv.tags.get(_IS_PROMPT_TAG, "")).lower() == "true"


def _parse(proto_cls: Any) -> Any:
    from mlflow.server.handlers import _get_request_message

    return _get_request_message(proto_cls())


_MAX_HEADLINE = 300


def _refusal(what: str, decision: Decision, name: str, version: str) -> str:
    """One line: what is refused, the first reason, and where the details are."""
    first = decision.headline or (decision.reasons[0] if decision.reasons else "no valid pass verdict")
    label = f"models:/{name}/{version}"  # already named by ``what``
    if first.startswith(label + ": "):
        first = first[len(label) + 2:]
    elif first.startswith(label + " "):
        first = "it " + first[len(label) + 1:]
    if len(first) > _MAX_HEADLINE:
        first = first[:_MAX_HEADLINE - 1].rstrip() + "…"
    return f"trusteq-gate: {what} is refused: {first.rstrip('.')}. Details: {_details_link(decision, name, version)}"


def _details_link(decision: Decision, name: str, version: str) -> str:
    """The evaluation's report in the MLflow UI (from the signed run id), else the gate's verify endpoint."""
    import urllib.parse

    from mlflow.server.handlers import _add_static_prefix, _get_tracking_store

    base = _request().host_url.rstrip("/")
    run_id = str(decision.fields.get("run_id") or "")
    if run_id and decision.signature_valid:
        try:
            experiment_id = _get_tracking_store().get_run(run_id).info.experiment_id
        except Exception:  # no such run on this server (or unreadable): the verify endpoint has the details
            _logger.debug("trusteq-gate: run %r of the verdict not found", run_id, exc_info=True)
        else:
            return (f"{base}{_add_static_prefix('/')}#/experiments/{experiment_id}/runs/{run_id}/artifacts/"
                    f"{REPORT_ARTIFACT}")
    query = urllib.parse.urlencode({"name": name, "version": version})
    return f"{base}{_add_static_prefix('/api' + VERIFY_PATH)}?{query}"


def _promotion_refusal(cfg: GateConfig, store: Any, name: str, version: str, what: str,
                       required: tuple[PolicyRequirement, ...] = (), required_for: str = "") -> str | None:
    """None when ``models:/name/version`` may be promoted (a prompt version, or a valid pass), else why not."""
    mv = store.get_model_version(name, _version(version))
    if _is_prompt_version(mv):
        return None  # a prompt template, not a model: it carries no verdict and serves no model files
    decision = _decide(cfg, store, name, version, required, required_for or "this promotion")
    return None if decision.ok else _refusal(what, decision, name, _version(version))


# --- rules, one per handler ------------------------------------------------------------------

def _rule_set_alias(cfg: GateConfig) -> Any:
    from mlflow.protos.model_registry_pb2 import SetRegisteredModelAlias

    msg = _parse(SetRegisteredModelAlias)
    version = _version(msg.version)
    gated, required = cfg.alias_rule(msg.name, msg.alias)
    if not gated:
        return None
    why = _promotion_refusal(cfg, _store(), msg.name, version,
                             f"Setting alias {msg.alias!r} on models:/{msg.name}/{version}", required,
                             f"alias {msg.alias!r}")
    return None if why is None else _deny(why)


def _rule_transition(cfg: GateConfig) -> Any:
    from mlflow.protos.model_registry_pb2 import TransitionModelVersionStage

    msg = _parse(TransitionModelVersionStage)
    version = _version(msg.version)
    stage = msg.stage.strip().lower()
    required = cfg.policies.for_stage(msg.name, stage) if stage in _PROMOTION_STAGES else ()
    if stage not in _PROMOTION_STAGES or not (cfg.model_gated(msg.name) or required):
        return None
    why = _promotion_refusal(cfg, _store(), msg.name, version,
                             f"Transitioning models:/{msg.name}/{version} to stage {msg.stage!r}", required,
                             f"stage {msg.stage!r}")
    return None if why is None else _deny(why)


def copy_origin(msg: Any) -> tuple[str, str, str] | None:
    """``(name, version, normalised source)`` when MLflow's handler will record ``msg`` as a copy.

    ``msg`` is a parsed ``CreateModelVersion``.  Decided by the handler's own code, on the same
    parsed value: a prompt request (``mlflow.prompt.is_prompt`` tag) is never a copy; otherwise
    ``urllib.parse.urlparse(source).scheme == "models"`` (which strips and ignores control
    characters and case) and not a logged model, resolved by
    ``_resolve_registered_model_source_lineage`` into the ``models:/NAME/N`` that MLflow records.
    Raises MLflow's own ``MlflowException`` for a source the handler would refuse.
    """
    import urllib.parse

    from mlflow.server.handlers import _is_prompt_request, _resolve_registered_model_source_lineage
    from mlflow.store.artifact.utils.models import _parse_model_uri

    if _is_prompt_request(msg) or urllib.parse.urlparse(msg.source).scheme != "models":
        return None
    source, _, _ = _resolve_registered_model_source_lineage(
        msg.source, msg.run_id, msg.model_id, has_run_id=msg.HasField("run_id"),
        has_model_id=msg.HasField("model_id"))
    parsed = _parse_model_uri(source)
    if parsed.model_id is not None or parsed.name is None:
        return None  # a logged model (models:/m-...), not a registered version
    return parsed.name, str(parsed.version), source


def _rule_create_version(cfg: GateConfig) -> Any:
    from mlflow.protos.model_registry_pb2 import CreateModelVersion

    msg = _parse(CreateModelVersion)
    tq = {t.key: t.value for t in msg.tags if is_trusteq_tag(t.key)}
    store = _store()
    origin = copy_origin(msg)
    if origin is None:
        extra = sorted(k for k in tq if k != TAG_PARENT)
        if extra:
            return _deny(f"trusteq-gate: creating a version of {msg.name!r} with tag(s) {extra} is refused: "
                         "trusteq.* tags other than the lineage tag 'trusteq.parent' are written only by the "
                         "trusteq evaluator after an evaluation.")
        return None
    src_name, src_version, literal = origin
    what = f"Copying (promoting) models:/{src_name}/{src_version} into {msg.name!r}"
    src_tags = dict(store.get_model_version(src_name, src_version).tags)
    changed = sorted(k for k, v in tq.items() if src_tags.get(k) != v)
    if changed:
        return _deny(f"trusteq-gate: {what} is refused: the copy's trusteq tag(s) {changed} differ from the "
                     "source version's; a copy may only carry the source's verdict unchanged.")
    if not (cfg.model_gated(src_name) or cfg.model_gated(msg.name)):
        return None
    if msg.source != literal:
        return _deny(f"trusteq-gate: {what} is refused: the source {msg.source!r} is not the literal version URI "
                     f"{literal!r}. MLflow resolves the source again after the gate has checked it, so a copy "
                     f"into or out of a gated model must name the version itself: use source {literal!r}.")
    decision = _decide(cfg, store, src_name, src_version)
    return None if decision.ok else _deny(_refusal(what, decision, src_name, src_version))


def _rule_rename(cfg: GateConfig) -> Any:
    """A rename carries the model's aliases, stages and tags to ``new_name``: check them as written there."""
    from mlflow.protos.model_registry_pb2 import RenameRegisteredModel

    msg = _parse(RenameRegisteredModel)
    store = _store()
    rm = store.get_registered_model(msg.name)
    for key, value in sorted(rm.tags.items()):
        if is_trusteq_tag(key):
            if (denied := _tag_write_rule(cfg, op="set", name=msg.new_name, version="", key=key, value=value)):
                return denied
    for what, version, required in _carried(cfg, store, msg.name, msg.new_name, rm.aliases):
        why = _promotion_refusal(cfg, store, msg.name, version,
                                 f"Renaming {msg.name!r} to {msg.new_name!r} (it carries {what} on "
                                 f"models:/{msg.name}/{version} into a gated name)", required, what)
        if why is not None:
            return _deny(why + " Remove the alias or archive the version first.")
    return None


def _carried(cfg: GateConfig, store: Any, name: str, new_name: str,
             aliases: Mapping[str, Any]) -> list[tuple[str, str, tuple[PolicyRequirement, ...]]]:
    """``(what, version, requirements)`` for each gated alias and promotion stage a rename carries to ``new_name``."""
    carried = []
    for alias, version in sorted(aliases.items()):
        gated, required = cfg.alias_rule(new_name, alias)
        if gated:
            carried.append((f"alias {alias!r}", str(version), required))
    for mv in _staged_versions(store, name):
        required = cfg.policies.for_stage(new_name, str(mv.current_stage))
        if cfg.model_gated(new_name) or required:
            carried.append((f"stage {mv.current_stage!r}", str(mv.version), required))
    return carried


def _staged_versions(store: Any, name: str) -> list[Any]:
    """Every version of ``name`` in Staging or Production."""
    out, token = [], None
    quoted = name.replace("\\", "\\\\").replace("'", "\\'")
    while True:
        page = store.search_model_versions(filter_string=f"name = '{quoted}'", max_results=1000, page_token=token)
        out += [mv for mv in page if str(mv.current_stage).lower() in _PROMOTION_STAGES and mv.name == name]
        token = page.token
        if not token:
            return out


def _rule_create_rm(cfg: GateConfig) -> Any:
    from mlflow.protos.model_registry_pb2 import CreateRegisteredModel

    msg = _parse(CreateRegisteredModel)
    for t in msg.tags:
        if is_trusteq_tag(t.key):
            if (denied := _tag_write_rule(cfg, op="set", name=msg.name, version="", key=t.key, value=t.value)):
                return denied
    return None


def _tag_write_rule(cfg: GateConfig, *, op: str, name: str, version: str, key: str, value: str) -> Any:
    """The one rule for a write of a reserved tag, whatever route writes it."""
    if not version and key.strip().lower() == _IS_PROMPT_TAG:
        return _deny(f"trusteq-gate: changing tag {key!r} of registered model {name!r} is refused: whether a "
                     "registered model is a prompt is fixed when it is created.")
    if not is_trusteq_tag(key):
        return None
    if version and key == TAG_PARENT:
        mv = _store().get_model_version(name, version)
        if TAG_SIGNATURE not in mv.tags:
            return None  # lineage may be named (and renamed) until a verdict is signed
    token = _request().headers.get(TAG_AUTH_HEADER)
    why = check_tag_write_token(cfg.keyring, token, op=op, name=name, version=version, key=key, value=value)
    if why is None:
        nonce, ts_ms = tag_write_token_id(str(token))
        why = ledger_for(_store()).consume(nonce=nonce, ts_ms=ts_ms, name=name, version=version)
    if why is None:
        return None
    target = f"models:/{name}/{version}" if version else f"registered model {name!r}"
    return _deny(f"trusteq-gate: {'writing' if op == 'set' else 'deleting'} tag {key!r} on {target} is refused: "
                 f"{why}. Tags in the 'trusteq.' namespace are written only by the trusteq evaluator "
                 "(with the signing key); the lineage tag 'trusteq.parent' can be set until a verdict is "
                 "recorded. Run a trusteq evaluation to record a verdict.")


def _rule_set_mv_tag(cfg: GateConfig) -> Any:
    from mlflow.protos.model_registry_pb2 import SetModelVersionTag

    m = _parse(SetModelVersionTag)
    return _tag_write_rule(cfg, op="set", name=m.name, version=_version(m.version), key=m.key, value=m.value)


def _rule_delete_mv_tag(cfg: GateConfig) -> Any:
    from mlflow.protos.model_registry_pb2 import DeleteModelVersionTag

    m = _parse(DeleteModelVersionTag)
    return _tag_write_rule(cfg, op="delete", name=m.name, version=_version(m.version), key=m.key, value="")


def _rule_set_rm_tag(cfg: GateConfig) -> Any:
    from mlflow.protos.model_registry_pb2 import SetRegisteredModelTag

    m = _parse(SetRegisteredModelTag)
    return _tag_write_rule(cfg, op="set", name=m.name, version="", key=m.key, value=m.value)


def _rule_delete_rm_tag(cfg: GateConfig) -> Any:
    from mlflow.protos.model_registry_pb2 import DeleteRegisteredModelTag

    m = _parse(DeleteRegisteredModelTag)
    return _tag_write_rule(cfg, op="delete", name=m.name, version="", key=m.key, value="")


def _rules() -> dict[str, Callable[[GateConfig], Any]]:
    """Flask endpoint name (the handler's ``__name__``) -> rule."""
    from mlflow.protos.model_registry_pb2 import (
        CreateModelVersion,
        CreateRegisteredModel,
        DeleteModelVersionTag,
        DeleteRegisteredModelTag,
        RenameRegisteredModel,
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
        CreateRegisteredModel: _rule_create_rm,
        RenameRegisteredModel: _rule_rename,
        SetModelVersionTag: _rule_set_mv_tag,
        DeleteModelVersionTag: _rule_delete_mv_tag,
        SetRegisteredModelTag: _rule_set_rm_tag,
        DeleteRegisteredModelTag: _rule_delete_rm_tag,
    }
    return {HANDLERS[proto].__name__: rule for proto, rule in by_proto.items()}


def install_gate(flask_app: Any, config: GateConfig | None = None) -> GateConfig:
    """Register the gate's ``before_request`` hook and its verify endpoint on MLflow's Flask app.

    Raises
    ------
    RuntimeError
        When a handler the gate must guard is not routed by this MLflow (an MLflow upgrade moved
        it): the server must not start with a hole in the gate.
    AliasPolicyError
        When the per-alias policy file is missing or malformed (read here, before serving).
    """
    from mlflow.server.handlers import _add_static_prefix

    cfg = config or GateConfig.from_env()
    rules = _rules()
    missing = sorted(set(rules) - set(flask_app.view_functions))
    if missing:
        raise RuntimeError(f"trusteq-gate: MLflow's app has no endpoint(s) {missing}; this MLflow version is not "
                           "supported by trusteq-gate (pinned to mlflow 3.17).")
    flask_app.before_request(_before_request(cfg, rules))
    verify = _verify_endpoint(cfg)
    for prefix in ("/api", "/ajax-api"):
        flask_app.add_url_rule(_add_static_prefix(f"{prefix}{VERIFY_PATH}"), f"trusteq_gate_verify{prefix}",
                               verify, methods=["GET"])
    _logger.info("trusteq-gate installed on %d endpoint(s): %s", len(rules), sorted(rules))
    return cfg


def _error_response(e: Any) -> Any:
    """An ``MlflowException`` as MLflow's handlers answer it."""
    from flask import make_response

    resp = make_response(e.serialize_as_json(), e.get_http_status_code())
    resp.mimetype = "application/json"
    return resp


def _before_request(cfg: GateConfig, rules: Mapping[str, Callable[[GateConfig], Any]]) -> Callable[[], Any]:
    """The hook: the rule of the handler the request is routed to; any error in a rule refuses (fail closed)."""
    from mlflow.exceptions import MlflowException

    def trusteq_gate_before_request() -> Any:
        rule = rules.get(_request().endpoint or "")
        if rule is None:
            return None
        try:
            return rule(cfg)
        except MlflowException as e:  # the handler would fail the same way: answer as it would
            return _error_response(e)
        except Exception as e:  # fail closed
            _logger.exception("trusteq-gate: error while checking %s", _request().path)
            return _deny(f"trusteq-gate could not check this request and refuses it (fail closed): "
                         f"{type(e).__name__}: {e}")

    return trusteq_gate_before_request


def _verify_endpoint(cfg: GateConfig) -> Callable[[], Any]:
    """GET ?name=&version=[&alias=|&stage=] -> the gate's Decision as JSON (read-only)."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

    def trusteq_gate_verify() -> Any:
        from flask import jsonify

        args = _request().args
        name, version = args.get("name", ""), args.get("version", "")
        alias, stage = args.get("alias", ""), args.get("stage", "")
        if not name or not version or (alias and stage):
            return _error_response(MlflowException(
                "Both 'name' and 'version' query parameters are required (and at most one of 'alias', 'stage').",
                error_code=INVALID_PARAMETER_VALUE))
        if alias:
            required, required_for = cfg.alias_rule(name, alias)[1], f"alias {alias!r}"
        else:
            required, required_for = cfg.policies.for_stage(name, stage), f"stage {stage!r}"
        try:
            decision = _decide(cfg, _store(), name, version, required, required_for)
        except MlflowException as e:
            return _error_response(e)
        return jsonify(decision.to_dict())

    return trusteq_gate_verify


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

    from mlflow.server import auth
    from mlflow.server.handlers import _add_static_prefix

    served = basic_auth_create_app(flask_app)
    install_gate(flask_app)
    # basic-auth refuses routes it has no validator for (fail closed); the verify route only reads
    for prefix in ("/api", "/ajax-api"):
        auth.BEFORE_REQUEST_VALIDATORS[(_add_static_prefix(f"{prefix}{VERIFY_PATH}"), "GET")] = \
            auth.validate_can_read_registered_model
    return served
