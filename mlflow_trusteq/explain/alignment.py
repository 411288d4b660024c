r"""Interpretability alignment of a candidate with its parent: LIME and SHAP, paired, against a noise floor.

For a seeded sample of examples, both models explain the **same target class** (the parent's
prediction, or the gold label) over the **same features** (words of all text fields, or tabular
columns). Per example and method the parent's attribution :math:`a` and the candidate's
:math:`b` are compared with the measures of :mod:`.agreement`; the **noise floor** compares the
parent with itself under independent perturbations (:math:`a` vs :math:`a'`), and the
**normalized** alignment is the ratio of means

.. math:: \text{normalized} = \frac{\overline{m(a, b)}}{\overline{m(a, a')}}

with a paired percentile-bootstrap interval (the same example indices for numerator and
denominator). A low alignment whose interval reaches the noise floor is not evidence of
anything.

LIME is paired: the same masks (seeded per example) are scored by both models; the noise floor
draws another set of masks with another seed. SHAP (Partition explainer) is deterministic, so its
noise floor is exactly 1 by construction; it is reported as such (``settings["shap_noise_floor"]``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

from .._errors import InvalidInputError
from .._types import Estimate, to_jsonable
from ..adapters.labels import encode_targets
from ..metrics._validation import check_targets
from ..metrics.bootstrap import mean_ci, percentile_interval
from ._features import TextFeatures, text_features
from ._lime import LimeExplanation, explain_from_masks, sample_masks
from .agreement import agreement

logger = logging.getLogger(__name__)

__all__ = ["AlignmentConfig", "AlignmentResult", "measure_alignment", "METRICS"]

#: Base names of the per-example measures, in report order.
METRICS = ("top_k_jaccard", "feature_agreement", "rank_correlation", "sign_agreement")
_METHODS = ("lime", "shap")
_STREAM_PAIRED, _STREAM_FLOOR, _STREAM_BACKGROUND = 0, 1, 2
_SHAP_WAVE = 32


@dataclass(frozen=True)
class AlignmentConfig:
    """Settings of :func:`measure_alignment`; every field that changes a number is logged.

    Parameters
    ----------
    methods : tuple of str
        ``"lime"`` and/or ``"shap"``.
    n_examples : int
        Examples explained (a seeded sample without replacement; all when fewer). The default, 20,
        costs about 2,000 requested model evaluations per example with the other defaults, a few
        minutes for a MiniLM-size parent and a smaller candidate on 2 CPU cores (see
        ``benchmarks/bench_explain.py``); raise it for tighter intervals.
    target : str
        ``"parent_prediction"`` (works without labels) or ``"gold"`` (the study's choice).
    top_k : int
        k of the top-k measures; ``min(k, d)`` is used on an example with ``d < k`` features.
    lime_num_samples : int
        Perturbations per LIME explanation, the original included. Default 500 for time (LIME is
        the larger cost: parent twice with the noise floor, candidate once); the study used
        1,000, the ``lime`` package's default is 5,000.
    lime_kernel_width : float
        Width of LIME's exponential kernel on ``100 *`` cosine distance (lime's default 25).
    shap_max_evals : int
        Model evaluations per SHAP Partition explanation (the study: 500).
    shap_batch_size : int
        Tree nodes the Partition explainer expands per model call (shap's text default is 5;
        larger batches mean fewer, bigger model calls; the expansion order may differ slightly).
    mask_token : str
        What a masked word becomes in SHAP (``""``: deleted, like LIME).
    noise_floor : bool
        Also explain the parent under independent perturbations.
    background_size : int
        Tabular only: rows of the background sample (drawn from ``background`` or ``records``).
    random_state : int
        Seed of the example sample and of every perturbation.
    max_tokens_per_batch : int or None
        Token budget per forward pass for adapters that batch by tokens (those with a
        ``max_tokens_per_batch`` attribute, e.g. the transformers adapter): set for the duration of
        the call, then restored. ``None`` keeps the adapters' own setting.
    chunk_size : int
        Rows per adapter call for the pre-drawn LIME perturbations (progress granularity).
    progress : bool
        Show tqdm progress bars.
    """

    methods: tuple[str, ...] = ("lime", "shap")
    n_examples: int = 20
    target: str = "parent_prediction"
    top_k: int = 10
    lime_num_samples: int = 500
    lime_kernel_width: float = 25.0
    shap_max_evals: int = 500
    shap_batch_size: int = 64
    mask_token: str = ""
    noise_floor: bool = True
    background_size: int = 50
    random_state: int = 0
    max_tokens_per_batch: int | None = None
    chunk_size: int = 2048
    progress: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "methods", tuple(self.methods))
        bad = [m for m in self.methods if m not in _METHODS]
        if bad or not self.methods:
            raise InvalidInputError(f"Expected `methods` among {_METHODS}, got {self.methods!r}")
        if self.target not in ("parent_prediction", "gold"):
            raise InvalidInputError(f"Expected `target` 'parent_prediction' or 'gold', got {self.target!r}")
        for name, lo in [("n_examples", 1), ("top_k", 1), ("lime_num_samples", 2), ("shap_max_evals", 3),
                         ("shap_batch_size", 1), ("background_size", 1), ("chunk_size", 1)]:
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < lo:
                raise InvalidInputError(f"Expected `{name}` >= {lo}, got {v!r}")
        if not self.lime_kernel_width > 0:
            raise InvalidInputError(f"Expected `lime_kernel_width` > 0, got {self.lime_kernel_width!r}")

    def to_dict(self) -> dict[str, Any]:
        return {f.name: (list(getattr(self, f.name)) if f.name == "methods" else getattr(self, f.name))
                for f in fields(self)}


def _ratio_ci(num: np.ndarray, den: np.ndarray, *, n_resamples: int = 1000, confidence: float = 0.95,
              random_state: int = 0) -> Estimate:
    """Ratio of means with a paired percentile bootstrap; NaN where the denominator mean is <= 0."""
    ok = ~(np.isnan(num) | np.isnan(den))
    num, den = num[ok], den[ok]
    if num.size == 0 or den.mean() <= 0:
        return Estimate(math.nan, None, None, confidence)
    point = float(num.mean() / den.mean())
    if num.size < 2:
        return Estimate(point, None, None, confidence)
    rng = np.random.default_rng(random_state)
    idx = rng.integers(0, num.size, size=(n_resamples, num.size))
    d = den[idx].mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(d > 0, num[idx].mean(axis=1) / d, np.nan)
    lo, hi = percentile_interval(r, confidence=confidence)
    return Estimate(point, lo, hi, confidence)


@dataclass(frozen=True)
class AlignmentResult:
    """Per-example attributions and agreement of parent and candidate, per method.

    ``examples`` is a list of plain dicts (JSON-ready): ``row`` (index in ``records``), ``text``,
    ``features``, ``k`` (the k used), ``target`` (class index) and ``target_label``, and per method
    ``<m>/parent``, ``<m>/candidate``, ``<m>/floor`` (attributions), ``<m>/metrics`` and
    ``<m>/floor_metrics`` (dicts of :data:`METRICS`).
    """

    methods: tuple[str, ...]
    labels: tuple[str, ...]
    examples: tuple[dict[str, Any], ...]
    settings: dict[str, Any] = field(default_factory=dict)
    n_evaluations: dict[str, int] = field(default_factory=dict)

    # ---- numbers -------------------------------------------------------------------------------
    def _values(self, method: str, metric: str, floor: bool = False) -> np.ndarray:
        key = f"{method}/floor_metrics" if floor else f"{method}/metrics"
        return np.array([np.nan if e[key].get(metric) is None else e[key][metric] for e in self.examples],
                        dtype=np.float64)

    def estimates(self) -> dict[str, Estimate]:
        """``{"<method>/<metric>", "<method>/noise_floor/<metric>", "<method>/normalized/<metric>"}``."""
        seed = int(self.settings.get("random_state", 0))
        out: dict[str, Estimate] = {}
        for m in self.methods:
            for metric in METRICS:
                a = self._values(m, metric)
                out[f"{m}/{metric}"] = mean_ci(a, random_state=seed)
                if self.settings.get("noise_floor", True):
                    f = self._values(m, metric, floor=True)
                    out[f"{m}/noise_floor/{metric}"] = mean_ci(f, random_state=seed)
                    out[f"{m}/normalized/{metric}"] = _ratio_ci(a, f, random_state=seed)
        return out

    def floor_gap(self, method: str, metric: str = "top_k_jaccard") -> Estimate:
        """Mean of (noise floor - alignment) per example, with a bootstrap interval."""
        a = self._values(method, metric)
        f = self._values(method, metric, floor=True)
        return mean_ci(f - a, random_state=int(self.settings.get("random_state", 0)))

    def within_noise_floor(self, method: str, metric: str = "top_k_jaccard") -> bool:
        """True when the paired interval of (floor - alignment) reaches 0: no evidence of misalignment."""
        gap = self.floor_gap(method, metric)
        if gap.lower is None or math.isnan(gap.value):
            return True
        return gap.lower <= 0.0

    def summary(self) -> str:
        """One sentence per method: the alignment, its noise floor, and what that means."""
        from ..report._alignment import alignment_summary

        return alignment_summary(self)

    def table(self) -> pd.DataFrame:
        """One row per explained example: row index, text, features, k, target, each method's measures."""
        rows = []
        for e in self.examples:
            r: dict[str, Any] = {"row": e["row"], "text": e["text"], "n_features": len(e["features"]),
                                 "k": e["k"], "target": e["target_label"]}
            for m in self.methods:
                for metric in METRICS:
                    r[f"{m}/{metric}"] = e[f"{m}/metrics"].get(metric)
                    if e.get(f"{m}/floor_metrics"):
                        r[f"{m}/noise_floor/{metric}"] = e[f"{m}/floor_metrics"].get(metric)
                for who in ("parent", "candidate"):
                    w = np.asarray(e[f"{m}/{who}"], dtype=float)
                    top = np.argsort(-np.abs(w), kind="stable")[:e["k"]]
                    r[f"{m}/{who}_top_k"] = " ".join(e["features"][j] for j in top)
            rows.append(r)
        return pd.DataFrame(rows)

    # ---- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"methods": list(self.methods), "labels": list(self.labels),
                "examples": [to_jsonable(e) for e in self.examples], "settings": to_jsonable(self.settings),
                "n_evaluations": dict(self.n_evaluations),
                "estimates": {k: v.to_dict() for k, v in self.estimates().items()}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AlignmentResult:
        return cls(methods=tuple(d["methods"]), labels=tuple(d["labels"]), examples=tuple(d["examples"]),
                   settings=dict(d.get("settings", {})), n_evaluations=dict(d.get("n_evaluations", {})))

    def html(self, max_examples: int = 20) -> str:
        """A self-contained attribution comparison page (worst-aligned examples first).

        Rendered by :func:`mlflow_trusteq.report.render_alignment_html`.
        """
        from ..report._alignment import render_alignment_html

        return render_alignment_html(self, max_examples=max_examples)


