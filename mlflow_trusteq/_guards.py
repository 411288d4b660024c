"""Comparability guards: the conditions under which a comparison of two models means nothing.

Each guard is a check of the verdict (``CheckResult.metric`` is its name), failed with its reason,
or skipped with the reason it could not be judged, never a silent pass:

``guard_same_model``
    The parent and the candidate have identical content: a "compression" that changed nothing.
    What is compared (recorded under ``report.settings["guards"]["content"]``, one digest per kind
    and model; only digests of the same kind are compared, and any identical pair fails):

    - ``compare()`` (any entry point): the model object each adapter wraps. A scikit-learn
      estimator: SHA-256 of its state, walked so that it is the same in every process
      (``sklearn-state-sha256``); an ONNX Runtime model: SHA-256
      of the bytes of its ``.onnx`` file (``onnx-file-sha256``); a transformers (torch) model:
      SHA-256 over its ``state_dict`` (name, dtype, shape and bytes of every tensor,
      ``torch-state-sha256``). A callable or a pyfunc of another flavour has no readable content:
      no digest (the guard is skipped when neither kind is shared, and says so).
    - The MLflow evaluator, ``trusteq evaluate`` and the webhook, for registered versions, add the
      gate's digest of each version's files (``sha256-tree-v1``,
      :func:`trusteq_gate.content.client_version_digest`; the digest the verdict is signed with).
      Two versions registered from the same source have the same files.

    Identical *predictions* are not evidence of identical content (a lossless conversion predicts
    the same), so predictions are never compared here.
``guard_implausible_gain``
    The candidate is implausibly *better* than its parent: the lower bound of the interval of
    ``diff/accuracy`` is above ``max_plausible_gain`` (default :data:`DEFAULT_MAX_PLAUSIBLE_GAIN`).
    Compression removes capacity: the published int8, pruning and distillation results (SPEC.md,
    Xu et al. 2021) lose 0 to 4 points of accuracy, and distillation gains at most about one. A gain
    whose *pessimistic* bound exceeds 5 points is the usual sign of a data leak (the candidate was
    tuned on the evaluation rows) or of a mislabelled run (parent and candidate swapped).
``guard_parent_accuracy_floor``
    The parent's own accuracy (point estimate) is below ``parent_accuracy_floor`` (no floor unless
    the policy sets one: chance level depends on the task). Loyalty to a parent that is wrong is
    not worth gating on; this is most often the wrong data or the wrong label order.
``guard_data_changed``
    The data digest differs from the one an earlier verdict was judged on: the candidate version's
    own earlier verdict, or the parent version's own verdict (its lineage: the parent judged against
    its parent). Only verdicts whose signature verifies count (a hand-typed tag is not a verdict).
    ``data_change = "failed"`` (the default) judges against earlier *fail* verdicts: a failed
    candidate cannot be turned into a pass by evaluating it on other rows (data shopping), while a
    re-evaluation of a passed one on new data stands on its own evidence (a new fail is kept);
    ``"any"`` (or ``true``) judges against every earlier verdict. It fails, verdict *incomplete*
    (nothing measured failed: evaluate on the same data, or acknowledge), unless the caller
    acknowledges the change (``acknowledge_data_change=True``); judged only where the registry was
    read (the evaluator), skipped otherwise.

The policy's ``[guards]`` table sets them (:class:`GuardPolicy`); the evidence travels in
``report.settings["guards"]``, so a verdict can be re-judged from ``report.json``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._errors import PolicyError

if TYPE_CHECKING:
    from .compare import TrustReport
    from .policy import CheckResult

__all__ = ["GuardPolicy", "GUARD_NAMES", "DEFAULT_MAX_PLAUSIBLE_GAIN", "judge_guards", "content_evidence",
           "with_guard_evidence", "model_content_digest"]

logger = logging.getLogger(__name__)

GUARD_NAMES = ("guard_same_model", "guard_implausible_gain", "guard_parent_accuracy_floor", "guard_data_changed")
#: the largest gain in accuracy (the lower CI bound of ``diff/accuracy``) a compressed candidate may show
DEFAULT_MAX_PLAUSIBLE_GAIN = 0.05
_KEYS = {"same_model", "max_plausible_gain", "parent_accuracy_floor", "data_change"}


@dataclass(frozen=True)
class GuardPolicy:
    """The policy's ``[guards]`` table. ``false`` (or ``None``) turns a guard off."""

    same_model: bool = True
    max_plausible_gain: float | None = DEFAULT_MAX_PLAUSIBLE_GAIN
    parent_accuracy_floor: float | None = None
    data_change: bool | str = "failed"

    @classmethod
    def from_dict(cls, d: Any) -> GuardPolicy:
        """Validate a ``[guards]`` table; an unknown key or a bad value is a :class:`PolicyError`."""
        if d is None:
            return cls()
        if not isinstance(d, Mapping):
            raise PolicyError(f"[guards] must be a table, got {d!r}")
        unknown = sorted(set(d) - _KEYS)
        if unknown:
            raise PolicyError(f"[guards]: unknown key(s) {unknown}; allowed: {sorted(_KEYS)}")
        if "same_model" in d and not isinstance(d["same_model"], bool):
            raise PolicyError(f"[guards] same_model must be true or false (a boolean), got {d['same_model']!r}")
        values = dict(d)
        if values.get("data_change") is True:
            values["data_change"] = "any"
        if values.get("data_change", "failed") not in (False, "failed", "any"):
            raise PolicyError(f"[guards] data_change must be \"failed\", \"any\" (or true) or false, "
                              f"got {d['data_change']!r}")
        for k in ("max_plausible_gain", "parent_accuracy_floor"):
            v = values.get(k, getattr(cls, k))
            if v is False:  # TOML has no null: `false` turns a numeric guard off
                v = values[k] = None
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
                                  or not 0.0 <= v <= 1.0):
                raise PolicyError(f"[guards] {k} must be a number in [0, 1] (or false: off), got {v!r}")
            if v is not None:
                values[k] = float(v)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ----------------------------------------------------------------------------- evidence
