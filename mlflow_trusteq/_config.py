"""The one configuration object: :class:`TrustEqConfig`, parsed in one place.

:func:`~mlflow_trusteq.compare` reads the measurement fields; the ``trusteq`` MLflow evaluator,
``trusteq evaluate`` and the webhook receiver read the whole object, built by
:meth:`TrustEqConfig.from_mapping` from their ``evaluator_config``, options or settings.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._errors import InvalidInputError

if TYPE_CHECKING:
    from pathlib import Path

    from ._consistency import ConsistencyConfig
    from .adapters import BatchPlan
    from .attack import RobustnessConfig
    from .explain import AlignmentConfig
    from .policy import Policy

__all__ = ["TrustEqConfig", "MEASUREMENT_FIELDS"]

_POSITIVE_INTS = ("n_resamples", "n_bins_equal_width", "n_bins_equal_mass", "max_disagreements", "chunk_size")


@dataclass(frozen=True)
class TrustEqConfig:
    """Every option of a trust-equivalence evaluation.

    Parameters
    ----------
    parent : str, optional
        (evaluator, CLI, webhook) The parent: a model URI (``models:/name/1``,
        ``models:/name@champion``, ``runs:/...``) or ``"lineage"`` to read the candidate version's
        ``trusteq.parent`` tag. :meth:`from_mapping` also accepts ``{"name": ..., "version": ...}``.
    candidate : str, optional
        (evaluator) The candidate's registered version (``models:/name/2``) when MLflow cannot
        tell it from the loaded model.
    policy : Policy, dict, str or Path, optional
        (evaluator) The policy that judges the report; default: the built-in policy.
    policies : dict of str to (Policy, dict, str or Path), optional
        (evaluator) More policies to judge the same report against, by name (e.g. ``{"canary": ...,
        "champion": ...}``): each one's name, digest and pass/fail are signed into the version's
        verdict (``trusteq.policies``), so a gate with per-alias policies can let the version take
        ``@canary`` while refusing ``@champion``. The overall verdict stays that of ``policy``.
    alignment, robustness : bool, dict, AlignmentConfig or RobustnessConfig
        Run those sections: ``True`` for the defaults, a dict of ``AlignmentConfig`` /
        ``RobustnessConfig`` fields, a config object; ``False``/``None`` skips them ("not requested").
    feature_columns : tuple of str, optional
        Columns the models read, in order; default: every column but the targets. One text column
        means single texts, two mean text pairs, numeric columns mean tabular rows.
    js_base : float, default 2.0
        Log base of the Jensen-Shannon divergence in probability loyalty (2: JS in [0, 1];
        ``math.e`` reproduces scipy's default, as in the loyalty study's code).
    n_bins_equal_width, n_bins_equal_mass, min_bin_count : int
        Calibration bins: equal-width (Guo et al., 15) and equal-mass (the trust-equivalence
        study, 10); MCE ignores bins with fewer than ``min_bin_count`` examples.
    n_resamples, confidence, random_state
        The paired bootstrap behind every interval (``random_state`` also seeds every section).
    chunk_size : int, default 65536
        Rows per scoring chunk; memory does not grow with the data beyond the (n, k) probabilities.
    parent_kwargs, candidate_kwargs : dict
        Passed to :func:`~mlflow_trusteq.as_proba_model` (e.g. ``tokenizer``, ``batch_size``).
    max_disagreements : int, default 200
        (evaluator) Rows of the logged disagreement table.
    record_verdict : bool, default True
        (evaluator) Record the signed verdict on the candidate's registered version.
    engine : {"local", "spark"}, default "local"
        (evaluator, CLI) ``"spark"`` measures a Spark DataFrame, table or Parquet path of any size
        with :func:`mlflow_trusteq.spark.compare_spark` (needs ``pip install 'mlflow-trusteq[spark]'``).
    row_key : str, optional
        (Spark engine) The column whose value seeds each row's bootstrap weights; default: a stable
        hash of the row's feature values and gold label.
    parent_cache : bool, default True
        Reuse the parent's probabilities from an earlier call on the same rows, and its answers to
        the alignment and attack inputs (see :mod:`mlflow_trusteq._cache`); a hit is logged and
        recorded in the settings. On the Spark engine: a persisted frame of the parent's
        probabilities on the same table, within one SparkSession.
    serving_plan : dict or BatchPlan, default ``{"batch_size": 1}``
        How the models are batched where they serve (:class:`~mlflow_trusteq.adapters.BatchPlan`:
        ``batch_size``, ``padding_side``, ``max_length``, ``sort``, ``max_tokens_per_batch``; a
        field left out keeps the model's own). Recorded with the result.
    headline_plan : {"evaluation", "serving"}, default "evaluation"
        The plan the report's numbers are scored under: the models' own (token-budget, length-sorted
        batches) or ``serving_plan``. Self-consistency compares it with the other one.
    consistency : "auto", bool, dict or ConsistencyConfig, default "auto"
        Score a sample of the rows under the other plan and report each model's self-loyalty
        (:mod:`mlflow_trusteq._consistency`; dict keys ``n_samples``, ``random_state``, ``max_rows``).
        ``"auto"``: the defaults, where both models are adapters trusteq built (a ready-made
        ``ProbaModel`` cannot be re-batched: then *not requested*); ``True`` or a dict: required.
    slices : str, list of str or bool, optional
        Measure every fidelity and calibration metric per slice (:mod:`mlflow_trusteq.slices`):
        ``"builtin"`` (or ``True``) for the parent's predicted class, bins of the parent's confidence
        and of the input's word count; a data column's name (each value a slice, ``"col:N"`` bins a
        numeric one); ``"a*b"`` for a cross; a list, or a comma-separated string, for several.
        Slice columns are not fed to the models unless named in ``feature_columns`` too.
    acknowledge_data_change : bool, default False
        (evaluator) Accept data whose digest differs from the data of an earlier signed verdict on
        the candidate or on its parent version; otherwise the ``guard_data_changed`` check fails
        (:mod:`mlflow_trusteq._guards`).
    onnx_layers : bool or int, default False
        For an ONNX Runtime int8 candidate of an ONNX parent, compare the activations of every
        layer on a few inputs and report the layers that diverge most
        (:mod:`mlflow_trusteq.explain.onnx_layers`); an int is the number of layers listed (10).
    """

    parent: str | None = None
    candidate: str | None = None
    policy: Policy | Mapping[str, Any] | str | Path | None = None
    policies: Mapping[str, Policy | Mapping[str, Any] | str | Path] | None = None
    alignment: bool | Mapping[str, Any] | AlignmentConfig | None = False
    robustness: bool | Mapping[str, Any] | RobustnessConfig | None = False
    feature_columns: tuple[str, ...] | None = None
    js_base: float = 2.0
    n_bins_equal_width: int = 15
    n_bins_equal_mass: int = 10
    min_bin_count: int = 10
    n_resamples: int = 1000
    confidence: float = 0.95
    random_state: int = 0
    chunk_size: int = 65536
    max_disagreements: int = 200
    record_verdict: bool = True
    parent_kwargs: dict[str, Any] = field(default_factory=dict)
    candidate_kwargs: dict[str, Any] = field(default_factory=dict)
    engine: str = "local"
    row_key: str | None = None
    parent_cache: bool = True
    serving_plan: Mapping[str, Any] | BatchPlan | None = None
    headline_plan: str = "evaluation"
    consistency: str | bool | Mapping[str, Any] | ConsistencyConfig | None = "auto"
    slices: tuple[str, ...] | None = None
    acknowledge_data_change: bool = False
    onnx_layers: bool | int = False

    def __post_init__(self) -> None:
        for key in _POSITIVE_INTS:
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"`{key}` must be a positive integer, got {value!r}")
        if self.feature_columns is not None and not isinstance(self.feature_columns, tuple):
            object.__setattr__(self, "feature_columns", tuple(self.feature_columns))
        self.serving_batch_plan()  # validated here, once: a bad plan is an error before anything runs
        self.consistency_config()
        for flag in ("acknowledge_data_change",):
            if not isinstance(getattr(self, flag), bool):
                raise InvalidInputError(f"`{flag}` must be true or false, got {getattr(self, flag)!r}")
        if not isinstance(self.onnx_layers, bool) and (not isinstance(self.onnx_layers, int) or self.onnx_layers < 1):
            raise InvalidInputError(f"`onnx_layers` must be true, false or a number of layers >= 1, "
                                    f"got {self.onnx_layers!r}")
        from .slices import normalize_slice_specs

        object.__setattr__(self, "slices", normalize_slice_specs(self.slices))
        if self.headline_plan not in ("evaluation", "serving"):
            raise InvalidInputError(f"`headline_plan` must be 'evaluation' or 'serving', got {self.headline_plan!r}")
        if self.engine not in ("local", "spark"):
            raise InvalidInputError(f"`engine` must be 'local' or 'spark', got {self.engine!r}")
        if self.policies is not None and (not isinstance(self.policies, Mapping) or not all(
                isinstance(k, str) and k.strip() for k in self.policies)):
            raise InvalidInputError(f"`policies` must map policy names to policies, got {self.policies!r:.200}")
        if self.parent is not None and not isinstance(self.parent, str):
            raise InvalidInputError(
                f"`parent` must be a model URI, a name/version mapping or 'lineage', got {self.parent!r}")

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The names :meth:`from_mapping` accepts, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any] | TrustEqConfig | None = None, /,
                     **overrides: Any) -> TrustEqConfig:
        """Build (and validate) a config from a mapping, a config, or neither, plus overrides.

        Parameters
        ----------
        config : mapping or TrustEqConfig, optional
            E.g. MLflow's ``evaluator_config``; ``None`` for the defaults.
        **overrides
            Fields that replace those of ``config``.

        Raises
        ------
        InvalidInputError
            An unknown key (the message names it and every valid one), or a bad value.
        """
        if isinstance(config, TrustEqConfig):
            values: dict[str, Any] = {f: getattr(config, f) for f in cls.field_names()}
            given: dict[str, Any] = {}
        elif config is None or isinstance(config, Mapping):
            values, given = {}, dict(config or {})
        else:
            raise InvalidInputError(f"Expected a mapping of trusteq options, got {type(config).__name__}")
        given.update(overrides)
        unknown = sorted(set(given) - set(cls.field_names()))
        if unknown:
            raise InvalidInputError(
                f"unknown trusteq evaluator_config key(s) {unknown}; known: {sorted(cls.field_names())}")
        parent = given.get("parent")
        if isinstance(parent, Mapping):
            if set(parent) != {"name", "version"}:
                raise InvalidInputError(f"`parent` as a mapping needs exactly 'name' and 'version', got {parent!r}")
            given["parent"] = f"models:/{parent['name']}/{parent['version']}"
        return cls(**(values | given))

    def caches_parent(self) -> bool:
        """Whether the parent cache applies: ``parent_cache`` on and the models' own plan (the cache knows no other)."""
        return self.parent_cache and self.headline_plan == "evaluation"

    def serving_batch_plan(self) -> BatchPlan:
        """The serving plan (default: batch size 1, everything else the model's own)."""
        from .adapters._plan import BatchPlan

        return BatchPlan(batch_size=1) if self.serving_plan is None else BatchPlan.from_value(self.serving_plan)

    def consistency_config(self) -> ConsistencyConfig | None:
        """The self-consistency stage's config, or ``None`` when it is turned off."""
        from ._consistency import ConsistencyConfig

        return ConsistencyConfig.from_value(self.consistency)

    def alignment_config(self) -> AlignmentConfig | None:
        """The alignment section's config, or ``None`` when it is not requested."""
        return _section_config(self.alignment, "explain", "AlignmentConfig")

    def robustness_config(self) -> RobustnessConfig | None:
        """The robustness section's config, or ``None`` when it is not requested."""
        return _section_config(self.robustness, "attack", "RobustnessConfig")


#: the fields that change a number (the rest say what to compare with, how to judge, where to log)
MEASUREMENT_FIELDS = ("feature_columns", "js_base", "n_bins_equal_width", "n_bins_equal_mass", "min_bin_count",
                      "n_resamples", "confidence", "random_state", "chunk_size", "alignment", "robustness",
                      "serving_plan", "headline_plan", "consistency", "engine", "row_key", "slices")


def _section_config(value: Any, module: str, cls_name: str) -> Any:
    if value is None or value is False:
        return None
    cls = getattr(importlib.import_module(f"mlflow_trusteq.{module}"), cls_name)
    if value is True:
        return cls()
    if isinstance(value, cls):
        return value
    if isinstance(value, Mapping):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise InvalidInputError(f"unknown {cls_name} key(s) {unknown}; known: {sorted(known)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in value.items()})
    raise InvalidInputError(f"expected True, False or a dict of {cls_name} fields, got {value!r}")