# ---- scoring ---------------------------------------------------------------------------------------
class _Scorer:
    """Scores inputs with one model, never the same input twice (a cache keyed by the input)."""

    def __init__(self, model: Any, columns: list[str], kind: str) -> None:
        self.model = model
        self.columns = columns
        self.kind = kind
        self.cache: dict[Any, np.ndarray] = {}
        self.n_requested = 0

    @property
    def n_scored(self) -> int:
        return len(self.cache)

    def _frame(self, inputs: list[Any]) -> pd.DataFrame:
        if self.kind == "text":
            return pd.DataFrame([list(x) for x in inputs], columns=self.columns)
        return pd.DataFrame(np.asarray([np.frombuffer(x, dtype=np.float64) for x in inputs]), columns=self.columns)

    def _run(self, inputs: list[Any]) -> None:
        proba = np.asarray(self.model.predict_proba(self._frame(inputs)), dtype=np.float64)
        if proba.ndim != 2 or proba.shape[0] != len(inputs):
            raise InvalidInputError(f"Model {getattr(self.model, 'name', self.model)!r} returned probabilities "
                                    f"of shape {proba.shape} for {len(inputs)} inputs")
        for x, p in zip(inputs, proba):
            self.cache[x] = p

    def prefetch(self, inputs: Sequence[Any], *, chunk_size: int, progress: bool, desc: str) -> None:
        """Score every new input in big calls, longest-first chunks (adapters batch by token budget)."""
        from tqdm.auto import tqdm

        todo = list(dict.fromkeys(x for x in inputs if x not in self.cache))
        if self.kind == "text":
            todo.sort(key=lambda x: -sum(len(s) for s in x))
        for i in tqdm(range(0, len(todo), chunk_size), desc=desc, unit="chunk", disable=not progress):
            self._run(todo[i:i + chunk_size])

    def score(self, inputs: Sequence[Any], cls: int) -> np.ndarray:
        self.n_requested += len(inputs)
        todo = list(dict.fromkeys(x for x in inputs if x not in self.cache))
        if todo:
            self._run(todo)
        return np.array([self.cache[x][cls] for x in inputs], dtype=np.float64)


