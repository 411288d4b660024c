"""Where the candidate breaks: the slices section of the report, and its forest plot.

Renders a :class:`~mlflow_trusteq.slices.SliceResult` (plain data) as a
``<div class="trusteq-slices">`` fragment: the slices ranked by loss of loyalty and by flips, a
forest plot (:class:`SliceForestDisplay`: each slice's loyalty with its interval, the threshold
line, the slice sizes), the whole slice table, example disagreements of the worst slices, and the
policy's per-slice judgement when a verdict is given.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._errors import InvalidInputError
from .._format import MISSING, format_estimate, format_number
from .._types import Estimate

logger = logging.getLogger(__name__)

__all__ = ["SliceForestDisplay", "slices_fragment", "slices_html", "slice_check"]

_FAIL_COLOR = "#D55E00"
_OK_COLOR = "#0072B2"
_AGG_COLOR = "#8c8c8c"
_TABLE_METRICS = (("label_loyalty", "label loyalty"), ("probability_loyalty", "prob. loyalty"),
                  ("candidate/accuracy", "cand. acc."), ("diff/accuracy", "Δ acc."),
                  ("diff/ece_sq_debiased", "Δ ECE² (debiased)"), ("diff/brier_loss", "Δ Brier"))


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


@dataclass
class SliceForestDisplay:
    """Per-slice estimates of one metric with their intervals: a forest plot (the Display pattern).

    Build with :meth:`from_result` (or :meth:`from_report`), draw with :meth:`plot`; the figure is in
    ``figure_``, the axes in ``ax_``. Rows run from the worst slice (top) down; a slice's marker area
    grows with its size, and a slice whose judged bound falls on the wrong side of ``threshold`` is
    drawn in vermillion.
    """

    names: list[str]
    sizes: list[int]
    estimates: list[Estimate]
    metric: str = "label_loyalty"
    threshold: float | None = None
    aggregate: float | None = None
    interval_words: str = "95 % interval"
    higher_is_better: bool = True

    @classmethod
    def from_result(cls, result: Any, *, metric: str = "label_loyalty", threshold: float | None = None,
                    family: bool = True, aggregate: float | None = None, max_slices: int = 30) -> SliceForestDisplay:
        """The ``max_slices`` worst slices of ``result`` by ``metric`` (:meth:`SliceResult.ranked`).

        ``family=True`` draws the intervals at the family's Bonferroni level (what a policy judges).
        """
        from .._keys import metric_info

        ranked = [s for s in result.ranked(metric) if metric in s.estimates][:max_slices]
        if not ranked:
            raise InvalidInputError(f"no slice holds {metric!r}; measured: {sorted(result.slices[0].estimates)}"
                                    if result.slices else "the result holds no slices")
        pick = (lambda s: s.family.get(metric, s.estimates[metric])) if family else (lambda s: s.estimates[metric])
        level = result.family_confidence if family else result.confidence
        words = f"{level * 100:.4g} % interval" + (f" (Bonferroni over {result.m} slices)" if family else "")
        return cls([s.name for s in ranked], [s.n for s in ranked], [pick(s) for s in ranked], metric, threshold,
                   aggregate, words, metric_info(metric).higher_is_better)

    @classmethod
    def from_report(cls, report: Any, **kwargs: Any) -> SliceForestDisplay:
        result = report.slices()
        if result is None:
            raise InvalidInputError("the report holds no slices (compare(..., slices=['builtin']))")
        metric = kwargs.get("metric", "label_loyalty")
        agg = report.metrics.get(metric)
        return cls.from_result(result, aggregate=agg.value if agg is not None else None, **kwargs)

    def _failing(self, e: Estimate) -> bool:
        if self.threshold is None:
            return False
        bound = e.lower if self.higher_is_better else e.upper
        b = float(e.value if bound is None else bound)
        return b < self.threshold if self.higher_is_better else b > self.threshold

    def plot(self, ax: Any = None, *, title: str | None = None) -> SliceForestDisplay:
        """Draw on ``ax`` (a new figure when ``None``)."""
        if ax is None:
            from matplotlib.figure import Figure

            fig = Figure(figsize=(7.5, 1.2 + 0.32 * len(self.names)), layout="constrained")
            ax = fig.add_subplot()
        n = len(self.names)
        ys = list(range(n))[::-1]
        biggest = max(self.sizes) if self.sizes else 1
        for y, e, size in zip(ys, self.estimates, self.sizes):
            color = _FAIL_COLOR if self._failing(e) else _OK_COLOR
            if e.lower is not None and e.upper is not None:
                ax.plot([e.lower, e.upper], [y, y], color=color, lw=2, solid_capstyle="butt")
            ax.scatter([e.value], [y], s=20 + 180 * math.sqrt(size / biggest), color=color, zorder=3,
                       edgecolor="white", linewidth=0.6)
        if self.threshold is not None:
            ax.axvline(self.threshold, color=_FAIL_COLOR, ls="--", lw=1.2, label=f"threshold {self.threshold:g}")
        if self.aggregate is not None and math.isfinite(self.aggregate):
            ax.axvline(self.aggregate, color=_AGG_COLOR, ls=":", lw=1.2, label=f"all rows {self.aggregate:.3f}")
        ax.set_yticks(ys, [f"{_short(name)}  (n={size})" for name, size in zip(self.names, self.sizes)], fontsize=8)
        ax.set_ylim(-0.7, n - 0.3)
        ax.set_xlabel(f"{self.metric.replace('_', ' ')}: point estimate and {self.interval_words}", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
        if self.threshold is not None or self.aggregate is not None:
            ax.legend(loc="lower left", fontsize=8, frameon=False)
        ax.set_title(title or f"{self.metric.replace('_', ' ')} per slice, worst first (marker area ~ size)",
                     fontsize=11)
        self.ax_, self.figure_ = ax, ax.figure
        return self


def _short(name: str, width: int = 48) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


# ----------------------------------------------------------------------------- the policy's judgement
def slice_check(verdict: Any, metric: str = "label_loyalty") -> Any:
    """The verdict's check of ``metric`` on slices (``slices/each/<metric>``), or ``None``."""
    for c in getattr(verdict, "checks", ()) or ():
        if c.metric == f"slices/each/{metric}":
            return c
    return None


