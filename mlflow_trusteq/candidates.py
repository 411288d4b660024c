"""Several candidates of one parent, side by side: :func:`compare_candidates` -> :class:`CandidateComparison`.

A team that tries several compressions of one model (int8, pruned heads, fewer layers, a
distilled student) wants the best one, not only a list of the bad ones. ``compare_candidates``
scores the parent **once** (its probabilities and its time on the data are kept and reused),
then each candidate on the same rows, and measures each pair exactly as :func:`~mlflow_trusteq.compare`
does; the policy judges each one. The result holds one :class:`~mlflow_trusteq.TrustReport` and
one :class:`~mlflow_trusteq.Verdict` per candidate and marks the **Pareto front**: the candidates
that no other candidate beats on both label loyalty's lower confidence bound and speed-up (or
size). ``report/`` renders it (:func:`mlflow_trusteq.report.write_candidates_page`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ._config import TrustEqConfig
from ._errors import InvalidInputError, ModelOutputError

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from .adapters import ProbaModel
    from .compare import TrustReport, _Inputs, _Models, _Scores
    from .policy import Policy, Verdict

logger = logging.getLogger(__name__)

__all__ = ["compare_candidates", "CandidateComparison", "CandidateResult", "pareto_front", "FRONT_AXES"]

#: the trade-offs the comparison marks: x-axis report key -> True when higher is better
FRONT_AXES: dict[str, bool] = {"speedup": True, "size_ratio": False}
#: the trust axis of every front: the lower bound of label loyalty's confidence interval
TRUST_KEY = "label_loyalty"


@dataclass(frozen=True)
class CandidateResult:
    """One candidate's report and verdict, or the error that stopped its evaluation."""

    name: str
    report: TrustReport | None = None
    verdict: Verdict | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the candidate was measured (whatever its verdict)."""
        return self.report is not None and self.error is None

    def value(self, key: str, bound: str | None = None) -> float | None:
        """A report key's point estimate (``bound``: ``"lower"``/``"upper"``), ``None`` when not measured."""
        if self.report is None or key not in self.report.metrics:
            return None
        est = self.report.metrics[key]
        x = est.value if bound is None else getattr(est, bound)
        return None if x is None or not math.isfinite(float(x)) else float(x)