class _Batcher:
    """Merges the model calls of concurrent per-example explainers into one adapter call per round.

    Every explainer thread hands in its batch and waits; when all live threads have handed one in
    (the others have finished), the distinct new inputs of all of them are scored in a single
    ``predict_proba`` call (where the adapter's token-budget batching takes over) and every
    thread gets its answer. The Partition explainer of one example evaluates its tree level by
    level, so without merging its first rounds are batches of 1, 2, 4, ... inputs.
    """

    def __init__(self, scorer: _Scorer, n_workers: int) -> None:
        self.scorer = scorer
        self.cond = threading.Condition()
        self.active = n_workers
        self.pending: dict[int, tuple[Sequence[Any], int]] = {}
        self.results: dict[int, Any] = {}

    def _flush(self) -> None:  # under self.cond
        try:
            todo = list(dict.fromkeys(x for inputs, _ in self.pending.values() for x in inputs
                                      if x not in self.scorer.cache))
            if todo:
                self.scorer._run(todo)
            for wid, (inputs, cls) in self.pending.items():
                self.scorer.n_requested += len(inputs)
                self.results[wid] = np.array([self.scorer.cache[x][cls] for x in inputs], dtype=np.float64)
        except BaseException as exc:  # every waiting explainer re-raises it
            for wid in self.pending:
                self.results[wid] = exc
        self.pending.clear()
        self.cond.notify_all()

    def score(self, wid: int, inputs: Sequence[Any], cls: int) -> np.ndarray:
        with self.cond:
            self.pending[wid] = (inputs, cls)
            if len(self.pending) >= self.active:
                self._flush()
            while wid not in self.results:
                self.cond.wait()
            out = self.results.pop(wid)
        if isinstance(out, BaseException):
            raise out
        return out

    def done(self) -> None:
        with self.cond:
            self.active -= 1
            if self.pending and len(self.pending) >= self.active:
                self._flush()


