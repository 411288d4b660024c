"""Signed trusteq verdicts: the one place where verdicts are signed and verified.

A verdict is a set of ``trusteq.*`` tags on a model version.  Its signature is

.. math::

    \\mathrm{sig} = \\mathrm{HMAC\\text{-}SHA256}(K_{id},\\ \\mathrm{canonical}(P))

where :math:`P` is the JSON object of :data:`SIGNED_FIELDS` (the model version's own name,
version and source, read from the registry, and the verdict fields, read from the tags, among
them the digest of the version's files, :mod:`trusteq_gate.content`) plus the scheme and the
key id, and ``canonical`` is ``json.dumps(P, sort_keys=True, separators=(",", ":"),
ensure_ascii=False)`` encoded as UTF-8.  Because name, version and source
come from the version itself, a signature copied or replayed onto another version does not
verify; because every verdict field is signed, a changed or hand-typed tag does not verify.

The key is shared by the evaluator and the gate and comes from the environment
(:meth:`Keyring.from_env`): ``TRUSTEQ_SIGNING_KEYS_FILE`` (a keyring, for rotation),
``TRUSTEQ_SIGNING_KEY_FILE`` or ``TRUSTEQ_SIGNING_KEY``.  This module depends on the standard
library only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "SCHEME",
    "TAG_PREFIX",
    "TAG_VERDICT",
    "TAG_RUN_ID",
    "TAG_PARENT",
    "TAG_DATA_DIGEST",
    "TAG_POLICY_DIGEST",
    "TAG_REASONS",
    "TAG_KEY_ID",
    "TAG_CONTENT_DIGEST",
    "TAG_POLICIES",
    "TAG_SIGNATURE",
    "VERDICT_TAGS",
    "TAG_AUTH_HEADER",
    "SigningKeyError",
    "Keyring",
    "Decision",
    "PolicyOutcome",
    "PolicyRequirement",
    "policies_tag_value",
    "parse_policies_tag",
    "canonical_json",
    "signed_payload",
    "sign_verdict",
    "check_version",
    "is_trusteq_tag",
    "tag_write_token",
    "check_tag_write_token",
    "tag_write_token_id",
    "parse_version_number",
]

SCHEME = "hmac-sha256-v2"
"""Signature scheme version; written in front of the signature (``hmac-sha256-v2:<hex>``).

v2 signs the digest of the version's files (``trusteq.content_digest``); v1 verdicts (no content
binding) no longer verify: re-evaluate those versions."""

TAG_PREFIX = "trusteq."
TAG_VERDICT = "trusteq.verdict"  # "pass" or "fail"
TAG_RUN_ID = "trusteq.run_id"  # the MLflow run holding the evaluation evidence
TAG_PARENT = "trusteq.parent"  # lineage: the parent model URI the candidate was compared with
TAG_DATA_DIGEST = "trusteq.data_digest"  # digest of the evaluation data
TAG_POLICY_DIGEST = "trusteq.policy_digest"  # digest of the policy that judged
TAG_REASONS = "trusteq.reasons"  # JSON list of the verdict's reasons (one per failed/skipped check)
TAG_KEY_ID = "trusteq.key_id"  # which key of the keyring signed
TAG_CONTENT_DIGEST = "trusteq.content_digest"  # digest of the version's files at evaluation (content.py)
TAG_POLICIES = "trusteq.policies"  # JSON list of per-policy outcomes: name, digest, passed, reasons
TAG_SIGNATURE = "trusteq.signature"  # "<scheme>:<hex HMAC>"

# tag -> field name of the signed payload, for the fields that come from tags
_TAG_FIELDS: dict[str, str] = {
    TAG_VERDICT: "verdict",
    TAG_RUN_ID: "run_id",
    TAG_PARENT: "parent",
    TAG_DATA_DIGEST: "data_digest",
    TAG_POLICY_DIGEST: "policy_digest",
    TAG_REASONS: "reasons",
    TAG_KEY_ID: "key_id",
    TAG_CONTENT_DIGEST: "content_digest",
    TAG_POLICIES: "policies",
}
VERDICT_TAGS: tuple[str, ...] = (*_TAG_FIELDS, TAG_SIGNATURE)
"""Every tag a recorded verdict consists of; the signature is written last."""

_OPTIONAL_TAGS = frozenset({TAG_REASONS, TAG_POLICIES})
"""Verdict tags a verdict may lack: no reasons, or (written before per-policy outcomes existed) no policies."""

SIGNED_FIELDS: tuple[str, ...] = (
    "scheme", "key_id", "name", "version", "source", "parent", "verdict", "run_id",
    "data_digest", "policy_digest", "reasons", "content_digest", "policies",
)
"""``policies`` (the ``trusteq.policies`` tag as written, canonical JSON) is in the payload when the
verdict carries per-policy outcomes; a verdict without that tag is signed (and verifies) without it."""

TAG_AUTH_HEADER = "X-TrustEq-Tag-Auth"
"""Header that authenticates the evaluator's writes to ``trusteq.*`` tags (see tag_write_token)."""

