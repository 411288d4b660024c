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
from typing import Any

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


# ----------------------------------------------------------------------------- reductions
def _unit_sums(cols: list[np.ndarray], groups: np.ndarray | None, n_units: int) -> np.ndarray:
    """``(n_units, len(cols))`` sums of per-example columns per resampling unit."""
    if groups is None:
        return np.column_stack(cols)
    return np.column_stack([np.bincount(groups, weights=c, minlength=n_units) for c in cols])


def _binned_unit_sums(idx: np.ndarray, conf: np.ndarray, correct: np.ndarray, n_bins: int,
                      groups: np.ndarray | None, n_units: int) -> np.ndarray:
    """``(n_units, 3 * n_bins)``: per unit, per bin: count | sum of confidence | sum of correctness."""
    if groups is None:
        key = np.arange(idx.shape[0], dtype=np.int64) * n_bins + idx
    else:
        key = groups * n_bins + idx
    size = n_units * n_bins
    out = np.empty((n_units, 3 * n_bins))
    out[:, :n_bins] = np.bincount(key, minlength=size).reshape(n_units, n_bins)
    out[:, n_bins:2 * n_bins] = np.bincount(key, weights=conf, minlength=size).reshape(n_units, n_bins)
    out[:, 2 * n_bins:] = np.bincount(key, weights=correct, minlength=size).reshape(n_units, n_bins)
    return out


def _pair_metrics(sums: np.ndarray, has_targets: bool) -> dict[str, np.ndarray]:
    """Pair metrics from column sums ``(..., c)``: columns count, same, pl[, nfr, pfr]."""
    n = sums[..., 0]
    out = {"label_loyalty": sums[..., 1] / n, "probability_loyalty": sums[..., 2] / n}
    if has_targets:
        out["negative_flip_rate"] = sums[..., 3] / n
        out["positive_flip_rate"] = sums[..., 4] / n
    return out


