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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from ._config import TrustEqConfig
from ._errors import InvalidInputError, ModelOutputError
from ._types import Estimate, to_jsonable

if TYPE_CHECKING:
    import pandas as pd

    from ._consistency import ConsistencyResult
    from .adapters import ProbaModel
    from .attack import RobustnessConfig, RobustnessResult
    from .explain import AlignmentConfig, AlignmentResult
    from .metrics import PairSummary
    from .slices import SliceResult

#: the result of an optional stage, kept typed in :attr:`TrustReport.sections`
Section = Union["AlignmentResult", "RobustnessResult", "ConsistencyResult", "SliceResult"]

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

    def consistency(self) -> ConsistencyResult | None:
        """The self-consistency section (``None`` if it was not measured)."""
        return self._section("consistency")  # type: ignore[return-value]

    def slices(self) -> SliceResult | None:
        """The per-slice section (``None`` if it was not measured; :mod:`mlflow_trusteq.slices`)."""
        return self._section("slices")  # type: ignore[return-value]

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
    if name == "consistency":
        from ._consistency import ConsistencyResult

        return ConsistencyResult.from_dict(dict(d))
    if name == "slices":
        from .slices import SliceResult

        return SliceResult.from_dict(dict(d))
    raise InvalidInputError(f"unknown report section {name!r}; known: ['alignment', 'robustness', 'consistency', "
                            "'slices']")


def _sections_from_dict(d: Mapping[str, Any]) -> dict[str, Section]:
    return {name: _section_from_dict(name, value) for name, value in d.items()}


def _float_or_none(x: float) -> float | None:
    x = float(x)
    return None if np.isnan(x) else x


#: the prefix of :func:`data_digest`'s value: the rule below, version 1
DIGEST_SCHEME = "sha256-rows-v1"


def data_digest(records: pd.DataFrame, targets: Sequence[Any] | np.ndarray | None = None) -> str:
    """The canonical digest of the rows a report measured: what a verdict's ``data_digest`` names.

    SHA-256 over UTF-8 lines, each a compact JSON array (``separators=(",", ":")``,
    ``ensure_ascii=False``): first the feature column names in the order the models read them,
    followed by ``true`` when gold labels were given, ``false`` otherwise; then one line per row
    in order, its feature values followed by its gold label when given. A value is written as
    what it is, not as its dtype: text as a string, an integral number (``3``, ``3.0``, ``np.int64(3)``)
    as an integer, another finite number as the shortest float that round-trips (``repr``), a
    boolean as ``true``/``false``, a missing value (``None``, ``NaN``, ``pd.NA``) as ``null``,
    ``±inf`` as the strings ``"inf"``/``"-inf"``, anything else as ``str(value)``. The index and
    the name of the label column are not hashed (an API caller may pass the labels as an array).
    Written ``sha256-rows-v1:<hex>``; the README has a ten-line re-implementation with hashlib.

    Examples
    --------
    >>> import pandas as pd
    >>> a = data_digest(pd.DataFrame({"x": [1, 2]}), targets=[0, 1])
    >>> a == data_digest(pd.DataFrame({"x": [1.0, 2.0]}, index=[7, 9]), targets=["0", "1"])
    False
    >>> a == data_digest(pd.DataFrame({"x": [1.0, 2.0]}, index=[7, 9]), targets=[0, 1])
    True
    """
    columns = [str(c) for c in records.columns]
    y = None if targets is None else list(np.asarray(targets, dtype=object))
    if y is not None and len(y) != len(records):
        raise InvalidInputError(f"{len(y)} gold labels for {len(records)} rows")
    h = hashlib.sha256()
    h.update(_digest_line([*columns, y is not None]))
    for i, row in enumerate(records.itertuples(index=False, name=None)):
        h.update(_digest_line([*row, y[i]] if y is not None else list(row)))
    return f"{DIGEST_SCHEME}:{h.hexdigest()}"


def _digest_line(cells: list[Any]) -> bytes:
    return (json.dumps([_canonical_value(v) for v in cells], separators=(",", ":"), ensure_ascii=False,
                       allow_nan=False) + "\n").encode("utf-8")


