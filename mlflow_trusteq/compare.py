"""Orchestration: parent + candidate + data -> :class:`TrustReport`.

``compare()`` knows nothing of MLflow. It turns both models into ``predict_proba`` adapters,
scores the same batches with both (timing each, interleaved, for the speed-up), matches their
labels, and hands the probabilities to the pure metric functions. Optional sections (attribution
alignment, robustness) run on a sample and are recorded as *skipped, with the reason* when they
cannot run: a crash never turns into a pass.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from ._config import TrustEqConfig
from ._errors import InvalidInputError, ModelOutputError
from ._types import Estimate, to_jsonable

if TYPE_CHECKING:
    import pandas as pd

    from .adapters import ProbaModel
    from .attack import RobustnessConfig, RobustnessResult
    from .explain import AlignmentConfig, AlignmentResult
    from .metrics import PairSummary

#: the result of an optional stage, kept typed in :attr:`TrustReport.sections`
Section = Union["AlignmentResult", "RobustnessResult"]

logger = logging.getLogger(__name__)

__all__ = ["TrustReport", "Predictions", "compare", "data_digest", "infer_kind", "TrustEqConfig"]

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Predictions:
    """The per-example outputs behind a report (kept in memory, not in the JSON)."""

    parent: np.ndarray  # (n, k) probabilities, the parent's label order
    candidate: np.ndarray  # (n, k), columns aligned to the parent's labels
    targets: np.ndarray | None  # (n,) label indices, or None without gold labels
    records: pd.DataFrame  # the feature columns that were scored


@dataclass(frozen=True)
class TrustReport:
    """Everything measured for one (parent, candidate, data) triple.

    ``metrics`` maps report keys (see :mod:`mlflow_trusteq._types`) to estimates with their
    confidence intervals. ``skipped`` maps a section or metric group to the reason it was not
    measured. ``settings`` records every choice that changes a number, each once. ``sections``
    holds the results of the optional stages: ``"alignment"`` -> ``AlignmentResult``,
    ``"robustness"`` -> ``RobustnessResult`` (serialised with their ``to_dict``/``from_dict``).
    """

    metrics: dict[str, Estimate]
    labels: tuple[str, ...]
    n_examples: int
    has_targets: bool
    kind: str
    feature_columns: tuple[str, ...]
    parent_name: str
    candidate_name: str
    settings: dict[str, Any] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    flip_matrix: list[list[int]] = field(default_factory=list)
    per_class_loyalty: list[float] = field(default_factory=list)
    reliability: dict[str, Any] = field(default_factory=dict)
    sections: dict[str, Section] = field(default_factory=dict)
    data_digest: str = ""
    created_at: str = ""
    predictions: Predictions | None = field(default=None, compare=False, repr=False)

    def value(self, key: str) -> float:
        """Point estimate of a report key (``KeyError`` naming the key when absent)."""
        if key not in self.metrics:
            raise KeyError(f"{key!r} is not in this report; measured: {sorted(self.metrics)}")
        return self.metrics[key].value

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "metrics": {k: v.to_dict() for k, v in sorted(self.metrics.items())},
            "labels": list(self.labels),
            "n_examples": self.n_examples,
            "has_targets": self.has_targets,
            "kind": self.kind,
            "feature_columns": list(self.feature_columns),
            "parent_name": self.parent_name,
            "candidate_name": self.candidate_name,
            "settings": to_jsonable(self.settings),
            "skipped": dict(self.skipped),
            "flip_matrix": [[int(x) for x in row] for row in self.flip_matrix],
            "per_class_loyalty": [_float_or_none(x) for x in self.per_class_loyalty],
            "reliability": to_jsonable(self.reliability),
            "sections": to_jsonable(self.sections),
            "data_digest": self.data_digest,
            "created_at": self.created_at,
        }

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **({"indent": 2} | kwargs))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrustReport:
        version = d.get("schema_version")
        if version != SCHEMA_VERSION:
            raise InvalidInputError(f"Unsupported TrustReport schema_version {version!r}; expected {SCHEMA_VERSION}")
        return cls(
            metrics={k: Estimate.from_dict(v) for k, v in d["metrics"].items()},
            labels=tuple(d["labels"]),
            n_examples=int(d["n_examples"]),
            has_targets=bool(d["has_targets"]),
            kind=d["kind"],
            feature_columns=tuple(d["feature_columns"]),
            parent_name=d["parent_name"],
            candidate_name=d["candidate_name"],
            settings=dict(d.get("settings", {})),
            skipped=dict(d.get("skipped", {})),
            flip_matrix=[list(r) for r in d.get("flip_matrix", [])],
            per_class_loyalty=[float("nan") if x is None else float(x) for x in d.get("per_class_loyalty", [])],
            reliability=dict(d.get("reliability", {})),
            sections=_sections_from_dict(d.get("sections", {})),
            data_digest=d.get("data_digest", ""),
            created_at=d.get("created_at", ""),
        )

    @classmethod
    def from_json(cls, text: str) -> TrustReport:
        return cls.from_dict(json.loads(text))

    def alignment(self) -> AlignmentResult | None:
        """The alignment section (``None`` if it was not measured)."""
        return self._section("alignment")  # type: ignore[return-value]

    def robustness(self) -> RobustnessResult | None:
        """The robustness section (``None`` if it was not measured)."""
        return self._section("robustness")  # type: ignore[return-value]

    def _section(self, name: str) -> Section | None:
        if name not in self.sections:
            return None
        value = self.sections[name]
        return _section_from_dict(name, value) if isinstance(value, Mapping) else value


def _section_from_dict(name: str, d: Mapping[str, Any]) -> Section:
    if name == "alignment":
        from .explain import AlignmentResult

        return AlignmentResult.from_dict(dict(d))
    if name == "robustness":
        from .attack import RobustnessResult

        return RobustnessResult.from_dict(dict(d))
    raise InvalidInputError(f"unknown report section {name!r}; known: ['alignment', 'robustness']")


def _sections_from_dict(d: Mapping[str, Any]) -> dict[str, Section]:
    return {name: _section_from_dict(name, value) for name, value in d.items()}


def _float_or_none(x: float) -> float | None:
    x = float(x)
    return None if np.isnan(x) else x


def data_digest(frame: pd.DataFrame) -> str:
    """A stable SHA-256 of a data frame's values and column names (row order matters)."""
    import pandas as pd

    h = hashlib.sha256()
    h.update(json.dumps([str(c) for c in frame.columns]).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()


def infer_kind(records: pd.DataFrame) -> str:
    """``"text"`` (one string column), ``"text_pair"`` (two) or ``"tabular"``."""
    import pandas as pd

    is_text = [pd.api.types.is_object_dtype(records[c]) or pd.api.types.is_string_dtype(records[c])
               for c in records.columns]
    if all(is_text) and len(is_text) in (1, 2):
        return "text" if len(is_text) == 1 else "text_pair"
    if any(is_text):
        text_cols = [c for c, t in zip(records.columns, is_text) if t]
        raise InvalidInputError(
            f"Feature columns mix text {text_cols} and other columns, or hold more than two text columns; "
            "pass `feature_columns=` naming one text column, two (a pair), or only numeric columns")
    return "tabular"


def _as_frame(data: Any) -> pd.DataFrame:
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, Mapping):
        return pd.DataFrame(dict(data))
    if isinstance(data, np.ndarray) and data.ndim == 2:
        return pd.DataFrame(data, columns=[f"x{i}" for i in range(data.shape[1])])
    raise InvalidInputError(
        f"Expected `data` to be a pandas DataFrame, a dict of columns or a 2-D array, got {type(data).__name__}")


