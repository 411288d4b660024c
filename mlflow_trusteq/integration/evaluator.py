"""The MLflow evaluator ``trusteq`` and the function behind it, :func:`evaluate_and_log`.

Imported by MLflow's evaluator registry whenever ``mlflow.models.evaluation`` loads, so this
module imports nothing heavy at the top: torch, transformers and friends load only when a trusteq
evaluation actually runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from mlflow.models.evaluation.base import EvaluationResult, ModelEvaluator

from .._errors import InvalidInputError, TrustEqError
from .config import TrustEqConfig
from .registry import clear_verdict, get_parent, record_verdict, resolve_models_uri

logger = logging.getLogger(__name__)

__all__ = ["TrustEqEvaluator", "EvaluationOutcome", "evaluate_and_log", "resolve_registered_version"]


@dataclass(frozen=True)
class EvaluationOutcome:
    """What one trusteq evaluation produced."""

    report: Any  # TrustReport
    verdict: Any  # Verdict
    run_id: str
    candidate: tuple[str, str] | None  # (name, version) of the registered candidate, if any
    parent_uri: str
    metrics: dict[str, float]
    artifacts: dict[str, str]
    version_tags: dict[str, str]


def resolve_registered_version(model: Any, client: Any, hint: str | None = None) -> tuple[str, str] | None:
    """The (name, version) of a registered candidate, from a URI ``hint`` or the loaded model's id."""
    if hint:
        found = resolve_models_uri(client, hint)
        if found is None:
            raise InvalidInputError(f"`candidate` must be a models:/ URI of a registered version, got {hint!r}")
        client.get_model_version(*found)  # raises a clear MlflowException when it does not exist
        return found
    if isinstance(model, str):
        return resolve_models_uri(client, model)
    model_id = getattr(model, "model_id", None)
    run_id = getattr(getattr(model, "metadata", None), "run_id", None)
    if not model_id or not run_id:
        return None
    try:
        versions = client.search_model_versions(f"run_id = '{run_id}'")
    except Exception:  # some stores cannot filter on run_id; the candidate is then unregistered for us
        logger.debug("could not search model versions by run id", exc_info=True)
        return None
    # MLflow 3 records the logged model as the version's source (models:/<model_id>); some stores
    # also fill ModelVersion.model_id
    matches = [(v.name, str(v.version)) for v in versions
               if getattr(v, "model_id", None) == model_id or v.source in (f"models:/{model_id}", model_id)]
    return matches[0] if len(matches) == 1 else None


def _resolve_parent(cfg: TrustEqConfig, candidate: tuple[str, str] | None, client: Any) -> str:
    parent = cfg.parent
    if parent in (None, "lineage"):
        if candidate is None:
            raise InvalidInputError(
                "no parent: pass evaluator_config={'parent': 'models:/<name>/<version>'}, or evaluate a "
                "registered candidate version whose lineage tag trusteq.parent names its parent")
        parent = get_parent(client, *candidate)
        if not parent:
            raise InvalidInputError(
                f"no parent: model version {candidate[0]}/{candidate[1]} has no trusteq.parent lineage tag; "
                "record it with mlflow_trusteq.integration.registry.set_parent(...) or pass `parent=`")
    assert parent is not None
    parsed = resolve_models_uri(client, parent)
    if parsed is not None:
        client.get_model_version(*parsed)  # a missing version fails here, with MLflow's message
        if candidate is not None and parsed == candidate:
            raise InvalidInputError(
                f"the candidate {candidate[0]}/{candidate[1]} names itself as its parent ({parent}); "
                "a model cannot be judged against itself")
        return f"models:/{parsed[0]}/{parsed[1]}"
    return parent


