r"""Display objects for the trust-equivalence plots (the scikit-learn Display pattern).

Each display is built in two steps: a class method (``from_predictions`` or ``from_report``)
*computes* the numbers through the public metric functions of :mod:`mlflow_trusteq.metrics`,
and :meth:`plot` only *draws* them, keeping the axes in ``ax_`` and the figure in ``figure_``.
The caller saves (``display.figure_.savefig(...)``). matplotlib is imported inside ``plot``; the
figures are plain :class:`matplotlib.figure.Figure` objects, not registered with ``pyplot``, so
that drawing in a server or a thread leaks nothing and needs no GUI backend.

- :class:`ReliabilityDisplay`: accuracy per confidence bin of parent *and* candidate in one
  figure, with the diagonal, the gap shaded, the bin counts in a panel below and each model's
  ECE in the legend.
- :class:`ConfidenceHistogramDisplay`: the two confidence histograms overlaid, and the
  candidate's probability of the parent's predicted class against the parent's, with label
  flips highlighted.
- :class:`FlipMatrixDisplay`: the ``k x k`` flip matrix (rows: parent's label, columns:
  candidate's label) as an annotated heat map.

Example
-------
>>> import numpy as np
>>> from mlflow_trusteq.report import ReliabilityDisplay
>>> rng = np.random.default_rng(0)
>>> P = rng.dirichlet([1, 1], size=200); Q = rng.dirichlet([1, 1], size=200)
>>> y = rng.integers(0, 2, size=200)
>>> disp = ReliabilityDisplay.from_predictions(y, P, Q, n_bins=10, strategy="equal_mass").plot()
>>> disp.figure_.savefig("reliability.png")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._errors import InvalidInputError
from .._format import MISSING, format_estimate
from .._types import Estimate

logger = logging.getLogger(__name__)

__all__ = ["ReliabilityDisplay", "ConfidenceHistogramDisplay", "FlipMatrixDisplay", "PARENT_COLOR",
           "CANDIDATE_COLOR", "FLIP_COLOR"]

#: Okabe-Ito colours (colour-blind safe): parent blue, candidate orange, flips vermillion
PARENT_COLOR = "#0072B2"
CANDIDATE_COLOR = "#E69F00"
FLIP_COLOR = "#D55E00"
_AGREE_COLOR = "#8c8c8c"
_TITLE_SIZE = 12


def _new_figure(figsize: tuple[float, float]) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def _check_strategy(strategy: Any) -> str:
    if strategy not in ("equal_width", "equal_mass"):
        raise InvalidInputError(f"Expected `strategy` in ('equal_width', 'equal_mass'), got {strategy!r}")
    return str(strategy)


def _report_predictions(report: Any, what: str) -> Any:
    pred = getattr(report, "predictions", None)
    if pred is None:
        raise InvalidInputError(
            f"{what} needs the per-example predictions, and this report holds none (a report read back "
            "from JSON keeps only the summary); build it from `compare()` or use `from_predictions`")
    return pred


def _legend_estimate(e: Estimate | float | None) -> str:
    """An estimate (or a plain number) as :func:`mlflow_trusteq._format.format_estimate` writes it."""
    if e is None:
        return MISSING
    return format_estimate(e if isinstance(e, Estimate) else Estimate(float(e)))


def _strategy_words(strategy: str) -> str:
    return "equal-mass" if strategy == "equal_mass" else "equal-width"


# ============================================================================= reliability
@dataclass
class ReliabilityDisplay:
    r"""Reliability diagram of the parent and the candidate in one figure.

    Top panel: accuracy per confidence bin against the bin's mean confidence for both models, the
    diagonal of perfect calibration, and the gap between each model's curve and the diagonal
    shaded (below the diagonal: over-confident). Bottom panel: the number of examples per bin
    for both models, on the same confidence axis. The legend gives each model's ECE,

    .. math:: \mathrm{ECE} = \sum_b \frac{|B_b|}{n}\,|\mathrm{acc}(B_b) - \mathrm{conf}(B_b)|,

    with its confidence interval when the numbers come from a report.

    Parameters
    ----------
    parent_bins, candidate_bins : ReliabilityBins
        From :func:`mlflow_trusteq.metrics.calibration.reliability_bins`, same strategy.
    parent_ece, candidate_ece : Estimate or float, optional
        Shown in the legend; default: the ECE of the bins.
    parent_name, candidate_name : str

    Attributes
    ----------
    ax_, ax_counts_ : matplotlib Axes
        The reliability panel and the counts panel below it.
    figure_ : matplotlib Figure
    lines_ : dict[str, Line2D]
        ``{"parent": ..., "candidate": ...}``: points at (mean confidence, accuracy) of the
        non-empty bins.
    counts_ : dict[str, StepPatch]
        The per-bin counts drawn over the bin edges.
    gaps_ : dict[str, PolyCollection]
        The shaded gap to the diagonal.
    """

    parent_bins: Any
    candidate_bins: Any
    parent_ece: Estimate | float | None = None
    candidate_ece: Estimate | float | None = None
    parent_name: str = "parent"
    candidate_name: str = "candidate"

    def __post_init__(self) -> None:
        if self.parent_bins.strategy != self.candidate_bins.strategy:
            raise InvalidInputError(
                f"parent and candidate bins use different strategies: {self.parent_bins.strategy!r} "
                f"and {self.candidate_bins.strategy!r}")
        if self.parent_ece is None:
            self.parent_ece = float(self.parent_bins.ece)
        if self.candidate_ece is None:
            self.candidate_ece = float(self.candidate_bins.ece)

    @property
    def strategy(self) -> str:
        return str(self.parent_bins.strategy)

    # -- computing -------------------------------------------------------------------------------
    @classmethod
    def from_predictions(cls, y: Any, P: Any, Q: Any, *, n_bins: int = 10, strategy: str = "equal_mass",
                         parent_name: str = "parent", candidate_name: str = "candidate") -> ReliabilityDisplay:
        """Bin both models' top-label confidences with :func:`~mlflow_trusteq.metrics.calibration.reliability_bins`.

        Parameters
        ----------
        y : array-like of shape (n,)
            Gold labels as class indices (columns of ``P`` and ``Q``).
        P, Q : array-like of shape (n, k)
            The parent's and the candidate's class probabilities, same columns.
        n_bins : int, default 10
        strategy : {"equal_mass", "equal_width"}, default "equal_mass"
            Bin rule; see :mod:`mlflow_trusteq.metrics.calibration`.
        """
        from ..metrics.calibration import expected_calibration_error, reliability_bins

        strategy = _check_strategy(strategy)
        P = np.asarray(P, dtype=np.float64)
        Q = np.asarray(Q, dtype=np.float64)
        if P.shape != Q.shape:
            raise InvalidInputError(f"P and Q must have the same shape, got P {P.shape} and Q {Q.shape}")
        pb = reliability_bins(y, P, n_bins=n_bins, strategy=strategy)
        cb = reliability_bins(y, Q, n_bins=n_bins, strategy=strategy)
        return cls(pb, cb, expected_calibration_error(y, P, n_bins=n_bins, strategy=strategy),
                   expected_calibration_error(y, Q, n_bins=n_bins, strategy=strategy),
                   parent_name=parent_name, candidate_name=candidate_name)

    @classmethod
    def from_report(cls, report: Any, *, strategy: str = "equal_mass") -> ReliabilityDisplay:
        """The reliability diagram of a :class:`~mlflow_trusteq.compare.TrustReport`.

        Uses the report's per-example predictions when it holds them (recomputing the bins with
        the report's bin count), otherwise the bins stored in ``report.reliability``; the legend
        shows the report's ECE estimates with their paired-bootstrap intervals.

        Raises
        ------
        InvalidInputError
            When the report has no gold labels (calibration was not measured).
        """
        from ..metrics.calibration import ReliabilityBins, reliability_bins

        strategy = _check_strategy(strategy)
        if not report.has_targets:
            reason = report.skipped.get("calibration", "no gold labels were given")
            raise InvalidInputError(f"no reliability diagram: calibration was not measured ({reason})")
        settings = report.settings or {}
        n_bins = settings.get(f"n_bins_{strategy}") or (settings.get("metrics") or {}).get(f"n_bins_{strategy}")
        pred = report.predictions
        if pred is not None and pred.targets is not None and n_bins:
            pb = reliability_bins(pred.targets, pred.parent, n_bins=int(n_bins), strategy=strategy)
            cb = reliability_bins(pred.targets, pred.candidate, n_bins=int(n_bins), strategy=strategy)
        else:
            try:
                pb = ReliabilityBins.from_dict(_as_dict(report.reliability["parent"][strategy]))
                cb = ReliabilityBins.from_dict(_as_dict(report.reliability["candidate"][strategy]))
            except KeyError:
                raise InvalidInputError(
                    f"the report holds no {strategy!r} reliability bins and no predictions to compute them; "
                    f"reliability has {sorted(report.reliability)}") from None
        return cls(pb, cb, report.metrics.get(f"parent/ece_{strategy}"),
                   report.metrics.get(f"candidate/ece_{strategy}"),
                   parent_name=report.parent_name, candidate_name=report.candidate_name)

    # -- drawing ---------------------------------------------------------------------------------
    def plot(self, ax: Any = None, *, ax_counts: Any = None, title: str | None = None,
             shade_gap: bool = True) -> ReliabilityDisplay:
        """Draw the diagram.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            The reliability panel. Without one, a new figure with both panels is made; with one
            and no ``ax_counts``, the counts panel is split off below ``ax``.
        ax_counts : matplotlib Axes, optional
            Where to draw the bin counts.
        title : str, optional
            Default: "Reliability diagram (M equal-mass bins, n = ...)".
        shade_gap : bool, default True
            Shade each model's gap between its curve and the diagonal.

        Returns
        -------
        self
        """
        ax, ax_counts = _reliability_axes(ax, ax_counts)
        lo = _axis_low(self.parent_bins, self.candidate_bins)
        ax.plot([lo, 1], [lo, 1], ls="--", color="#444444", lw=1, label="perfect calibration", zorder=1)
        self.lines_: dict[str, Any] = {}
        self.counts_: dict[str, Any] = {}
        self.gaps_: dict[str, Any] = {}
        y_low = lo
        for role, bins, ece, name, color, marker in (
                ("parent", self.parent_bins, self.parent_ece, self.parent_name, PARENT_COLOR, "o"),
                ("candidate", self.candidate_bins, self.candidate_ece, self.candidate_name, CANDIDATE_COLOR, "s")):
            y_low = min(y_low, self._draw_model(ax, ax_counts, role, bins, f"{role}: {_short(name)}  "
                                                f"(ECE {_legend_estimate(ece)})", color, marker, shade_gap))
        _style_reliability(ax, ax_counts, lo, y_low)
        ax.set_title(title or f"Reliability diagram — {self.parent_bins.n_bins} {_strategy_words(self.strategy)} "
                     f"bins, n = {self.parent_bins.n:,}", fontsize=_TITLE_SIZE, loc="left")
        fig = ax.figure
        self.ax_, self.ax_counts_, self.figure_ = ax, ax_counts, fig
        return self

    def _draw_model(self, ax: Any, ax_counts: Any, role: str, bins: Any, label: str, color: str, marker: str,
                    shade_gap: bool) -> float:
        """One model's curve (and gap) and its bin counts (parent up, candidate down); its lowest accuracy."""
        conf = np.asarray(bins.mean_confidence, dtype=float)
        acc = np.asarray(bins.accuracy, dtype=float)
        counts = np.asarray(bins.counts, dtype=float)
        edges = np.asarray(bins.edges, dtype=float)
        keep = counts > 0
        x, yv = conf[keep], acc[keep]
        if shade_gap and x.size:
            self.gaps_[role] = ax.vlines(x, x, yv, color=color, alpha=0.35, lw=5, zorder=2)
        (self.lines_[role],) = ax.plot(x, yv, marker=marker, ms=6, lw=1.6, color=color, label=label,
                                       zorder=3, markeredgecolor="white", markeredgewidth=0.8)
        sign = 1.0 if role == "parent" else -1.0
        self.counts_[role] = ax_counts.bar(edges[:-1], sign * counts, width=np.diff(edges), align="edge",
                                           color=color, alpha=0.75, edgecolor="white", linewidth=0.8,
                                           label=f"{role} \u2191" if sign > 0 else f"{role} \u2193")
        return float(yv.min()) if x.size else math.inf


