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
from typing import Any

import numpy as np
import pandas as pd

from ._errors import InvalidInputError
from ._types import Estimate, to_jsonable

logger = logging.getLogger(__name__)

__all__ = ["TrustReport", "Predictions", "compare", "data_digest", "infer_kind"]

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
    measured. ``settings`` records every choice that changes a number. ``sections`` holds the
    serialised results of the optional stages (``alignment``, ``robustness``).
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
    sections: dict[str, Any] = field(default_factory=dict)
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
            sections=dict(d.get("sections", {})),
            data_digest=d.get("data_digest", ""),
            created_at=d.get("created_at", ""),
        )

    @classmethod
    def from_json(cls, text: str) -> TrustReport:
        return cls.from_dict(json.loads(text))

    def alignment(self) -> Any:
        """The alignment section as an ``AlignmentResult`` (``None`` if it was not measured)."""
        if "alignment" not in self.sections:
            return None
        from .explain import AlignmentResult

        return AlignmentResult.from_dict(self.sections["alignment"])

    def robustness(self) -> Any:
        """The robustness section as a ``RobustnessResult`` (``None`` if it was not measured)."""
        if "robustness" not in self.sections:
            return None
        from .attack import RobustnessResult

        return RobustnessResult.from_dict(self.sections["robustness"])


def _float_or_none(x: Any) -> float | None:
    x = float(x)
    return None if np.isnan(x) else x