def _canonical_value(v: Any) -> Any:
    """One cell as :func:`data_digest` writes it (see there)."""
    if isinstance(v, np.generic):
        v = v.item()
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        if v != v:
            return None
        if v in (float("inf"), float("-inf")):
            return "inf" if v > 0 else "-inf"
        return int(v) if v.is_integer() else v
    try:
        import pandas as pd

        if v is pd.NA or v is pd.NaT:
            return None
    except ImportError:  # pragma: no cover - pandas is there whenever a frame is
        pass
    return str(v)


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
    if kind == "tabular":
        missing_cells = records.isna().to_numpy()
        if missing_cells.any():
            row, col = (int(i) for i in np.argwhere(missing_cells)[0])
            raise InvalidInputError(
                f"feature column {records.columns[col]!r} has a missing value (NaN) at row {row} "
                f"({int(missing_cells.any(axis=1).sum())} row(s) in all); drop or impute them first")
    else:
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
    #: the adapters as built, before ``headline_plan="serving"`` re-planned them (``None`` otherwise)
    own: tuple[ProbaModel, ProbaModel] | None = None
    #: the memo of the parent's calls the alignment and robustness stages answer from (``_cache.CallMemo``)
    parent_calls: Any = None


@dataclass(frozen=True)
class _Scores:
    parent: np.ndarray  # (n, k)
    candidate: np.ndarray  # (n, k), columns in the parent's label order
    parent_seconds: float
    candidate_seconds: float
    parent_cached: bool = False  # the parent's probabilities came from the parent cache


