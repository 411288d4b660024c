r"""Per-slice trust-equivalence: every fidelity and calibration metric on each slice of the data.

A candidate can be loyal on average and disloyal exactly where it hurts: on one class, on the
inputs the parent was unsure about, on long texts. :func:`measure_slices` cuts the evaluated rows
into slices and runs the same pair summary (:func:`~mlflow_trusteq.metrics.summarize_pair`, same
options, same seed) on the rows of each slice, so that a slice's numbers are exactly what
``compare()`` gives on that subset.

Slice specs
-----------
A spec names one way of cutting the data; ``"a*b"`` crosses two specs (every pair of values).

- ``"parent_class"``: the parent's predicted class (built in, needs no column);
- ``"parent_confidence"``: equal-mass bins of the parent's confidence ``max_j P[i][j]``
  (quartiles; ``"parent_confidence:10"`` for deciles);
- ``"input_length"``: equal-mass bins of the input's word count (text only; words are the runs
  of non-white-space characters, summed over both texts of a pair; ``"input_length:3"``);
- ``"builtin"``: the three above (``input_length`` only for text);
- any other name: a column of the data. Each value is a slice (a missing value is the slice
  ``<missing>``). A numeric column with more than :data:`MAX_SLICE_VALUES` distinct values is cut
  into equal-mass bins (quartiles, or ``"column:N"``); any other column with that many values is
  an error naming it.

Equal-mass bins take their edges at the quantiles of the values (``numpy.quantile``, linear) and
drop repeated edges, so that a row's slice depends only on its value (ties never straddle two
bins); a bin is ``(lo, hi]``, the first ``[lo, hi]``. Bin edges come from the parent's values, so
every candidate of one parent is cut the same way.

The family of slices and its correction
---------------------------------------
Every slice gets its intervals twice: at the evaluation's ``confidence`` (the numbers a reader
compares with the aggregate), and at the Bonferroni level ``1 - (1 - confidence) / m`` where ``m``
is the number of slices measured (:attr:`SliceResult.family_confidence`). A policy that gates on
slices judges the second, so that the chance of failing a truly loyal candidate on *some* slice
stays at most ``1 - confidence``. ``m`` counts every measured slice, whichever the policy judges:
conservative, and independent of the policy.

Slice columns are read from the data but are not features: when ``feature_columns`` is not given,
the slice columns are left out of what the models read (like the gold labels). Name a column in
``feature_columns`` too to slice on a feature.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ._errors import InvalidInputError
from ._types import Estimate, to_jsonable

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

__all__ = ["SliceStats", "SliceResult", "measure_slices", "check_slices", "normalize_slice_specs", "slice_columns",
           "BUILTIN_SLICES", "MAX_SLICE_VALUES", "DEFAULT_BINS", "CORRECTION"]

#: the built-in specs, in the order ``"builtin"`` expands to
BUILTIN_SLICES = ("parent_class", "parent_confidence", "input_length")
#: a column with more distinct values is binned (numeric) or refused (anything else)
MAX_SLICE_VALUES = 20
#: bins of a binned spec unless ``"spec:N"`` says otherwise (quartiles)
DEFAULT_BINS = 4
#: the multiple-comparison correction across slices
CORRECTION = "bonferroni"
#: the metrics a slice is ranked by, and the headline metrics (``slices/worst/<m>``)
HEADLINE_METRICS = ("label_loyalty", "probability_loyalty")
_MISSING = "<missing>"
_PART = re.compile(r"^(?P<name>[^:*]+?)(?::(?P<bins>\d+))?$")


# ----------------------------------------------------------------------------- specs
@dataclass(frozen=True)
class _Part:
    name: str
    n_bins: int | None = None

    @property
    def builtin(self) -> bool:
        return self.name in BUILTIN_SLICES


def _parse_part(text: str, spec: str) -> _Part:
    m = _PART.match(text.strip())
    if not m:
        raise InvalidInputError(f"slice spec {spec!r}: {text!r} is not `name` or `name:N` (N bins)")
    bins = int(m["bins"]) if m["bins"] is not None else None
    if bins is not None and bins < 1:
        raise InvalidInputError(f"slice spec {spec!r}: the number of bins must be >= 1, got {bins}")
    if m["name"] == "parent_class" and bins is not None:
        raise InvalidInputError(f"slice spec {spec!r}: parent_class has one slice per class, it takes no bins")
    return _Part(m["name"].strip(), bins)


def _parse_spec(spec: str) -> tuple[_Part, ...]:
    parts = spec.split("*")
    if len(parts) > 2:
        raise InvalidInputError(f"slice spec {spec!r}: a cross has two parts (`a*b`), got {len(parts)}")
    out = tuple(_parse_part(p, spec) for p in parts)
    if any(p.name == "builtin" for p in out) and len(out) > 1:
        raise InvalidInputError(f"slice spec {spec!r}: 'builtin' stands for three specs and cannot be crossed")
    return out


def normalize_slice_specs(value: Any) -> tuple[str, ...] | None:
    """The ``slices`` option as a tuple of validated spec strings (``None``/``False``/empty: no slices).

    ``True`` means ``("builtin",)``; a string is one spec, or several separated by commas.
    """
    if value is None or value is False:
        return None
    if value is True:
        value = ("builtin",)
    if isinstance(value, str):
        value = [v for v in value.split(",")]
    if not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
        raise InvalidInputError(f"`slices` must be a spec string or a list of them (e.g. ['builtin', 'region']), "
                                f"got {value!r}")
    specs = tuple(dict.fromkeys(v.strip() for v in value if v.strip()))
    for spec in specs:
        _parse_spec(spec)
    return specs or None


def slice_columns(specs: Sequence[str] | None) -> tuple[str, ...]:
    """The data columns the specs read (the built-ins read none)."""
    cols: list[str] = []
    for spec in specs or ():
        cols += [p.name for p in _parse_spec(spec) if not p.builtin and p.name != "builtin"]
    return tuple(dict.fromkeys(cols))


def check_slices(frame: pd.DataFrame, kind: str, specs: Sequence[str]) -> None:
    """Raise :class:`InvalidInputError` for a spec the data cannot give (before anything is scored).

    A missing column, ``input_length`` on tabular rows, too many values in a column that cannot be
    binned, bins on a non-numeric column.
    """
    missing = sorted(set(slice_columns(specs)) - set(frame.columns))
    if missing:
        raise InvalidInputError(f"slice column(s) {missing} not in the data; columns: {list(frame.columns)} "
                                f"(built-in slices: {list(BUILTIN_SLICES)}, 'builtin')")
    empty_p = np.full((len(frame), 1), 1.0)
    ctx = _Context(frame.reset_index(drop=True), frame.iloc[:, :0], kind, empty_p, ("",))
    for spec in _expand(specs, kind):
        for part in _parse_spec(spec):
            if part.name == "input_length" and kind == "tabular":
                raise InvalidInputError("slice spec 'input_length' needs text inputs (it bins the word count), "
                                        "and this data is tabular")
            if not part.builtin:
                _column_part(part, ctx)


def _expand(specs: Sequence[str], kind: str) -> tuple[str, ...]:
    out: list[str] = []
    for spec in specs:
        if spec == "builtin":
            out += [s for s in BUILTIN_SLICES if s != "input_length" or kind != "tabular"]
        else:
            out.append(spec)
    return tuple(dict.fromkeys(out))


# ----------------------------------------------------------------------------- assigning rows to slices
@dataclass(frozen=True)
class _Context:
    """What the specs cut: the data frame (positional), the kind, the parent's probabilities, the labels."""

    frame: pd.DataFrame
    records: pd.DataFrame
    kind: str
    P: np.ndarray
    labels: tuple[str, ...]