def _split_data(frame: pd.DataFrame, targets: Any, feature_columns: Sequence[str] | None
                ) -> tuple[pd.DataFrame, str, np.ndarray | None, str | None]:
    """(feature records, their kind, raw gold labels or None, the targets column or None), validated."""
    if len(frame) == 0:
        raise InvalidInputError("`data` is empty: there is nothing to compare")
    target_col: str | None = None
    y_raw: np.ndarray | None = None
    if isinstance(targets, str):
        if targets not in frame.columns:
            raise InvalidInputError(f"targets column {targets!r} is not in the data; columns: {list(frame.columns)}")
        target_col = targets
        y_raw = frame[targets].to_numpy()
    elif targets is not None:
        y_raw = np.asarray(targets)
        if y_raw.ndim != 1 or len(y_raw) != len(frame):
            raise InvalidInputError(
                f"`targets` has shape {y_raw.shape}, expected ({len(frame)},) — one label per row of `data`")
    if feature_columns is None:
        feature_columns = [c for c in frame.columns if c != target_col]
    else:
        missing = [c for c in feature_columns if c not in frame.columns]
        if missing:
            raise InvalidInputError(f"feature column(s) {missing} not in the data; columns: {list(frame.columns)}")
    if not feature_columns:
        raise InvalidInputError("no feature columns left once the targets column is removed")
    records = frame[list(feature_columns)].reset_index(drop=True)
    kind = infer_kind(records)
    if kind != "tabular":
        for c in records.columns:
            bad = records[c].map(lambda v: not isinstance(v, str))
            if bad.any():
                first = int(np.flatnonzero(bad.to_numpy())[0])
                raise InvalidInputError(
                    f"text column {c!r} has a missing or non-text value at row {first}: {records[c].iloc[first]!r}")
    return records, kind, y_raw, target_col