def _reliability_axes(ax: Any, ax_counts: Any) -> tuple[Any, Any]:
    """The reliability and counts panels: a new figure, or the counts split off below ``ax``."""
    if ax is None:
        fig = _new_figure((7.0, 7.2))
        ax, ax_counts = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3.2, 1]})
    elif ax_counts is None:
        from mpl_toolkits.axes_grid1 import make_axes_locatable

        ax_counts = make_axes_locatable(ax).append_axes("bottom", size="30%", pad=0.15, sharex=ax)
    return ax, ax_counts


def _style_reliability(ax: Any, ax_counts: Any, lo: float, y_low: float) -> None:
    """Limits, labels, grid, legends and the under/over-confident hints of both panels."""
    import matplotlib.ticker as mticker

    ax_counts.axhline(0.0, color="#444444", lw=0.8)
    ax_counts.yaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{abs(v):,.0f}"))
    ax.set_xlim(lo, 1.0)
    ax.set_ylim(max(0.0, math.floor((y_low - 0.04) * 20) / 20), 1.02)
    ax.set_ylabel("accuracy in the bin")
    ax.grid(True, color="#e6e6e6", lw=0.8)
    ax.set_axisbelow(True)
    ax.text(0.03, 0.97, "under-confident", transform=ax.transAxes, va="top", ha="left",
            color="#777777", fontsize=9, style="italic")
    ax.text(0.97, 0.03, "over-confident", transform=ax.transAxes, va="bottom", ha="right",
            color="#777777", fontsize=9, style="italic")
    ax.legend(loc="upper left", bbox_to_anchor=(0.0, 0.93), fontsize=9, frameon=True, framealpha=0.9)
    ax.tick_params(labelbottom=False)
    ax_counts.set_xlabel("confidence (top-class probability)")
    ax_counts.set_ylabel("examples\nper bin")
    ax_counts.yaxis.set_major_locator(mticker.MaxNLocator(4, integer=True, symmetric=True))
    ax_counts.grid(True, axis="y", color="#e6e6e6", lw=0.8)
    ax_counts.set_axisbelow(True)
    ax_counts.legend(loc="lower left", fontsize=8, ncols=2, frameon=True, framealpha=0.9)
    ax_counts.set_xlim(lo, 1.0)