def evaluate_and_log(
    candidate: Any,
    data: Any,
    *,
    targets: Any = None,
    config: TrustEqConfig | dict[str, Any] | None = None,
    run_id: str | None = None,
    client: Any = None,
) -> EvaluationOutcome:
    """Compare ``candidate`` with its parent on ``data``, judge it, and log everything to MLflow.

    The one code path behind the ``trusteq`` evaluator, ``trusteq evaluate`` and the webhook
    receiver. Logs to ``run_id`` (or the active run, or a new one), and — when the candidate is a
    registered version and ``config.record_verdict`` — clears its earlier verdict first and
    records the new, signed one last. Any error propagates *after* the run is tagged with it:
    a failed evaluation never leaves a pass verdict.
    """
    import mlflow
    from mlflow import MlflowClient

    from ..compare import compare
    from ..policy import Policy
    from .runlog import log_evaluation

    cfg = config if isinstance(config, TrustEqConfig) else TrustEqConfig.from_mapping(config)
    client = client or MlflowClient()
    policy = Policy.load(cfg.policy)
    registered = resolve_registered_version(candidate, client, cfg.candidate)
    parent_uri = _resolve_parent(cfg, registered, client)
    if registered is not None and cfg.record_verdict:
        # an earlier verdict goes first, so a failure below never leaves an old pass behind
        clear_verdict(client, *registered)

    own_run = False
    if run_id is None:
        active = mlflow.active_run()
        if active is None:
            run_id = client.create_run(
                mlflow.tracking.fluent._get_experiment_id(),
                run_name=f"trusteq-{registered[0]}-v{registered[1]}" if registered else "trusteq").info.run_id
            own_run = True
        else:
            run_id = active.info.run_id
    client.set_tag(run_id, "trusteq.status", "running")
    try:
        report = compare(
            parent_uri, candidate, data, targets=targets, feature_columns=cfg.feature_columns,
            js_base=cfg.js_base, n_bins_equal_width=cfg.n_bins_equal_width, n_bins_equal_mass=cfg.n_bins_equal_mass,
            min_bin_count=cfg.min_bin_count, n_resamples=cfg.n_resamples, confidence=cfg.confidence,
            random_state=cfg.random_state, alignment=cfg.alignment_config(), robustness=cfg.robustness_config(),
            parent_kwargs={"name": parent_uri, **cfg.parent_kwargs},
            candidate_kwargs=({"name": f"models:/{registered[0]}/{registered[1]}"} if registered else {})
            | cfg.candidate_kwargs,
        )
        verdict = policy.judge(report)
        metrics, artifacts = log_evaluation(client, run_id, report, verdict, policy, parent_uri=parent_uri,
                                            candidate=registered, max_disagreements=cfg.max_disagreements)
        version_tags: dict[str, str] = {}
        if registered is not None and cfg.record_verdict:
            version_tags = _record(client, registered, verdict, run_id, parent_uri, report, policy)
        client.set_tag(run_id, "trusteq.status", "done")
    except BaseException as exc:
        try:
            client.set_tag(run_id, "trusteq.status", "error")
            client.set_tag(run_id, "trusteq.error", f"{type(exc).__name__}: {exc}"[:4900])
            if own_run:
                client.set_terminated(run_id, "FAILED")
        except Exception:  # the store itself may be what failed; the original error is what matters
            logger.debug("could not record the failure on run %s", run_id, exc_info=True)
        raise
    if own_run:
        client.set_terminated(run_id, "FINISHED")
    logger.info("trusteq verdict for %s: %s", registered or candidate, verdict.label.upper())
    return EvaluationOutcome(report, verdict, run_id, registered, parent_uri, metrics, artifacts, version_tags)


def _record(client: Any, registered: tuple[str, str], verdict: Any, run_id: str, parent_uri: str,
            report: Any, policy: Any) -> dict[str, str]:
    from .._errors import VerdictError

    try:
        return record_verdict(client, registered[0], registered[1], verdict=verdict.label, run_id=run_id,
                              parent_uri=parent_uri, data_digest=report.data_digest,
                              policy_digest=policy.digest, reasons=verdict.reasons)
    except VerdictError as exc:
        # no signing key: the evaluation stands, but no verdict is recorded on the version
        logger.warning("verdict not recorded on %s/%s: %s", *registered, exc)
        client.set_tag(run_id, "trusteq.version_tags", f"not recorded: {exc}"[:4900])
        return {}


class TrustEqEvaluator(ModelEvaluator):
    """``mlflow.models.evaluate(..., evaluators="trusteq", evaluator_config={"parent": ...})``.

    Claims only classifier evaluations whose config names a parent (a URI, a name/version
    mapping, or ``"lineage"``): under ``evaluators=None`` it never starts on an unrelated
    evaluation.
    """

    @classmethod
    def can_evaluate(cls, *, model_type: str, evaluator_config: dict[str, Any] | None, **kwargs: Any) -> bool:
        cfg = evaluator_config or {}
        ok = model_type == "classifier" and isinstance(cfg, dict) and (cfg.get("parent") or cfg.get("candidate"))
        if model_type == "classifier" and not ok:
            logger.info("trusteq: not evaluating — evaluator_config names no parent "
                        "(pass {'parent': 'models:/<name>/<version>'} or {'parent': 'lineage'})")
        return bool(ok)

    def evaluate(self, *, model_type: str, dataset: Any, run_id: str, evaluator_config: dict[str, Any],
                 model: Any = None, extra_metrics: Any = None, custom_artifacts: Any = None,
                 predictions: Any = None, **kwargs: Any) -> EvaluationResult:
        import pandas as pd

        if model is None:
            raise TrustEqError("trusteq needs the candidate model itself (it scores parent and candidate on the "
                               "same inputs); static predictions are not enough")
        features = dataset.features_data
        if not isinstance(features, pd.DataFrame):
            features = pd.DataFrame(features, columns=list(dataset.feature_names))
        targets = dataset.labels_data if dataset.has_targets else None
        outcome = evaluate_and_log(model, features, targets=targets, config=evaluator_config, run_id=run_id)
        # Only the candidate's own numbers are returned: MLflow attributes the returned metrics to the
        # candidate's logged model, and the parent's numbers must not be attributed to it.
        own = {k: v for k, v in outcome.metrics.items() if not k.startswith("trusteq/parent/")}
        return EvaluationResult(metrics=own, artifacts={}, run_id=run_id)