def _shap_all(feats: list[Any], targets: list[int], scorer: _Scorer, kw: dict[str, Any], progress: bool,
              desc: str) -> list[np.ndarray]:
    """SHAP for every example with one model: concurrent explainers, merged model calls."""
    from concurrent.futures import ThreadPoolExecutor

    from tqdm.auto import tqdm

    from ._shap import shap_text

    bar = tqdm(total=len(feats), desc=desc, unit="example", disable=not progress)
    out: list[np.ndarray] = []
    try:
        # waves of at most _SHAP_WAVE threads: every live thread of a wave takes part in each round
        for start in range(0, len(feats), _SHAP_WAVE):
            wave = list(range(start, min(start + _SHAP_WAVE, len(feats))))
            batcher = _Batcher(scorer, len(wave))

            def work(i: int, batcher: _Batcher = batcher) -> np.ndarray:
                try:
                    return shap_text(feats[i], lambda xs: batcher.score(i, xs, targets[i]), **kw)
                finally:
                    batcher.done()
                    bar.update(1)

            with ThreadPoolExecutor(max_workers=len(wave)) as pool:
                out.extend(pool.map(work, wave))
    finally:
        bar.close()
    return out


def _seed(random_state: int, row: int, stream: int) -> int:
    return int(np.random.SeedSequence([int(random_state), int(row), int(stream)]).generate_state(1)[0])


