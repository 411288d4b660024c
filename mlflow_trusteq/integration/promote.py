"""Promotion that obeys the signed verdict: the library behind ``trusteq promote`` / ``trusteq verify``.

The click commands live in :mod:`mlflow_trusteq.cli._promote`.  Every request these functions
make to the tracking server can be bounded with :func:`bounded_http` (MLflow's own
``MLFLOW_HTTP_REQUEST_TIMEOUT`` / ``MLFLOW_HTTP_REQUEST_MAX_RETRIES``, set for the duration of
the block), instead of MLflow's default retry loop of several minutes.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

from .._errors import InvalidInputError, TrustEqError

__all__ = ["EXIT_OK", "EXIT_REFUSED", "EXIT_USAGE", "PromotionRefused", "TrackingServerError", "bounded_http",
           "decide", "describe", "promote_version"]

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2


class PromotionRefused(TrustEqError):
    """The version may not be promoted (no valid pass verdict, or the server's gate refused)."""

    def __init__(self, message: str, decision: Any = None) -> None:
        super().__init__(message)
        self.decision = decision


class TrackingServerError(TrustEqError):
    """The tracking server is down, too slow, or answered with a server error; nothing was changed."""


@contextlib.contextmanager
def bounded_http(timeout_s: float, retries: int) -> Iterator[None]:
    """MLflow's HTTP requests time out after ``timeout_s`` and retry ``retries`` times, inside the block."""
    names = {"MLFLOW_HTTP_REQUEST_TIMEOUT": str(max(1, int(round(timeout_s)))),
             "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(max(0, int(retries))),
             "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}
    saved = {k: os.environ.get(k) for k in names}
    os.environ.update(names)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _server_error(e: BaseException, where: str) -> TrackingServerError:
    text = getattr(e, "message", None) or str(e)
    return TrackingServerError(f"the tracking server {where} did not answer usefully ({type(e).__name__}: "
                               f"{text[:500]}); nothing was changed. Check that it is up, or allow a longer timeout.")


def _where(client: Any) -> str:
    try:
        return str(client._tracking_client.tracking_uri)
    except AttributeError:
        return "(unknown URI)"


def decide(client: Any, name: str, version: str, *, alias: str | None = None, stage: str | None = None) -> Any:
    """The gate's :class:`~trusteq_gate.Decision` for ``models:/name/version`` (see ``verify_verdict``).

    With ``alias`` or ``stage`` the tracking server's gate decides, under the policy it requires
    for that alias or stage (the policies are the server's configuration; a client cannot know them).

    Raises
    ------
    InvalidInputError
        An unknown model version or a malformed argument.
    TrackingServerError
        The server is down, too slow, or failed.
    """
    from mlflow.exceptions import MlflowException

    from .registry import verify_verdict

    try:
        if alias or stage:
            return _ask_server(client, name, version, alias=alias, stage=stage)
        return verify_verdict(client, name, version)
    except MlflowException as e:
        if e.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise InvalidInputError(e.message) from None
        raise _server_error(e, _where(client)) from None
    except TrustEqError:
        raise
    except Exception as e:  # connection refused, timeout, a 5xx that is not an MLflow error body
        raise _server_error(e, _where(client)) from None


def _ask_server(client: Any, name: str, version: str, *, alias: str | None, stage: str | None) -> Any:
    """The server's gate's decision for the alias or stage; without a gate there, the local one (no policy applies)."""
    from trusteq_gate.client import ask_gate

    from .registry import verify_verdict

    decision = ask_gate(client, name, version, alias=alias, stage=stage)
    return verify_verdict(client, name, version) if decision is None else decision


def describe(decision: Any, name: str, version: str) -> str:
    """A few lines for people: promotable or not, the verdict's fields and the reasons."""
    lines = [f"models:/{name}/{version}: {'PROMOTABLE' if decision.ok else 'NOT PROMOTABLE'}",
             f"  verdict:   {decision.verdict or '(none)'}"
             f"  (signature {'valid' if decision.signature_valid else 'not valid'})"]
    for key in ("parent", "run_id", "data_digest", "policy_digest", "content_digest", "key_id", "inherited_from"):
        if decision.fields.get(key):
            lines.append(f"  {key + ':':<16}{decision.fields[key]}")
    for outcome in decision.fields.get("policies") or []:
        lines.append(f"  policy {outcome['name']!r}: {'pass' if outcome['passed'] else 'fail'}  "
                     f"(digest {str(outcome['digest'])[:12]})")
    if decision.fields.get("required_for"):
        required = ", ".join(repr(r["name"]) for r in decision.fields.get("required_policies", []))
        lines.append(f"  {decision.fields['required_for']} requires: {required}")
    if decision.verdict_reasons:
        lines.append("  verdict reasons:")
        lines += [f"    - {r}" for r in decision.verdict_reasons]
    if decision.reasons:
        lines.append("  why it cannot be promoted:")
        lines += [f"    - {r}" for r in decision.reasons]
    return "\n".join(lines)


def promote_version(client: Any, name: str, version: str, *, alias: str | None = None, stage: str | None = None,
                    archive_existing: bool = False) -> Any:
    """Set ``alias`` on (or transition to ``stage``) a version that carries a valid signed pass verdict.

    Against a trusteq-gate server the server decides, under the policy it requires for that alias
    or stage (``TRUSTEQ_GATE_ALIAS_POLICIES``); elsewhere the verdict's overall pass.

    Returns the Decision.  Raises :class:`PromotionRefused` (with the reasons),
    :class:`TrackingServerError` or :class:`InvalidInputError`.
    """
    from mlflow.exceptions import MlflowException

    if bool(alias) == bool(stage):
        raise InvalidInputError("give exactly one of alias or stage")
    if archive_existing and not stage:
        raise InvalidInputError("archive_existing goes with stage")
    decision = decide(client, name, version, alias=alias, stage=stage)  # the server's policy for it, if any
    target = f"alias {alias!r}" if alias else f"stage {stage!r}"
    if not decision.ok:
        raise PromotionRefused(f"models:/{name}/{version} cannot be promoted to {target}.", decision)
    try:
        if alias:
            client.set_registered_model_alias(name, alias, version)
        else:
            client.transition_model_version_stage(name, version, stage, archive_existing_versions=archive_existing)
    except MlflowException as e:
        if e.error_code in ("PERMISSION_DENIED", "UNAUTHENTICATED", "INVALID_PARAMETER_VALUE",
                            "RESOURCE_DOES_NOT_EXIST"):
            raise PromotionRefused(f"refused by the tracking server: {e.message}", decision) from None
        raise _server_error(e, _where(client)) from None
    except Exception as e:
        raise _server_error(e, _where(client)) from None
    logger.info("promoted models:/%s/%s to %s", name, version, target)
    return decision