def compare(
    parent: Any,
    candidate: Any,
    data: Any,
    *,
    targets: str | Sequence[Any] | np.ndarray | None = None,
    config: TrustEqConfig | Mapping[str, Any] | None = None,
    before_measuring: Callable[[], None] | None = None,
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
    before_measuring : callable, optional
        Called with no argument once the data, both models and their labels are validated, before
        anything is scored (the MLflow evaluator clears a version's earlier verdict there, so that
        bad input never changes the registry).
    **overrides
        Any field of :class:`~mlflow_trusteq.TrustEqConfig`, replacing that of ``config``
        (``compare(p, c, df, targets="label", n_resamples=200)``); an unknown name is an error.

    Returns
    -------
    TrustReport
    """
    cfg = TrustEqConfig.from_mapping(config, **overrides)
    inputs = _prepare_inputs(data, targets, cfg)
    models = _with_call_memo(_load_models(parent, candidate, cfg), parent, cfg)
    y = _encode_gold(inputs, models)
    if before_measuring is not None:
        before_measuring()
    digest = _inputs_digest(inputs)
    parent_key = None
    if cfg.caches_parent():
        from ._cache import parent_scores_key

        parent_key = parent_scores_key(parent, digest, chunk_size=cfg.chunk_size, parent_kwargs=cfg.parent_kwargs)
    scores = _score(models, inputs.records, cfg.chunk_size, parent_key=parent_key)
    return _measure(models, inputs, scores, y, cfg, digest=digest)


def _measure(models: _Models, inputs: _Inputs, scores: _Scores, y: np.ndarray | None,
             cfg: TrustEqConfig, *, summary: PairSummary | None = None, n_examples: int | None = None,
             digest: str | None = None, extra_settings: Mapping[str, Any] | None = None) -> TrustReport:
    """Every measurement on the scored probabilities -> the report (shared with ``compare_candidates``).

    The Spark engine passes the ``summary`` it merged from the whole table of ``n_examples`` rows
    (and its ``digest``): ``inputs`` and ``scores`` are then the sample the sections run on.
    """
    sampled = summary is not None  # the Spark engine: inputs and scores are a sample of the table
    if summary is None:
        summary, metrics, skipped = _measure_core(scores, y, cfg)
    else:
        metrics, skipped = dict(summary.estimates), _core_skipped(summary.has_targets)
    n = len(inputs.records) if n_examples is None else n_examples
    timing = _measure_efficiency(models, scores, n, metrics, skipped, records=inputs.records, confidence=cfg.confidence)
    sections = _run_sections(models, inputs, scores, y, cfg, metrics, skipped)
    _run_consistency(models, inputs, scores, cfg, sections, metrics, skipped)
    _run_slices(inputs, scores, y, cfg, models.labels, sections, metrics, skipped, sampled=sampled)
    settings = _settings(cfg, inputs, models, scores, summary)
    settings["timing"] = timing
    _run_update(scores, y, cfg, metrics, skipped, settings, sampled=sampled)
    settings["guards"] = {"content": _content_evidence(models)}
    if cfg.onnx_layers:
        settings["onnx_layers"] = _run_onnx_layers(models, inputs, cfg)
    if scores.parent_cached:
        settings["parent_scores"] = ("cached: the parent's probabilities (and parent_seconds) come from an earlier "
                                     "call on the same rows")
    settings.update(extra_settings or {})
    return TrustReport(
        metrics=metrics,
        labels=models.labels,
        n_examples=n,
        has_targets=summary.has_targets,
        kind=inputs.kind,
        feature_columns=tuple(str(c) for c in inputs.records.columns),
        parent_name=models.parent.name,
        candidate_name=models.candidate.name,
        settings=settings,
        skipped=skipped,
        flip_matrix=[[int(x) for x in row] for row in np.asarray(summary.flip_matrix)],
        per_class_loyalty=[float(x) for x in summary.per_class_loyalty],
        reliability=to_jsonable(summary.reliability),
        sections=sections,
        data_digest=digest or _inputs_digest(inputs),
        created_at=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        predictions=Predictions(scores.parent, scores.candidate, y, inputs.records),
    )


def _prepare_inputs(data: Any, targets: Any, cfg: TrustEqConfig) -> _Inputs:
    frame = _as_frame(data)
    records, kind, y_raw, target_col = _split_data(frame, targets, _feature_columns(frame, targets, cfg))
    if cfg.slices:  # a slice the data cannot give is bad input, an error before anything is scored
        from .slices import check_slices

        check_slices(frame, kind, cfg.slices)
    return _Inputs(frame, records, kind, y_raw, target_col)


def _feature_columns(frame: pd.DataFrame, targets: Any, cfg: TrustEqConfig) -> Sequence[str] | None:
    """The configured feature columns; by default every column but the targets and the slice columns."""
    from .slices import slice_columns

    sliced = set(slice_columns(cfg.slices))
    if cfg.feature_columns is not None or not sliced & set(frame.columns):
        return cfg.feature_columns
    return [c for c in frame.columns if c not in sliced and not (isinstance(targets, str) and c == targets)]


def _run_slices(inputs: _Inputs, scores: _Scores, y: np.ndarray | None, cfg: TrustEqConfig, labels: Sequence[str],
                sections: dict[str, Section], metrics: dict[str, Estimate], skipped: dict[str, str], *,
                sampled: bool) -> None:
    """Every fidelity and calibration metric per slice (:mod:`mlflow_trusteq.slices`), or why not."""
    from .slices import measure_slices

    if not cfg.slices:
        skipped["slices"] = "not requested (pass `slices=['builtin']` or slice columns)"
        return
    options = {k: getattr(cfg, v) for k, v in _METRIC_SETTING_NAMES.items()}
    result = measure_slices(inputs.frame, inputs.records, inputs.kind, scores.parent, scores.candidate, y, labels,
                            cfg.slices, options=options)
    if sampled:  # a uniform (hash-drawn) sample of the table: valid intervals for the table's slices, wider
        import dataclasses

        result = dataclasses.replace(result, settings={**result.settings, "measured_on": (
            f"the Spark engine's sample of {len(inputs.records)} rows (the lowest seeded hashes of the row keys; bins "
            "from the sample's quantiles); the aggregate metrics are the whole table's: raise `sample_size` for "
            "narrower slice intervals")})
    sections["slices"] = result
    metrics.update({f"slices/{k}": v for k, v in result.estimates().items()})


def _load_models(parent: Any, candidate: Any, cfg: TrustEqConfig) -> _Models:
    from .adapters import align_labels, as_proba_model

    parent_model = as_proba_model(parent, **dict(cfg.parent_kwargs))
    candidate_model = as_proba_model(candidate, **dict(cfg.candidate_kwargs))
    perm = align_labels(parent_model.labels, candidate_model.labels)
    models = _Models(parent_model, candidate_model, np.asarray(perm), tuple(parent_model.labels))
    return _apply_headline_plan(models, cfg)


def _with_call_memo(models: _Models, parent: Any, cfg: TrustEqConfig) -> _Models:
    """``models`` with the memo of the parent's calls (:func:`._cache.parent_call_memo`), when the cache is on."""
    import dataclasses

    from ._cache import parent_call_memo

    if not cfg.caches_parent():
        return models
    return dataclasses.replace(models, parent_calls=parent_call_memo(parent, parent_kwargs=cfg.parent_kwargs))


def _apply_headline_plan(models: _Models, cfg: TrustEqConfig) -> _Models:
    """Both models under the headline plan; a serving plan a model cannot take is an error here, before scoring."""
    import dataclasses

    from .adapters import BaseAdapter

    plan = cfg.serving_batch_plan()
    planned = []
    for role, model in (("parent", models.parent), ("candidate", models.candidate)):
        if isinstance(model, BaseAdapter):
            planned.append(model.with_batch_plan(plan))  # raises for a plan the model cannot take
        elif cfg.headline_plan == "serving":
            raise InvalidInputError(
                f"headline_plan='serving': the {role} {model.name!r} is a {type(model).__name__}, not an adapter "
                "trusteq built, so its batching cannot be changed; wrap the model itself (as_proba_model)")
    if cfg.headline_plan != "serving":
        return models
    return dataclasses.replace(models, parent=planned[0], candidate=planned[1],
                               own=(models.parent, models.candidate))


def _encode_gold(inputs: _Inputs, models: _Models) -> np.ndarray | None:
    """The gold labels as indices into the parent's label order (``None`` without gold labels)."""
    from .adapters import encode_targets

    return encode_targets(inputs.y_raw, models.labels) if inputs.y_raw is not None else None


def _score(models: _Models, records: pd.DataFrame, chunk_size: int, parent_key: str | None = None) -> _Scores:
    from . import _cache

    hit = _cache.get_parent_scores(parent_key) if parent_key else None
    if hit is not None:
        from .candidates import _timed_proba

        logger.info("scoring %d rows with candidate %s (parent %s: cached)", len(records), models.candidate.name,
                    models.parent.name)
        P, t_parent = hit
        Q, t_candidate = _timed_proba(models.candidate, records, chunk_size, "candidate")
    else:
        logger.info("scoring %d rows with parent %s and candidate %s", len(records), models.parent.name,
                    models.candidate.name)
        P, Q, t_parent, t_candidate = _score_both(models.parent, models.candidate, records, chunk_size)
        if parent_key:
            _cache.put_parent_scores(parent_key, P, t_parent)
    Q = Q[:, models.perm]
    for name, arr in (("parent", P), ("candidate", Q)):
        if arr.shape[1] != len(models.labels):
            raise ModelOutputError(
                f"the {name} returned {arr.shape[1]} probability columns for {len(models.labels)} labels")
    return _Scores(P, Q, t_parent, t_candidate, parent_cached=hit is not None)


def _measure_core(scores: _Scores, y: np.ndarray | None, cfg: TrustEqConfig
                  ) -> tuple[PairSummary, dict[str, Estimate], dict[str, str]]:
    """Fidelity, accuracy and calibration with their paired intervals."""
    from .metrics import summarize_pair

    summary = summarize_pair(scores.parent, scores.candidate, y, base=cfg.js_base,
                             n_bins_equal_width=cfg.n_bins_equal_width, n_bins_equal_mass=cfg.n_bins_equal_mass,
                             min_bin_count=cfg.min_bin_count, n_resamples=cfg.n_resamples,
                             confidence=cfg.confidence, random_state=cfg.random_state)
    return summary, dict(summary.estimates), _core_skipped(y is not None)


def _core_skipped(has_targets: bool) -> dict[str, str]:
    """What the core metrics leave unmeasured: without gold labels, calibration and accuracy."""
    skipped: dict[str, str] = {}
    if not has_targets:
        skipped["calibration"] = "not measured: no gold labels were given (pass `targets=`)"
        skipped["accuracy"] = "not measured: no gold labels were given (pass `targets=`)"
    return skipped


def _measure_efficiency(models: _Models, scores: _Scores, n: int, metrics: dict[str, Estimate],
                        skipped: dict[str, str], *, records: pd.DataFrame | None = None,
                        confidence: float = 0.95) -> dict[str, Any]:
    """Throughput of the scoring pass, the speed-up and latency from repeated timings (:mod:`._timing`), size.

    Returns the timing settings (protocol, raw timings, thread settings) for the report.
    """
    t_parent, t_candidate = scores.parent_seconds, scores.candidate_seconds
    metrics["parent/throughput"] = Estimate(n / t_parent if t_parent > 0 else float("nan"))
    metrics["candidate/throughput"] = Estimate(n / t_candidate if t_candidate > 0 else float("nan"))
    metrics["speedup"] = Estimate(t_parent / t_candidate if t_candidate > 0 else float("nan"))
    timing: dict[str, Any] = {"protocol": "one timed scoring pass (no repeats)"}
    if records is not None and len(records):
        from ._timing import measure_speed

        speed = measure_speed(models.parent, models.candidate, records, confidence=confidence)
        metrics["speedup"] = speed.speedup
        for role in ("parent", "candidate"):
            metrics[f"{role}/latency"] = speed.latency(role)
        timing = speed.settings()
    p_size, c_size = models.parent.size_bytes, models.candidate.size_bytes
    p_kind, c_kind = size_kind(models.parent), size_kind(models.candidate)
    if not (p_size and c_size):
        skipped["size_ratio"] = "not measured: size on disk unknown for " + (
            "the parent" if not p_size else "the candidate")
    elif p_kind != c_kind:
        skipped["size_ratio"] = (f"not measured: the parent's size is its {_SIZE_KINDS[p_kind]} and the candidate's "
                                 f"its {_SIZE_KINDS[c_kind]}; sizes of different kinds are not compared (give both "
                                 "models as MLflow models, or both as objects)")
    else:
        metrics["size_ratio"] = Estimate(c_size / p_size)
    return timing


#: how a model's ``size_bytes`` was measured -> the words for it (``settings["size_rule"]`` records the kind)
_SIZE_KINDS = {
    "mlflow_model_folder": "MLflow model folder (the bytes of its files)",
    "serialized": "serialized form (a scikit-learn estimator's pickle, the .onnx file, a torch model's parameters)",
}


def size_kind(model: ProbaModel) -> str:
    """How ``model.size_bytes`` was measured: one rule for every entry point.

    A model that comes from MLflow (a ``models:/``/``runs:/`` URI, a model folder or a loaded pyfunc
    model, any flavour) is measured as its MLflow model folder: the bytes of its files, less the
    ``registered_model_meta`` that MLflow writes there on loading (``"mlflow_model_folder"``).
    Any other model as the adapter serializes it (``"serialized"``). ``size_ratio`` is measured only
    between two sizes of the same kind.
    """
    kind = getattr(model, "size_kind", None)
    return kind if kind in _SIZE_KINDS else "serialized"


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
        "size_rule": {"parent": size_kind(models.parent), "candidate": size_kind(models.candidate)},
        "parent_seconds": scores.parent_seconds,
        "candidate_seconds": scores.candidate_seconds,
        "metrics": _metric_settings(summary, settings_of_cfg={k: getattr(cfg, v) for k, v in
                                                               _METRIC_SETTING_NAMES.items()}),
    }
    settings["serving_plan"] = cfg.serving_batch_plan().given()
    settings["headline_plan"] = cfg.headline_plan
    for role, model in (("parent", models.parent), ("candidate", models.candidate)):
        scoring_settings = getattr(model, "scoring_settings", None)
        if callable(scoring_settings):
            settings[f"{role}_scoring"] = scoring_settings()
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
    from ._cache import MemoizedModel

    sections: dict[str, Section] = {}
    pred = scores.parent.argmax(axis=1)
    robustness = cfg.robustness_config()
    if inputs.kind == "tabular" and robustness is not None:
        skipped["robustness"] = ("not applicable: the robustness attacks replace words and characters, so they "
                                 "need text inputs, and this data is tabular (leave `robustness` off for it)")
        robustness = None
    stages: tuple[tuple[str, Any, Any], ...] = (("alignment", cfg.alignment_config(), _run_alignment),
                                                ("robustness", robustness, _run_robustness))
    memo = models.parent_calls  # the parent's answers, shared with earlier evaluations of it (_cache)
    parent = models.parent if memo is None else MemoizedModel(models.parent, memo)
    for section, config, runner in stages:
        if config is None:
            skipped.setdefault(section, f"not requested (pass `{section}=True` or a config)")
            continue
        result = _run_stage(section, runner, (parent, models.candidate, inputs.records, inputs.kind, pred,
                                              inputs.y_raw, config), memo, skipped)
        if result is not None:
            sections[section] = result
            metrics.update({f"{section}/{k}": v for k, v in result.estimates().items()})
    return sections


