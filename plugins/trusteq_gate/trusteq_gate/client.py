"""The evaluator's side of the gate: writing ``trusteq.*`` tags with the tag-write credential.

Against a tracking server (``http://``/``https://`` registry URI) each write is a REST call that
carries the :data:`~trusteq_gate.signing.TAG_AUTH_HEADER` header; the gate refuses ``trusteq.*``
writes without it.  Against a local store (sqlite, file) there is no server and no gate: the
tags are written through the client.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from trusteq_gate.signing import (
    TAG_AUTH_HEADER,
    TAG_SIGNATURE,
    Keyring,
    PolicyOutcome,
    sign_verdict,
    tag_write_token,
)

__all__ = ["write_model_version_tags", "read_model_version", "ask_gate", "sign_and_write_verdict",
           "ContentChangedError", "ContentUnreadableError"]

_logger = logging.getLogger(__name__)


def _rest_host_creds(client: Any) -> Any:
    """Host credentials of the client's registry when it is a REST server, else None."""
    from mlflow.store.model_registry.rest_store import RestStore

    store = client._get_registry_client().store
    if isinstance(store, RestStore):
        return store.get_host_creds()
    return None


def write_model_version_tags(
    client: Any,
    name: str,
    version: str,
    tags: Mapping[str, str],
    keyring: Keyring | None,
    *,
    delete: Iterable[str] = (),
) -> None:
    """Set (and delete) model-version tags, authenticated as the trusteq evaluator.

    Tags are written in the given order (put ``trusteq.signature`` last: while the other tags
    change, the old signature no longer verifies, so the gate refuses rather than accepts a
    half-written verdict).

    Parameters
    ----------
    client : mlflow.MlflowClient
    name, version : str
        The model version.
    tags : mapping of str to str
        Tags to set, in order.
    keyring : Keyring or None
        Signs the tag-write credential; needed only against a tracking server.
    delete : iterable of str
        Tags to delete before setting (missing ones are ignored).
    """
    creds = _rest_host_creds(client)
    order = [k for k in tags if k != TAG_SIGNATURE] + ([TAG_SIGNATURE] if TAG_SIGNATURE in tags else [])
    if creds is None:
        _write_local(client, name, str(version), {k: str(tags[k]) for k in order}, delete)
        return
    if keyring is None:
        from trusteq_gate.signing import HOW_TO_SET_KEY, SigningKeyError

        raise SigningKeyError(f"Writing trusteq tags on a tracking server needs the signing key. {HOW_TO_SET_KEY}")
    for key in delete:
        _rest_delete_tag(creds, keyring, name, str(version), key)
    for key in order:
        _rest_set_tag(creds, keyring, name, str(version), key, str(tags[key]))
    _logger.info("wrote %d trusteq tag(s) on models:/%s/%s", len(order), name, version)


def _write_local(client: Any, name: str, version: str, tags: Mapping[str, str], delete: Iterable[str]) -> None:
    """A local store (no server, no gate): through the client."""
    from mlflow.exceptions import MlflowException

    for key in delete:
        try:
            client.delete_model_version_tag(name, version, key)
        except MlflowException:
            pass
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)


def _rest_delete_tag(creds: Any, keyring: Keyring, name: str, version: str, key: str) -> None:
    """Delete one tag on a tracking server with a single-use credential; a missing tag is not an error."""
    from mlflow.exceptions import MlflowException
    from mlflow.utils.rest_utils import http_request, verify_rest_response

    token = tag_write_token(keyring, op="delete", name=name, version=version, key=key)
    endpoint = "/api/2.0/mlflow/model-versions/delete-tag"
    resp = http_request(creds, endpoint, "DELETE", json={"name": name, "version": version, "key": key},
                        extra_headers={TAG_AUTH_HEADER: token})
    if resp.status_code == 404:
        return
    try:
        verify_rest_response(resp, endpoint)
    except MlflowException as e:
        if e.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise


def _rest_set_tag(creds: Any, keyring: Keyring, name: str, version: str, key: str, value: str) -> None:
    """Set one tag on a tracking server with a single-use credential."""
    from mlflow.utils.rest_utils import http_request, verify_rest_response

    token = tag_write_token(keyring, op="set", name=name, version=version, key=key, value=value)
    endpoint = "/api/2.0/mlflow/model-versions/set-tag"
    resp = http_request(creds, endpoint, "POST", json={"name": name, "version": version, "key": key, "value": value},
                        extra_headers={TAG_AUTH_HEADER: token})
    verify_rest_response(resp, endpoint)


def read_model_version(client: Any, name: str, version: str) -> tuple[str, dict[str, str]] | None:
    """``(source, tags)`` of a model version through the client, or None when it does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        mv = client.get_model_version(name, str(version))
    except MlflowException as e:
        if e.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    return mv.source, dict(mv.tags)


def ask_gate(client: Any, name: str, version: str, *, alias: str | None = None,
             stage: str | None = None) -> Any:
    """The tracking server's own decision for a version, or None when it runs no trusteq-gate.

    Returns a :class:`~trusteq_gate.signing.Decision`; lets the ``promote``/``verify`` commands
    work without the signing key on the caller's machine (the server holds it).  With ``alias``
    or ``stage``, the decision under the policy the server requires for it.
    """
    from mlflow.utils.rest_utils import http_request, verify_rest_response

    from trusteq_gate.signing import Decision

    creds = _rest_host_creds(client)
    if creds is None:
        return None
    endpoint = "/api/2.0/trusteq/verify"
    params = {"name": name, "version": str(version)} | ({"alias": alias} if alias else {}) \
        | ({"stage": stage} if stage else {})
    resp = http_request(creds, endpoint, "GET", params=params)
    if resp.status_code == 404 and "RESOURCE_DOES_NOT_EXIST" not in resp.text:
        return None
    verify_rest_response(resp, endpoint)
    return Decision.from_dict(resp.json())


class ContentChangedError(RuntimeError):
    """The version's files are not the files that were judged (they changed during the evaluation)."""


class ContentUnreadableError(RuntimeError):
    """The version's files cannot be read, so no verdict can be bound to them."""


def sign_and_write_verdict(
    client: Any, name: str, version: str, keyring: Keyring, *, verdict: str, run_id: str, parent: str,
    data_digest: str, policy_digest: str, reasons: list[str] | tuple[str, ...] = (),
    content_digest: str | None = None, policies: Sequence[PolicyOutcome] | None = None,
) -> dict[str, str]:
    """Sign a verdict for ``models:/name/version`` bound to its files now, and write it (signature last).

    The version's name, number and source are read from the registry, and its files are read
    and digested (:func:`trusteq_gate.content.client_version_digest`).  ``content_digest``, when
    given, is the digest taken when the evaluation started; if the files differ now, nothing is
    written and :class:`ContentChangedError` is raised.  ``policies``: the per-policy outcomes
    (signed with the verdict, ``trusteq.policies``).

    Returns
    -------
    dict of str to str
        The tags written.
    """
    from trusteq_gate.content import client_version_digest

    mv = client.get_model_version(name, str(version))
    try:
        now = client_version_digest(client, name, str(version))
    except Exception as e:
        raise ContentUnreadableError(f"cannot read the files of models:/{name}/{version} to bind the verdict to "
                                     f"them: {type(e).__name__}: {e}") from e
    if content_digest is not None and content_digest != now:
        raise ContentChangedError(f"the files of models:/{name}/{version} changed during the evaluation (digest "
                                  f"{content_digest} when it started, {now} now)")
    tags = sign_verdict(keyring, name=mv.name, version=str(mv.version), source=mv.source, verdict=verdict,
                        run_id=run_id, parent=parent, data_digest=data_digest, policy_digest=policy_digest,
                        content_digest=now, reasons=list(reasons), policies=policies)
    write_model_version_tags(client, name, str(version), tags, keyring)
    return tags
