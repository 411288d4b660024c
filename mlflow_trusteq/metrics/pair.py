r"""Every pair-level metric of a parent and a candidate, with one paired bootstrap: :func:`summarize_pair`.

This is what ``compare()`` calls on the two probability matrices. It validates once, computes
every per-example quantity once, reduces them to sums, and gets the intervals of the proportions
from their counts (Wilson; Bonett-Price for ``diff/accuracy``) and every other interval from the
**same** bootstrap resamples (same examples for parent and candidate and for every metric, bias
corrected), so that the interval of a difference (``diff/<m>``) reflects the models, not the
sampling. :func:`interval_kind` names the family of each key; ``benchmarks/bench_coverage.py``
measures their coverage.

**Intervals.** The proportions (:data:`WILSON_KEYS`) get Wilson score intervals from their counts
(label loyalty, :data:`CLOPPER_PEARSON_KEYS`, the exact Clopper-Pearson interval, whose coverage
does not dip near 1), ``diff/accuracy`` the Bonett-Price paired interval from the two flip counts,
every mean of one per-example quantity (:data:`STUDENTIZED_KEYS`) the studentized interval (the
probability loyalty, :data:`BOUNDED_MEAN_KEYS`, within the Wilson interval of a mean in [0, 1]; the
Brier difference, :data:`SPARSE_DIFFERENCE_KEYS`, the distribution-free sparse interval when 1 to
99 examples differ) and the difference of the debiased ECEs the bias-corrected interval of the
paired bootstrap below (the debiased ECE of one model: estimate ± z times the bootstrap standard
deviation); the binned ECEs and MCEs keep the percentile interval of the studies
(:mod:`mlflow_trusteq.metrics.intervals`).
``n_resamples=0`` gives no interval at all.

**One paired bootstrap.** Resample ``r`` is a vector of counts ``w_r`` over resampling units;
every metric is a function of weighted sums :math:`\sum_i w_{ri} x_i` of per-example
quantities (agreement, :math:`1-\sqrt{JS}`, flips, correctness, Brier, NLL, and per bin:
count, confidence, correctness, squared gap), so all metrics of both models use the same ``w_r`` and a
difference is computed resample by resample.

**Examples scheme** (``n <= 20,000`` with ``"auto"``): units are the examples; counts are
drawn in chunks so that at most a few million cells are alive at once.

**Groups scheme** (``settings["bootstrap"] == "groups(G)"``): examples are assigned at random
to ``G`` groups (each example to a uniformly random group, seeded), each group is reduced
to its sums, and ``G`` groups are drawn with replacement. Cost and memory no longer
depend on ``n`` (``O(R G)`` instead of ``O(R n)``), and since the assignment is random the
intervals match the example bootstrap up to ``O(1/G)``; tests check the agreement at
``n = 50,000``.

**Bins are fixed from the full sample** in both schemes: the equal-width bins trivially, the
equal-mass bins (rank-based) once on all ``n`` confidences and not re-derived per resample.
A ratio metric uses the resample's own total count; an MCE bin qualifies in a resample when
its resampled count reaches ``min_bin_count``; resamples where no bin qualifies are dropped
from the MCE interval.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from scipy.special import ndtri

from .._errors import InvalidInputError
from .._types import Estimate
from ._validation import check_base, check_confidence, check_int, check_pair, check_targets
from .bootstrap import assign_groups, bootstrap_counts, percentile_interval
from .intervals import (INTERVAL_KINDS, MIN_INFORMATIVE_CALIBRATION, SPARSE_TAU, _bias_corrected, _clopper_pearson,
                        _paired, _sparse_mean,
                        _studentized, _studentized_bounded, _use_sparse, _wilson)
from .calibration import (
    ReliabilityBins,
    _brier,
    _debiased_sq_from_sums,
    _ece_from_sums,
    _equal_mass_bins,
    _equal_width_bins,
    _mce_from_sums,
    _nll,
)
from .loyalty import _flip_matrix, _js, _per_class_from_flips

__all__ = ["PairSummary", "summarize_pair", "MODEL_METRICS", "EXAMPLE_BOOTSTRAP_MAX_N", "WILSON_KEYS",
           "CLOPPER_PEARSON_KEYS", "PAIRED_DIFFERENCE_KEYS", "STUDENTIZED_KEYS", "BOUNDED_MEAN_KEYS",
           "SPARSE_DIFFERENCE_KEYS", "interval_kind"]

logger = logging.getLogger(__name__)

#: per-model metrics reported as ``parent/<m>``, ``candidate/<m>`` and ``diff/<m>`` when labels are given
MODEL_METRICS = ("accuracy", "ece_equal_width", "ece_equal_mass", "ece_sq_debiased", "mce_equal_width",
                 "mce_equal_mass", "brier_loss", "log_loss")
#: keys whose interval is the Wilson score interval of a proportion (see :mod:`.intervals`)
WILSON_KEYS = ("label_loyalty", "negative_flip_rate", "positive_flip_rate", "parent/accuracy",
               "candidate/accuracy")
#: the proportions whose interval is the exact Clopper-Pearson one: label loyalty, near 1 and gated on its lower bound
CLOPPER_PEARSON_KEYS = ("label_loyalty",)
#: keys whose interval is the paired difference of two proportions (Bonett-Price)
PAIRED_DIFFERENCE_KEYS = ("diff/accuracy",)
#: keys that are means of one per-example quantity: studentized (bootstrap-t) intervals
STUDENTIZED_KEYS = ("probability_loyalty", "parent/brier_loss", "candidate/brier_loss", "diff/brier_loss",
                    "parent/log_loss", "candidate/log_loss", "diff/log_loss")
#: the studentized keys whose per-example quantity lies in [0, 1]: bootstrap-t within the Wilson interval
BOUNDED_MEAN_KEYS = ("probability_loyalty",)
#: the studentized keys whose per-example difference has a known range, with the range's half-width: the sparse
#: interval when few examples differ (:func:`~mlflow_trusteq.metrics.intervals.sparse_mean_interval`)
SPARSE_DIFFERENCE_KEYS = {"diff/brier_loss": 2.0}
#: with ``bootstrap="auto"``, up to this many examples are resampled directly; above, groups are
EXAMPLE_BOOTSTRAP_MAX_N = 20_000


@dataclass(frozen=True)
class PairSummary:
    """Fidelity and (with labels) calibration of a candidate against its parent.

    Attributes
    ----------
    estimates : dict[str, Estimate]
        ``label_loyalty``, ``probability_loyalty``; with labels also ``negative_flip_rate``,
        ``positive_flip_rate`` and ``parent/<m>``, ``candidate/<m>``, ``diff/<m>`` (candidate
        minus parent) for ``m`` in :data:`MODEL_METRICS`. Intervals: see :func:`interval_kind`.
    per_class_loyalty : list of float
        Label loyalty among the examples the parent assigns to each class (column order); NaN
        where the parent never predicts the class.
    flip_matrix : list of list of int
        ``(k, k)`` counts, row = parent's label, column = candidate's label.
    reliability : dict
        ``{"parent": {"equal_width": ReliabilityBins, "equal_mass": ...}, "candidate": {...}}``;
        empty without labels.
    settings : dict
        Everything that changes a number: log base, bins, ``min_bin_count``, resamples,
        confidence, seed, bootstrap scheme, tie and edge rules.
    has_targets : bool
        Whether gold labels were given (no calibration or accuracy without them).
    n_examples, n_classes : int
    """

    estimates: dict[str, Estimate]
    per_class_loyalty: list[float]
    flip_matrix: list[list[int]]
    reliability: dict[str, dict[str, ReliabilityBins]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    has_targets: bool = False
    n_examples: int = 0
    n_classes: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (NaN as ``None``)."""
        return {
            "estimates": {k: e.to_dict() for k, e in self.estimates.items()},
            "per_class_loyalty": [None if math.isnan(v) else float(v) for v in self.per_class_loyalty],
            "flip_matrix": [[int(c) for c in row] for row in self.flip_matrix],
            "reliability": {m: {s: b.to_dict() for s, b in d.items()} for m, d in self.reliability.items()},
            "settings": dict(self.settings),
            "has_targets": self.has_targets,
            "n_examples": self.n_examples,
            "n_classes": self.n_classes,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PairSummary:
        return cls(
            estimates={k: Estimate.from_dict(e) for k, e in d["estimates"].items()},
            per_class_loyalty=[float("nan") if v is None else float(v) for v in d["per_class_loyalty"]],
            flip_matrix=[[int(c) for c in row] for row in d["flip_matrix"]],
            reliability={m: {s: ReliabilityBins.from_dict(b) for s, b in sd.items()}
                         for m, sd in d.get("reliability", {}).items()},
            settings=dict(d.get("settings", {})),
            has_targets=bool(d.get("has_targets", False)),
            n_examples=int(d.get("n_examples", 0)),
            n_classes=int(d.get("n_classes", 0)),
        )


# ----------------------------------------------------------------------------- the column layout
@dataclass(frozen=True)
class _BinSums:
    """Per-bin sums of one binning scheme, each of shape ``(..., n_bins)``."""

    count: np.ndarray
    confidence: np.ndarray
    correct: np.ndarray
    squared_gap: np.ndarray


@dataclass(frozen=True)
class _Layout:
    """Where each per-example quantity sits in a row of sums: the one place the columns are decoded.

    Pair row: ``count, same, probability_loyalty, its square[, negative_flip, positive_flip, the squared
    differences of Brier and NLL, the count and sum of the Brier differences above SPARSE_TAU, the count
    and sum of the absolute ones below -SPARSE_TAU]`` (the last eight with labels; the squares give the
    studentized intervals, the counts and sums the sparse one). Model row (with labels, one per model):
    ``correct, brier, nll`` and the squares of
    the last two, then per binning
    scheme in :attr:`bins` order ``n_bins`` counts, ``n_bins`` confidence sums, ``n_bins``
    correctness sums and ``n_bins`` sums of the squared gap ``(a_i - c_i)^2``.
    """

    has_targets: bool
    bins: tuple[tuple[str, int], ...]

    PAIR_FIELDS: ClassVar[tuple[str, ...]] = ("count", "same", "probability_loyalty", "probability_loyalty_sq",
                                              "negative_flip", "positive_flip", "brier_diff_sq", "nll_diff_sq",
                                              "brier_diff_up", "brier_diff_up_sum", "brier_diff_down",
                                              "brier_diff_down_sum")
    MODEL_FIELDS: ClassVar[tuple[str, ...]] = ("correct", "brier", "nll", "brier_sq", "nll_sq")

    @property
    def pair_fields(self) -> tuple[str, ...]:
        """Names of the pair columns, in order."""
        return self.PAIR_FIELDS if self.has_targets else self.PAIR_FIELDS[:4]

    def pair(self, sums: np.ndarray) -> dict[str, np.ndarray]:
        """Named views of pair sums ``(..., c)``."""
        return {name: sums[..., j] for j, name in enumerate(self.pair_fields)}

    def model(self, sums: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, _BinSums]]:
        """Named views of one model's sums ``(..., c)``: the scalar sums and the bins of each scheme."""
        scalars = {name: sums[..., j] for j, name in enumerate(self.MODEL_FIELDS)}
        bins: dict[str, _BinSums] = {}
        start = len(self.MODEL_FIELDS)
        for scheme, nb in self.bins:
            bins[scheme] = _BinSums(*(sums[..., start + j * nb:start + (j + 1) * nb] for j in range(4)))
            start += 4 * nb
        return scalars, bins