def model_content_digest(model: Any) -> tuple[str, str] | None:
    """``(kind, digest)`` of the model object an adapter wraps, or ``None`` when its content is unknown."""
    try:
        if hasattr(model, "estimator"):
            return "sklearn-state-sha256", _sklearn_digest(model.estimator)
        path = getattr(model, "path", None)
        if path is None and hasattr(model, "session"):
            path = getattr(model.session, "_model_path", None)
        if path:
            return "onnx-file-sha256", _file_sha256(str(path))
        if hasattr(model, "model") and hasattr(model.model, "state_dict"):
            return _torch_digest(model.model)
    except Exception as exc:  # best effort: an unreadable model has no digest, and the guard says so
        logger.debug("no content digest for %r: %s", getattr(model, "name", model), exc)
    return None


#: attributes that hold the memory address of another object (``id()``): they differ between two
#: processes holding the same model (scikit-learn's text vectorizers keep ``_stop_words_id``)
_ADDRESS_ATTRIBUTES = frozenset({"_stop_words_id"})


def _sklearn_digest(estimator: Any) -> str:
    """SHA-256 of an estimator's state, the same in every process (its pickle is not: see below).

    A plain pickle differs between processes for the same fitted model: attributes holding an
    ``id()`` (:data:`_ADDRESS_ATTRIBUTES`) and the order of sets. The state is walked instead:
    objects by class and sorted attributes, dicts by sorted items, sets sorted, arrays by dtype,
    shape and bytes, anything else by its pickle.
    """
    h = hashlib.sha256()
    _feed(h, estimator)
    return h.hexdigest()