def _model_metrics(sums: np.ndarray, n: np.ndarray, nb_w: int, nb_m: int, min_bin_count: int) -> dict[str, np.ndarray]:
    """Model metrics from column sums ``(..., c)``: correct, brier, nll, then equal-width and equal-mass bins."""
    out = {"accuracy": sums[..., 0] / n, "brier_loss": sums[..., 1] / n, "log_loss": sums[..., 2] / n}
    start = 3
    for scheme, nb in (("equal_width", nb_w), ("equal_mass", nb_m)):
        cnt = sums[..., start:start + nb]
        s_conf = sums[..., start + nb:start + 2 * nb]
        s_corr = sums[..., start + 2 * nb:start + 3 * nb]
        out[f"ece_{scheme}"] = _ece_from_sums(cnt, s_conf, s_corr)
        out[f"mce_{scheme}"] = _mce_from_sums(cnt, s_conf, s_corr, min_bin_count)
        start += 3 * nb
    return out


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
    has_targets = y is not None
    if has_targets:
        y = check_targets(y, n, k)
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
    use_groups = use_groups and n > n_groups
    scheme = f"groups({n_groups})" if use_groups else "examples"

    # --- per-example quantities, computed once
    pp = np.argmax(P, axis=1)
    pq = np.argmax(Q, axis=1)
    rows = np.arange(n)
    same = (pp == pq).astype(np.float64)
    pl = 1.0 - np.sqrt(_js(P, Q, base))
    F = _flip_matrix(pp, pq, k)
    pair_cols = [np.ones(n), same, pl]
    model_cols: dict[str, list[np.ndarray]] = {}
    binned: dict[str, list[tuple[str, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]] = {}
    if has_targets:
        cp = (pp == y).astype(np.float64)
        cq = (pq == y).astype(np.float64)
        pair_cols += [cp * (1.0 - cq), (1.0 - cp) * cq]
        for name, M, pred, correct in (("parent", P, pp, cp), ("candidate", Q, pq, cq)):
            conf = M[rows, pred]
            model_cols[name] = [correct, _brier(y, M), _nll(y, M)]
            binned[name] = []
            for strategy, nb in (("equal_width", nb_w), ("equal_mass", nb_m)):
                idx, edges = (_equal_width_bins if strategy == "equal_width" else _equal_mass_bins)(conf, nb)
                binned[name].append((strategy, nb, idx, edges, conf, correct))

    # --- reduce to sums per resampling unit (the whole bootstrap works on these)
    rng = np.random.default_rng(random_state)
    groups = assign_groups(n, n_groups, rng) if use_groups else None
    n_units = n_groups if use_groups else n
    S_pair = _unit_sums(pair_cols, groups, n_units)
    S_model = {name: np.hstack([_unit_sums(model_cols[name], groups, n_units)]
                               + [_binned_unit_sums(idx, conf, correct, nb, groups, n_units)
                                  for _, nb, idx, _, conf, correct in binned[name]])
               for name in model_cols}

    # --- point estimates
    def all_metrics(pair_sums: np.ndarray, model_sums: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = _pair_metrics(pair_sums, has_targets)
        if has_targets:
            per = {m: _model_metrics(s, pair_sums[..., 0], nb_w, nb_m, min_bin_count) for m, s in model_sums.items()}
            for metric in MODEL_METRICS:
                out[f"parent/{metric}"] = per["parent"][metric]
                out[f"candidate/{metric}"] = per["candidate"][metric]
                out[f"diff/{metric}"] = per["candidate"][metric] - per["parent"][metric]
        return out

    point = all_metrics(S_pair.sum(axis=0), {m: s.sum(axis=0) for m, s in S_model.items()})


    # --- one paired bootstrap
    reps: dict[str, list[np.ndarray]] = {key: [] for key in point}
    if n_resamples > 0 and n >= 2:
        from tqdm.auto import tqdm

        chunks = bootstrap_counts(n_units, n_resamples=n_resamples, rng=rng)
        for C in tqdm(chunks, desc="paired bootstrap", disable=not progress, leave=False):
            # one product per block of identical layout, so identical models give identical replicates
            rp = C @ S_pair
            rm = {m: C @ s for m, s in S_model.items()}
            for key, vals in all_metrics(rp, rm).items():
                reps[key].append(vals)

    estimates: dict[str, Estimate] = {}
    for key, value in point.items():
        lo = hi = None
        if reps[key]:
            with np.errstate(invalid="ignore"):
                lo, hi = percentile_interval(np.concatenate(reps[key]), confidence=confidence)
        estimates[key] = Estimate(float(value), lo, hi, confidence)

    reliability: dict[str, dict[str, ReliabilityBins]] = {}
    for name, items in binned.items():
        totals = S_model[name].sum(axis=0)
        start = len(model_cols[name])
        reliability[name] = {}
        for strategy, nb, _, edges, _, _ in items:
            counts, s_conf, s_corr = (totals[start + j * nb:start + (j + 1) * nb] for j in range(3))
            reliability[name][strategy] = ReliabilityBins._from_sums(strategy, edges, counts, s_conf, s_corr)
            start += 3 * nb

    settings = {
        "base": base, "n_bins_equal_width": nb_w, "n_bins_equal_mass": nb_m, "min_bin_count": min_bin_count,
        "n_resamples": n_resamples, "confidence": confidence, "random_state": random_state,
        "bootstrap": scheme, "interval": "percentile, paired (same resamples for both models and all metrics)",
        "argmax_ties": "lowest class index",
        "equal_width_bins": "(lo, hi], first bin [0, hi]; linspace(0, 1, n_bins + 1)",
        "equal_mass_bins": "rank-based: stable sort of confidences, np.array_split; fixed from the full sample",
    }
    logger.debug("summarize_pair: n=%d k=%d bootstrap=%s resamples=%d", n, k, scheme, n_resamples)
    return PairSummary(estimates=estimates, per_class_loyalty=[float(v) for v in _per_class_from_flips(F)],
                       flip_matrix=F.tolist(), reliability=reliability, settings=settings,
                       has_targets=has_targets, n_examples=n, n_classes=k)