# ----------------------------------------------------------------------------- per-example contributions
@dataclass(frozen=True)
class _Binned:
    """One model's examples in the bins of one scheme: bin index, confidence, correctness."""

    n_bins: int
    index: np.ndarray
    edges: np.ndarray
    confidence: np.ndarray
    correct: np.ndarray


@dataclass(frozen=True)
class _Contributions:
    """Every per-example quantity, computed once; columns in :class:`_Layout` order."""

    pair: list[np.ndarray]
    model: dict[str, list[np.ndarray]]
    binned: dict[str, dict[str, _Binned]]
    flips: np.ndarray


def _contributions(P: np.ndarray, Q: np.ndarray, y: np.ndarray | None, base: float,
                   layout: _Layout, mass_edges: dict[str, np.ndarray] | None = None) -> _Contributions:
    """Per-example agreement, loyalty, flips and (with labels) correctness, Brier, NLL and bins.

    ``mass_edges`` (``{"parent": edges, "candidate": edges}``, each ``n_bins + 1`` values) fixes the
    equal-mass bins beforehand, as a partition of a larger table needs (:func:`fixed_mass_bins`);
    without it they are derived from these examples.
    """
    n, k = P.shape
    pp = np.argmax(P, axis=1)
    pq = np.argmax(Q, axis=1)
    same = (pp == pq).astype(np.float64)
    pl = 1.0 - np.sqrt(_js(P, Q, base))
    pair = [np.ones(n), same, pl, pl * pl]
    model: dict[str, list[np.ndarray]] = {}
    binned: dict[str, dict[str, _Binned]] = {}
    if y is not None:
        cp = (pp == y).astype(np.float64)
        cq = (pq == y).astype(np.float64)
        rows = np.arange(n)
        brier = {"parent": _brier(y, P), "candidate": _brier(y, Q)}
        nll = {"parent": _nll(y, P), "candidate": _nll(y, Q)}
        d_brier = brier["candidate"] - brier["parent"]
        up, down = (d_brier > SPARSE_TAU).astype(np.float64), (d_brier < -SPARSE_TAU).astype(np.float64)
        pair += [cp * (1.0 - cq), (1.0 - cp) * cq, d_brier ** 2, (nll["candidate"] - nll["parent"]) ** 2,
                 up, up * d_brier, down, -down * d_brier]
        for name, M, pred, correct in (("parent", P, pp, cp), ("candidate", Q, pq, cq)):
            conf = M[rows, pred]
            model[name] = [correct, brier[name], nll[name], brier[name] ** 2, nll[name] ** 2]
            binned[name] = {}
            for scheme, nb in layout.bins:
                if scheme == "equal_mass" and mass_edges is not None:
                    idx, edges = fixed_mass_bins(conf, mass_edges[name]), mass_edges[name]
                else:
                    idx, edges = (_equal_width_bins if scheme == "equal_width" else _equal_mass_bins)(conf, nb)
                binned[name][scheme] = _Binned(nb, idx, edges, conf, correct)
    return _Contributions(pair, model, binned, _flip_matrix(pp, pq, k))