def _score_both(parent: ProbaModel, candidate: ProbaModel, records: pd.DataFrame, chunk_size: int
                ) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Score the same chunks with both models; return probabilities and each model's seconds.

    Both models are warmed up on the same rows first (lazy initialisation is billed to neither),
    and the order alternates from chunk to chunk, so that caches and clock drift favour neither.
    """
    n = len(records)
    warm = records.iloc[: min(256, n)]
    parent.predict_proba(warm)
    candidate.predict_proba(warm)
    p_parts, q_parts = [], []
    seconds = {"parent": 0.0, "candidate": 0.0}
    models = {"parent": parent, "candidate": candidate}
    for i, start in enumerate(range(0, n, chunk_size)):
        chunk = records.iloc[start:start + chunk_size]
        out: dict[str, np.ndarray] = {}
        for role in (("parent", "candidate") if i % 2 == 0 else ("candidate", "parent")):
            t0 = time.perf_counter()
            out[role] = np.asarray(models[role].predict_proba(chunk), dtype=np.float64)
            seconds[role] += time.perf_counter() - t0
            if out[role].ndim != 2 or out[role].shape[0] != len(chunk):
                raise ModelOutputError(
                    f"the {role} returned probabilities of shape {out[role].shape} for a batch of {len(chunk)} rows")
        p_parts.append(out["parent"])
        q_parts.append(out["candidate"])
    return np.concatenate(p_parts), np.concatenate(q_parts), seconds["parent"], seconds["candidate"]


@dataclass(frozen=True)
class _Inputs:
    """The validated data: what the models read, its kind, and the gold labels."""

    frame: pd.DataFrame
    records: pd.DataFrame
    kind: str
    y_raw: np.ndarray | None
    target_col: str | None


@dataclass(frozen=True)
class _Models:
    """Both models as adapters, and how the candidate's label order maps onto the parent's."""

    parent: ProbaModel
    candidate: ProbaModel
    perm: np.ndarray
    labels: tuple[str, ...]


@dataclass(frozen=True)
class _Scores:
    parent: np.ndarray  # (n, k)
    candidate: np.ndarray  # (n, k), columns in the parent's label order
    parent_seconds: float
    candidate_seconds: float


def compare(
    parent: Any,
    candidate: Any,
    data: Any,
    *,
    targets: str | Sequence[Any] | np.ndarray | None = None,
    config: TrustEqConfig | Mapping[str, Any] | None = None,
    **overrides: Any,
) -> TrustReport:
    """Measure how far ``candidate`` is from being trust-equivalent to ``parent`` on ``data``.

    Parameters
    ----------
    parent, candidate
        Anything :func:`mlflow_trusteq.as_proba_model` accepts: a scikit-learn estimator, a
        transformers model (pass ``tokenizer`` in ``parent_kwargs``/``candidate_kwargs``) or
        pipeline, an ONNX Runtime session, an MLflow model URI or pyfunc, a callable, or a ready
        ``ProbaModel``.
    data
        A DataFrame (or dict of columns) with the feature columns and, optionally, the gold labels.
    targets
        The name of the gold-label column, or an array of labels. Without gold labels only
        fidelity (and alignment) are measured; calibration and accuracy are *not measured*,
        never invented.
    config : TrustEqConfig or mapping, optional
        The measurement options (see :class:`~mlflow_trusteq.TrustEqConfig`: ``feature_columns``,
        ``js_base``, the calibration bins, the bootstrap, ``chunk_size``, ``alignment``,
        ``robustness``, ``parent_kwargs``, ``candidate_kwargs``). Its evaluator-only fields
        (``parent``, ``policy``...) are not used here.
    **overrides
        Any field of :class:`~mlflow_trusteq.TrustEqConfig`, replacing that of ``config``
        (``compare(p, c, df, targets="label", n_resamples=200)``); an unknown name is an error.

    Returns
    -------
    TrustReport
    """
    cfg = TrustEqConfig.from_mapping(config, **overrides)
    inputs = _prepare_inputs(data, targets, cfg)
    models = _load_models(parent, candidate, cfg)
    y = _encode_gold(inputs, models)
    scores = _score(models, inputs.records, cfg.chunk_size)
    summary, metrics, skipped = _measure_core(scores, y, cfg)
    _measure_efficiency(models, scores, len(inputs.records), metrics, skipped)
    sections = _run_sections(models, inputs, scores, y, cfg, metrics, skipped)
    return TrustReport(
        metrics=metrics,
        labels=models.labels,
        n_examples=len(inputs.records),
        has_targets=y is not None,
        kind=inputs.kind,
        feature_columns=tuple(str(c) for c in inputs.records.columns),
        parent_name=models.parent.name,
        candidate_name=models.candidate.name,
        settings=_settings(cfg, inputs, models, scores, summary),
        skipped=skipped,
        flip_matrix=[[int(x) for x in row] for row in np.asarray(summary.flip_matrix)],
        per_class_loyalty=[float(x) for x in summary.per_class_loyalty],
        reliability=to_jsonable(summary.reliability),
        sections=sections,
        data_digest=_inputs_digest(inputs),
        created_at=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        predictions=Predictions(scores.parent, scores.candidate, y, inputs.records),
    )


def _prepare_inputs(data: Any, targets: Any, cfg: TrustEqConfig) -> _Inputs:
    frame = _as_frame(data)
    records, kind, y_raw, target_col = _split_data(frame, targets, cfg.feature_columns)
    return _Inputs(frame, records, kind, y_raw, target_col)


def _load_models(parent: Any, candidate: Any, cfg: TrustEqConfig) -> _Models:
    from .adapters import align_labels, as_proba_model

    parent_model = as_proba_model(parent, **dict(cfg.parent_kwargs))
    candidate_model = as_proba_model(candidate, **dict(cfg.candidate_kwargs))
    perm = align_labels(parent_model.labels, candidate_model.labels)
    return _Models(parent_model, candidate_model, np.asarray(perm), tuple(parent_model.labels))


def _encode_gold(inputs: _Inputs, models: _Models) -> np.ndarray | None:
    """The gold labels as indices into the parent's label order (``None`` without gold labels)."""
    from .adapters import encode_targets

    return encode_targets(inputs.y_raw, models.labels) if inputs.y_raw is not None else None


