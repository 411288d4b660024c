"""The registry's evidence for the comparability guards (:mod:`mlflow_trusteq._guards`).

Read by the MLflow evaluator *before* the candidate's earlier verdict is cleared: the gate's content
digests of both versions, and the signed verdicts already on the candidate and on its parent. The
guards themselves are judged in :mod:`mlflow_trusteq._guards`, which knows nothing of MLflow.
"""

from __future__ import annotations

import logging
import re
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["registry_evidence"]


def registry_evidence(client: Any, parent_uri: str, registered: tuple[str, str] | None, *,
                      candidate_content: str | None = None, acknowledge_data_change: bool = False) -> dict[str, Any]:
    """What the registry says for the guards, read *before* the candidate's earlier verdict is cleared.

    ``content``: the gate's ``sha256-tree-v1`` digest of the parent's and the candidate's version files
    (when they are registered versions). ``previous_verdicts``: the verdicts whose signature verifies
    (:func:`~mlflow_trusteq.integration.registry.verify_verdict`) on the candidate version itself and on
    the parent version (its own verdict against its parent).
    """
    from .registry import resolve_models_uri

    content: dict[str, str] = {}
    parent = resolve_models_uri(client, parent_uri) if parent_uri.startswith("models:/") else None
    for role, version, known in (("parent", parent, None), ("candidate", registered, candidate_content)):
        digest = known or (_version_digest(client, version) if version is not None else None)
        if digest is not None:
            content[role] = digest
    previous = [*(_signed_verdicts(client, *registered) if registered is not None else []),
                *(_signed_verdicts(client, *parent) if parent is not None else [])]
    return {"content": {"sha256-tree-v1": content} if content else {}, "previous_verdicts": previous,
            "acknowledge_data_change": bool(acknowledge_data_change)}


def _version_digest(client: Any, version: tuple[str, str]) -> str | None:
    from .registry import content_digest_of

    try:
        return content_digest_of(client, *version)
    except Exception as exc:  # unreadable files: no digest of this kind, the guard says what it compared
        logger.warning("no content digest for models:/%s/%s: %s", version[0], version[1], exc)
        return None


_DIGEST = re.compile(r"sha256-rows-v1:[0-9a-f]{64}")


def _signed_verdicts(client: Any, name: str, version: str) -> list[dict[str, Any]]:
    """The version's signed verdict, and the earlier data it was failed against by this guard (carried forward).

    Without the carry, a fail could be shopped away in two steps: evaluate on other rows (fails this
    guard, and records a fail on the new rows), then again on those rows.
    """
    found = _signed_verdict(client, name, version)
    if found is None:
        return []
    carried = [{**found, "data_digest": d, "verdict": "fail", "incomplete": False, "carried": True}
               for r in found.pop("reasons") if r.startswith("guard_data_changed:")
               for d in dict.fromkeys(_DIGEST.findall(r))]
    return [found, *carried]


def _signed_verdict(client: Any, name: str, version: str) -> dict[str, Any] | None:
    from trusteq_gate.signing import is_incomplete

    from .registry import verify_verdict

    try:
        mv = client.get_model_version(name, version)
        if "trusteq.verdict" not in (mv.tags or {}):
            return None
        decision = verify_verdict(client, name, version)
    except Exception:
        logger.debug("could not read the verdict of models:/%s/%s", name, version, exc_info=True)
        return None
    if not decision.signature_valid:
        return None
    f = decision.fields
    reasons = list(decision.verdict_reasons)
    # an incomplete verdict measured no failure (too few rows, a stage that could not run): evaluating
    # again on other (more) data is what its reasons ask for, not data shopping
    incomplete = decision.verdict != "pass" and is_incomplete(reasons)
    return {"model": f"models:/{name}/{version}", "verdict": decision.verdict, "data_digest": f.get("data_digest"),
            "run_id": f.get("run_id"), "reasons": reasons, "incomplete": incomplete}
