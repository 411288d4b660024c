"""Registry lineage and signed verdicts on model versions (the evaluator's side of the gate).

Tags on a candidate model version (namespace ``trusteq.``; signing lives in ``trusteq_gate``):

=========================  ==============================================================
``trusteq.parent``         lineage: the parent model URI (set by the user, or by the evaluator)
``trusteq.verdict``        ``pass`` or ``fail``
``trusteq.run_id``         the MLflow run holding the evidence (metrics, report, verdict.json)
``trusteq.data_digest``    digest of the evaluation data
``trusteq.policy_digest``  digest of the policy that judged
``trusteq.reasons``        JSON list, one sentence per failed or skipped check
``trusteq.key_id``         the key of the keyring that signed
``trusteq.content_digest`` digest of the version's files when it was evaluated
                           (``trusteq_gate.content``; the gate re-checks it at promotion)
``trusteq.policies``       JSON list: name, digest, pass/fail and reasons of each policy judged
                           (the gate's per-alias policies match them by digest)
``trusteq.signature``      ``hmac-sha256-v2:<hex>`` over all of the above plus the version's
                           name, number and source (written last)
=========================  ==============================================================

Display tags (:data:`DISPLAY_TAGS`, not signed; written with the same credential, so that only the
evaluator writes them; deleted with the verdict): ``trusteq.summary`` (the verdict in one line),
``trusteq.report`` (``runs:/<run_id>/trusteq/report.html``) and ``trusteq.report_url`` (the MLflow
UI's page of the report, against an http tracking server). The version's description gets a
delimited trusteq block (:func:`record_display`); the rest of the description is the user's.

The signing key comes from ``TRUSTEQ_SIGNING_KEY`` / ``TRUSTEQ_SIGNING_KEY_FILE`` /
``TRUSTEQ_SIGNING_KEYS_FILE`` (see ``trusteq_gate.signing.Keyring.from_env``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Sequence
from typing import Any

from trusteq_gate.client import (
    ContentChangedError,
    ContentUnreadableError,
    ask_gate,
    read_model_version,
    sign_and_write_verdict,
    write_model_version_tags,
)
from trusteq_gate.content import client_version_digest
from trusteq_gate.signing import (
    MAX_VERSION,
    TAG_PARENT,
    TAG_SIGNATURE,
    VERDICT_TAGS,
    Decision,
    Keyring,
    PolicyOutcome,
    SigningKeyError,
    check_version,
    parse_version_number,
)

from .._errors import InvalidInputError, VerdictError

__all__ = [
    "Decision",
    "set_parent",
    "get_parent",
    "record_verdict",
    "clear_verdict",
    "verify_verdict",
    "load_keyring",
    "content_digest_of",
    "record_display",
    "DISPLAY_TAGS",
]

#: what a reviewer reads on the version: not signed, written only by the evaluator (see the module docstring)
DISPLAY_TAGS = ("trusteq.summary", "trusteq.report", "trusteq.report_url")

logger = logging.getLogger(__name__)

_MAX_REASONS_CHARS = 20_000
_MAX_POLICY_REASONS_CHARS = 4_000  # per named policy, in trusteq.policies (a tag holds at most 100 000 characters)


def load_keyring() -> Keyring:
    """The signing keyring from the environment, or a :class:`VerdictError` saying how to set it."""
    try:
        return Keyring.from_env()
    except SigningKeyError as e:
        raise VerdictError(f"Cannot sign or verify trusteq verdicts: {e}") from None


def _check_name_version(name: Any, version: Any) -> tuple[str, str]:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(f"Expected a registered model name, got {name!r}")
    n = parse_version_number(version)
    if n is None:
        raise InvalidInputError(f"Expected a model version number from 1 to {MAX_VERSION}, got {version!r}")
    return name, str(n)


def content_digest_of(client: Any, name: str, version: str | int) -> str:
    """The digest of the files ``models:/name/version`` serves now (what a verdict is bound to).

    Raises
    ------
    VerdictError
        When the files cannot be read (the message names the location's problem).
    """
    name, version = _check_name_version(name, version)
    try:
        return client_version_digest(client, name, version)
    except Exception as e:
        raise VerdictError(f"Cannot read the files of models:/{name}/{version} to bind the verdict to them: "
                           f"{type(e).__name__}: {e}") from e


def resolve_models_uri(client: Any, uri: str) -> tuple[str, str] | None:
    """``models:/name/3`` or ``models:/name@alias`` -> (name, version); None for other URIs."""
    if not uri.startswith("models:/"):
        return None
    from mlflow.store.artifact.utils.models import _parse_model_uri, get_model_name_and_version

    if _parse_model_uri(uri).model_id is not None:
        return None
    name, version = get_model_name_and_version(client, uri)
    return name, str(version)


def set_parent(client: Any, name: str, version: str | int, parent_uri: str) -> None:
    """Name the parent of a candidate version (the lineage tag ``trusteq.parent``).

    Parameters
    ----------
    client : mlflow.MlflowClient
    name, version
        The candidate model version.
    parent_uri : str
        Any model URI (``models:/sentiment/1``, ``models:/sentiment@champion``, ``runs:/...``).

    Raises
    ------
    InvalidInputError
        An empty URI, or a parent that is the candidate itself.
    """
    name, version = _check_name_version(name, version)
    if not isinstance(parent_uri, str) or not parent_uri.strip():
        raise InvalidInputError(f"Expected a parent model URI, got {parent_uri!r}")
    parent_uri = parent_uri.strip()
    if resolve_models_uri(client, parent_uri) == (name, version):
        raise InvalidInputError(
            f"The candidate models:/{name}/{version} names itself as its parent ({parent_uri!r}); "
            "a model cannot be judged against itself.")
    client.set_model_version_tag(name, version, TAG_PARENT, parent_uri)


def get_parent(client: Any, name: str, version: str | int) -> str | None:
    """The parent URI named by the version's lineage tag, or None."""
    name, version = _check_name_version(name, version)
    value = client.get_model_version(name, version).tags.get(TAG_PARENT)
    return value or None


def _cap_reasons(reasons: list[str], run_id: str, limit: int = _MAX_REASONS_CHARS) -> list[str]:
    out = [str(r) for r in reasons]
    dropped = 0
    while out and len(json.dumps(out, ensure_ascii=False)) > limit:
        out.pop()
        dropped += 1
    if dropped:
        out.append(f"... and {dropped} more reason(s): see verdict.json in run {run_id}")
    return out


def _check_verdict_fields(*, verdict: Any, run_id: Any, parent_uri: Any, data_digest: Any, policy_digest: Any,
                          reasons: Any, policies: Any) -> None:
    """Every field of a verdict has its type, or an :class:`InvalidInputError` names the one that does not."""
    if verdict not in ("pass", "fail"):
        raise InvalidInputError(f"Expected verdict 'pass' or 'fail', got {verdict!r}")
    for label, value in (("run_id", run_id), ("parent_uri", parent_uri)):
        if not isinstance(value, str) or not value.strip():
            raise InvalidInputError(f"Expected a non-empty `{label}`, got {value!r}")
    for label, value in (("data_digest", data_digest), ("policy_digest", policy_digest)):
        if not isinstance(value, str):
            raise InvalidInputError(f"Expected `{label}` as a string, got {value!r}")
    if isinstance(reasons, str) or not all(isinstance(r, str) for r in reasons):
        raise InvalidInputError(f"Expected `reasons` as a list of strings, got {reasons!r}")
    if policies is not None and (isinstance(policies, (str, bytes)) or
                                 not all(isinstance(o, PolicyOutcome) for o in policies)):
        raise InvalidInputError(f"Expected `policies` as a list of trusteq_gate.PolicyOutcome, got {policies!r:.200}")


def _cap_outcome(outcome: PolicyOutcome, run_id: str) -> PolicyOutcome:
    """An outcome whose reasons fit the tag (the full list is in the run's verdict.json)."""
    return dataclasses.replace(outcome, reasons=tuple(_cap_reasons(list(outcome.reasons), run_id,
                                                                   _MAX_POLICY_REASONS_CHARS)))


def record_verdict(
    client: Any,
    name: str,
    version: str | int,
    *,
    verdict: str,
    run_id: str,
    parent_uri: str,
    data_digest: str,
    policy_digest: str,
    reasons: list[str],
    keyring: Keyring | None = None,
    content_digest: str | None = None,
    policies: Sequence[PolicyOutcome] | None = None,
) -> dict[str, str]:
    """Sign a verdict and record it on the model version (the signature tag is written last).

    The signed payload is the version's name, number and source as the registry records them,
    plus ``verdict``, ``run_id``, ``parent_uri`` (also written as the lineage tag),
    ``data_digest``, ``policy_digest``, ``reasons``, the digest of the version's files
    (:func:`content_digest_of`) and ``policies``, how each policy the evaluation was judged
    against decided (``trusteq.policies``: the gate's per-alias policies match them by digest);
    see ``trusteq_gate.signing``.

    ``content_digest`` is the digest taken when the evaluation started: the files are read
    again now, and a mismatch (they were overwritten while being judged) records nothing.

    Returns
    -------
    dict of str to str
        The tags that were set.

    Raises
    ------
    VerdictError
        No signing key configured (the message says how to set one); the version's files cannot
        be read, or changed since ``content_digest`` was taken.
    InvalidInputError
        A verdict other than ``"pass"``/``"fail"``, an empty run id or parent, a parent that is
        the candidate itself, or ``policies`` that are not :class:`~trusteq_gate.PolicyOutcome`.
    """
    name, version = _check_name_version(name, version)
    _check_verdict_fields(verdict=verdict, run_id=run_id, parent_uri=parent_uri, data_digest=data_digest,
                          policy_digest=policy_digest, reasons=reasons, policies=policies)
    if resolve_models_uri(client, parent_uri) == (name, version):
        raise InvalidInputError(f"The candidate models:/{name}/{version} names itself as its parent ({parent_uri!r})")
    keyring = keyring or load_keyring()
    capped = None if policies is None else [_cap_outcome(o, run_id) for o in policies]
    try:
        tags = sign_and_write_verdict(client, name, version, keyring, verdict=verdict, run_id=run_id,
                                      parent=parent_uri.strip(), data_digest=data_digest,
                                      policy_digest=policy_digest, reasons=_cap_reasons(list(reasons), run_id),
                                      content_digest=content_digest, policies=capped)
    except (ContentChangedError, ContentUnreadableError) as e:
        raise VerdictError(f"No verdict is recorded: {e}; evaluate again.") from None
    logger.info("recorded a signed %r verdict on models:/%s/%s (key %s)", verdict, name, version, keyring.active)
    return tags


def clear_verdict(client: Any, name: str, version: str | int, *, keyring: Keyring | None = None) -> list[str]:
    """Delete the version's verdict tags (the lineage tag stays); returns the deleted tag names.

    Called before a new evaluation, so a failing or crashing re-evaluation never leaves an old
    pass behind.  Needs the signing key only against a tracking server, and only when there is
    something to delete.
    """
    name, version = _check_name_version(name, version)
    existing = client.get_model_version(name, version).tags
    present = [t for t in (*VERDICT_TAGS, *DISPLAY_TAGS) if t in existing and t != TAG_PARENT]
    if not present:
        return []
    present = [TAG_SIGNATURE, *[t for t in present if t != TAG_SIGNATURE]] if TAG_SIGNATURE in present else present
    if keyring is None:
        keyring = _env_keyring_or_none()
    try:
        write_model_version_tags(client, name, version, {}, keyring, delete=present)
    except SigningKeyError as e:
        raise VerdictError(f"Cannot clear the verdict of models:/{name}/{version}: {e}") from None
    _clear_description_block(client, name, version)
    return present


def _env_keyring_or_none() -> Keyring | None:
    """The signing keyring from the environment, or None: enough for a local store; a tracking server refuses."""
    try:
        return Keyring.from_env()
    except SigningKeyError:
        return None


def _clear_description_block(client: Any, name: str, version: str) -> None:
    """The description's trusteq block says there is no verdict now (the user's text is kept)."""
    from .runlog import BLOCK_BEGIN, cleared_block, merge_description

    description = client.get_model_version(name, version).description or ""
    if BLOCK_BEGIN in description:
        client.update_model_version(name, version, description=merge_description(description, cleared_block()))


def record_display(client: Any, name: str, version: str | int, tags: dict[str, str], *, description_block: str,
                   keyring: Keyring | None = None) -> dict[str, str]:
    """Write the display tags and the description's trusteq block of a version (after its verdict).

    ``tags`` are :data:`DISPLAY_TAGS` entries, written through the same authenticated path as the
    verdict; ``description_block`` replaces the trusteq block of the version's description (or is
    appended to it), leaving the user's own text as it is. Returns the tags written.

    Raises
    ------
    VerdictError
        Against a tracking server without the signing key.
    """
    from .runlog import merge_description

    name, version = _check_name_version(name, version)
    unknown = sorted(set(tags) - set(DISPLAY_TAGS))
    if unknown:
        raise InvalidInputError(f"not display tags: {unknown}; known: {list(DISPLAY_TAGS)}")
    if keyring is None:
        keyring = _env_keyring_or_none()
    try:
        write_model_version_tags(client, name, version, tags, keyring)
    except SigningKeyError as e:
        raise VerdictError(f"Cannot write the summary of models:/{name}/{version}: {e}") from None
    mv = client.get_model_version(name, version)
    client.update_model_version(name, version, description=merge_description(mv.description, description_block))
    return dict(tags)


def verify_verdict(client: Any, name: str, version: str | int, *, keyring: Keyring | None = None) -> Decision:
    """What the gate would decide for this version, and why.

    Verifies locally (reading the version's files to check them against the signed content
    digest) with the signing key when one is configured here; without one, asks the
    tracking server's trusteq-gate (``/api/2.0/trusteq/verify``), so release engineers need no
    key.  With neither, the decision is a refusal that says so.

    Returns
    -------
    trusteq_gate.Decision
        ``ok`` (valid signature and a pass verdict), ``verdict``, ``signature_valid``,
        ``reasons`` (why not ok), ``verdict_reasons`` and ``fields`` (the checked payload).
    """
    name, version = _check_name_version(name, version)
    if keyring is None:
        try:
            keyring = Keyring.from_env()
        except SigningKeyError:
            from_server = ask_gate(client, name, version)
            if from_server is not None:
                return from_server
    mv = client.get_model_version(name, version)
    return check_version(name=mv.name, version=str(mv.version), source=mv.source, tags=dict(mv.tags),
                         keyring=keyring, lookup=lambda n, v: read_model_version(client, n, v),
                         content_of=lambda n, v: client_version_digest(client, n, v))