def data_digest(frame: pd.DataFrame) -> str:
    """A stable SHA-256 of a data frame's values and column names (row order matters)."""
    h = hashlib.sha256()
    h.update(json.dumps([str(c) for c in frame.columns]).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()


def infer_kind(records: pd.DataFrame) -> str:
    """``"text"`` (one string column), ``"text_pair"`` (two) or ``"tabular"``."""
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
    if y_raw is not None:
        missing = np.flatnonzero(pd.isna(pd.Series(y_raw)).to_numpy())
        if missing.size:
            raise InvalidInputError(f"gold label missing (NaN) at row {int(missing[0])}")
    return records, kind, y_raw, target_col


def _score_both(parent: Any, candidate: Any, records: pd.DataFrame, chunk_size: int
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
                raise InvalidInputError(
                    f"the {role} returned probabilities of shape {out[role].shape} for a batch of {len(chunk)} rows")
        p_parts.append(out["parent"])
        q_parts.append(out["candidate"])
    return np.concatenate(p_parts), np.concatenate(q_parts), seconds["parent"], seconds["candidate"]


def compare(
    parent: Any,
    candidate: Any,
    data: Any,
    *,
    targets: str | Sequence[Any] | np.ndarray | None = None,
    feature_columns: Sequence[str] | None = None,
    js_base: float = 2.0,
    n_bins_equal_width: int = 15,
    n_bins_equal_mass: int = 10,
    min_bin_count: int = 10,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    random_state: int = 0,
    chunk_size: int = 65536,
    alignment: Any = None,
    robustness: Any = None,
    parent_kwargs: Mapping[str, Any] | None = None,
    candidate_kwargs: Mapping[str, Any] | None = None,
) -> TrustReport:
    """Measure how far ``candidate`` is from being trust-equivalent to ``parent`` on ``data``.

    Parameters
    ----------
    parent, candidate
        Anything :func:`mlflow_trusteq.adapters.as_proba_model` accepts: a scikit-learn
        estimator, a transformers model (pass ``tokenizer`` in ``*_kwargs``) or pipeline, an ONNX
        Runtime session, an MLflow model URI or pyfunc, a callable, or a ready ``ProbaModel``.
    data
        A DataFrame (or dict of columns) with the feature columns and, optionally, the gold labels.
    targets
        The name of the gold-label column, or an array of labels. Without gold labels only
        fidelity (and alignment) are measured; calibration and accuracy are *not measured*,
        never invented.
    feature_columns
        Columns the models read, in order; default: every column but ``targets``. One text
        column means single texts, two mean text pairs, numeric columns mean tabular rows.
    js_base
        Log base of the Jensen-Shannon divergence in probability loyalty (2: JS in [0, 1];
        ``math.e`` reproduces scipy's default, as in the loyalty study's code).
    n_bins_equal_width, n_bins_equal_mass, min_bin_count
        Calibration bins: equal-width (Guo et al., 15) and equal-mass (the trust-equivalence
        study, 10); MCE ignores bins with fewer than ``min_bin_count`` examples.
    n_resamples, confidence, random_state
        The paired bootstrap behind every interval.
    chunk_size
        Rows per scoring chunk; memory does not grow with ``len(data)`` beyond the (n, k)
        probabilities.
    alignment, robustness
        ``AlignmentConfig`` / ``RobustnessConfig`` to run those sections (``True`` for the
        defaults); ``None`` skips them with the reason "not requested".

    Returns
    -------
    TrustReport
    """
    from .adapters import align_labels, as_proba_model, encode_targets
    from .metrics import summarize_pair

    if chunk_size < 1:
        raise InvalidInputError(f"Expected `chunk_size` >= 1, got {chunk_size}")
    frame = _as_frame(data)
    records, kind, y_raw, target_col = _split_data(frame, targets, feature_columns)
    parent_model = as_proba_model(parent, **dict(parent_kwargs or {}))
    candidate_model = as_proba_model(candidate, **dict(candidate_kwargs or {}))
    perm = align_labels(parent_model.labels, candidate_model.labels)
    labels = tuple(parent_model.labels)
    y = encode_targets(y_raw, labels) if y_raw is not None else None

    logger.info("scoring %d rows with parent %s and candidate %s", len(records), parent_model.name,
                candidate_model.name)
    P, Q, t_parent, t_candidate = _score_both(parent_model, candidate_model, records, chunk_size)
    Q = Q[:, perm]
    for name, arr in (("parent", P), ("candidate", Q)):
        if arr.shape[1] != len(labels):
            raise InvalidInputError(f"the {name} returned {arr.shape[1]} probability columns for {len(labels)} labels")

    summary = summarize_pair(P, Q, y, base=js_base, n_bins_equal_width=n_bins_equal_width,
                             n_bins_equal_mass=n_bins_equal_mass, min_bin_count=min_bin_count,
                             n_resamples=n_resamples, confidence=confidence, random_state=random_state)
    metrics: dict[str, Estimate] = dict(summary.estimates)
    skipped: dict[str, str] = {}
    if y is None:
        skipped["calibration"] = "not measured: no gold labels were given (pass `targets=`)"
        skipped["accuracy"] = "not measured: no gold labels were given (pass `targets=`)"

    # efficiency: throughput on the same chunks in the same run, and size on disk
    n = len(records)
    metrics["parent/throughput"] = Estimate(n / t_parent if t_parent > 0 else float("nan"))
    metrics["candidate/throughput"] = Estimate(n / t_candidate if t_candidate > 0 else float("nan"))
    metrics["speedup"] = Estimate(t_parent / t_candidate if t_candidate > 0 else float("nan"))
    p_size, c_size = parent_model.size_bytes, candidate_model.size_bytes
    if p_size and c_size:
        metrics["size_ratio"] = Estimate(c_size / p_size)
    else:
        skipped["size_ratio"] = "not measured: size on disk unknown for " + (
            "the parent" if not p_size else "the candidate")

    settings: dict[str, Any] = {
        "js_base": js_base,
        "n_bins_equal_width": n_bins_equal_width,
        "n_bins_equal_mass": n_bins_equal_mass,
        "min_bin_count": min_bin_count,
        "n_resamples": n_resamples,
        "confidence": confidence,
        "random_state": random_state,
        "chunk_size": chunk_size,
        "targets_column": target_col,
        "label_order": list(labels),
        "candidate_label_permutation": [int(i) for i in perm],
        "parent_size_bytes": p_size,
        "candidate_size_bytes": c_size,
        "parent_seconds": t_parent,
        "candidate_seconds": t_candidate,
        "metrics": dict(summary.settings),
    }
    for attr in ("batch_size", "max_length", "max_tokens_per_batch"):
        for role, model in (("parent", parent_model), ("candidate", candidate_model)):
            if getattr(model, attr, None) is not None:
                settings[f"{role}_{attr}"] = getattr(model, attr)

    sections: dict[str, Any] = {}
    pred = P.argmax(axis=1)
    if kind == "tabular" and robustness is not None:
        skipped["robustness"] = "not measured: the word and character attacks need text inputs"
        robustness = None
    for section, config, runner in (("alignment", alignment, _run_alignment),
                                     ("robustness", robustness, _run_robustness)):
        if config is None or config is False:
            skipped[section] = f"not requested (pass `{section}=True` or a config)"
            continue
        try:
            result = runner(parent_model, candidate_model, records, kind, pred, y, config)
        except Exception as exc:  # fail closed: recorded as skipped, the policy fails it
            logger.exception("%s stage failed", section)
            skipped[section] = f"error: {type(exc).__name__}: {exc}"
            continue
        if result is None:
            skipped[section] = "not measured: it needs gold labels (pass `targets=`)"
            continue
        sections[section] = result.to_dict()
        metrics.update({f"{section}/{k}": v for k, v in result.estimates().items()})

    return TrustReport(
        metrics=metrics,
        labels=labels,
        n_examples=n,
        has_targets=y is not None,
        kind=kind,
        feature_columns=tuple(str(c) for c in records.columns),
        parent_name=parent_model.name,
        candidate_name=candidate_model.name,
        settings=settings,
        skipped=skipped,
        flip_matrix=[[int(x) for x in row] for row in np.asarray(summary.flip_matrix)],
        per_class_loyalty=[float(x) for x in summary.per_class_loyalty],
        reliability=to_jsonable(summary.reliability),
        sections=sections,
        data_digest=data_digest(pd.concat([records, frame[[target_col]].reset_index(drop=True)], axis=1)
                                if target_col else records),
        created_at=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        predictions=Predictions(P, Q, y, records),
    )


def _run_alignment(parent: Any, candidate: Any, records: pd.DataFrame, kind: str, pred: np.ndarray,
                   y: np.ndarray | None, config: Any) -> Any:
    from .explain import AlignmentConfig, measure_alignment

    if config is True:
        config = AlignmentConfig()
    if getattr(config, "target", "parent_prediction") == "gold" and y is None:
        return None
    return measure_alignment(parent, candidate, records, parent_pred=pred, targets=y,
                             kind="tabular" if kind == "tabular" else "text", config=config)


def _run_robustness(parent: Any, candidate: Any, records: pd.DataFrame, kind: str, pred: np.ndarray,
                    y: np.ndarray | None, config: Any) -> Any:
    from .attack import RobustnessConfig, measure_robustness

    if config is True:
        config = RobustnessConfig()
    if y is None:
        return None
    return measure_robustness(parent, candidate, records, y, config=config)