def _bins(x: np.ndarray, n_bins: int, *, integer: bool) -> tuple[np.ndarray, list[str]]:
    """Equal-mass bins of ``x`` (quantile edges, repeated edges dropped): (bin index per row, bin names)."""
    edges = np.unique(np.quantile(x, np.linspace(0.0, 1.0, n_bins + 1)))
    if len(edges) == 1:
        edges = np.array([edges[0], edges[0]])
    index = np.searchsorted(edges[1:-1], x, side="left")
    names = []
    for b in range(len(edges) - 1):
        lo, hi = edges[b], edges[b + 1]
        if integer:
            first = math.ceil(lo) if b == 0 else math.floor(lo) + 1
            names.append(f"{first}" if first >= int(hi) else f"{first}-{int(hi)}")
        else:
            names.append(f"{'[' if b == 0 else '('}{lo:.3g}, {hi:.3g}]")
    return index, names


def _word_counts(records: pd.DataFrame) -> np.ndarray:
    counts = np.zeros(len(records), dtype=np.int64)
    for c in records.columns:
        counts += np.asarray([len(str(t).split()) for t in records[c]], dtype=np.int64)
    return counts


def _categorical(values: Any, column: str) -> tuple[np.ndarray, list[str]]:
    import pandas as pd

    s = pd.Series(values).reset_index(drop=True)
    missing = s.isna().to_numpy()
    present = s[~missing]
    uniq = sorted(present.unique().tolist(), key=lambda v: (not isinstance(v, (int, float)), v if isinstance(
        v, (int, float)) else str(v)))
    if len(uniq) > MAX_SLICE_VALUES:
        raise InvalidInputError(
            f"slice column {column!r} has {len(uniq)} distinct values (more than {MAX_SLICE_VALUES}): slice on a "
            f"coarser column, or, for a numeric column, bin it with '{column}:N'")
    names = [str(v) for v in uniq] + ([_MISSING] if missing.any() else [])
    lookup = {v: i for i, v in enumerate(uniq)}
    index = np.asarray([len(uniq) if m else lookup[v] for v, m in zip(s.tolist(), missing)], dtype=np.int64)
    return index, names


