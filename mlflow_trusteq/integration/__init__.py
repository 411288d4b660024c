"""MLflow integration: the ``trusteq`` evaluator, run logging, registry lineage and verdicts.

Kept import-light: MLflow loads the evaluator entry point whenever model evaluation is used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["TrustEqConfig", "evaluate_and_log", "evaluate_version", "load_evaluation"]

from .config import TrustEqConfig


def evaluate_and_log(*args: Any, **kwargs: Any) -> Any:
    """See :func:`mlflow_trusteq.integration.evaluator.evaluate_and_log`."""
    from .evaluator import evaluate_and_log as _impl

    return _impl(*args, **kwargs)


def load_evaluation(run_id: str, client: Any = None) -> Any:
    """See :func:`mlflow_trusteq.integration.runlog.load_evaluation`."""
    from .runlog import load_evaluation as _impl

    return _impl(run_id, client)


def evaluate_version(name: str, version: str | int, *, data: Any, targets: Any = None,
                     config: TrustEqConfig | Mapping[str, Any] | None = None, client: Any = None,
                     **overrides: Any) -> Any:
    """Evaluate registered version ``name``/``version`` against its parent (default: its lineage tag).

    Used by the webhook receiver and by scripts; returns an ``EvaluationOutcome``. ``config`` and
    ``overrides`` (e.g. ``policy=...``) are :class:`TrustEqConfig` fields, parsed by
    :meth:`TrustEqConfig.from_mapping`.
    """
    uri = f"models:/{name}/{version}"
    cfg = TrustEqConfig.from_mapping(config, **overrides)
    cfg = TrustEqConfig.from_mapping(cfg, parent=cfg.parent or "lineage", candidate=uri)
    return evaluate_and_log(uri, data, targets=targets, config=cfg, client=client)