def _as_dict(obj: Any) -> dict[str, Any]:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def _axis_low(*bins: Any) -> float:
    """Left end of the confidence axis: 0.1 below the lowest non-empty bin, on a 0.1 grid."""
    lows = []
    for b in bins:
        counts = np.asarray(b.counts)
        nz = np.flatnonzero(counts > 0)
        if nz.size:
            lows.append(min(b.edges[nz[0]], np.nanmin(np.asarray(b.mean_confidence)[nz])))
    if not lows:
        return 0.0
    return max(0.0, math.floor(min(lows) * 10 - 1e-9) / 10)


def _short(name: str, width: int = 40) -> str:
    name = str(name)
    return name if len(name) <= width else name[: width - 1] + "…"


# ============================================================================= confidence
@dataclass
class ConfidenceHistogramDisplay:
    r"""Confidence histograms of both models, and the candidate's vs the parent's probability.

    Left panel: histograms of the top-class probability :math:`c_i = \max_j P_{ij}` (parent)
    and :math:`\max_j Q_{ij}` (candidate) on the same equal-width bins, overlaid. Right panel:
    for every example, :math:`P_{i\hat p_i}` (x) against :math:`Q_{i\hat p_i}` (y), the two
    models' probability of the *parent's* predicted class :math:`\hat p_i`; examples where the
    candidate predicts another label are highlighted. Points on the diagonal are loyal in
    probability; points far from it are where the two models' confidence differs.

    Attributes
    ----------
    edges : ndarray
        Histogram bin edges (shared by both models).
    parent_hist, candidate_hist : ndarray of int
        Counts per bin.
    parent_prob, candidate_prob : ndarray
        Probability of the parent's predicted class under each model, per example.
    flipped : ndarray of bool
        The candidate's label differs from the parent's.
    ax_ : ndarray of two Axes
    figure_ : Figure
    bars_ : dict[str, StepPatch]
    agree_, flips_ : the artists of the right panel (agreeing points, flipped points)
    """

    edges: np.ndarray
    parent_hist: np.ndarray
    candidate_hist: np.ndarray
    parent_prob: np.ndarray
    candidate_prob: np.ndarray
    flipped: np.ndarray
    n_classes: int
    parent_name: str = "parent"
    candidate_name: str = "candidate"
    max_points: int = 20_000
    random_state: int = 0

    @classmethod
    def from_predictions(cls, P: Any, Q: Any, *, n_bins: int = 20, parent_name: str = "parent",
                         candidate_name: str = "candidate", max_points: int = 20_000,
                         random_state: int = 0) -> ConfidenceHistogramDisplay:
        """Compute the histograms and the per-example probabilities of the parent's class.

        Parameters
        ----------
        P, Q : array-like of shape (n, k)
            Parent's and candidate's class probabilities, same columns.
        n_bins : int, default 20
            Equal-width bins over ``[1/k, 1]`` (the range a top-class probability can take).
        max_points : int, default 20000
            Above this many examples the agreeing points are drawn as a hexbin density instead
            of a scatter (flipped examples are always drawn as points, at most ``max_points`` of
            them, a seeded random subset).
        random_state : int, default 0
            Seed of that subset.
        """
        from ..metrics._validation import check_int, check_pair

        P, Q = check_pair(P, Q)
        n_bins = check_int(n_bins, "n_bins", minimum=1)
        max_points = check_int(max_points, "max_points", minimum=1)
        n, k = P.shape
        rows = np.arange(n)
        pp, pq = np.argmax(P, axis=1), np.argmax(Q, axis=1)
        edges = np.linspace(1.0 / k, 1.0, n_bins + 1)
        ph, _ = np.histogram(P[rows, pp], bins=edges)
        qh, _ = np.histogram(Q[rows, pq], bins=edges)
        return cls(edges, ph, qh, P[rows, pp], Q[rows, pp], pp != pq, k, parent_name, candidate_name,
                   max_points, random_state)

    @classmethod
    def from_report(cls, report: Any, **kwargs: Any) -> ConfidenceHistogramDisplay:
        """From a report's per-example predictions (see :meth:`from_predictions` for ``kwargs``)."""
        pred = _report_predictions(report, "the confidence histogram")
        kwargs.setdefault("parent_name", report.parent_name)
        kwargs.setdefault("candidate_name", report.candidate_name)
        return cls.from_predictions(pred.parent, pred.candidate, **kwargs)

    def plot(self, ax: Sequence[Any] | None = None, *, title: str | None = None) -> ConfidenceHistogramDisplay:
        """Draw both panels.

        Parameters
        ----------
        ax : pair of matplotlib Axes, optional
            (histogram axes, scatter axes); default: a new figure with two panels.
        title : str, optional
            A suptitle for the figure.
        """
        if ax is None:
            fig = _new_figure((11.0, 4.6))
            ax = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.15, 1]})
        if len(ax) != 2:
            raise InvalidInputError(f"`ax` must be a pair of axes (histogram, scatter), got {len(ax)}")
        ax_hist, ax_sc = ax[0], ax[1]
        fig = ax_hist.figure
        self._plot_histograms(ax_hist)
        self._plot_scatter(ax_sc)
        if title:
            fig.suptitle(title, fontsize=_TITLE_SIZE + 1)
        self.ax_ = np.array([ax_hist, ax_sc], dtype=object)
        self.figure_ = fig
        return self

    def _plot_histograms(self, ax_hist: Any) -> None:
        """Left panel: the two confidence histograms overlaid."""
        self.bars_ = {}
        for role, hist, name, color in (("parent", self.parent_hist, self.parent_name, PARENT_COLOR),
                                        ("candidate", self.candidate_hist, self.candidate_name, CANDIDATE_COLOR)):
            label = f"{role}: {_short(name, 30)}"
            if role == "parent":
                ax_hist.stairs(hist, self.edges, fill=True, color=color, alpha=0.25)
                self.bars_[role] = ax_hist.stairs(hist, self.edges, color=color, lw=1.4, label=label)
            else:
                self.bars_[role] = ax_hist.stairs(hist, self.edges, color=color, lw=2.2, label=label)
        ax_hist.set_xlim(self.edges[0], self.edges[-1])
        ax_hist.set_xlabel("confidence (top-class probability)")
        ax_hist.set_ylabel("examples")
        ax_hist.set_title("Confidence of each model", fontsize=_TITLE_SIZE, loc="left")
        ax_hist.legend(loc="upper left", fontsize=9)
        ax_hist.grid(True, axis="y", color="#e6e6e6", lw=0.8)
        ax_hist.set_axisbelow(True)

    def _plot_scatter(self, ax_sc: Any) -> None:
        """Right panel: each example's probability of the parent's class under both models, flips highlighted."""
        n = self.parent_prob.shape[0]
        lo = 1.0 / self.n_classes
        x, yv, fl = self.parent_prob, self.candidate_prob, self.flipped
        n_flip = int(fl.sum())
        agree_label = f"same label (n = {n - n_flip:,})"
        if n > self.max_points:
            self.agree_ = ax_sc.hexbin(x[~fl], yv[~fl], gridsize=40, extent=(lo, 1, 0, 1), cmap="Greys",
                                       bins="log", mincnt=1, linewidths=0)
            ax_sc.plot([], [], "s", color=_AGREE_COLOR, label=agree_label + ", density")
        else:
            self.agree_ = ax_sc.scatter(x[~fl], yv[~fl], s=9, color=_AGREE_COLOR, alpha=0.45, lw=0,
                                        label=agree_label)
        idx = np.flatnonzero(fl)
        if idx.size > self.max_points:
            idx = np.sort(np.random.default_rng(self.random_state).choice(idx, self.max_points, replace=False))
        self.flips_ = ax_sc.scatter(x[idx], yv[idx], s=22, color=FLIP_COLOR, alpha=0.9, lw=0.5,
                                    edgecolors="white", label=f"label flipped (n = {n_flip:,})", zorder=3)
        ax_sc.plot([lo, 1], [lo, 1], ls="--", color="#444444", lw=1, zorder=2, label="equal probability")
        if self.n_classes == 2:
            ax_sc.axhline(0.5, color=FLIP_COLOR, lw=0.9, ls=":", zorder=1,
                          label="0.5: below it the candidate flips")
        ax_sc.set_xlim(lo - 0.01, 1.01)
        ax_sc.set_ylim(-0.02, 1.02)
        ax_sc.set_xlabel("parent's probability of its predicted class")
        ax_sc.set_ylabel("candidate's probability of that class")
        ax_sc.set_title("Same class, both models", fontsize=_TITLE_SIZE, loc="left")
        ax_sc.legend(loc="upper left", fontsize=8.5, framealpha=0.9)
        ax_sc.grid(True, color="#e6e6e6", lw=0.8)
        ax_sc.set_axisbelow(True)


