r"""Every pair-level metric of a parent and a candidate, with one paired bootstrap: :func:`summarize_pair`.

This is what ``compare()`` calls on the two probability matrices. It validates once, computes
every per-example quantity once, reduces them to sums, and gets every confidence interval from
the **same** bootstrap resamples (same examples for parent and candidate and for every metric),
so that the interval of a difference (``diff/<m>``) reflects the models, not the sampling.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from .._errors import InvalidInputError
from .._types import Estimate
from ._validation import check_base, check_confidence, check_int, check_pair, check_targets
from .bootstrap import assign_groups, bootstrap_counts, percentile_interval
from .calibration import (
    ReliabilityBins,
    _brier,
    _ece_from_sums,
    _equal_mass_bins,
    _equal_width_bins,
    _mce_from_sums,
    _nll,
)
from .loyalty import _flip_matrix, _js, _per_class_from_flips

__all__ = ["PairSummary", "summarize_pair", "MODEL_METRICS", "EXAMPLE_BOOTSTRAP_MAX_N"]

logger = logging.getLogger(__name__)

#: per-model metrics reported as ``parent/<m>``, ``candidate/<m>`` and ``diff/<m>`` when labels are given
MODEL_METRICS = ("accuracy", "ece_equal_width", "ece_equal_mass", "mce_equal_width", "mce_equal_mass",
                 "brier_loss", "log_loss")
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
        minus parent) for ``m`` in :data:`MODEL_METRICS`. Every interval comes from one paired
        bootstrap.
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


@dataclass(frozen=True)
class _Layout:
    """Where each per-example quantity sits in a row of sums: the one place the columns are decoded.

    Pair row: ``count, same, probability_loyalty[, negative_flip, positive_flip]`` (the flips with
    labels). Model row (with labels, one per model): ``correct, brier, nll``, then per binning
    scheme in :attr:`bins` order ``n_bins`` counts, ``n_bins`` confidence sums and ``n_bins``
    correctness sums.
    """

    has_targets: bool
    bins: tuple[tuple[str, int], ...]

    PAIR_FIELDS: ClassVar[tuple[str, ...]] = ("count", "same", "probability_loyalty",
                                              "negative_flip", "positive_flip")
    MODEL_FIELDS: ClassVar[tuple[str, ...]] = ("correct", "brier", "nll")

    @property
    def pair_fields(self) -> tuple[str, ...]:
        """Names of the pair columns, in order."""
        return self.PAIR_FIELDS if self.has_targets else self.PAIR_FIELDS[:3]

    def pair(self, sums: np.ndarray) -> dict[str, np.ndarray]:
        """Named views of pair sums ``(..., c)``."""
        return {name: sums[..., j] for j, name in enumerate(self.pair_fields)}

    def model(self, sums: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, _BinSums]]:
        """Named views of one model's sums ``(..., c)``: the scalar sums and the bins of each scheme."""
        scalars = {name: sums[..., j] for j, name in enumerate(self.MODEL_FIELDS)}
        bins: dict[str, _BinSums] = {}
        start = len(self.MODEL_FIELDS)
        for scheme, nb in self.bins:
            bins[scheme] = _BinSums(sums[..., start:start + nb], sums[..., start + nb:start + 2 * nb],
                                    sums[..., start + 2 * nb:start + 3 * nb])
            start += 3 * nb
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
                   layout: _Layout) -> _Contributions:
    """Per-example agreement, loyalty, flips and (with labels) correctness, Brier, NLL and bins."""
    n, k = P.shape
    pp = np.argmax(P, axis=1)
    pq = np.argmax(Q, axis=1)
    same = (pp == pq).astype(np.float64)
    pl = 1.0 - np.sqrt(_js(P, Q, base))
    pair = [np.ones(n), same, pl]
    model: dict[str, list[np.ndarray]] = {}
    binned: dict[str, dict[str, _Binned]] = {}
    if y is not None:
        cp = (pp == y).astype(np.float64)
        cq = (pq == y).astype(np.float64)
        pair += [cp * (1.0 - cq), (1.0 - cp) * cq]
        rows = np.arange(n)
        for name, M, pred, correct in (("parent", P, pp, cp), ("candidate", Q, pq, cq)):
            conf = M[rows, pred]
            model[name] = [correct, _brier(y, M), _nll(y, M)]
            binned[name] = {}
            for scheme, nb in layout.bins:
                idx, edges = (_equal_width_bins if scheme == "equal_width" else _equal_mass_bins)(conf, nb)
                binned[name][scheme] = _Binned(nb, idx, edges, conf, correct)
    return _Contributions(pair, model, binned, _flip_matrix(pp, pq, k))


# ----------------------------------------------------------------------------- the state that merges
def _unit_sums(cols: list[np.ndarray], groups: np.ndarray | None, n_units: int) -> np.ndarray:
    """``(n_units, len(cols))`` sums of per-example columns per resampling unit."""
    if groups is None:
        return np.column_stack(cols)
    return np.column_stack([np.bincount(groups, weights=c, minlength=n_units) for c in cols])