def _column_part(part: _Part, ctx: _Context) -> tuple[np.ndarray, list[str]]:
    import pandas as pd

    if part.name not in ctx.frame.columns:
        raise InvalidInputError(f"slice column {part.name!r} is not in the data; columns: {list(ctx.frame.columns)} "
                                f"(built-in slices: {list(BUILTIN_SLICES)}, 'builtin')")
    col = ctx.frame[part.name].reset_index(drop=True)
    numeric = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
    if numeric and (part.n_bins is not None or col.nunique(dropna=True) > MAX_SLICE_VALUES):
        if col.isna().any():
            raise InvalidInputError(f"slice column {part.name!r} has missing values and is binned; fill them first")
        x = col.to_numpy(dtype=np.float64)
        return _bins(x, part.n_bins or DEFAULT_BINS, integer=bool(np.all(x == np.round(x))))
    if part.n_bins is not None:
        raise InvalidInputError(f"slice spec '{part.name}:{part.n_bins}': only a numeric column can be binned")
    return _categorical(col, part.name)


def _part_slices(part: _Part, ctx: _Context) -> tuple[np.ndarray, list[str]]:
    """Each row's slice index under one spec part, and the slice names."""
    if part.name == "parent_class":
        pred = ctx.P.argmax(axis=1)
        present = sorted(set(pred.tolist()))
        lookup = {c: i for i, c in enumerate(present)}
        return np.asarray([lookup[c] for c in pred.tolist()], dtype=np.int64), [ctx.labels[c] for c in present]
    if part.name == "parent_confidence":
        return _bins(ctx.P.max(axis=1), part.n_bins or DEFAULT_BINS, integer=False)
    if part.name == "input_length":
        if ctx.kind == "tabular":
            raise InvalidInputError("slice spec 'input_length' needs text inputs (it bins the word count), "
                                    "and this data is tabular")
        return _bins(_word_counts(ctx.records).astype(np.float64), part.n_bins or DEFAULT_BINS, integer=True)
    return _column_part(part, ctx)