def _run_stage(section: str, runner: Callable[..., Any], args: tuple[Any, ...], memo: Any,
               skipped: dict[str, str]) -> Section | None:
    """One optional stage; an error or a missing requirement is recorded in ``skipped`` (fail closed)."""
    before = (memo.hits, memo.misses) if memo is not None else (0, 0)
    try:
        # the raw gold labels: each section maps them with the same rule (adapters.encode_targets)
        result = runner(*args)
    except Exception as exc:  # fail closed: recorded as skipped, the policy fails it
        logger.exception("%s stage failed", section)
        skipped[section] = f"error: {type(exc).__name__}: {exc}"
        return None
    finally:
        if memo is not None and memo.hits > before[0]:
            logger.info("parent cache hit: %s reused %d of the parent's answers (%d inputs scored anew)",
                        section, memo.hits - before[0], memo.misses - before[1])
    if result is None:
        skipped[section] = "not measured: it needs gold labels (pass `targets=`)"
    return result


def _run_consistency(models: _Models, inputs: _Inputs, scores: _Scores, cfg: TrustEqConfig,
                     sections: dict[str, Section], metrics: dict[str, Estimate], skipped: dict[str, str]) -> None:
    """Each model against itself under the other batch plan (:mod:`mlflow_trusteq._consistency`)."""
    from ._consistency import measure_self_consistency
    from .adapters import BaseAdapter

    config = cfg.consistency_config()
    if config is None:
        skipped["consistency"] = "not requested (pass `consistency=True` or a config)"
        return
    pair = {"parent": models.parent, "candidate": models.candidate}
    not_adapters = [f"the {r} {m.name!r} ({type(m).__name__})" for r, m in pair.items()
                    if not isinstance(m, BaseAdapter)]
    if not_adapters and models.own is None:
        why = (f"{' and '.join(not_adapters)} is not an adapter trusteq built, so its batching cannot be changed; "
               "pass the model itself")
        # "auto" measures what can be measured; asked for explicitly, it is a check that could not run (fail closed)
        skipped["consistency"] = (f"not requested (consistency='auto'): {why}" if cfg.consistency == "auto"
                                  else f"not measured: {why}")
        return
    if models.own is not None:
        others = {"parent": models.own[0], "candidate": models.own[1]}
    else:
        plan = cfg.serving_batch_plan()
        others = {r: m.with_batch_plan(plan) for r, m in pair.items()}  # type: ignore[attr-defined]
    try:
        result = measure_self_consistency(
            pair, others, inputs.records, {"parent": scores.parent, "candidate": scores.candidate},
            candidate_perm=models.perm, labels=models.labels, config=config, headline_plan=cfg.headline_plan,
            js_base=cfg.js_base, n_resamples=cfg.n_resamples, confidence=cfg.confidence,
            random_state=cfg.random_state)
    except Exception as exc:  # fail closed: recorded as skipped with the error, the policy fails it
        logger.exception("consistency stage failed")
        skipped["consistency"] = f"error: {type(exc).__name__}: {exc}"
        return
    sections["consistency"] = result
    metrics.update({f"consistency/{k}": v for k, v in result.estimates().items()})