def measure_alignment(parent: Any, candidate: Any, records: pd.DataFrame, *, parent_pred: np.ndarray,
                      targets: np.ndarray | None = None, kind: str = "text",
                      background: pd.DataFrame | None = None,
                      config: AlignmentConfig | None = None) -> AlignmentResult:
    """Explain a seeded sample of ``records`` with both models and measure their agreement.

    Parameters
    ----------
    parent, candidate : ProbaModel
        ``predict_proba(DataFrame) -> (n, k)``, the same ``labels`` in the same order.
    records : pandas.DataFrame
        Feature columns only: one text column, two (a text pair), or tabular columns.
    parent_pred : array of shape (n,)
        The parent's predicted class per row, as a column index (the argmax of its probabilities).
    targets : array of shape (n,), optional
        Gold labels (index or label name); needed when ``config.target == "gold"``.
    kind : {"text", "tabular"}
    background : pandas.DataFrame, optional
        Tabular only: rows a masked feature is drawn from (default: a sample of ``records``).
    config : AlignmentConfig

    Returns
    -------
    AlignmentResult
    """
    config = config or AlignmentConfig()
    labels, target_idx = _check_inputs(parent, candidate, records, parent_pred, targets, kind, config)
    rows = _sample_rows(len(records), config)
    columns = [str(c) for c in records.columns]
    ps, cs = _Scorer(parent, columns, kind), _Scorer(candidate, columns, kind)
    notes: dict[str, Any] = {}
    with _token_budget((parent, candidate), config.max_tokens_per_batch):
        if kind == "text":
            examples = _text_alignment(records, rows, target_idx, labels, ps, cs, config)
        else:
            examples, notes = _tabular_alignment(records, rows, target_idx, labels, ps, cs, config, background)
    settings = _settings(config, kind, len(records), rows, examples, notes)
    n_evals = {"parent_scored": ps.n_scored, "candidate_scored": cs.n_scored,
               "parent_requested": ps.n_requested, "candidate_requested": cs.n_requested}
    logger.info("alignment: %d examples, %s model evaluations", len(rows), n_evals)
    return AlignmentResult(methods=config.methods, labels=labels, examples=tuple(examples),
                           settings=settings, n_evaluations=n_evals)


# ---- steps of measure_alignment ---------------------------------------------------------------------
def _check_inputs(parent: Any, candidate: Any, records: pd.DataFrame, parent_pred: np.ndarray,
                  targets: np.ndarray | None, kind: str,
                  config: AlignmentConfig) -> tuple[tuple[str, ...], np.ndarray]:
    """Validate the arguments; return the labels and the explained class index of every row."""
    if not isinstance(records, pd.DataFrame):
        raise InvalidInputError(f"Expected `records` to be a pandas DataFrame, got {type(records).__name__}")
    if kind not in ("text", "tabular"):
        raise InvalidInputError(f"Expected `kind` 'text' or 'tabular', got {kind!r}")
    n = len(records)
    if n == 0:
        raise InvalidInputError("`records` is empty")
    if kind == "text" and records.shape[1] not in (1, 2):
        raise InvalidInputError(f"Expected 1 or 2 text columns, got {records.shape[1]}: {list(records.columns)!r}")
    labels = tuple(str(x) for x in getattr(parent, "labels", ()))
    cand_labels = tuple(str(x) for x in getattr(candidate, "labels", ()))
    if not labels:
        raise InvalidInputError("`parent` has no `labels`")
    if labels != cand_labels:
        raise InvalidInputError(f"Label mismatch: parent {labels!r}, candidate {cand_labels!r}")
    parent_pred = np.asarray(parent_pred)
    if parent_pred.shape != (n,):
        raise InvalidInputError(f"Expected `parent_pred` of shape ({n},), got {parent_pred.shape}")
    if config.target != "gold":
        return labels, check_targets(parent_pred, n, len(labels), "parent_pred")
    if targets is None:
        raise InvalidInputError("config.target='gold' needs `targets` (gold labels)")
    targets = np.asarray(targets)
    if targets.shape != (n,):
        raise InvalidInputError(f"Expected `targets` of shape ({n},), got {targets.shape}")
    return labels, encode_targets(targets, labels)


def _sample_rows(n: int, config: AlignmentConfig) -> np.ndarray:
    """The explained rows: a seeded sample without replacement, in row order."""
    rng = np.random.default_rng(config.random_state)
    return np.sort(rng.choice(n, size=min(config.n_examples, n), replace=False))


@contextlib.contextmanager
def _token_budget(models: tuple[Any, ...], max_tokens: int | None) -> Iterator[None]:
    """Set ``max_tokens_per_batch`` on the adapters that batch by tokens for the call, then restore it."""
    saved: list[tuple[Any, Any]] = []
    if max_tokens is not None:
        for m in {id(m): m for m in models}.values():
            if hasattr(m, "max_tokens_per_batch"):
                saved.append((m, m.max_tokens_per_batch))
                m.max_tokens_per_batch = int(max_tokens)
    try:
        yield
    finally:
        for m, v in saved:
            m.max_tokens_per_batch = v