@dataclass(frozen=True)
class CandidateComparison:
    """Every candidate of one parent, measured on the same data and judged by the same policy.

    ``front`` maps each axis of :data:`FRONT_AXES` to the names on its Pareto front (label
    loyalty's lower bound against that axis); ``loyalty_threshold`` is the policy's threshold on
    label loyalty (``None`` when the policy has none).
    """

    parent_name: str
    candidates: tuple[CandidateResult, ...]
    n_examples: int
    kind: str
    data_digest: str
    policy_name: str
    loyalty_threshold: float | None = None
    front: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __getitem__(self, name: str) -> CandidateResult:
        for c in self.candidates:
            if c.name == name:
                return c
        raise KeyError(f"no candidate {name!r}; candidates: {[c.name for c in self.candidates]}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.candidates)

    def best(self) -> str | None:
        """The passing candidate on the speed-up front with the highest speed-up (then the smallest size)."""
        passing = [c for c in self.candidates if c.ok and c.verdict is not None and c.verdict.passed]
        if not passing:
            return None
        on_front = [c for c in passing if c.name in self.front.get("speedup", ())] or passing
        return max(on_front, key=lambda c: (c.value("speedup") or 0.0, -(c.value("size_ratio") or math.inf))).name

    def table(self) -> pd.DataFrame:
        """One row per candidate: verdict, the trust numbers with their bounds, speed-up, size, the fronts."""
        import pandas as pd

        rows = []
        for c in self.candidates:
            row: dict[str, Any] = {"candidate": c.name,
                                   "verdict": c.verdict.label if c.verdict is not None else "error",
                                   "error": c.error or ""}
            for key in _TABLE_KEYS + _section_keys(self):
                row[key] = c.value(key)
                if key in _WITH_BOUNDS or key.startswith(("alignment/", "robustness/")):
                    row[f"{key}/lower"], row[f"{key}/upper"] = c.value(key, "lower"), c.value(key, "upper")
            for axis in FRONT_AXES:
                row[f"front/{axis}"] = c.name in self.front.get(axis, ())
            rows.append(row)
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready): the settings, the fronts and, per candidate, report and verdict."""
        return {"parent_name": self.parent_name, "n_examples": self.n_examples, "kind": self.kind,
                "data_digest": self.data_digest, "policy_name": self.policy_name,
                "loyalty_threshold": self.loyalty_threshold, "front": {k: list(v) for k, v in self.front.items()},
                "best": self.best(),
                "candidates": [{"name": c.name, "error": c.error,
                                "report": c.report.to_dict() if c.report is not None else None,
                                "verdict": c.verdict.to_dict() if c.verdict is not None else None}
                               for c in self.candidates]}


#: the columns of :meth:`CandidateComparison.table` (report keys), in order
_TABLE_KEYS = ["label_loyalty", "probability_loyalty", "diff/accuracy", "diff/ece_equal_mass", "diff/brier_loss",
               "speedup", "size_ratio"]
_WITH_BOUNDS = {"label_loyalty", "probability_loyalty", "diff/accuracy", "diff/ece_equal_mass", "diff/brier_loss"}
#: the one number per optional section shown beside the core metrics
_SECTION_KEYS = ("alignment/lime/normalized/top_k_jaccard", "alignment/shap/normalized/top_k_jaccard",
                 "robustness/word/diff/after_attack_accuracy", "robustness/char/diff/after_attack_accuracy")


def _section_keys(comparison: CandidateComparison) -> list[str]:
    return [k for k in _SECTION_KEYS if any(c.value(k) is not None for c in comparison.candidates)]


def pareto_front(points: Mapping[str, tuple[float, float]], *, x_higher_is_better: bool = True) -> tuple[str, ...]:
    """The names whose ``(x, trust)`` no other point dominates (higher trust is better).

    A point dominates another when it is at least as good on both coordinates and better on one.
    Points with a non-finite coordinate are never on the front. Returned in order of ``x``, best last.

    Examples
    --------
    >>> pareto_front({"a": (1.0, 0.99), "b": (2.0, 0.97), "c": (1.5, 0.96), "d": (3.0, 0.80)})
    ('a', 'b', 'd')
    >>> pareto_front({"small": (0.25, 0.97), "big": (0.9, 0.98), "worse": (0.5, 0.95)}, x_higher_is_better=False)
    ('big', 'small')
    """
    sign = 1.0 if x_higher_is_better else -1.0
    finite = {n: (sign * x, t) for n, (x, t) in points.items() if math.isfinite(x) and math.isfinite(t)}
    front = [n for n, (x, t) in finite.items()
             if not any((x2 >= x and t2 >= t) and (x2 > x or t2 > t) for m, (x2, t2) in finite.items() if m != n)]
    return tuple(sorted(front, key=lambda n: finite[n][0]))


def compare_candidates(
    parent: Any,
    candidates: Mapping[str, Any] | Sequence[Any],
    data: Any,
    *,
    targets: str | Sequence[Any] | np.ndarray | None = None,
    config: TrustEqConfig | Mapping[str, Any] | None = None,
    policy: Policy | Mapping[str, Any] | str | None = None,
    **overrides: Any,
) -> CandidateComparison:
    """Measure and judge several candidates of one parent on the same data, and mark the Pareto fronts.

    Parameters
    ----------
    parent
        Anything :func:`~mlflow_trusteq.as_proba_model` accepts (a model URI, an estimator...).
        It is loaded and scored once; its probabilities and time are reused for every candidate.
    candidates : mapping of name to model, or a sequence of models
        The candidates; a sequence is named by each model's adapter name (e.g. its URI).
    data, targets, config, **overrides
        As for :func:`~mlflow_trusteq.compare` (one :class:`~mlflow_trusteq.TrustEqConfig` for all
        candidates; ``candidate_kwargs`` applies to each).
    policy : Policy, dict or path, optional
        Judges every report; default: the built-in policy (or ``config.policy``).

    Returns
    -------
    CandidateComparison
        A candidate whose evaluation raised is kept with its ``error`` (and logged); when every
        candidate fails, the first error is raised.

    Notes
    -----
    The speed-up of each candidate divides the parent's time on the data, measured once, by the
    candidate's time on the same chunks (both after a warm-up); :func:`~mlflow_trusteq.compare`
    interleaves the two models chunk by chunk instead. Alignment and robustness, when requested,
    query the parent once per distinct input: its answers on the (seeded, paired) perturbations
    and attack texts of the first candidate are remembered and reused for the others
    (:mod:`mlflow_trusteq._cache`; ``parent_cache=False`` queries it again for each).
    """
    from .compare import _prepare_inputs

    cfg = TrustEqConfig.from_mapping(config, **overrides)
    named = _named_candidates(candidates)
    judge = _load_policy(policy if policy is not None else cfg.policy)
    inputs = _prepare_inputs(data, targets, cfg)
    parent_scored = _score_parent(parent, inputs, cfg)
    results = _measure_candidates(parent_scored, named, inputs, judge, cfg)
    first = next(r.report for r in results if r.report is not None)
    return CandidateComparison(
        parent_name=parent_scored.model.name, candidates=tuple(results), n_examples=first.n_examples,
        kind=first.kind, data_digest=first.data_digest, policy_name=judge.name,
        loyalty_threshold=_loyalty_threshold(judge), front=_fronts(results))


@dataclass(frozen=True)
class _ScoredParent:
    """The parent, loaded and scored once: its probabilities and its seconds on the data, reused per candidate."""

    model: ProbaModel
    proba: np.ndarray
    seconds: float
    #: the memo of its calls in the alignment and robustness stages (``None``: ``parent_cache=False``)
    calls: Any = None


def _load_policy(policy: Policy | Mapping[str, Any] | str | Path | None) -> Policy:
    from .policy import Policy

    return Policy.load(dict(policy) if isinstance(policy, Mapping) else policy)


def _score_parent(parent: Any, inputs: _Inputs, cfg: TrustEqConfig) -> _ScoredParent:
    from ._cache import CallMemo, parent_call_memo

    model = _load(parent, cfg.parent_kwargs)
    proba, seconds = _timed_proba(model, inputs.records, cfg.chunk_size, "parent")
    calls = None
    if cfg.caches_parent():
        # shared with other evaluations of this parent when its content is known; else this call's own
        calls = parent_call_memo(parent, parent_kwargs=cfg.parent_kwargs) or CallMemo()
    return _ScoredParent(model, proba, seconds, calls)


def _measure_candidates(parent: _ScoredParent, named: Mapping[str, Any], inputs: _Inputs, judge: Policy,
                        cfg: TrustEqConfig) -> list[CandidateResult]:
    """Each candidate measured and judged; one that raises is kept with its error (all failing: the first raises)."""
    results: list[CandidateResult] = []
    first_error: Exception | None = None
    for name, candidate in named.items():
        try:
            report = _measure_candidate(parent, name, candidate, inputs, cfg)
            results.append(CandidateResult(name, report, judge.judge(report)))
        except Exception as exc:  # one broken candidate does not hide the others; it is shown as an error
            logger.warning("candidate %r could not be evaluated: %s: %s", name, type(exc).__name__, exc)
            first_error = first_error or exc
            results.append(CandidateResult(name, error=f"{type(exc).__name__}: {exc}"))
    if first_error is not None and not any(r.ok for r in results):
        raise first_error  # nothing to compare: the first candidate's own error, with its type
    return results


def _measure_candidate(parent: _ScoredParent, name: str, candidate: Any, inputs: _Inputs,
                       cfg: TrustEqConfig) -> TrustReport:
    """One candidate against the scored parent: loaded, labels matched, timed on the same chunks, measured."""
    from .compare import _encode_gold, _Scores

    models = _pair(parent.model, candidate, {"name": name, **cfg.candidate_kwargs}, parent.calls)
    y = _encode_gold(inputs, models)
    proba, seconds = _timed_proba(models.candidate, inputs.records, cfg.chunk_size, f"candidate {name!r}")
    scores = _Scores(parent.proba, proba[:, models.perm], parent.seconds, seconds)
    return _measure_pair(models, inputs, scores, y, cfg)


def _named_candidates(candidates: Mapping[str, Any] | Sequence[Any]) -> dict[str, Any]:
    """``{name: model}``; a sequence is named by each entry (a URI string) or its position."""
    if isinstance(candidates, Mapping):
        named = {str(k): v for k, v in candidates.items()}
    elif isinstance(candidates, (str, bytes)) or not isinstance(candidates, Sequence):
        raise InvalidInputError(f"Expected `candidates` as a mapping of name to model or a list of models, "
                                f"got {type(candidates).__name__}")
    else:
        named = {}
        for i, c in enumerate(candidates):
            name = c if isinstance(c, str) else f"candidate {i + 1}"
            if name in named:
                raise InvalidInputError(f"candidate {name!r} is given twice")
            named[name] = c
    if not named:
        raise InvalidInputError("`candidates` is empty: give at least one candidate to compare with the parent")
    return named


def _load(model: Any, kwargs: Mapping[str, Any]) -> ProbaModel:
    from .adapters import as_proba_model

    return as_proba_model(model, **dict(kwargs))


def _pair(parent: ProbaModel, candidate: Any, kwargs: Mapping[str, Any], calls: Any = None) -> _Models:
    """The (already loaded) parent and this candidate as compare's ``_Models``, labels matched."""
    from .adapters import align_labels
    from .compare import _Models

    model = _load(candidate, kwargs)
    perm = align_labels(parent.labels, model.labels)
    return _Models(parent, model, np.asarray(perm), tuple(parent.labels), parent_calls=calls)