TAG_AUTH_MAX_SKEW_S = 300
MIN_KEY_LENGTH = 32
MAX_VERSION = 2**63 - 1
"""The largest version number a SQL registry stores (a signed 64-bit integer)."""

_ENV_KEY = "TRUSTEQ_SIGNING_KEY"
_ENV_KEY_FILE = "TRUSTEQ_SIGNING_KEY_FILE"
_ENV_KEYS_FILE = "TRUSTEQ_SIGNING_KEYS_FILE"
_ENV_KEY_ID = "TRUSTEQ_SIGNING_KEY_ID"

HOW_TO_SET_KEY = (
    f"Set {_ENV_KEY} to a secret of at least {MIN_KEY_LENGTH} characters shared by the evaluator "
    f"and the tracking server (or {_ENV_KEY_FILE} to a file holding it, or {_ENV_KEYS_FILE} to a "
    "keyring file of 'key_id=secret' lines for rotation); generate one with "
    "`python -c 'import secrets; print(secrets.token_hex(32))'`."
)


class SigningKeyError(ValueError):
    """No signing key, or a malformed one (too short, unreadable file, unknown key id)."""


def is_trusteq_tag(key: str) -> bool:
    """True for a key in the reserved ``trusteq.`` namespace (case-insensitive)."""
    return key.strip().lower().startswith(TAG_PREFIX)


def parse_version_number(version: Any) -> int | None:
    """The model version number ``version`` spells (1 .. 2**63-1), or None when it is not one."""
    v = str(version).strip()
    if not v.isascii() or not v.isdigit():
        return None
    n = int(v)
    return n if 1 <= n <= MAX_VERSION else None


def _key_id_of(secret: bytes) -> str:
    return "k" + hashlib.sha256(b"trusteq-key-id\0" + secret).hexdigest()[:12]


def _check_secret(secret: str, where: str) -> bytes:
    secret = secret.strip()
    if len(secret) < MIN_KEY_LENGTH:
        raise SigningKeyError(
            f"The signing key from {where} has {len(secret)} characters; at least {MIN_KEY_LENGTH} "
            f"are required. {HOW_TO_SET_KEY}"
        )
    return secret.encode("utf-8")