def _judgement_html(verdict: Any) -> str:
    details: Mapping[str, Any] = (getattr(verdict, "extra", None) or {}).get("slices", {})
    if not details:
        return ('<p class="note">The policy does not judge slices (a check with <code>slices = "all"</code> '
                "would).</p>")
    out = []
    for c in verdict.checks:
        if c.metric in details:
            cls = {"pass": "ok", "fail": "bad"}.get(c.status, "note")
            out.append(f'<p class="{cls}"><strong>{_e(c.metric)}</strong> — {_e(c.status)}: {_e(c.reason)}</p>')
            d = details[c.metric]
            not_judged = [s for s in d.get("slices", []) if s.get("status") == "not judged"]
            if not_judged:
                out.append(f'<p class="note">Not judged (too few rows at the corrected level): '
                           f'{_e(", ".join(str(s["slice"]) + " (n=" + str(s["n"]) + ")" for s in not_judged))}</p>')
    return "\n".join(out)


# ----------------------------------------------------------------------------- tables
def _cell(e: Estimate | None) -> str:
    return f"<td>{_e(format_estimate(e) or MISSING)}</td>"


def _ranking_table(result: Any, by: str, limit: int, aggregate: float | None) -> str:
    head = ("<tr><th>#</th><th>slice</th><th>n</th><th>label loyalty [CI]</th><th>loss vs all rows</th>"
            "<th>flipped rows</th></tr>")
    rows = []
    for i, s in enumerate(result.ranked(by)[:limit], start=1):
        e = s.estimates.get("label_loyalty")
        loss = MISSING if e is None or aggregate is None else format_number(aggregate - e.value, signed=True)
        rows.append(f"<tr><td>{i}</td><td>{_e(s.name)}</td><td>{s.n}</td>{_cell(e)}<td>{_e(loss)}</td>"
                    f"<td>{s.n_flips}</td></tr>")
    return f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


def _slice_table(result: Any) -> str:
    heads = "".join(f"<th>{_e(t)}</th>" for _, t in _TABLE_METRICS)
    rows = []
    for s in result.slices:
        share = s.n / result.n_examples if result.n_examples else float("nan")
        cells = "".join(_cell(s.estimates.get(k)) for k, _ in _TABLE_METRICS)
        rows.append(f"<tr><td>{_e(s.spec)}</td><td>{_e(s.name)}</td><td>{s.n}</td><td>{share:.1%}</td>"
                    f"<td>{s.n_flips}</td>{cells}</tr>")
    return (f"<table><thead><tr><th>spec</th><th>slice</th><th>n</th><th>share</th><th>flips</th>{heads}</tr>"
            f"</thead><tbody>{''.join(rows)}</tbody></table>")