def _timed_proba(model: ProbaModel, records: pd.DataFrame, chunk_size: int, role: str) -> tuple[np.ndarray, float]:
    """A model's probabilities on ``records`` and its seconds (chunk by chunk, after a warm-up)."""
    n = len(records)
    model.predict_proba(records.iloc[: min(256, n)])
    parts, seconds = [], 0.0
    for start in range(0, n, chunk_size):
        chunk = records.iloc[start:start + chunk_size]
        t0 = time.perf_counter()
        out = np.asarray(model.predict_proba(chunk), dtype=np.float64)
        seconds += time.perf_counter() - t0
        if out.ndim != 2 or out.shape[0] != len(chunk):
            raise ModelOutputError(f"the {role} returned probabilities of shape {out.shape} for a batch of "
                                   f"{len(chunk)} rows")
        parts.append(out)
    return np.concatenate(parts), seconds


def _measure_pair(models: _Models, inputs: _Inputs, scores: _Scores, y: np.ndarray | None,
                  cfg: TrustEqConfig) -> TrustReport:
    from .compare import _measure

    if scores.candidate.shape[1] != len(models.labels):
        raise ModelOutputError(f"the candidate returned {scores.candidate.shape[1]} probability columns for "
                               f"{len(models.labels)} labels")
    return _measure(models, inputs, scores, y, cfg)


def _loyalty_threshold(policy: Policy) -> float | None:
    return next((c.threshold for c in policy.checks if c.metric == TRUST_KEY and c.threshold is not None), None)


def _fronts(results: Sequence[CandidateResult]) -> dict[str, tuple[str, ...]]:
    fronts: dict[str, tuple[str, ...]] = {}
    for axis, higher in FRONT_AXES.items():
        points = {}
        for r in results:
            x, trust = r.value(axis), r.value(TRUST_KEY, "lower")
            if x is not None and trust is not None:
                points[r.name] = (x, trust)
        fronts[axis] = pareto_front(points, x_higher_is_better=higher)
    return fronts