def _run_update(scores: _Scores, y: np.ndarray | None, cfg: TrustEqConfig, metrics: dict[str, Estimate],
                skipped: dict[str, str], settings: dict[str, Any], *, sampled: bool) -> None:
    """The model-update metrics (:mod:`mlflow_trusteq.metrics.update`): disagreement split, BTC/BEC, McNemar, AURC."""
    from .metrics.update import summarize_update

    if y is None:
        skipped["update"] = "not measured: no gold labels were given (pass `targets=`)"
        return
    if sampled:
        skipped["update"] = "not measured: the Spark engine merges the core metrics only (run the local engine)"
        return
    result = summarize_update(y, scores.parent, scores.candidate, n_resamples=cfg.n_resamples,
                              confidence=cfg.confidence, random_state=cfg.random_state)
    metrics.update(result.estimates)
    settings["update"] = result.to_dict()


def _run_onnx_layers(models: _Models, inputs: _Inputs, cfg: TrustEqConfig) -> dict[str, Any]:
    """Per-layer activations of two ONNX models (:mod:`.explain.onnx_layers`); an error is recorded, not raised."""
    from .explain.onnx_layers import DEFAULT_TOP_K, compare_layers

    top_k = DEFAULT_TOP_K if cfg.onnx_layers is True else int(cfg.onnx_layers)
    try:
        return compare_layers(models.parent, models.candidate, inputs.records, top_k=top_k).to_dict()
    except Exception as exc:  # a diagnostic: it is reported as not measured, with the reason, and gates nothing
        logger.warning("per-layer ONNX comparison not measured: %s", exc)
        return {"error": f"{type(exc).__name__}: {exc}"}


def _content_evidence(models: _Models) -> dict[str, Any]:
    """What ``guard_same_model`` compares on this path: digests of the model objects (:mod:`._guards`)."""
    from ._guards import content_evidence

    return content_evidence(models.parent, models.candidate)


def _inputs_digest(inputs: _Inputs) -> str:
    """:func:`data_digest` of the rows the models read and their gold labels (named or given as an array)."""
    return data_digest(inputs.records, inputs.y_raw)


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