@dataclass(frozen=True)
class Keyring:
    """The signing keys known to a process: several key ids for rotation, one active.

    Parameters
    ----------
    keys : mapping of str to bytes
        Key id -> secret.  Verification accepts a signature made with any of them.
    active : str
        The key id new verdicts are signed with (the newest key).
    """

    keys: Mapping[str, bytes]
    active: str

    def __post_init__(self) -> None:
        if not self.keys:
            raise SigningKeyError(f"A keyring needs at least one key. {HOW_TO_SET_KEY}")
        if self.active not in self.keys:
            raise SigningKeyError(
                f"The active key id {self.active!r} is not in the keyring {sorted(self.keys)!r}."
            )

    def __repr__(self) -> str:  # never print secrets
        return f"Keyring(key_ids={sorted(self.keys)!r}, active={self.active!r})"

    @classmethod
    def from_secret(cls, secret: str, key_id: str | None = None) -> Keyring:
        """A one-key keyring; the key id defaults to a fingerprint of the secret."""
        raw = _check_secret(secret, "the given secret")
        kid = key_id or _key_id_of(raw)
        return cls({kid: raw}, kid)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Keyring:
        """Load the keyring from the environment.

        The first of these that is set wins:

        1. ``TRUSTEQ_SIGNING_KEYS_FILE``: a file of ``key_id=secret`` lines (``#`` comments,
           blank lines ignored).  The active key is ``TRUSTEQ_SIGNING_KEY_ID`` if set, else the
           last line: to rotate, append a new key, deploy the file to the evaluator and the
           server, and later remove the old line (verdicts signed with it stop verifying).
        2. ``TRUSTEQ_SIGNING_KEY_FILE``: a file holding one secret.
        3. ``TRUSTEQ_SIGNING_KEY``: the secret itself.

        For 2 and 3 the key id is ``TRUSTEQ_SIGNING_KEY_ID`` or a fingerprint of the secret.

        Raises
        ------
        SigningKeyError
            When none is set, a file can't be read, or a secret is shorter than 32 characters.
        """
        env = os.environ if environ is None else environ
        key_id = env.get(_ENV_KEY_ID) or None
        if keys_file := env.get(_ENV_KEYS_FILE):
            keys = _parse_keyring(_read(keys_file, _ENV_KEYS_FILE), keys_file)
            active = key_id or list(keys)[-1]
            if active not in keys:
                raise SigningKeyError(
                    f"{_ENV_KEY_ID}={active!r} is not in {_ENV_KEYS_FILE}={keys_file!r} "
                    f"(key ids: {sorted(keys)!r})."
                )
            return cls(keys, active)
        if key_file := env.get(_ENV_KEY_FILE):
            return cls.from_secret(_read(key_file, _ENV_KEY_FILE), key_id)
        if secret := env.get(_ENV_KEY):
            raw = _check_secret(secret, _ENV_KEY)
            kid = key_id or _key_id_of(raw)
            return cls({kid: raw}, kid)
        raise SigningKeyError(f"No trusteq signing key is configured. {HOW_TO_SET_KEY}")

    def mac(self, key_id: str, message: bytes) -> str:
        """Hex HMAC-SHA256 of ``message`` under the key ``key_id``."""
        return hmac.new(self.keys[key_id], message, hashlib.sha256).hexdigest()


def _parse_keyring(text: str, keys_file: str) -> dict[str, bytes]:
    """Key id -> secret of a keyring file (``key_id=secret`` lines), in file order; at least one."""
    keys: dict[str, bytes] = {}
    for lineno, raw_line in enumerate(text.splitlines(), 1):
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        kid, sep, secret = line.partition("=")
        kid = kid.strip()
        if not sep or not kid:
            raise SigningKeyError(
                f"{_ENV_KEYS_FILE}={keys_file!r}, line {lineno}: expected 'key_id=secret', "
                f"got a line without '=' or without a key id."
            )
        keys.pop(kid, None)  # a repeated id counts where it was written last
        keys[kid] = _check_secret(secret, f"{keys_file!r} line {lineno}")
    if not keys:
        raise SigningKeyError(f"{_ENV_KEYS_FILE}={keys_file!r} holds no key. {HOW_TO_SET_KEY}")
    return keys