def _spec_slices(spec: str, ctx: _Context) -> list[tuple[str, np.ndarray]]:
    """``(slice name, row indices)`` of every non-empty slice of one spec, in value order."""
    parts = _parse_spec(spec)
    cut = [(p, *_part_slices(p, ctx)) for p in parts]
    out: list[tuple[str, np.ndarray]] = []
    if len(cut) == 1:
        (p, index, names), = cut
        for i, name in enumerate(names):
            out.append((f"{p.name}={name}", np.flatnonzero(index == i)))
    else:
        (p1, i1, n1), (p2, i2, n2) = cut
        for a, na in enumerate(n1):
            for b, nb in enumerate(n2):
                out.append((f"{p1.name}={na} & {p2.name}={nb}", np.flatnonzero((i1 == a) & (i2 == b))))
    return [(name, rows) for name, rows in out if len(rows)]


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True)
class SliceStats:
    """One slice: its spec, name, size, and the pair summary's estimates on its rows.

    ``estimates`` are at the evaluation's confidence (what ``compare()`` gives on these rows),
    ``family`` the same metrics at the Bonferroni level of the result (what a policy judges).
    """

    spec: str
    name: str
    n: int
    estimates: dict[str, Estimate]
    family: dict[str, Estimate]
    n_flips: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"spec": self.spec, "name": self.name, "n": self.n, "n_flips": self.n_flips,
                "estimates": {k: e.to_dict() for k, e in sorted(self.estimates.items())},
                "family": {k: e.to_dict() for k, e in sorted(self.family.items())}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SliceStats:
        return cls(spec=str(d["spec"]), name=str(d["name"]), n=int(d["n"]), n_flips=int(d.get("n_flips", 0)),
                   estimates={k: Estimate.from_dict(e) for k, e in d["estimates"].items()},
                   family={k: Estimate.from_dict(e) for k, e in d.get("family", {}).items()})


def _upper_or_value(e: Estimate | None) -> float:
    if e is None or not math.isfinite(e.value):
        return math.inf
    return float(e.upper) if e.upper is not None else float(e.value)