def _score(models: _Models, records: pd.DataFrame, chunk_size: int) -> _Scores:
    logger.info("scoring %d rows with parent %s and candidate %s", len(records), models.parent.name,
                models.candidate.name)
    P, Q, t_parent, t_candidate = _score_both(models.parent, models.candidate, records, chunk_size)
    Q = Q[:, models.perm]
    for name, arr in (("parent", P), ("candidate", Q)):
        if arr.shape[1] != len(models.labels):
            raise ModelOutputError(
                f"the {name} returned {arr.shape[1]} probability columns for {len(models.labels)} labels")
    return _Scores(P, Q, t_parent, t_candidate)


def _measure_core(scores: _Scores, y: np.ndarray | None, cfg: TrustEqConfig
                  ) -> tuple[PairSummary, dict[str, Estimate], dict[str, str]]:
    """Fidelity, accuracy and calibration with their paired intervals."""
    from .metrics import summarize_pair

    summary = summarize_pair(scores.parent, scores.candidate, y, base=cfg.js_base,
                             n_bins_equal_width=cfg.n_bins_equal_width, n_bins_equal_mass=cfg.n_bins_equal_mass,
                             min_bin_count=cfg.min_bin_count, n_resamples=cfg.n_resamples,
                             confidence=cfg.confidence, random_state=cfg.random_state)
    skipped: dict[str, str] = {}
    if y is None:
        skipped["calibration"] = "not measured: no gold labels were given (pass `targets=`)"
        skipped["accuracy"] = "not measured: no gold labels were given (pass `targets=`)"
    return summary, dict(summary.estimates), skipped