def _read(path: str, var: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise SigningKeyError(f"{var}={path!r} cannot be read: {e}") from e


def canonical_json(obj: Any) -> bytes:
    """The canonical encoding that is signed: sorted keys, no spaces, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _reasons_from_tag(value: str | None) -> list[str]:
    if not value:
        return []
    try:
        loaded = json.loads(value)
    except ValueError:
        return [value]
    return [str(r) for r in loaded] if isinstance(loaded, list) else [str(loaded)]


def signed_payload(*, name: str, version: str, source: str, tags: Mapping[str, str]) -> dict[str, Any]:
    """The object that is signed for a model version: its identity plus its verdict tags.

    ``name``, ``version`` and ``source`` must come from the registry's record of the version,
    never from the tags.
    """
    payload: dict[str, Any] = {"scheme": SCHEME, "name": str(name), "version": str(version),
                               "source": str(source)}
    for tag, fname in _TAG_FIELDS.items():
        if tag != TAG_POLICIES or tag in tags:
            payload[fname] = tags.get(tag, "")
    payload["reasons"] = _reasons_from_tag(tags.get(TAG_REASONS))
    return payload


def sign_verdict(
    keyring: Keyring,
    *,
    name: str,
    version: str,
    source: str,
    verdict: str,
    run_id: str,
    parent: str,
    data_digest: str,
    policy_digest: str,
    content_digest: str,
    reasons: list[str] | tuple[str, ...] = (),
    policies: Sequence[PolicyOutcome] | None = None,
) -> dict[str, str]:
    """The complete set of verdict tags for one model version, signed with the active key.

    ``policies``: how each policy the evaluation was judged against decided (``trusteq.policies``,
    signed with the rest); None writes no such tag.

    Returns
    -------
    dict of str to str
        Tag -> value for every tag in :data:`VERDICT_TAGS`; write them with the signature last.
    """
    if verdict not in ("pass", "fail"):
        raise ValueError(f"Expected verdict 'pass' or 'fail', got {verdict!r}")
    tags = {
        TAG_VERDICT: verdict,
        TAG_RUN_ID: str(run_id),
        TAG_PARENT: str(parent),
        TAG_DATA_DIGEST: str(data_digest),
        TAG_POLICY_DIGEST: str(policy_digest),
        TAG_REASONS: json.dumps([str(r) for r in reasons], ensure_ascii=False),
        TAG_KEY_ID: keyring.active,
        TAG_CONTENT_DIGEST: str(content_digest),
    }
    if policies is not None:
        tags[TAG_POLICIES] = policies_tag_value(policies)
    payload = signed_payload(name=name, version=version, source=source, tags=tags)
    tags[TAG_SIGNATURE] = f"{SCHEME}:{keyring.mac(keyring.active, canonical_json(payload))}"
    return tags


# --- per-policy outcomes and what the server requires ------------------------------------------

@dataclass(frozen=True)
class PolicyOutcome:
    """How one policy judged an evaluation: the policy's name and digest, pass or fail, and why.

    A verdict carries one per policy it was judged against (``trusteq.policies``, signed); the gate
    matches them by ``digest`` only (a name is a label anyone can choose).
    """

    name: str
    digest: str
    passed: bool
    reasons: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "digest": self.digest, "passed": self.passed, "reasons": list(self.reasons)}

    @classmethod
    def from_dict(cls, d: Any) -> PolicyOutcome:
        """Parse one outcome; a malformed one is a ``ValueError`` that names the problem."""
        if not isinstance(d, Mapping) or set(d) != {"name", "digest", "passed", "reasons"}:
            raise ValueError(f"a policy outcome is an object with name, digest, passed and reasons, got {d!r:.200}")
        if not (isinstance(d["name"], str) and isinstance(d["digest"], str) and isinstance(d["passed"], bool)
                and isinstance(d["reasons"], list) and all(isinstance(r, str) for r in d["reasons"])):
            raise ValueError(f"a policy outcome has a string name and digest, a boolean passed and a list of "
                             f"string reasons, got {d!r:.200}")
        return cls(d["name"], d["digest"], d["passed"], tuple(d["reasons"]))


def policies_tag_value(outcomes: Sequence[PolicyOutcome]) -> str:
    """The ``trusteq.policies`` tag value: canonical JSON of the outcomes, as signed."""
    return canonical_json([o.to_dict() for o in outcomes]).decode("utf-8")


def parse_policies_tag(value: str | None) -> tuple[PolicyOutcome, ...]:
    """The outcomes of a ``trusteq.policies`` tag (none when absent); ``ValueError`` when malformed."""
    if not value:
        return ()
    try:
        loaded = json.loads(value)
    except ValueError as e:
        raise ValueError(f"tag {TAG_POLICIES!r} is not JSON: {e}") from None
    if not isinstance(loaded, list):
        raise ValueError(f"tag {TAG_POLICIES!r} is not a list of policy outcomes")
    return tuple(PolicyOutcome.from_dict(d) for d in loaded)


@dataclass(frozen=True)
class PolicyRequirement:
    """What the server requires for one alias or stage: a passing outcome of a policy with one of ``digests``.

    ``name`` labels the policy in messages; ``source`` says which server setting asked for it.
    """

    name: str
    digests: tuple[str, ...]
    source: str = ""


@dataclass(frozen=True)
class Decision:
    """What the gate decides for one model version, and why.

    Attributes
    ----------
    ok : bool
        True only for a signature that verifies *and* a ``pass`` verdict: promotion is allowed.
    verdict : str or None
        The verdict tag as recorded (``"pass"``, ``"fail"``, anything typed by hand, or None).
    signature_valid : bool
        Whether the verdict tags verify for this version.
    reasons : tuple of str
        Why promotion is refused (empty when ``ok``), including the verdict's own reasons.
    verdict_reasons : tuple of str
        The reasons recorded with the verdict (failed or skipped checks).
    fields : dict
        The payload that was checked (name, version, source, parent, run id, digests, key id),
        ``policies`` (the signed per-policy outcomes), for a copied version ``inherited_from``, and
        with server requirements ``required_for``, ``required_policies`` and ``satisfied_policies``.
    headline : str
        Why promotion is refused, in one short sentence (the first failing reason); empty when ``ok``.
    """

    ok: bool
    verdict: str | None
    signature_valid: bool
    reasons: tuple[str, ...] = ()
    verdict_reasons: tuple[str, ...] = ()
    fields: dict[str, Any] = field(default_factory=dict)
    headline: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "verdict": self.verdict, "signature_valid": self.signature_valid,
                "reasons": list(self.reasons), "verdict_reasons": list(self.verdict_reasons),
                "fields": dict(self.fields), "headline": self.headline}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Decision:
        return cls(ok=bool(d["ok"]), verdict=d.get("verdict"), signature_valid=bool(d["signature_valid"]),
                   reasons=tuple(d.get("reasons", ())), verdict_reasons=tuple(d.get("verdict_reasons", ())),
                   fields=dict(d.get("fields", {})), headline=str(d.get("headline", "")))


# (name, version) -> (source, tags) of a model version, or None when it doesn't exist
VersionLookup = Callable[[str, str], "tuple[str, Mapping[str, str]] | None"]
# (name, version) -> the digest of the files the version serves now (trusteq_gate.content)
ContentCheck = Callable[[str, str], str]


def _copy_origin(source: str) -> tuple[str, str] | None:
    """``models:/NAME/VERSION`` (the form a server records for a copy) -> (NAME, VERSION)."""
    if not source.startswith("models:/"):
        return None
    name, sep, version = source[len("models:/"):].rpartition("/")
    return (name, version) if sep and name and parse_version_number(version) is not None else None


def _more(items: Sequence[str]) -> str:
    """The first item, and how many follow it."""
    return items[0] + (f" (and {len(items) - 1} more)" if len(items) > 1 else "")


@dataclass
class _Checking:
    """What one check of a version has found so far, and how it refuses."""

    name: str
    version: str
    verdict: str | None
    verdict_reasons: tuple[str, ...]
    fields: dict[str, Any]

    @property
    def label(self) -> str:
        return f"models:/{self.name}/{self.version}"

    def refuse(self, *why: str, valid: bool = False, headline: str = "") -> Decision:
        how = ("Evaluate it against its parent with trusteq (`trusteq evaluate`, or mlflow.models.evaluate(..., "
               "evaluators='trusteq')) so that a signed pass verdict is recorded; `trusteq verify "
               f"{self.name} {self.version}` shows what the gate sees.")
        return Decision(False, self.verdict, valid, (*why, how), self.verdict_reasons, self.fields,
                        headline or why[0])

    def allow(self) -> Decision:
        return Decision(True, self.verdict, True, (), self.verdict_reasons, self.fields)


def check_version(
    *,
    name: str,
    version: str,
    source: str,
    tags: Mapping[str, str],
    keyring: Keyring | None,
    lookup: VersionLookup | None = None,
    content_of: ContentCheck | None = None,
    required: Sequence[PolicyRequirement] = (),
    required_for: str = "this promotion",
    _depth: int = 0,
) -> Decision:
    """Decide whether a model version may be promoted: a valid signature over a passing judgement.

    Parameters
    ----------
    name, version, source : str
        The version's identity as recorded by the registry (not as claimed by its tags).
    tags : mapping
        The version's tags.
    keyring : Keyring or None
        None means no key is configured: nothing verifies (fail closed).
    lookup : callable, optional
        ``(name, version) -> (source, tags) | None``.  With it, a version copied from another
        (source ``models:/NAME/VERSION``, tags copied, as MLflow's ``copy_model_version`` and
        the UI's "Promote model" do) inherits the verdict of the version it was copied from,
        provided that verdict still verifies there.
    content_of : callable, optional
        ``(name, version) -> digest`` of the files the version serves now.  With it, a pass is
        promotable only when that digest equals the signed ``content_digest`` (the files judged
        are the files served); an error while reading them refuses.  Without it the content is
        not checked, and ``fields["content_checked"]`` says so.
    required : sequence of PolicyRequirement
        What the server requires for the alias or stage being set (its own configuration, never
        the caller's): each needs a signed passing outcome of a policy with one of its digests, and
        the verdict's overall pass/fail does not decide.  Empty: the overall verdict must be ``pass``.
    required_for : str
        Names the alias or stage in the reasons (e.g. ``"alias 'champion'"``).
    """
    ck = _Checking(str(name), str(version), tags.get(TAG_VERDICT), tuple(_reasons_from_tag(tags.get(TAG_REASONS))),
                   {"name": str(name), "version": str(version), "source": str(source)})
    refused = _check_form(ck, tags, keyring)
    if refused is not None or keyring is None:
        return refused or ck.refuse("no keyring")
    payload = signed_payload(name=name, version=version, source=source, tags=tags)
    ck.fields.update({k: payload[k] for k in ("parent", "run_id", "data_digest", "policy_digest", "key_id",
                                              "content_digest")})
    ck.fields["content_checked"] = False
    refused = _check_signature(ck, keyring, payload, str(tags.get(TAG_SIGNATURE)), source, tags, lookup, _depth)
    if refused is None:
        refused = _check_judgement(ck, tags, required, required_for)
    if refused is not None:
        return refused
    return _check_content(ck, payload, content_of)


def _check_form(ck: _Checking, tags: Mapping[str, str], keyring: Keyring | None) -> Decision | None:
    """A key to verify with, and a complete set of verdict tags."""
    if keyring is None:
        return ck.refuse(f"No signing key is configured here, so no verdict can be verified. {HOW_TO_SET_KEY}")
    if TAG_SIGNATURE not in tags and TAG_VERDICT not in tags:
        return ck.refuse(f"{ck.label} has no trusteq verdict (tags '{TAG_VERDICT}' and '{TAG_SIGNATURE}' are "
                         "missing).")
    missing = [t for t in VERDICT_TAGS if t not in tags and t not in _OPTIONAL_TAGS]
    if missing:
        return ck.refuse(f"{ck.label} has an incomplete trusteq verdict: missing tag(s) {missing}; "
                         "a verdict is only written by the trusteq evaluator.")
    return None


def _check_signature(ck: _Checking, keyring: Keyring, payload: Mapping[str, Any], signature: str, source: str,
                     tags: Mapping[str, str], lookup: VersionLookup | None, depth: int) -> Decision | None:
    """The signature verifies for this version, or for the version it is an unchanged copy of."""
    scheme, _, mac = signature.partition(":")
    if scheme == "hmac-sha256-v1":
        return ck.refuse(f"{ck.label}: the verdict is signed with the retired scheme hmac-sha256-v1, which does not "
                         "bind the model's files; re-evaluate the version to record a hmac-sha256-v2 verdict.")
    if scheme != SCHEME or not mac:
        return ck.refuse(f"{ck.label}: the signature tag {TAG_SIGNATURE!r} is not a {SCHEME} signature.")
    key_id = payload["key_id"]
    if key_id not in keyring.keys:
        return ck.refuse(f"{ck.label}: the verdict was signed with key id {key_id!r}, which is not in this keyring "
                         f"{sorted(keyring.keys)!r} (rotated out, or signed with another key).")
    if hmac.compare_digest(keyring.mac(key_id, canonical_json(payload)), mac):
        return None
    inherited = _inherited_from(keyring, source, tags, lookup, depth)
    if inherited is not None:
        ck.fields["inherited_from"] = inherited
        return None
    return ck.refuse(f"{ck.label}: the trusteq signature does not verify for this version — a hand-typed tag, a "
                     "signature copied or replayed from another version, or a field changed after signing.")


def _inherited_from(keyring: Keyring, source: str, tags: Mapping[str, str], lookup: VersionLookup | None,
                    depth: int) -> str | None:
    """``models:/NAME/V`` when this version is a copy of it with its verdict tags unchanged, and they verify there."""
    origin = _copy_origin(str(source))
    if origin is None or lookup is None or depth >= 3:
        return None
    found = lookup(*origin)
    if found is None:
        return None
    o_source, o_tags = found
    if any(o_tags.get(t) != tags.get(t) for t in VERDICT_TAGS):
        return None
    inner = check_version(name=origin[0], version=origin[1], source=o_source, tags=o_tags, keyring=keyring,
                          lookup=lookup, _depth=depth + 1)
    return f"models:/{origin[0]}/{origin[1]}" if inner.signature_valid else None


def _check_judgement(ck: _Checking, tags: Mapping[str, str], required: Sequence[PolicyRequirement],
                     required_for: str) -> Decision | None:
    """A signed verdict that passes: overall, or under every policy the server requires for this target."""
    try:
        outcomes = parse_policies_tag(tags.get(TAG_POLICIES))
    except ValueError as e:
        return ck.refuse(f"{ck.label}: the verdict's per-policy outcomes cannot be read ({e}).", valid=True)
    ck.fields["policies"] = [o.to_dict() for o in outcomes]
    if required:
        ck.fields["required_for"] = required_for
        ck.fields["required_policies"] = [{"name": r.name, "digests": list(r.digests), "source": r.source}
                                          for r in required]
        return _check_required(ck, outcomes, required, required_for)
    if ck.verdict == "pass":
        return None
    run_id = ck.fields.get("run_id")
    why = f"{ck.label} has a signed '{ck.verdict}' verdict from run {run_id!r}"
    why += (": " + "; ".join(ck.verdict_reasons)) if ck.verdict_reasons else "."
    return ck.refuse(why, valid=True, headline=f"{ck.label} has a signed '{ck.verdict}' verdict"
                     + (f": {_more(_first_measured(ck.verdict_reasons))}" if ck.verdict_reasons else ""))


#: how the signed reasons of an incomplete verdict begin (written by mlflow_trusteq's evaluator)
INCOMPLETE_MARK = "INCOMPLETE"


def is_incomplete(reasons: Sequence[str]) -> bool:
    """Whether signed reasons are those of an *incomplete* verdict: no measured failure, evaluate again."""
    return bool(reasons) and reasons[0].startswith(INCOMPLETE_MARK)


def _first_measured(reasons: Sequence[str]) -> list[str]:
    """The reasons without the leading note of an incomplete verdict (the first then says what failed)."""
    rest = list(reasons)
    if len(rest) > 1 and is_incomplete(rest):
        return ["incomplete: " + rest[1], *rest[2:]]
    return rest


def _check_required(ck: _Checking, outcomes: Sequence[PolicyOutcome], required: Sequence[PolicyRequirement],
                    required_for: str) -> Decision | None:
    """Every required policy has a signed, passing outcome (matched by digest, never by name)."""
    for req in required:
        match = [o for o in outcomes if o.digest in req.digests]
        if not match:
            judged = ", ".join(f"{o.name!r} ({o.digest[:12]})" for o in outcomes) or "no named policy"
            why = (f"{ck.label}: {required_for} requires policy {req.name!r} (digest "
                   f"{' or '.join(d[:12] for d in req.digests)}, {req.source or 'server configuration'}), and the "
                   f"verdict was not judged against it (judged against: {judged}); evaluate the version with that "
                   "policy (evaluator_config 'policies').")
            return ck.refuse(why, valid=True)
        if not any(o.passed for o in match):
            failed = [r for o in match for r in o.reasons] or ["no reason recorded"]
            why = f"{ck.label}: {required_for} requires policy {req.name!r}, which the verdict fails: "
            return ck.refuse(why + "; ".join(failed), valid=True, headline=why + _more(_first_measured(failed)))
    ck.fields["satisfied_policies"] = sorted({o.name for o in outcomes if o.passed
                                              and any(o.digest in r.digests for r in required)})
    return None


def _check_content(ck: _Checking, payload: Mapping[str, Any], content_of: ContentCheck | None) -> Decision:
    """The last step of a pass: are the files served now the files that were judged?"""
    if content_of is None:
        return ck.allow()
    signed = str(payload.get("content_digest") or "")
    if not signed:
        return ck.refuse(f"{ck.label}: the verdict binds no content digest (tag {TAG_CONTENT_DIGEST!r} is empty).",
                         valid=True)
    try:
        actual = content_of(ck.name, ck.version)
    except Exception as e:  # unreadable artifacts: what would be served cannot be shown to be what was judged
        return ck.refuse(f"{ck.label}: the model's files cannot be read to check them against the verdict "
                         f"({type(e).__name__}: {e}).", valid=True)
    ck.fields["content_checked"] = True
    ck.fields["content_digest_now"] = actual
    if not hmac.compare_digest(actual, signed):
        return ck.refuse(f"{ck.label}: the model's files changed after the evaluation (content digest now {actual}, "
                         f"judged {signed}); re-evaluate the version.", valid=True)
    return ck.allow()


def _tag_write_message(op: str, name: str, version: str, key: str, value: str, ts_ms: int, nonce: str) -> bytes:
    return canonical_json({"op": op, "name": str(name), "version": str(version), "key": key,
                           "value": value, "ts_ms": int(ts_ms), "nonce": nonce, "scheme": "trusteq-tag-write-v2"})


def tag_write_token(
    keyring: Keyring, *, op: str, name: str, version: str, key: str, value: str = "", ts_ms: int | None = None,
    nonce: str | None = None,
) -> str:
    """The evaluator's credential for one write to a ``trusteq.*`` tag.

    The header value is ``v2:<key_id>:<unix time, ms>:<nonce>:<hex HMAC>`` over the canonical
    JSON of ``op`` (``"set"`` or ``"delete"``), model name, version (``""`` for a
    registered-model tag), tag key, tag value, the time and a random nonce.  The gate accepts it
    within :data:`TAG_AUTH_MAX_SKEW_S` seconds, only for exactly that write, only once (the nonce
    is recorded in the registry's database), and only when no later credential has already
    written a ``trusteq.*`` tag of that version (writes are monotonic in time).
    """
    ts_ms = int(time.time() * 1000) if ts_ms is None else int(ts_ms)
    nonce = secrets.token_hex(16) if nonce is None else nonce
    mac = keyring.mac(keyring.active, _tag_write_message(op, name, version, key, value, ts_ms, nonce))
    return f"v2:{keyring.active}:{ts_ms}:{nonce}:{mac}"


def tag_write_token_id(token: str) -> tuple[str, int]:
    """``(nonce, ts_ms)`` of a well-formed token (check it with :func:`check_tag_write_token` first)."""
    parts = token.split(":")
    return parts[3], int(parts[2])


def check_tag_write_token(
    keyring: Keyring | None, token: str | None, *, op: str, name: str, version: str, key: str,
    value: str = "", now: float | None = None,
) -> str | None:
    """None when ``token`` authorizes this exact tag write, else the reason it does not.

    Stateless: whether the token was used before is the ledger's business
    (:class:`trusteq_gate.ledger.WriteLedger`).
    """
    if keyring is None:
        return f"no signing key is configured on the server. {HOW_TO_SET_KEY}"
    if not token:
        return f"the request carries no {TAG_AUTH_HEADER} header (the trusteq evaluator's credential)"
    parts = token.split(":")
    if (len(parts) != 5 or parts[0] != "v2" or not parts[2].isascii() or not parts[2].isdigit()
            or not 16 <= len(parts[3]) <= 64):
        return f"the {TAG_AUTH_HEADER} header is malformed (expected v2:<key id>:<ms>:<nonce>:<hmac>)"
    _, kid, ts_text, nonce, mac = parts
    ts_ms = int(ts_text)
    now = time.time() if now is None else now
    if abs(now - ts_ms / 1000) > TAG_AUTH_MAX_SKEW_S:
        return f"the {TAG_AUTH_HEADER} header has expired (older than {TAG_AUTH_MAX_SKEW_S} s)"
    if kid not in keyring.keys:
        return f"the {TAG_AUTH_HEADER} header names an unknown key id {kid!r}"
    expected = keyring.mac(kid, _tag_write_message(op, name, version, key, value, ts_ms, nonce))
    if not hmac.compare_digest(expected, mac):
        return f"the {TAG_AUTH_HEADER} header does not authorize this write"
    return None