# ============================================================================= flip matrix
@dataclass
class FlipMatrixDisplay:
    """The flip matrix as an annotated heat map: rows are the parent's label, columns the candidate's.

    Cell ``(a, b)`` counts the examples the parent labels ``a`` and the candidate labels ``b``;
    each cell also shows its share of the row (the parent's class ``a``). The diagonal is where
    the models agree (drawn in a neutral grey); the off-diagonal cells, the flips, are coloured by
    their row percentage, so the classes the candidate deserts stand out. Row labels give each
    class's count and label loyalty (the diagonal's row share).

    Attributes
    ----------
    matrix : ndarray of int, shape (k, k)
    labels : tuple of str
    row_percent : ndarray, shape (k, k)
        ``100 * matrix / row sum`` (NaN for an empty row).
    ax_, figure_, im_ : the axes, figure and image
    text_ : ndarray of Text or None
        The cell annotations (``None`` when ``k`` is too large to annotate).
    """

    matrix: np.ndarray
    labels: tuple[str, ...]
    parent_name: str = "parent"
    candidate_name: str = "candidate"

    def __post_init__(self) -> None:
        m = np.asarray(self.matrix)
        if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] < 1:
            raise InvalidInputError(f"the flip matrix must be square (k, k), got shape {m.shape}")
        if len(self.labels) != m.shape[0]:
            raise InvalidInputError(f"{len(self.labels)} labels {list(self.labels)[:10]} for a "
                                    f"{m.shape[0]}x{m.shape[0]} flip matrix")
        self.matrix = m.astype(np.int64)
        self.labels = tuple(str(x) for x in self.labels)

    @property
    def row_percent(self) -> np.ndarray:
        rows = self.matrix.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(rows > 0, 100.0 * self.matrix / np.maximum(rows, 1), np.nan)

    @classmethod
    def from_predictions(cls, P: Any, Q: Any, *, labels: Sequence[str] | None = None, parent_name: str = "parent",
                         candidate_name: str = "candidate") -> FlipMatrixDisplay:
        """Count label flips with :func:`~mlflow_trusteq.metrics.loyalty.flip_matrix`.

        ``labels`` name the columns of ``P``/``Q`` (default ``"0"``, ``"1"``, ...).
        """
        from ..metrics.loyalty import flip_matrix

        F = np.asarray(flip_matrix(P, Q))
        if labels is None:
            labels = [str(i) for i in range(F.shape[0])]
        return cls(F, tuple(labels), parent_name, candidate_name)

    @classmethod
    def from_report(cls, report: Any) -> FlipMatrixDisplay:
        """The flip matrix stored in a report (``report.flip_matrix``)."""
        if not report.flip_matrix:
            pred = _report_predictions(report, "the flip matrix")
            return cls.from_predictions(pred.parent, pred.candidate, labels=report.labels,
                                        parent_name=report.parent_name, candidate_name=report.candidate_name)
        return cls(np.asarray(report.flip_matrix), tuple(report.labels), report.parent_name, report.candidate_name)

    def plot(self, ax: Any = None, *, title: str | None = None, annotate: bool | None = None,
             colorbar: bool = True) -> FlipMatrixDisplay:
        """Draw the heat map.

        Parameters
        ----------
        ax : matplotlib Axes, optional
        title : str, optional
        annotate : bool, optional
            Write count and row percentage in each cell; default: when ``k <= 25``.
        colorbar : bool, default True
        """
        import matplotlib as mpl
        from matplotlib.colors import Normalize

        k = self.matrix.shape[0]
        if ax is None:
            side = min(max(5.2, 0.8 * k + 3.2), 24.0)
            fig = _new_figure((side + 1.4, side))
            ax = fig.subplots()
        fig = ax.figure
        pct = self.row_percent
        off = ~np.eye(k, dtype=bool)
        off_max = np.nanmax(np.where(off, pct, np.nan)) if k > 1 and np.isfinite(pct[off]).any() else 0.0
        vmax = max(20.0, float(off_max))
        cmap = mpl.colormaps["Reds"]
        norm = Normalize(0.0, vmax)
        rgba = cmap(norm(np.nan_to_num(pct, nan=0.0)))
        rgba[~off] = mpl.colors.to_rgba("#dfe7ef")
        rgba[self.matrix.sum(axis=1) == 0] = mpl.colors.to_rgba("#f7f7f7")
        self.im_ = ax.imshow(rgba, interpolation="nearest", aspect="equal")
        if annotate is None:
            annotate = k <= 25
        self.text_ = self._annotate(ax, pct, off, norm) if annotate else None
        self._label_axes(ax, pct)
        n = int(self.matrix.sum())
        flips = n - int(np.trace(self.matrix))
        ax.set_title(title or f"Label flips: {flips:,} of {n:,} examples ({100.0 * flips / max(n, 1):.1f}%)",
                     fontsize=_TITLE_SIZE, loc="left")
        if colorbar:
            sm = mpl.cm.ScalarMappable(norm=norm, cmap=cmap)
            cb = fig.colorbar(sm, ax=ax, shrink=0.75, pad=0.03)
            cb.set_label("off-diagonal: % of the parent's class")
        self.ax_, self.figure_ = ax, fig
        return self

    def _annotate(self, ax: Any, pct: np.ndarray, off: np.ndarray, norm: Any) -> np.ndarray:
        """Count and row percentage in every cell (white on dark cells); the text artists."""
        k = self.matrix.shape[0]
        fs = 11 if k <= 4 else (9 if k <= 10 else 7)
        text = np.empty((k, k), dtype=object)
        for i in range(k):
            for j in range(k):
                p = pct[i, j]
                dark = off[i, j] and np.isfinite(p) and norm(p) > 0.6
                s = f"{self.matrix[i, j]:,}" + (f"\n{p:.1f}%" if np.isfinite(p) else "")
                text[i, j] = ax.text(j, i, s, ha="center", va="center", fontsize=fs,
                                     color="white" if dark else "#1a1a1a",
                                     fontweight="bold" if i == j else "normal")
        return text

    def _label_axes(self, ax: Any, pct: np.ndarray) -> None:
        """Tick labels (each parent class with its n and loyalty), axis labels, cell grid."""
        k = self.matrix.shape[0]
        rows = self.matrix.sum(axis=1)
        ylabels = []
        for i, lab in enumerate(self.labels):
            loy = f", loyalty {pct[i, i]:.1f}%" if rows[i] else ""
            ylabels.append(f"{_short(lab, 24)}\n(n = {rows[i]:,}{loy})" if k <= 12 else _short(lab, 24))
        ax.set_xticks(range(k), [_short(lab, 24) for lab in self.labels], rotation=0 if k <= 6 else 45,
                      ha="center" if k <= 6 else "right")
        ax.set_yticks(range(k), ylabels)
        ax.set_xlabel(f"candidate's label  ({_short(self.candidate_name)})")
        ax.set_ylabel(f"parent's label  ({_short(self.parent_name)})")
        ax.set_xticks(np.arange(-0.5, k, 1), minor=True)
        ax.set_yticks(np.arange(-0.5, k, 1), minor=True)
        ax.grid(which="minor", color="white", lw=2)
        ax.tick_params(which="minor", length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