def fixed_mass_bins(conf: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Equal-mass bin index of each confidence given the edges fixed from the whole table.

    An example goes to the last bin whose lower edge it reaches (``searchsorted(edges[1:-1], c,
    side="right")``): with distinct confidences and exact order statistics as edges this is the
    rank rule of :func:`_equal_mass_bins`; examples tied at an edge all go to the upper bin.
    """
    return np.searchsorted(np.asarray(edges[1:-1], dtype=np.float64), conf, side="right").astype(np.intp)


# ----------------------------------------------------------------------------- the state that merges
def _unit_sums(cols: list[np.ndarray], groups: np.ndarray | None, n_units: int) -> np.ndarray:
    """``(n_units, len(cols))`` sums of per-example columns per resampling unit."""
    if groups is None:
        return np.column_stack(cols)
    return np.column_stack([np.bincount(groups, weights=c, minlength=n_units) for c in cols])


def _binned_unit_sums(b: _Binned, groups: np.ndarray | None, n_units: int) -> np.ndarray:
    """``(n_units, 4 * n_bins)``: per unit, per bin: count | sum of confidence | sum of correctness | sum of
    the squared gap."""
    nb = b.n_bins
    if groups is None:
        key = np.arange(b.index.shape[0], dtype=np.int64) * nb + b.index
    else:
        key = groups * nb + b.index
    size = n_units * nb
    out = np.empty((n_units, 4 * nb))
    out[:, :nb] = np.bincount(key, minlength=size).reshape(n_units, nb)
    out[:, nb:2 * nb] = np.bincount(key, weights=b.confidence, minlength=size).reshape(n_units, nb)
    out[:, 2 * nb:3 * nb] = np.bincount(key, weights=b.correct, minlength=size).reshape(n_units, nb)
    out[:, 3 * nb:] = np.bincount(key, weights=(b.correct - b.confidence) ** 2, minlength=size).reshape(n_units, nb)
    return out


@dataclass(frozen=True)
class _PairSums:
    """Sums of the per-example contributions (the state every metric is computed from).

    ``pair`` has shape ``(..., c_pair)`` and each ``models[role]`` ``(..., c_model)``, in
    :class:`_Layout` order. Leading axes are resampling units (:meth:`from_examples`), one
    total (:meth:`total`) or bootstrap resamples (:meth:`resample`). Sums over disjoint
    examples with the same bins and units add up (:meth:`merge`), so partitions (chunks,
    Spark partitions) reduce to one state; the equal-mass bins must be fixed beforehand.
    """

    pair: np.ndarray
    models: dict[str, np.ndarray]

    @classmethod
    def from_examples(cls, c: _Contributions, layout: _Layout, groups: np.ndarray | None,
                      n_units: int) -> _PairSums:
        """Reduce per-example contributions to sums per resampling unit (examples or groups)."""
        models = {name: np.hstack([_unit_sums(cols, groups, n_units)]
                                  + [_binned_unit_sums(c.binned[name][scheme], groups, n_units)
                                     for scheme, _ in layout.bins])
                  for name, cols in c.model.items()}
        return cls(_unit_sums(c.pair, groups, n_units), models)

    def merge(self, other: _PairSums) -> _PairSums:
        """The state of both sets of examples (same layout, same units)."""
        return _PairSums(self.pair + other.pair, {m: s + other.models[m] for m, s in self.models.items()})

    def total(self) -> _PairSums:
        """Sums over all units: the state of the point estimates."""
        return _PairSums(self.pair.sum(axis=0), {m: s.sum(axis=0) for m, s in self.models.items()})

    def resample(self, counts: np.ndarray) -> _PairSums:
        """Sums of bootstrap resamples given their ``(r, n_units)`` count matrix."""
        # one product per block of identical layout, so identical models give identical replicates
        return _PairSums(counts @ self.pair, {m: counts @ s for m, s in self.models.items()})

    def compute(self, layout: _Layout, min_bin_count: int) -> dict[str, np.ndarray]:
        """Every pair metric (and with labels ``parent/``, ``candidate/``, ``diff/``) from the sums."""
        cols = layout.pair(self.pair)
        n = cols["count"]
        out = {"label_loyalty": cols["same"] / n, "probability_loyalty": cols["probability_loyalty"] / n}
        if layout.has_targets:
            out["negative_flip_rate"] = cols["negative_flip"] / n
            out["positive_flip_rate"] = cols["positive_flip"] / n
            per = {m: _model_metrics(layout, s, n, min_bin_count) for m, s in self.models.items()}
            for metric in MODEL_METRICS:
                out[f"parent/{metric}"] = per["parent"][metric]
                out[f"candidate/{metric}"] = per["candidate"][metric]
                out[f"diff/{metric}"] = per["candidate"][metric] - per["parent"][metric]
        return out

    def standard_errors(self, layout: _Layout) -> dict[str, np.ndarray]:
        r"""Plug-in standard error :math:`\sqrt{(\overline{x^2} - \bar x^2) / n}` of each mean-type key."""
        cols = layout.pair(self.pair)
        n = cols["count"]

        def se(s: np.ndarray, sq: np.ndarray) -> np.ndarray:
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.sqrt(np.maximum(sq / n - (s / n) ** 2, 0.0) / n)

        out = {"probability_loyalty": se(cols["probability_loyalty"], cols["probability_loyalty_sq"])}
        if layout.has_targets:
            scal = {m: layout.model(s)[0] for m, s in self.models.items()}
            for metric, field_, diff_sq in (("brier_loss", "brier", "brier_diff_sq"),
                                            ("log_loss", "nll", "nll_diff_sq")):
                for role in ("parent", "candidate"):
                    out[f"{role}/{metric}"] = se(scal[role][field_], scal[role][f"{field_}_sq"])
                out[f"diff/{metric}"] = se(scal["candidate"][field_] - scal["parent"][field_], cols[diff_sq])
        return out

    def reliability(self, layout: _Layout, binned: dict[str, dict[str, _Binned]]
                    ) -> dict[str, dict[str, ReliabilityBins]]:
        """Reliability bins of each model and scheme from the total sums."""
        out: dict[str, dict[str, ReliabilityBins]] = {}
        for name, sums in self.total().models.items():
            _, bins = layout.model(sums)
            out[name] = {scheme: ReliabilityBins._from_sums(scheme, binned[name][scheme].edges, b.count,
                                                            b.confidence, b.correct)
                         for scheme, b in bins.items()}
        return out


def _model_metrics(layout: _Layout, sums: np.ndarray, n: np.ndarray, min_bin_count: int) -> dict[str, np.ndarray]:
    """One model's accuracy, Brier, log loss, ECE and MCE of each scheme from its sums."""
    scalars, bins = layout.model(sums)
    out = {"accuracy": scalars["correct"] / n, "brier_loss": scalars["brier"] / n, "log_loss": scalars["nll"] / n}
    for scheme, b in bins.items():
        out[f"ece_{scheme}"] = _ece_from_sums(b.count, b.confidence, b.correct)
        out[f"mce_{scheme}"] = _mce_from_sums(b.count, b.confidence, b.correct, min_bin_count)
    w = bins["equal_width"]
    out["ece_sq_debiased"] = _debiased_sq_from_sums(w.count, w.correct - w.confidence, w.squared_gap)
    return out


# ----------------------------------------------------------------------------- options and bootstrap
@dataclass(frozen=True)
class _Options:
    """The validated options of :func:`summarize_pair`."""

    base: float
    n_bins_equal_width: int
    n_bins_equal_mass: int
    min_bin_count: int
    n_resamples: int
    confidence: float
    random_state: int | None
    n_groups: int
    use_groups: bool

    @property
    def scheme(self) -> str:
        """The resampling unit as recorded in the settings."""
        return f"groups({self.n_groups})" if self.use_groups else "examples"

    def settings(self) -> dict[str, Any]:
        """Everything that changes a number."""
        return {
            "base": self.base, "n_bins_equal_width": self.n_bins_equal_width,
            "n_bins_equal_mass": self.n_bins_equal_mass, "min_bin_count": self.min_bin_count,
            "n_resamples": self.n_resamples, "confidence": self.confidence, "random_state": self.random_state,
            "bootstrap": self.scheme,
            "interval": {"wilson": INTERVAL_KINDS["wilson"] + ": "
                         + ", ".join(k for k in WILSON_KEYS if k not in CLOPPER_PEARSON_KEYS),
                         "clopper_pearson": INTERVAL_KINDS["clopper_pearson"] + ": " + ", ".join(CLOPPER_PEARSON_KEYS),
                         "paired_difference": INTERVAL_KINDS["paired_difference"] + ": "
                         + ", ".join(PAIRED_DIFFERENCE_KEYS),
                         "studentized": INTERVAL_KINDS["studentized"] + ": "
                         + ", ".join(k for k in STUDENTIZED_KEYS
                                     if k not in BOUNDED_MEAN_KEYS and k not in SPARSE_DIFFERENCE_KEYS),
                         "studentized_sparse": INTERVAL_KINDS["studentized_sparse"] + ": "
                         + ", ".join(SPARSE_DIFFERENCE_KEYS),
                         "studentized_bounded": INTERVAL_KINDS["studentized_bounded"] + ": "
                         + ", ".join(BOUNDED_MEAN_KEYS),
                         "bias_corrected_or_range": INTERVAL_KINDS["bias_corrected_or_range"]
                         + ": diff/ece_sq_debiased",
                         "normal": INTERVAL_KINDS["normal"] + ": parent/ and candidate/ece_sq_debiased",
                         "percentile": INTERVAL_KINDS["percentile"] + ": every other key"},
            "ece_sq_debiased_bins": "the equal-width bins",
            "argmax_ties": "lowest class index",
            "equal_width_bins": "(lo, hi], first bin [0, hi]; linspace(0, 1, n_bins + 1)",
            "equal_mass_bins": "rank-based: stable sort of confidences, np.array_split; fixed from the full sample",
        }


def _check_options(n: int, *, base: float, n_bins_equal_width: int, n_bins_equal_mass: int, min_bin_count: int,
                   n_resamples: int, confidence: float, random_state: int | None, bootstrap: str,
                   n_groups: int) -> _Options:
    """Validate the options once, at the public boundary."""
    base = check_base(base)
    nb_w = check_int(n_bins_equal_width, "n_bins_equal_width", minimum=1)
    nb_m = check_int(n_bins_equal_mass, "n_bins_equal_mass", minimum=1)
    min_bin_count = check_int(min_bin_count, "min_bin_count", minimum=0)
    n_resamples = check_int(n_resamples, "n_resamples", minimum=0)
    confidence = check_confidence(confidence)
    n_groups = check_int(n_groups, "n_groups", minimum=2)
    if random_state is not None:
        random_state = check_int(random_state, "random_state", minimum=0)
    if bootstrap not in ("auto", "examples", "groups"):
        raise InvalidInputError(f"Expected `bootstrap` in ('auto', 'examples', 'groups'), got {bootstrap!r}")
    use_groups = bootstrap == "groups" or (bootstrap == "auto" and n > EXAMPLE_BOOTSTRAP_MAX_N)
    return _Options(base, nb_w, nb_m, min_bin_count, n_resamples, confidence, random_state, n_groups,
                    use_groups and n > n_groups)


def interval_kind(key: str) -> str:
    """The interval family of a :func:`summarize_pair` key (see :mod:`mlflow_trusteq.metrics.intervals`).

    ``"wilson"``, ``"clopper_pearson"`` (label loyalty), ``"paired_difference"``,
    ``"studentized_bounded"`` (probability loyalty), ``"studentized_sparse"`` (the Brier difference),
    ``"studentized"``, ``"bias_corrected_or_range"`` (the difference of the debiased ECEs: the range
    [-1, 1] when 1 to 4 examples differ), ``"normal"`` (the debiased ECE of one model) or
    ``"percentile"`` (the binned ECEs and MCEs, as in the studies; their coverage is not claimed).
    """
    if key in CLOPPER_PEARSON_KEYS:
        return "clopper_pearson"
    if key in WILSON_KEYS:
        return "wilson"
    if key in PAIRED_DIFFERENCE_KEYS:
        return "paired_difference"
    if key in BOUNDED_MEAN_KEYS:
        return "studentized_bounded"
    if key in SPARSE_DIFFERENCE_KEYS:
        return "studentized_sparse"
    if key in STUDENTIZED_KEYS:
        return "studentized"
    if key == "diff/ece_sq_debiased":
        return "bias_corrected_or_range"
    if key.endswith("ece_sq_debiased"):
        return "normal"
    return "percentile"


def _closed_form_intervals(total: _PairSums, layout: _Layout, z: float,
                           confidence: float) -> dict[str, tuple[float, float]]:
    """Wilson intervals of the proportions and the Bonett-Price interval of ``diff/accuracy``, from counts."""
    cols = layout.pair(total.pair)
    n = float(cols["count"])
    out: dict[str, tuple[float, float]] = {}
    counts = {"label_loyalty": cols["same"]}
    if layout.has_targets:
        counts["negative_flip_rate"] = cols["negative_flip"]
        counts["positive_flip_rate"] = cols["positive_flip"]
        for role, sums in total.models.items():
            counts[f"{role}/accuracy"] = layout.model(sums)[0]["correct"]
        lo, hi = _paired(np.rint(cols["negative_flip"]), np.rint(cols["positive_flip"]), n, z)
        out["diff/accuracy"] = (float(lo), float(hi))
        out.update(_sparse_intervals(total, layout, confidence))
    for key, k in counts.items():
        if key in CLOPPER_PEARSON_KEYS:
            lo, hi = _clopper_pearson(np.rint(k), n, confidence)
        else:
            lo, hi = _wilson(np.rint(k), n, z)
        out[key] = (float(lo), float(hi))
    return out


def _sparse_intervals(total: _PairSums, layout: _Layout, confidence: float) -> dict[str, tuple[float, float]]:
    """The sparse interval of each :data:`SPARSE_DIFFERENCE_KEYS` key whose informative examples are few (else none:
    the key keeps its bootstrap-t interval)."""
    cols = layout.pair(total.pair)
    n, up, down = (float(np.rint(cols[c])) for c in ("count", "brier_diff_up", "brier_diff_down"))
    if not _use_sparse(n, up + down):
        return {}
    bound = SPARSE_DIFFERENCE_KEYS["diff/brier_loss"]
    out = {"diff/brier_loss": _sparse_mean(n, up, float(cols["brier_diff_up_sum"]), down,
                                           float(cols["brier_diff_down_sum"]), bound, confidence)}
    if 0 < up + down < MIN_INFORMATIVE_CALIBRATION:
        # the debiased squared calibration errors lie in [0, 1]: their difference in [-1, 1]. With 1 to 4
        # examples that differ, the bootstrap's is nearly [0, 0] (it covered 0.91 with 1 or 2 of 200). With none
        # (a float32 copy: every difference below SPARSE_TAU) the bootstrap's own tiny interval is kept
        out["diff/ece_sq_debiased"] = (-1.0, 1.0)
    return out


@dataclass
class _Replicates:
    """The paired bootstrap's replicates of every key, and the studentized ones of the mean-type keys."""

    values: dict[str, list[np.ndarray]]
    t: dict[str, list[np.ndarray]]

    def of(self, key: str) -> np.ndarray | None:
        """All replicates of ``key``, or ``None`` without resamples."""
        return np.concatenate(self.values[key]) if self.values.get(key) else None


def _bootstrap(state: _PairSums, layout: _Layout, opts: _Options, rng: np.random.Generator, progress: bool,
               point: dict[str, np.ndarray]) -> _Replicates:
    """Every metric on each paired resample (the same counts for all), and ``t* = (theta* - theta) / se*``."""
    reps = _Replicates({key: [] for key in point}, {key: [] for key in point})
    n_units = state.pair.shape[0]
    if opts.n_resamples <= 0 or n_units < 2:
        return reps
    from tqdm.auto import tqdm

    chunks = bootstrap_counts(n_units, n_resamples=opts.n_resamples, rng=rng)
    for C in tqdm(chunks, desc="paired bootstrap", disable=not progress, leave=False):
        resampled = state.resample(C)
        for key, vals in resampled.compute(layout, opts.min_bin_count).items():
            reps.values[key].append(vals)
        for key, s_star in resampled.standard_errors(layout).items():
            with np.errstate(invalid="ignore", divide="ignore"):
                reps.t[key].append((reps.values[key][-1] - point[key]) / s_star)
    return reps


def _bootstrap_interval(key: str, value: float, se: float | None, n: float, reps: _Replicates,
                        opts: _Options, z: float) -> tuple[float | None, float | None]:
    """The bootstrap interval of one key, by its family (:func:`interval_kind`); ``(None, None)`` if none."""
    kind = interval_kind(key)
    if se is not None and reps.t.get(key):
        t = np.concatenate(reps.t[key])
        if kind == "studentized_bounded":
            return _studentized_bounded(t, value, se, n, opts.confidence)
        return _studentized(t, value, se, opts.confidence)
    r = reps.of(key)
    if r is None:
        return None, None
    if kind == "percentile":
        with np.errstate(invalid="ignore"):
            return percentile_interval(r, confidence=opts.confidence)
    if kind == "normal":
        r = r[np.isfinite(r)]
        if r.size < 2:
            return None, None
        half = z * float(np.std(r, ddof=1))
        return value - half, value + half
    if not math.isfinite(value):
        return None, None
    with np.errstate(invalid="ignore"):
        b_lo, b_hi = _bias_corrected(r, np.float64(value), z)
    return (None, None) if np.isnan(b_lo) else (float(b_lo), float(b_hi))


def _estimates(state: _PairSums, layout: _Layout, opts: _Options, rng: np.random.Generator,
               progress: bool) -> dict[str, Estimate]:
    """Point estimates from the total sums; intervals from counts (proportions) or one paired bootstrap."""
    total = state.total()
    point = total.compute(layout, opts.min_bin_count)
    se = total.standard_errors(layout)
    reps = _bootstrap(state, layout, opts, rng, progress, point)
    z = float(ndtri(0.5 + opts.confidence / 2.0))
    closed = _closed_form_intervals(total, layout, z, opts.confidence) if opts.n_resamples > 0 else {}
    n = float(layout.pair(total.pair)["count"])
    estimates: dict[str, Estimate] = {}
    for key, value in point.items():
        lo: float | None
        hi: float | None
        if key in closed:
            lo, hi = closed[key]
        else:
            lo, hi = _bootstrap_interval(key, float(value), float(se[key]) if key in se else None, n, reps, opts, z)
        estimates[key] = Estimate(float(value), lo, hi, opts.confidence)
    return estimates


# ----------------------------------------------------------------------------- public API
def summarize_pair(P: np.ndarray, Q: np.ndarray, y: np.ndarray | None = None, *, base: float = 2,
                   n_bins_equal_width: int = 15, n_bins_equal_mass: int = 10, min_bin_count: int = 10,
                   n_resamples: int = 1000, confidence: float = 0.95, random_state: int | None = 0,
                   bootstrap: str = "auto", n_groups: int = 2000, progress: bool = False) -> PairSummary:
    r"""Fidelity and calibration of a candidate against its parent, with intervals of measured coverage.

    Parameters
    ----------
    P, Q : array-like of shape (n, k)
        Parent's and candidate's class probabilities, same examples, same column order.
    y : array-like of shape (n,), optional
        Gold labels as class indices. Without them only label/probability loyalty, the flip
        matrix and per-class loyalty are reported: no label is ever invented.
    base : float, default 2
        Log base of the JS divergence in the probability loyalty.
    n_bins_equal_width, n_bins_equal_mass : int, default 15 and 10
        Bins of the two ECE/MCE schemes (see :mod:`mlflow_trusteq.metrics.calibration` for the
        edge rules).
    min_bin_count : int, default 10
        MCE ignores bins with fewer examples (in the sample or in a resample).
    n_resamples : int, default 1000
        Bootstrap resamples; 0 reports point estimates without intervals.
    confidence : float, default 0.95
        Level of the two-sided intervals.
    random_state : int or None, default 0
        Seed of the bootstrap (and of the group assignment); recorded in ``settings``.
    bootstrap : {"auto", "examples", "groups"}, default "auto"
        Resampling unit. ``"auto"`` resamples examples up to 20,000 examples and groups above;
        ``"groups"`` falls back to examples when ``n <= n_groups``.
    n_groups : int, default 2000
        ``G`` of the grouped scheme.
    progress : bool, default False
        Show a tqdm bar over the bootstrap chunks.

    Returns
    -------
    PairSummary

    Notes
    -----
    Which interval each key gets, the one paired bootstrap, the two resampling schemes and the bin
    rules: the module docstring (:mod:`mlflow_trusteq.metrics.pair`). ``n_resamples=0`` gives no
    interval at all.

    Examples
    --------
    >>> P = np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]])
    >>> s = summarize_pair(P, P, [0, 1, 1], n_resamples=100)
    >>> e = s.estimates["label_loyalty"]  # three agreements prove little: a Clopper-Pearson interval, not [1, 1]
    >>> e.value, round(e.lower, 3), e.upper
    (1.0, 0.292, 1.0)
    """
    P, Q = check_pair(P, Q)
    y = check_targets(y, *P.shape) if y is not None else None
    opts = _check_options(P.shape[0], base=base, n_bins_equal_width=n_bins_equal_width,
                          n_bins_equal_mass=n_bins_equal_mass, min_bin_count=min_bin_count, n_resamples=n_resamples,
                          confidence=confidence, random_state=random_state, bootstrap=bootstrap, n_groups=n_groups)
    layout = _Layout(y is not None, (("equal_width", opts.n_bins_equal_width),
                                     ("equal_mass", opts.n_bins_equal_mass)))
    contrib = _contributions(P, Q, y, opts.base, layout)
    rng = np.random.default_rng(opts.random_state)
    state = _state(contrib, layout, opts, rng, P.shape[0])
    estimates = _estimates(state, layout, opts, rng, progress)
    return _summary(estimates, contrib, state, layout, opts, P.shape)


def _state(contrib: _Contributions, layout: _Layout, opts: _Options, rng: np.random.Generator, n: int) -> _PairSums:
    """The sums per resampling unit: the examples, or ``G`` random groups (drawn from ``rng``)."""
    groups = assign_groups(n, opts.n_groups, rng) if opts.use_groups else None
    return _PairSums.from_examples(contrib, layout, groups, opts.n_groups if opts.use_groups else n)


def _summary(estimates: dict[str, Estimate], contrib: _Contributions, state: _PairSums, layout: _Layout,
             opts: _Options, shape: tuple[int, ...]) -> PairSummary:
    """The :class:`PairSummary` of the estimates, the flips, the reliability bins and the settings."""
    n, k = shape
    logger.debug("summarize_pair: n=%d k=%d bootstrap=%s resamples=%d", n, k, opts.scheme, opts.n_resamples)
    return PairSummary(estimates=estimates, per_class_loyalty=[float(v) for v in _per_class_from_flips(contrib.flips)],
                       flip_matrix=contrib.flips.tolist(), reliability=state.reliability(layout, contrib.binned),
                       settings=opts.settings(), has_targets=layout.has_targets, n_examples=n, n_classes=k)