def _settings(config: AlignmentConfig, kind: str, n: int, rows: np.ndarray, examples: list[dict[str, Any]],
              notes: dict[str, Any]) -> dict[str, Any]:
    """Everything that changes a number, and what each method does, in words."""
    return {
        **config.to_dict(), "kind": kind, "n_records": n, "n_examples_explained": int(len(rows)),
        "rows": rows.tolist(),
        "explained_class": ("the parent's predicted class" if config.target == "parent_prediction"
                            else "the gold label") + ", the same class for both models",
        "features": ("words: maximal \\w+ runs of every text field (split on white space and punctuation), "
                     "bag of words per field; pairs tagged '1:'/'2:'" if kind == "text" else "tabular columns"),
        "k_rule": "k used per example = min(top_k, number of features); see the table's `k` column",
        "k_used": [e["k"] for e in examples],
        "lime": ("lime 0.2 LimeTextExplainer defaults: bow removal of all occurrences, 100*cosine distance, "
                 "kernel sqrt(exp(-D^2/w^2)), feature_selection='auto' with num_features=k, weighted "
                 "Ridge(alpha=1); removed-word count uniform on 1..d; per-example RandomState seeds "
                 "SeedSequence([random_state,row,0]) (paired) and [...,1] (noise floor); rank correlation "
                 "from the Ridge(alpha=1) fit on all features"),
        "shap": ("shap Partition explainer, word-occurrence masker (mask token "
                 f"{config.mask_token!r}), shap's text partition tree per field, max_evals="
                 f"{config.shap_max_evals}, batch_size={config.shap_batch_size}; word attribution = sum over "
                 "its occurrences; explains the target class's probability"),
        "shap_noise_floor": ("deterministic: the Partition explainer has no randomness, the parent against itself "
                             "agrees exactly (floor 1); normalized SHAP alignment equals the raw alignment"),
        "rank_correlation": "Spearman over |attribution| of all features (NaN when constant)",
        **notes,
    }


# ---- one code path for both methods ------------------------------------------------------------------
@dataclass(frozen=True)
class _Attributions:
    """One example's attributions by one method: parent, candidate, the parent's noise floor (or None).

    ``*_full`` are dense attributions over all features for the rank correlation (LIME only).
    """

    parent: np.ndarray
    candidate: np.ndarray
    floor: np.ndarray | None = None
    parent_full: np.ndarray | None = None
    candidate_full: np.ndarray | None = None
    floor_full: np.ndarray | None = None


def _metrics(a: np.ndarray, b: np.ndarray, k: int, a_full: np.ndarray | None = None,
             b_full: np.ndarray | None = None) -> dict[str, float | None]:
    m = agreement(a, b, k, a_full=a_full, b_full=b_full)
    return {key: (None if math.isnan(v) else float(v)) for key, v in m.items()}


def _record(e: dict[str, Any], method: str, att: _Attributions, *, store_full: bool) -> None:
    """Write one method's attributions and agreement measures into the example ``e``."""
    k = max(e["k"], 1)
    e[f"{method}/parent"], e[f"{method}/candidate"] = att.parent.tolist(), att.candidate.tolist()
    if store_full and att.parent_full is not None and att.candidate_full is not None:
        e[f"{method}/parent_full"] = att.parent_full.tolist()
        e[f"{method}/candidate_full"] = att.candidate_full.tolist()
    e[f"{method}/metrics"] = _metrics(att.parent, att.candidate, k, att.parent_full, att.candidate_full)
    if att.floor is None:
        e[f"{method}/floor"], e[f"{method}/floor_metrics"] = [], {}
    else:
        e[f"{method}/floor"] = att.floor.tolist()
        e[f"{method}/floor_metrics"] = _metrics(att.parent, att.floor, k, att.parent_full, att.floor_full)


def _methods_in_order(config: AlignmentConfig) -> list[str]:
    """The requested methods, LIME first (the order of the keys of every example)."""
    return [m for m in _METHODS if m in config.methods]


@dataclass(frozen=True)
class _LimeDraw:
    """LIME's perturbations of one example: the paired masks and inputs, and the noise floor's (or None)."""

    masks: np.ndarray
    inputs: list[Any]
    floor_masks: np.ndarray | None
    floor_inputs: list[Any]


