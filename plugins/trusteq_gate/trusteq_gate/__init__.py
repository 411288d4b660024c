"""trusteq-gate: the MLflow tracking-server plugin that makes trusteq verdicts binding.

``mlflow server --app-name trusteq-gate`` refuses promotion (alias, stage, copy) of a model
version without a valid signed pass verdict (or, for an alias with a policy of its own, a signed
pass of that policy: :mod:`trusteq_gate.alias_policies`).  Signing and verification live here, once; the
evaluator (``mlflow_trusteq``) imports them.  Depends on mlflow only.
"""

from __future__ import annotations

from trusteq_gate.signing import (
    SCHEME,
    TAG_AUTH_HEADER,
    TAG_CONTENT_DIGEST,
    TAG_DATA_DIGEST,
    TAG_KEY_ID,
    TAG_PARENT,
    TAG_POLICIES,
    TAG_POLICY_DIGEST,
    TAG_PREFIX,
    TAG_REASONS,
    TAG_RUN_ID,
    TAG_SIGNATURE,
    TAG_VERDICT,
    VERDICT_TAGS,
    Decision,
    Keyring,
    PolicyOutcome,
    PolicyRequirement,
    SigningKeyError,
    canonical_json,
    check_tag_write_token,
    check_version,
    is_trusteq_tag,
    sign_verdict,
    signed_payload,
    tag_write_token,
    tag_write_token_id,
)

__all__ = [
    "SCHEME", "TAG_AUTH_HEADER", "TAG_CONTENT_DIGEST", "TAG_DATA_DIGEST", "TAG_KEY_ID", "TAG_PARENT",
    "TAG_POLICIES", "TAG_POLICY_DIGEST",
    "TAG_PREFIX", "TAG_REASONS", "TAG_RUN_ID", "TAG_SIGNATURE", "TAG_VERDICT", "VERDICT_TAGS",
    "Decision", "Keyring", "PolicyOutcome", "PolicyRequirement", "SigningKeyError", "canonical_json",
    "check_tag_write_token", "check_version",
    "is_trusteq_tag", "sign_verdict", "signed_payload", "tag_write_token",
    "tag_write_token_id",
]
__version__ = "0.1.0"