def _examples_html(examples: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    if not examples:
        return ""
    out = ["<h3>Example disagreements in the worst slices</h3>"]
    for name, rows in examples.items():
        if not rows:
            continue
        cols = [c for c in rows[0] if c != "flipped"]
        head = "".join(f"<th>{_e(c.replace('_', ' '))}</th>" for c in cols)
        body = "".join("<tr>" + "".join(f"<td>{_e(_value(r.get(c)))}</td>" for c in cols) + "</tr>" for r in rows)
        out.append(f"<h4>{_e(name)}</h4><table class=\"examples\"><thead><tr>{head}</tr></thead>"
                   f"<tbody>{body}</tbody></table>")
    return "\n".join(out)


def _value(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def _forest_png(result: Any, threshold: float | None, aggregate: float | None, family: bool) -> str:
    disp = SliceForestDisplay.from_result(result, threshold=threshold, aggregate=aggregate, family=family).plot()
    buf = io.BytesIO()
    disp.figure_.savefig(buf, format="png", dpi=110, facecolor="white", bbox_inches="tight", pad_inches=0.12)
    png = base64.b64encode(buf.getvalue()).decode("ascii")
    return (f'<figure><img alt="label loyalty per slice" style="max-width:100%" src="data:image/png;base64,{png}">'
            "<figcaption>Label loyalty per slice, worst first; the bars are the intervals a policy judges "
            "(Bonferroni-corrected when a check gates on slices), the dashed line the threshold, the dotted "
            "line all rows.</figcaption></figure>")


# ----------------------------------------------------------------------------- the fragment
def slices_fragment(result: Any, verdict: Any = None, *, aggregate: float | None = None,
                    max_rows: int = 10) -> str:
    """The slices section as an HTML fragment (all user text escaped)."""
    check = slice_check(verdict)
    threshold = check.threshold if check is not None else None
    family = check is not None and "point estimates" not in check.reason
    try:
        forest = _forest_png(result, threshold, aggregate, family) if result.slices else ""
    except Exception as exc:  # a drawing problem must not hide the tables
        forest = f'<p class="note">The forest plot could not be drawn ({_e(type(exc).__name__)}: {_e(exc)}).</p>'
    intro = (f"<p>{len(result.slices)} slices of {len(result.specs)} spec(s) ({_e(', '.join(result.specs))}) over "
             f"{result.n_examples} rows. Each slice gets the same metrics as the whole data, with intervals at "
             f"{result.confidence * 100:.4g} %; a policy that gates on slices judges them at "
             f"{result.family_confidence * 100:.4g} % ({_e(result.correction)}).</p>")
    return "\n".join([
        '<div class="trusteq-slices">', "<h2>Where the candidate breaks: slices</h2>", intro,
        _judgement_html(verdict) if verdict is not None else "", forest,
        f"<h3>Slices ranked by loss of loyalty</h3><p class=\"note\">By the upper end of the slice's interval of "
        f"label loyalty (lowest first): a slice that is surely below leads, not a tiny one.</p>"
        f"{_ranking_table(result, 'label_loyalty', max_rows, aggregate)}",
        f"<h3>Slices ranked by flips</h3>{_ranking_table(result, 'flips', max_rows, aggregate)}",
        f"<h3>Every slice</h3>{_slice_table(result)}", _examples_html(result.examples), "</div>"])


def slices_html(report: Any, verdict: Any = None) -> str:
    """The report's slices section: the fragment, or a heading and why slices were not measured."""
    result = report.slices() if hasattr(report, "slices") else None
    if result is None:
        reason = (report.skipped or {}).get("slices", "slices were not requested")
        return f'<h2>Where the candidate breaks: slices</h2><p class="note">{_e(reason)}</p>'
    agg = report.metrics.get("label_loyalty")
    try:
        return slices_fragment(result, verdict, aggregate=agg.value if agg is not None else None)
    except Exception as exc:  # a rendering problem must not hide the rest of the report
        logger.exception("could not render the slices section")
        return (f'<h2>Where the candidate breaks: slices</h2><p class="note">The slices section could not be '
                f"rendered ({_e(type(exc).__name__)}: {_e(exc)}); the slice table is in report.json.</p>")