def _lime_draw(n_features: int, row: int, render: Callable[[np.ndarray, int], list[Any]],
               config: AlignmentConfig) -> _LimeDraw:
    """Seeded masks for the paired explanation and the noise floor; ``render(masks, stream)`` makes the inputs."""
    m = sample_masks(n_features, config.lime_num_samples, _seed(config.random_state, row, _STREAM_PAIRED))
    inputs = render(m, _STREAM_PAIRED)
    if not config.noise_floor:
        return _LimeDraw(m, inputs, None, [])
    m2 = sample_masks(n_features, config.lime_num_samples, _seed(config.random_state, row, _STREAM_FLOOR))
    return _LimeDraw(m, inputs, m2, render(m2, _STREAM_FLOOR))


def _lime_fit(draw: _LimeDraw, target: int, ps: _Scorer, cs: _Scorer, config: AlignmentConfig) -> _Attributions:
    """LIME's local fits: parent and candidate on the same masks, the parent again on the floor's."""
    def fit(masks: np.ndarray, y: np.ndarray) -> LimeExplanation:
        return explain_from_masks(masks, y, num_features=config.top_k, kernel_width=config.lime_kernel_width)

    ea = fit(draw.masks, ps.score(draw.inputs, target))
    eb = fit(draw.masks, cs.score(draw.inputs, target))
    if draw.floor_masks is None:
        return _Attributions(ea.weights, eb.weights, None, ea.full, eb.full)
    ef = fit(draw.floor_masks, ps.score(draw.floor_inputs, target))
    return _Attributions(ea.weights, eb.weights, ef.weights, ea.full, eb.full, ef.full)


# ---- text ----------------------------------------------------------------------------------------------
def _text_alignment(records: pd.DataFrame, rows: np.ndarray, target_idx: np.ndarray, labels: tuple[str, ...],
                    ps: _Scorer, cs: _Scorer, config: AlignmentConfig) -> list[dict[str, Any]]:
    """Text: each method over all examples at once (LIME's inputs pre-scored, SHAP's explainers merged)."""
    values = records.to_numpy(dtype=object)
    feats = [text_features(["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
                            for v in values[r]]) for r in rows]
    examples: list[dict[str, Any]] = []
    for r, f in zip(rows, feats):
        examples.append({"row": int(r), "text": " ||| ".join(f.fields), "fields": list(f.fields),
                         "features": list(f.names), "k": int(min(config.top_k, f.n_features)),
                         "target": int(target_idx[r]), "target_label": labels[target_idx[r]]})
    explainers = {"lime": _lime_text, "shap": _shap_text}
    for method in _methods_in_order(config):
        for e, att in zip(examples, explainers[method](feats, examples, ps, cs, config)):
            _record(e, method, att, store_full=True)
    return examples


def _lime_text(feats: list[TextFeatures], examples: list[dict[str, Any]], ps: _Scorer, cs: _Scorer,
               config: AlignmentConfig) -> list[_Attributions]:
    """LIME on every text example: all perturbations scored in chunks first, then the local fits."""
    draws: list[_LimeDraw | None] = []
    for e, f in zip(examples, feats):
        if f.n_features == 0:
            draws.append(None)
            continue
        draws.append(_lime_draw(f.n_features, e["row"], _text_renderer(f), config))
    paired = [x for d in draws if d is not None for x in d.inputs]
    floor = [x for d in draws if d is not None for x in d.floor_inputs]
    ps.prefetch(paired + floor, chunk_size=config.chunk_size, progress=config.progress, desc="LIME parent")
    cs.prefetch(paired, chunk_size=config.chunk_size, progress=config.progress, desc="LIME candidate")
    return [_Attributions(np.zeros(0), np.zeros(0)) if d is None else _lime_fit(d, e["target"], ps, cs, config)
            for d, e in zip(draws, examples)]


def _text_renderer(features: TextFeatures) -> Callable[[np.ndarray, int], list[Any]]:
    """LIME's ``render(masks, stream)`` for one text: each mask's kept words (the stream is not used)."""
    def render(masks: np.ndarray, _stream: int) -> list[Any]:
        return [features.render(z) for z in masks]

    return render