def _measure_efficiency(models: _Models, scores: _Scores, n: int, metrics: dict[str, Estimate],
                        skipped: dict[str, str]) -> None:
    """Throughput on the same chunks in the same run, and size on disk."""
    t_parent, t_candidate = scores.parent_seconds, scores.candidate_seconds
    metrics["parent/throughput"] = Estimate(n / t_parent if t_parent > 0 else float("nan"))
    metrics["candidate/throughput"] = Estimate(n / t_candidate if t_candidate > 0 else float("nan"))
    metrics["speedup"] = Estimate(t_parent / t_candidate if t_candidate > 0 else float("nan"))
    p_size, c_size = models.parent.size_bytes, models.candidate.size_bytes
    if p_size and c_size:
        metrics["size_ratio"] = Estimate(c_size / p_size)
    else:
        skipped["size_ratio"] = "not measured: size on disk unknown for " + (
            "the parent" if not p_size else "the candidate")


#: ``summarize_pair``'s names for options the config already records (config name on the right)
_METRIC_SETTING_NAMES = {"base": "js_base", "n_bins_equal_width": "n_bins_equal_width",
                         "n_bins_equal_mass": "n_bins_equal_mass", "min_bin_count": "min_bin_count",
                         "n_resamples": "n_resamples", "confidence": "confidence", "random_state": "random_state"}