def _binned_unit_sums(b: _Binned, groups: np.ndarray | None, n_units: int) -> np.ndarray:
    """``(n_units, 3 * n_bins)``: per unit, per bin: count | sum of confidence | sum of correctness."""
    nb = b.n_bins
    if groups is None:
        key = np.arange(b.index.shape[0], dtype=np.int64) * nb + b.index
    else:
        key = groups * nb + b.index
    size = n_units * nb
    out = np.empty((n_units, 3 * nb))
    out[:, :nb] = np.bincount(key, minlength=size).reshape(n_units, nb)
    out[:, nb:2 * nb] = np.bincount(key, weights=b.confidence, minlength=size).reshape(n_units, nb)
    out[:, 2 * nb:] = np.bincount(key, weights=b.correct, minlength=size).reshape(n_units, nb)
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
            "interval": "percentile, paired (same resamples for both models and all metrics)",
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


def _estimates(state: _PairSums, layout: _Layout, opts: _Options, rng: np.random.Generator,
               progress: bool) -> dict[str, Estimate]:
    """Point estimates from the total sums, intervals from one paired bootstrap of the unit sums."""
    point = state.total().compute(layout, opts.min_bin_count)
    reps: dict[str, list[np.ndarray]] = {key: [] for key in point}
    n_units = state.pair.shape[0]
    if opts.n_resamples > 0 and n_units >= 2:
        from tqdm.auto import tqdm

        chunks = bootstrap_counts(n_units, n_resamples=opts.n_resamples, rng=rng)
        for C in tqdm(chunks, desc="paired bootstrap", disable=not progress, leave=False):
            for key, vals in state.resample(C).compute(layout, opts.min_bin_count).items():
                reps[key].append(vals)
    estimates: dict[str, Estimate] = {}
    for key, value in point.items():
        lo = hi = None
        if reps[key]:
            with np.errstate(invalid="ignore"):
                lo, hi = percentile_interval(np.concatenate(reps[key]), confidence=opts.confidence)
        estimates[key] = Estimate(float(value), lo, hi, opts.confidence)
    return estimates


# ----------------------------------------------------------------------------- public API
def summarize_pair(P: np.ndarray, Q: np.ndarray, y: np.ndarray | None = None, *, base: float = 2,
                   n_bins_equal_width: int = 15, n_bins_equal_mass: int = 10, min_bin_count: int = 10,
                   n_resamples: int = 1000, confidence: float = 0.95, random_state: int | None = 0,
                   bootstrap: str = "auto", n_groups: int = 2000, progress: bool = False) -> PairSummary:
    r"""Fidelity and calibration of a candidate against its parent, with paired bootstrap intervals.

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
        Level of the two-sided percentile intervals.
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
    **One paired bootstrap.** Resample ``r`` is a vector of counts ``w_r`` over resampling units;
    every metric is a function of weighted sums :math:`\sum_i w_{ri} x_i` of per-example
    quantities (agreement, :math:`1-\sqrt{JS}`, flips, correctness, Brier, NLL, and per bin:
    count, confidence, correctness), so all metrics of both models use the same ``w_r`` and a
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

    Examples
    --------
    >>> P = np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]])
    >>> s = summarize_pair(P, P, [0, 1, 1], n_resamples=100)
    >>> s.estimates["label_loyalty"].value, s.estimates["diff/accuracy"].upper
    (1.0, 0.0)
    """
    P, Q = check_pair(P, Q)
    n, k = P.shape
    y = check_targets(y, n, k) if y is not None else None
    opts = _check_options(n, base=base, n_bins_equal_width=n_bins_equal_width, n_bins_equal_mass=n_bins_equal_mass,
                          min_bin_count=min_bin_count, n_resamples=n_resamples, confidence=confidence,
                          random_state=random_state, bootstrap=bootstrap, n_groups=n_groups)
    layout = _Layout(y is not None, (("equal_width", opts.n_bins_equal_width),
                                     ("equal_mass", opts.n_bins_equal_mass)))
    contrib = _contributions(P, Q, y, opts.base, layout)
    rng = np.random.default_rng(opts.random_state)
    groups = assign_groups(n, opts.n_groups, rng) if opts.use_groups else None
    state = _PairSums.from_examples(contrib, layout, groups, opts.n_groups if opts.use_groups else n)
    estimates = _estimates(state, layout, opts, rng, progress)
    logger.debug("summarize_pair: n=%d k=%d bootstrap=%s resamples=%d", n, k, opts.scheme, opts.n_resamples)
    return PairSummary(estimates=estimates, per_class_loyalty=[float(v) for v in _per_class_from_flips(contrib.flips)],
                       flip_matrix=contrib.flips.tolist(), reliability=state.reliability(layout, contrib.binned),
                       settings=opts.settings(), has_targets=y is not None, n_examples=n, n_classes=k)