def _shap_text(feats: list[TextFeatures], examples: list[dict[str, Any]], ps: _Scorer, cs: _Scorer,
               config: AlignmentConfig) -> list[_Attributions]:
    """SHAP on every text example, per model; the deterministic explainer is its own noise floor."""
    targets = [e["target"] for e in examples]
    kw = {"max_evals": config.shap_max_evals, "batch_size": config.shap_batch_size, "mask_token": config.mask_token}
    pa = _shap_all(feats, targets, ps, kw, config.progress, "SHAP parent")
    pb = _shap_all(feats, targets, cs, kw, config.progress, "SHAP candidate")
    return [_Attributions(a, b, a if config.noise_floor else None) for a, b in zip(pa, pb)]


# ---- tabular -------------------------------------------------------------------------------------------
def _tabular_alignment(records: pd.DataFrame, rows: np.ndarray, target_idx: np.ndarray, labels: tuple[str, ...],
                       ps: _Scorer, cs: _Scorer, config: AlignmentConfig,
                       background: pd.DataFrame | None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Tabular: example by example, each method in turn."""
    from tqdm.auto import tqdm

    X, bg = _tabular_data(records, background, config)
    names = [str(c) for c in records.columns]
    k = min(config.top_k, len(names))
    explainers = {"lime": _lime_tabular, "shap": _shap_tabular}
    examples: list[dict[str, Any]] = []
    for r in tqdm(rows, desc="alignment (tabular)", unit="example", disable=not config.progress):
        x, t = X[r], int(target_idx[r])
        e: dict[str, Any] = {"row": int(r), "text": ", ".join(f"{n}={v:g}" for n, v in zip(names, x)),
                             "features": names, "k": k, "target": t, "target_label": labels[t]}
        for method in _methods_in_order(config):
            _record(e, method, explainers[method](x, int(r), t, bg, ps, cs, config), store_full=False)
        examples.append(e)
    note = {"background_rows": int(len(bg)),
            "tabular_lime": ("LIME with binary interpretable components: a dropped column takes the value of a "
                             "background row drawn per perturbation (seeded); same kernel and ridge as text. "
                             "Not lime's LimeTabularExplainer (which samples from training statistics)."),
            "tabular_shap": "shap Partition explainer over shap.maskers.Partition(background)"}
    return examples, note


def _tabular_data(records: pd.DataFrame, background: pd.DataFrame | None,
                  config: AlignmentConfig) -> tuple[np.ndarray, np.ndarray]:
    """The records as floats, and the seeded background sample."""
    try:
        X = records.to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"Tabular alignment needs numeric columns: {exc}") from exc
    bg_src = X if background is None else np.asarray(background, dtype=np.float64)
    if bg_src.ndim != 2 or bg_src.shape[1] != X.shape[1]:
        raise InvalidInputError(f"Expected `background` with {X.shape[1]} columns, got shape {bg_src.shape}")
    brng = np.random.default_rng(_seed(config.random_state, 0, _STREAM_BACKGROUND))
    bg = bg_src[np.sort(brng.choice(len(bg_src), size=min(config.background_size, len(bg_src)), replace=False))]
    return X, bg


def _lime_tabular(x: np.ndarray, row: int, target: int, bg: np.ndarray, ps: _Scorer, cs: _Scorer,
                  config: AlignmentConfig) -> _Attributions:
    """LIME on one row: a dropped column takes the value of a background row drawn per perturbation."""
    def render(masks: np.ndarray, stream: int) -> list[bytes]:
        pick = np.random.RandomState(_seed(config.random_state, row, stream + 10)).randint(0, len(bg), size=len(masks))
        z = np.where(masks, x[None, :], bg[pick])
        z[0] = x
        return [r.tobytes() for r in z]

    return _lime_fit(_lime_draw(len(x), row, render, config), target, ps, cs, config)


def _shap_tabular(x: np.ndarray, row: int, target: int, bg: np.ndarray, ps: _Scorer, cs: _Scorer,
                  config: AlignmentConfig) -> _Attributions:
    """SHAP on one row with each model (Partition explainer over the background)."""
    from ._shap import shap_tabular

    def scorer(s: _Scorer) -> Callable[[np.ndarray], np.ndarray]:
        return lambda z: s.score([r.tobytes() for r in np.ascontiguousarray(z, dtype=np.float64)], target)

    kw = {"max_evals": config.shap_max_evals, "batch_size": config.shap_batch_size}
    a = shap_tabular(x, bg, scorer(ps), **kw)
    b = shap_tabular(x, bg, scorer(cs), **kw)
    return _Attributions(a, b, a if config.noise_floor else None)