def _settings(cfg: TrustEqConfig, inputs: _Inputs, models: _Models, scores: _Scores,
              summary: PairSummary) -> dict[str, Any]:
    """Every choice that changes a number, each recorded once, under its config name."""
    settings: dict[str, Any] = {
        "js_base": cfg.js_base,
        "n_bins_equal_width": cfg.n_bins_equal_width,
        "n_bins_equal_mass": cfg.n_bins_equal_mass,
        "min_bin_count": cfg.min_bin_count,
        "n_resamples": cfg.n_resamples,
        "confidence": cfg.confidence,
        "random_state": cfg.random_state,
        "chunk_size": cfg.chunk_size,
        "targets_column": inputs.target_col,
        "label_order": list(models.labels),
        "candidate_label_permutation": [int(i) for i in models.perm],
        "parent_size_bytes": models.parent.size_bytes,
        "candidate_size_bytes": models.candidate.size_bytes,
        "parent_seconds": scores.parent_seconds,
        "candidate_seconds": scores.candidate_seconds,
        "metrics": _metric_settings(summary, settings_of_cfg={k: getattr(cfg, v) for k, v in
                                                               _METRIC_SETTING_NAMES.items()}),
    }
    for attr in ("batch_size", "max_length", "max_tokens_per_batch"):
        for role, model in (("parent", models.parent), ("candidate", models.candidate)):
            if getattr(model, attr, None) is not None:
                settings[f"{role}_{attr}"] = getattr(model, attr)
    return settings


def _metric_settings(summary: PairSummary, settings_of_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The metric layer's own settings, less those the config records (checked to agree)."""
    out = dict(summary.settings)
    for name, value in settings_of_cfg.items():
        if name in out:
            if out[name] != value:  # would mean the metric layer used another value than asked for
                raise AssertionError(f"summarize_pair recorded {name}={out[name]!r}, the config {value!r}")
            del out[name]
    return out


def _run_sections(models: _Models, inputs: _Inputs, scores: _Scores, y: np.ndarray | None,
                  cfg: TrustEqConfig, metrics: dict[str, Estimate], skipped: dict[str, str]) -> dict[str, Section]:
    """The optional stages; each is measured, or recorded as skipped with the reason (fail closed)."""
    sections: dict[str, Section] = {}
    pred = scores.parent.argmax(axis=1)
    robustness = cfg.robustness_config()
    if inputs.kind == "tabular" and robustness is not None:
        skipped["robustness"] = "not measured: the word and character attacks need text inputs"
        robustness = None
    stages: tuple[tuple[str, Any, Any], ...] = (("alignment", cfg.alignment_config(), _run_alignment),
                                                ("robustness", robustness, _run_robustness))
    for section, config, runner in stages:
        if config is None:
            skipped.setdefault(section, f"not requested (pass `{section}=True` or a config)")
            continue
        try:
            # the raw gold labels: each section maps them with the same rule (adapters.encode_targets)
            result = runner(models.parent, models.candidate, inputs.records, inputs.kind, pred, inputs.y_raw,
                            config)
        except Exception as exc:  # fail closed: recorded as skipped, the policy fails it
            logger.exception("%s stage failed", section)
            skipped[section] = f"error: {type(exc).__name__}: {exc}"
            continue
        if result is None:
            skipped[section] = "not measured: it needs gold labels (pass `targets=`)"
            continue
        sections[section] = result
        metrics.update({f"{section}/{k}": v for k, v in result.estimates().items()})
    return sections


def _inputs_digest(inputs: _Inputs) -> str:
    import pandas as pd

    if inputs.target_col is None:
        return data_digest(inputs.records)
    gold = inputs.frame[[inputs.target_col]].reset_index(drop=True)
    return data_digest(pd.concat([inputs.records, gold], axis=1))


def _run_alignment(parent: ProbaModel, candidate: ProbaModel, records: pd.DataFrame, kind: str,
                   pred: np.ndarray, y: np.ndarray | None, config: AlignmentConfig) -> AlignmentResult | None:
    from .explain import measure_alignment

    if getattr(config, "target", "parent_prediction") == "gold" and y is None:
        return None
    return measure_alignment(parent, candidate, records, parent_pred=pred, targets=y,
                             kind="tabular" if kind == "tabular" else "text", config=config)


def _run_robustness(parent: ProbaModel, candidate: ProbaModel, records: pd.DataFrame, kind: str,
                    pred: np.ndarray, y: np.ndarray | None, config: RobustnessConfig) -> RobustnessResult | None:
    from .attack import measure_robustness

    if y is None:
        return None
    return measure_robustness(parent, candidate, records, y, config=config)
