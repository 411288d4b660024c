"""The typed evaluator configuration: one place that reads ``evaluator_config``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .._errors import InvalidInputError

__all__ = ["TrustEqConfig"]


@dataclass(frozen=True)
class TrustEqConfig:
    """Options of the ``trusteq`` evaluator, the CLI and :func:`evaluate_and_log`.

    ``parent`` is a model URI (``models:/name/1``, ``models:/name@champion``, ``runs:/...``), a
    ``{"name": ..., "version": ...}`` mapping, or ``"lineage"`` to read the candidate version's
    ``trusteq.parent`` tag. ``candidate`` names the candidate's registered version when MLflow
    cannot tell it from the loaded model. ``alignment``/``robustness`` are ``True`` (defaults),
    a dict of ``AlignmentConfig``/``RobustnessConfig`` fields, or ``False``.
    """

    parent: str | None = None
    candidate: str | None = None
    policy: Any = None
    alignment: Any = False
    robustness: Any = False
    feature_columns: tuple[str, ...] | None = None
    js_base: float = 2.0
    n_bins_equal_width: int = 15
    n_bins_equal_mass: int = 10
    min_bin_count: int = 10
    n_resamples: int = 1000
    confidence: float = 0.95
    random_state: int = 0
    max_disagreements: int = 200
    record_verdict: bool = True
    parent_kwargs: dict[str, Any] = field(default_factory=dict)
    candidate_kwargs: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, config: dict[str, Any] | None) -> TrustEqConfig:
        """Validate ``evaluator_config``: unknown keys are errors that list the known ones."""
        config = dict(config or {})
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(config) - names)
        if unknown:
            raise InvalidInputError(f"unknown trusteq evaluator_config key(s) {unknown}; known: {sorted(names)}")
        parent = config.get("parent")
        if isinstance(parent, dict):
            if set(parent) != {"name", "version"}:
                raise InvalidInputError(f"`parent` as a mapping needs exactly 'name' and 'version', got {parent!r}")
            config["parent"] = f"models:/{parent['name']}/{parent['version']}"
        elif parent is not None and not isinstance(parent, str):
            raise InvalidInputError(
                f"`parent` must be a model URI, a name/version mapping or 'lineage', got {parent!r}")
        if config.get("feature_columns") is not None:
            config["feature_columns"] = tuple(config["feature_columns"])
        for key in ("n_resamples", "n_bins_equal_width", "n_bins_equal_mass", "max_disagreements"):
            if key in config and (not isinstance(config[key], int) or config[key] < 1):
                raise InvalidInputError(f"`{key}` must be a positive integer, got {config[key]!r}")
        return cls(**config)

    def alignment_config(self) -> Any:
        return _section_config(self.alignment, "explain", "AlignmentConfig")

    def robustness_config(self) -> Any:
        return _section_config(self.robustness, "attack", "RobustnessConfig")


def _section_config(value: Any, module: str, cls_name: str) -> Any:
    if value is None or value is False:
        return None
    import importlib

    cls = getattr(importlib.import_module(f"mlflow_trusteq.{module}"), cls_name)
    if value is True:
        return cls()
    if isinstance(value, cls):
        return value
    if isinstance(value, dict):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise InvalidInputError(f"unknown {cls_name} key(s) {unknown}; known: {sorted(known)}")
        fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
        return cls(**fixed)
    raise InvalidInputError(f"expected True, False or a dict of {cls_name} fields, got {value!r}")