def _feed(h: Any, obj: Any) -> None:
    import numpy as np

    if isinstance(obj, np.ndarray) and obj.dtype != object:
        h.update(f"nd:{obj.dtype.str}:{obj.shape}:".encode())
        h.update(np.ascontiguousarray(obj).tobytes())
    elif isinstance(obj, dict):
        h.update(f"dict:{len(obj)}:".encode())
        for key in sorted(obj, key=repr):
            _feed(h, key)
            _feed(h, obj[key])
    elif isinstance(obj, (list, tuple)):
        h.update(f"{type(obj).__name__}:{len(obj)}:".encode())
        for item in obj:
            _feed(h, item)
    elif isinstance(obj, (set, frozenset)):
        h.update(f"set:{len(obj)}:".encode())
        for item in sorted(obj, key=repr):
            _feed(h, item)
    elif hasattr(obj, "__dict__") and hasattr(obj, "get_params"):  # an estimator (or a pipeline step)
        h.update(f"obj:{type(obj).__module__}.{type(obj).__qualname__}:".encode())
        _feed(h, {k: v for k, v in vars(obj).items() if k not in _ADDRESS_ATTRIBUTES})
    else:
        h.update(b"pickle:")
        h.update(pickle.dumps(obj, protocol=4))


def _file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _torch_digest(module: Any) -> tuple[str, str] | None:
    """SHA-256 over every tensor of the state dict; ``None`` when an entry is not a plain tensor."""
    import torch

    h = hashlib.sha256()
    for name, t in module.state_dict().items():
        if not isinstance(t, torch.Tensor) or t.is_quantized:
            return None
        flat = t.detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        h.update(flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b"")
    return "torch-state-sha256", h.hexdigest()


def content_evidence(parent: Any, candidate: Any) -> dict[str, Any]:
    """The ``content`` evidence of two adapters: ``{kind: {"parent": digest, "candidate": digest}}``."""
    out: dict[str, Any] = {}
    for role, model in (("parent", parent), ("candidate", candidate)):
        found = model_content_digest(model)
        if found is not None:
            out.setdefault(found[0], {})[role] = found[1]
    return out


def with_guard_evidence(report: TrustReport, **evidence: Any) -> TrustReport:
    """A copy of ``report`` whose ``settings["guards"]`` also holds ``evidence`` (``content`` kinds merge)."""
    guards = dict(report.settings.get("guards", {}))
    for key, value in evidence.items():
        if key == "content":
            merged = {k: dict(v) for k, v in guards.get("content", {}).items()}
            for kind, digests in value.items():
                merged.setdefault(kind, {}).update(digests)
            guards["content"] = merged
        else:
            guards[key] = value
    return dataclasses.replace(report, settings={**report.settings, "guards": guards})


# ----------------------------------------------------------------------------- judging
def judge_guards(guards: GuardPolicy, report: TrustReport) -> tuple[CheckResult, ...]:
    """The guard checks of ``report`` under ``guards`` (each: pass, fail or skipped, with its reason)."""
    evidence = report.settings.get("guards", {}) if isinstance(report.settings, Mapping) else {}
    out = []
    if guards.same_model:
        out.append(_same_model(evidence.get("content") or {}))
    if guards.max_plausible_gain is not None:
        out.append(_implausible_gain(report, guards.max_plausible_gain))
    if guards.parent_accuracy_floor is not None:
        out.append(_parent_floor(report, guards.parent_accuracy_floor))
    if guards.data_change:
        out.append(_data_changed(report, evidence, only_failed=guards.data_change == "failed"))
    return tuple(out)


def _result(name: str, status: str, reason: str, value: float | None = None, bound: float | None = None,
            threshold: float | None = None) -> CheckResult:
    from .policy import CheckResult

    return CheckResult(name, status, f"{name}: {reason}", value, bound, threshold)  # type: ignore[arg-type]