@dataclass(frozen=True)
class SliceResult:
    """Every slice of one evaluation, with the family's correction, the worst slices' examples and settings."""

    slices: tuple[SliceStats, ...]
    specs: tuple[str, ...]
    n_examples: int
    confidence: float
    family_confidence: float
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def m(self) -> int:
        """The number of slices in the family (what the Bonferroni correction divides by)."""
        return len(self.slices)

    @property
    def correction(self) -> str:
        """How the family's intervals are corrected, in words."""
        return (f"Bonferroni over {self.m} slices (each interval at {self.family_confidence * 100:.4g} % instead "
                f"of {self.confidence * 100:.4g} %)")

    def of_spec(self, spec: str) -> list[SliceStats]:
        """The slices of one spec, in value order."""
        return [s for s in self.slices if s.spec == spec]

    def ranked(self, by: str = "label_loyalty") -> list[SliceStats]:
        """Slices by loss: lowest upper interval bound of ``by`` first (a slice that is *surely* low
        leads, not a tiny one whose point estimate happens to be low); ``by="flips"``: most flipped rows first."""
        if by == "flips":
            return sorted(self.slices, key=lambda s: (-s.n_flips, -s.n, s.name))
        return sorted(self.slices, key=lambda s: (_upper_or_value(s.estimates.get(by)),
                                                  s.estimates[by].value if by in s.estimates else math.inf, s.name))

    def worst(self, metric: str = "label_loyalty") -> SliceStats | None:
        """The first slice of :meth:`ranked` (``None`` without slices)."""
        ranked = self.ranked(metric)
        return ranked[0] if ranked and metric in ranked[0].estimates else None

    def estimates(self) -> dict[str, Estimate]:
        """Headline metrics: ``worst/<m>``, the estimate of the worst slice by ``m``."""
        out: dict[str, Estimate] = {}
        for metric in HEADLINE_METRICS:
            w = self.worst(metric)
            if w is not None:
                out[f"worst/{metric}"] = w.estimates[metric]
        return out

    def table(self) -> pd.DataFrame:
        """One row per slice: spec, slice, n, share, flips, and each metric with its interval bounds."""
        import pandas as pd

        rows = []
        for s in self.slices:
            row: dict[str, Any] = {"spec": s.spec, "slice": s.name, "n": s.n,
                                   "share": s.n / self.n_examples if self.n_examples else float("nan"),
                                   "n_flips": s.n_flips}
            for key, e in s.estimates.items():
                row[key], row[f"{key}/ci_lower"], row[f"{key}/ci_upper"] = e.value, e.lower, e.upper
            rows.append(row)
        return pd.DataFrame(rows)

    def html(self) -> str:
        """The slices section as an HTML fragment (:mod:`mlflow_trusteq.report._slices`)."""
        from .report._slices import slices_fragment

        return slices_fragment(self)

    def to_dict(self) -> dict[str, Any]:
        return {"specs": list(self.specs), "n_examples": self.n_examples, "confidence": self.confidence,
                "family_confidence": self.family_confidence, "correction": CORRECTION,
                "slices": [s.to_dict() for s in self.slices], "examples": to_jsonable(self.examples),
                "settings": to_jsonable(self.settings)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SliceResult:
        return cls(slices=tuple(SliceStats.from_dict(s) for s in d.get("slices", [])), specs=tuple(d["specs"]),
                   n_examples=int(d["n_examples"]), confidence=float(d["confidence"]),
                   family_confidence=float(d["family_confidence"]),
                   examples={k: [dict(r) for r in v] for k, v in d.get("examples", {}).items()},
                   settings=dict(d.get("settings", {})))


# ----------------------------------------------------------------------------- measuring
def _slice_summary(P: np.ndarray, Q: np.ndarray, y: np.ndarray | None, rows: np.ndarray,
                   options: Mapping[str, Any], confidence: float) -> dict[str, Estimate]:
    from .metrics import summarize_pair

    sub_y = y[rows] if y is not None else None
    return dict(summarize_pair(P[rows], Q[rows], sub_y, **{**options, "confidence": confidence}).estimates)


def _examples(ctx: _Context, Q: np.ndarray, y: np.ndarray | None, rows: np.ndarray, n_rows: int,
              text_limit: int = 300) -> list[dict[str, Any]]:
    """A few rows of one slice where the models disagree most: label flips first, then the largest shift."""
    P = ctx.P
    pp, pq = P[rows].argmax(axis=1), Q[rows].argmax(axis=1)
    shift = np.abs(P[rows, pp] - Q[rows, pp])
    order = np.lexsort((rows, -shift, pp == pq))[:n_rows]
    out = []
    for j in order:
        i = int(rows[j])
        rec = {str(c): (v[:text_limit] if isinstance(v, str) else to_jsonable(v))
               for c, v in ctx.records.iloc[i].items()}
        row: dict[str, Any] = {"row": i, **rec}
        if y is not None:
            row["gold"] = ctx.labels[int(y[i])]
        row.update({"parent_label": ctx.labels[int(pp[j])], "parent_confidence": float(P[i, pp[j]]),
                    "candidate_label": ctx.labels[int(pq[j])], "candidate_confidence": float(Q[i, pq[j]]),
                    "candidate_prob_of_parent_label": float(Q[i, pp[j]]), "flipped": bool(pp[j] != pq[j])})
        out.append(row)
    return out


def _settings(specs: tuple[str, ...], ctx: _Context, m: int, confidence: float, family: float) -> dict[str, Any]:
    from .compare import data_digest

    cols = [c for c in slice_columns(specs) if c in ctx.frame.columns]
    return {"specs": list(specs), "max_slice_values": MAX_SLICE_VALUES, "default_bins": DEFAULT_BINS,
            "bins": "equal-mass: numpy.quantile edges (linear), repeated edges dropped; (lo, hi], the first [lo, hi]",
            "input_length": "words = runs of non-white-space characters, summed over the text columns",
            "correction": f"{CORRECTION}: each slice's interval at 1 - (1 - {confidence}) / {m} = {family:.6g}",
            "ranking": "by the upper bound of the slice's interval (lowest first); flips: most flipped rows first",
            "slice_columns_digest": data_digest(ctx.frame[cols].reset_index(drop=True)) if cols else None}


def measure_slices(frame: pd.DataFrame, records: pd.DataFrame, kind: str, P: np.ndarray, Q: np.ndarray,
                   y: np.ndarray | None, labels: Sequence[str], specs: Sequence[str], *,
                   options: Mapping[str, Any], n_worst: int = 3, n_example_rows: int = 5) -> SliceResult:
    """Cut the rows by each spec and summarize every slice (see the module docstring).

    Parameters
    ----------
    frame : DataFrame
        The whole data (slice columns are read from it), rows in the order of ``P``.
    records : DataFrame
        The feature columns the models read (for ``input_length`` and the example rows).
    kind : str
        ``"text"``, ``"text_pair"`` or ``"tabular"``.
    P, Q : ndarray of shape (n, k)
        Parent's and candidate's probabilities (candidate's columns in the parent's label order).
    y : ndarray of shape (n,), optional
        Gold label indices.
    labels : sequence of str
        Label names in column order.
    specs : sequence of str
        Slice specs (``"builtin"`` expands to the built-ins).
    options : mapping
        :func:`~mlflow_trusteq.metrics.summarize_pair`'s keyword options (``base``, bins,
        ``n_resamples``, ``confidence``, ``random_state``), as ``compare()`` passes them.
    n_worst, n_example_rows : int
        Example disagreements are kept for the ``n_worst`` slices by loyalty loss, ``n_example_rows`` each.
    """
    ctx = _Context(frame.reset_index(drop=True), records.reset_index(drop=True), kind, np.asarray(P), tuple(labels))
    expanded = _expand(specs, kind)
    cut = [(spec, name, rows) for spec in expanded for name, rows in _spec_slices(spec, ctx)]
    confidence = float(options.get("confidence", 0.95))
    m = max(1, len(cut))
    family = 1.0 - (1.0 - confidence) / m
    stats = []
    for spec, name, rows in cut:
        nominal = _slice_summary(ctx.P, Q, y, rows, options, confidence)
        fam = nominal if m == 1 else _slice_summary(ctx.P, Q, y, rows, options, family)
        flips = int(np.sum(ctx.P[rows].argmax(axis=1) != Q[rows].argmax(axis=1)))
        stats.append(SliceStats(spec, name, int(len(rows)), nominal, fam, flips))
    logger.info("slices: %d slices of %d spec(s), %s", len(stats), len(expanded), CORRECTION)
    result = SliceResult(tuple(stats), expanded, int(len(ctx.P)), confidence, family,
                         settings=_settings(expanded, ctx, m, confidence, family))
    rows_of = {name: rows for _, name, rows in cut}
    worst = [s for s in result.ranked() if s.n_flips][:n_worst] or result.ranked()[:n_worst]
    examples = {s.name: _examples(ctx, Q, y, rows_of[s.name], n_example_rows) for s in worst}
    return SliceResult(result.slices, expanded, result.n_examples, confidence, family, examples, result.settings)