def _same_model(content: Mapping[str, Any]) -> CheckResult:
    shared = {k: v for k, v in content.items() if "parent" in v and "candidate" in v}
    same = sorted(k for k, v in shared.items() if v["parent"] == v["candidate"])
    if same:
        return _result("guard_same_model", "fail",
                       f"the parent and the candidate have identical content ({', '.join(same)} "
                       f"{shared[same[0]]['parent'][:16]}...): a compression that changed nothing; nothing to judge",
                       1.0, 1.0)
    if not shared:
        return _result("guard_same_model", "skipped",
                       "not judged: the content of the two models cannot be compared (no digest of the same kind "
                       f"for both; have: {sorted(content) or 'none'})")
    return _result("guard_same_model", "pass", f"the content differs ({', '.join(sorted(shared))})", 0.0, 0.0)


def _implausible_gain(report: TrustReport, limit: float) -> CheckResult:
    est = report.metrics.get("diff/accuracy")
    if est is None or est.lower is None or not math.isfinite(est.value):
        return _result("guard_implausible_gain", "skipped",
                       "not judged: no interval of diff/accuracy (gold labels are needed)", threshold=limit)
    if est.lower > limit:
        return _result("guard_implausible_gain", "fail",
                       f"the candidate is implausibly better than its parent: diff/accuracy = {est.value:+.4f}, the "
                       f"lower bound of its CI {est.lower:+.4f} is above the plausible gain {limit:g} (a data leak, "
                       "or parent and candidate swapped?)", est.value, est.lower, limit)
    return _result("guard_implausible_gain", "pass",
                   f"diff/accuracy lower bound {est.lower:+.4f} <= {limit:g}", est.value, est.lower, limit)


def _parent_floor(report: TrustReport, floor: float) -> CheckResult:
    est = report.metrics.get("parent/accuracy")
    if est is None or not math.isfinite(est.value):
        return _result("guard_parent_accuracy_floor", "fail",
                       f"could not be judged: the parent's accuracy was not measured (gold labels are needed) and "
                       f"the policy sets a floor of {floor:g}; fail closed", threshold=floor)
    if est.value < floor:
        return _result("guard_parent_accuracy_floor", "fail",
                       f"the parent's own accuracy {est.value:.4f} is below the policy's floor {floor:g}: loyalty to "
                       "it is not worth judging (wrong data, or the wrong label order?)", est.value, est.value, floor)
    return _result("guard_parent_accuracy_floor", "pass", f"parent accuracy {est.value:.4f} >= {floor:g}",
                   est.value, est.value, floor)


def _data_changed(report: TrustReport, evidence: Mapping[str, Any], *, only_failed: bool) -> CheckResult:
    previous = evidence.get("previous_verdicts")
    if previous is None:
        return _result("guard_data_changed", "skipped",
                       "not judged: no registry was read for earlier verdicts (compare() without the MLflow evaluator)")
    changed = [p for p in previous if p.get("data_digest") and p["data_digest"] != report.data_digest]
    # "failed": a measured fail counts; a pass and an incomplete verdict (no measured failure) do not
    other = [p for p in changed if p.get("verdict") != "pass" and not p.get("incomplete")] if only_failed else changed
    if not other:
        note = (f"; {len(changed)} earlier pass verdict(s) on other data, which this evaluation replaces on its own "
                "evidence (data_change = \"failed\")" if changed else "")
        return _result("guard_data_changed", "pass",
                       f"{len(previous)} earlier signed verdict(s), none that counts judged on other data{note}",
                       0.0, 0.0)
    # the full digests: a verdict failed by this guard carries them forward (its signed reasons name them)
    where = "; ".join(f"{p.get('model')} ({p.get('verdict')}, run {p.get('run_id')}) on {p['data_digest']}"
                      for p in other[:5])
    if evidence.get("acknowledge_data_change"):
        return _result("guard_data_changed", "pass",
                       f"the data differs from earlier verdict(s) [{where}]; acknowledged by the caller "
                       "(acknowledge_data_change=True)", float(len(other)), float(len(other)))
    return _result("guard_data_changed", "fail",
                   f"this data ({report.data_digest[:30]}...) differs from the data earlier verdict(s) were judged on "
                   f"[{where}]; results on different data are not comparable. Evaluate on the same data, or pass "
                   "acknowledge_data_change=True to accept the change", float(len(other)))
