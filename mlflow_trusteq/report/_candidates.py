"""The candidates page: several compressions of one parent, side by side (plain rendering of plain data).

- :class:`CandidateFrontDisplay` (the Display pattern): ``from_comparison`` computes the points
  (label loyalty with its interval, speed-up, size ratio, verdict, Pareto fronts); ``plot(ax=None)``
  draws label loyalty's lower bound against speed-up and against size, the fronts marked.
- :func:`render_candidates_html`: one self-contained HTML page — the recommendation, the figure, one
  table row per candidate (verdict, loyalty, calibration, alignment, robustness, speed-up, size,
  the fronts, the summary of what failed) — each row linking to the candidate's own report.
- :func:`write_candidates_page`: the page, the figure, a CSV of the table and each candidate's report.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._format import MISSING, format_ci, format_number
from .._types import Estimate
from .html import _CSS, figure_to_png
from .summary import summary_line

logger = logging.getLogger(__name__)

__all__ = ["CandidateFrontDisplay", "render_candidates_html", "write_candidates_page", "candidate_slug"]

PASS_COLOR = "#009E73"  # Okabe-Ito bluish green
FAIL_COLOR = "#D55E00"  # Okabe-Ito vermillion
ERROR_COLOR = "#8c8c8c"
FRONT_COLOR = "#1f2328"

#: axis key -> (axis label, which way is better)
_AXES = {"speedup": ("speed-up over the parent (×, higher is faster)", True),
         "size_ratio": ("size on disk / parent's (lower is smaller)", False)}


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def candidate_slug(name: str, taken: Sequence[str] = ()) -> str:
    """A file-system-safe folder name for a candidate (``models:/m/2`` -> ``models_m_2``), unique among ``taken``."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "candidate"
    slug, i = base[:80], 2
    while slug in taken:
        slug, i = f"{base[:76]}_{i}", i + 1
    return slug


@dataclass(frozen=True)
class _Point:
    name: str
    loyalty: float
    lower: float
    upper: float
    x: dict[str, float | None]
    passed: bool
    front: dict[str, bool]


@dataclass
class CandidateFrontDisplay:
    """Label loyalty (its lower confidence bound) against speed-up and size, one point per candidate.

    Build it with :meth:`from_comparison`; :meth:`plot` draws one panel per axis (``axes``):
    each candidate's lower bound as a filled marker (green: passes the policy, red: fails) with
    its interval as a bar, the policy's loyalty threshold as a dashed line, the parent at
    ``x = 1``, and the Pareto front (no candidate is better on both) joined by a step line, its
    members ringed and named. Keeps ``ax_`` (the axes) and ``figure_``.
    """

    points: list[_Point]
    threshold: float | None = None
    parent_name: str = "parent"
    axes: tuple[str, ...] = ("speedup", "size_ratio")

    @classmethod
    def from_comparison(cls, comparison: Any, *, axes: Sequence[str] = ("speedup", "size_ratio")
                        ) -> CandidateFrontDisplay:
        """Compute the points of a :class:`~mlflow_trusteq.CandidateComparison` (candidates in error are left out)."""
        unknown = [a for a in axes if a not in _AXES]
        if unknown or not axes:
            from .._errors import InvalidInputError

            raise InvalidInputError(f"Expected `axes` among {list(_AXES)}, got {list(axes)!r}")
        points = []
        for c in comparison.candidates:
            lower = c.value("label_loyalty", "lower")
            if not c.ok or lower is None:
                continue
            points.append(_Point(
                name=c.name, loyalty=float(c.value("label_loyalty")), lower=lower,
                upper=float(c.value("label_loyalty", "upper") or lower),
                x={a: c.value(a) for a in axes}, passed=bool(c.verdict is not None and c.verdict.passed),
                front={a: c.name in comparison.front.get(a, ()) for a in axes}))
        shown = tuple(a for a in axes if any(p.x.get(a) is not None for p in points)) or tuple(axes[:1])
        return cls(points, comparison.loyalty_threshold, comparison.parent_name, shown)

    def plot(self, ax: Any = None, *, title: str | None = None) -> CandidateFrontDisplay:
        """Draw one panel per axis on ``ax`` (a sequence of axes), or on a new figure."""
        if ax is None:
            from matplotlib.figure import Figure

            fig = Figure(figsize=(6.2 * len(self.axes), 4.8), layout="constrained")
            ax = fig.subplots(1, len(self.axes), squeeze=False)[0]
        ax = list(ax) if isinstance(ax, Sequence) or hasattr(ax, "__iter__") else [ax]
        for a, axis in zip(ax, self.axes):
            self._panel(a, axis)
        self.ax_ = ax
        self.figure_ = ax[0].figure
        self.figure_.legend(handles=_legend_handles(), loc="outside lower center", ncols=4, fontsize=9,
                            frameon=False)
        if title:
            self.figure_.suptitle(title, fontsize=13)
        return self

    def _panel(self, ax: Any, axis: str) -> None:
        label, higher = _AXES[axis]
        pts = [p for p in self.points if p.x.get(axis) is not None]
        for p in pts:
            color = PASS_COLOR if p.passed else FAIL_COLOR
            x = float(p.x[axis])  # type: ignore[arg-type]
            ax.plot([x, x], [p.lower, p.upper], color=color, alpha=0.45, linewidth=2.2, zorder=2)
            ax.scatter([x], [p.loyalty], marker="_", s=90, color=color, zorder=3)
            ax.scatter([x], [p.lower], s=70, color=color, edgecolor="white", linewidth=0.8, zorder=4)
        front = sorted((p for p in pts if p.front.get(axis)), key=lambda p: float(p.x[axis]))  # type: ignore[arg-type]
        if front:
            xs = [float(p.x[axis]) for p in front]  # type: ignore[arg-type]
            ys = [p.lower for p in front]
            # the edge of the region the front dominates (below-left when x is maximised, below-right when minimised)
            ax.step(xs, ys, where="pre" if higher else "post", color=FRONT_COLOR, linewidth=1.2, linestyle="-",
                    alpha=0.7, zorder=1)
            ax.scatter(xs, ys, s=190, facecolor="none", edgecolor=FRONT_COLOR, linewidth=1.5, zorder=5)
        for p in pts:
            ax.annotate(_short(p.name), (float(p.x[axis]), p.lower), textcoords="offset points",  # type: ignore[arg-type]
                        xytext=(8, -12), fontsize=9, fontweight="bold" if p.front.get(axis) else "normal",
                        color="#1f2328" if p.front.get(axis) else "#59636e", zorder=6)
        ax.axvline(1.0, color="#0072B2", linestyle=":", linewidth=1.2, zorder=0)
        ax.annotate(f"parent ({_short(self.parent_name, 24)})", (1.0, 1.0), xycoords=("data", "axes fraction"),
                    xytext=(4, -14), textcoords="offset points", fontsize=8.5, color="#0072B2")
        if self.threshold is not None:
            ax.axhline(self.threshold, color="#59636e", linestyle="--", linewidth=1.0, zorder=0)
            ax.annotate(f"policy: lower bound ≥ {self.threshold:g}", (1.0, self.threshold),
                        xycoords=("axes fraction", "data"), xytext=(-4, 4), textcoords="offset points",
                        ha="right", fontsize=8.5, color="#59636e")
        xs_all = [float(p.x[axis]) for p in pts] + [1.0]  # type: ignore[arg-type]
        lo, hi = min(xs_all), max(xs_all)
        pad = 0.08 * (hi - lo or 1.0)
        ax.set_xlim(lo - pad, hi + 3.5 * pad)
        lows = [p.lower for p in pts] + ([self.threshold] if self.threshold is not None else [])
        y_lo = min(lows) if lows else 0.0
        ax.set_ylim(max(0.0, y_lo - 0.05 * (1.0 - y_lo + 0.02) - 0.01), 1.005)
        ax.set_xlabel(label)
        ax.set_ylabel("label loyalty (dot: CI lower bound; bar: CI)")
        better = "better: up and right" if higher else "better: up and left"
        ax.set_title(f"Label loyalty vs {'speed-up' if axis == 'speedup' else 'size'}  ({better})", fontsize=11)
        ax.grid(True, color="#eaeef2", linewidth=0.8)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)


def _legend_handles() -> list[Any]:
    from matplotlib.lines import Line2D

    return [Line2D([], [], marker="o", linestyle="", color=PASS_COLOR, label="passes the policy"),
            Line2D([], [], marker="o", linestyle="", color=FAIL_COLOR, label="fails the policy"),
            Line2D([], [], marker="_", linestyle="-", color="#8c8c8c", linewidth=2.2, markersize=9,
                   label="point estimate and CI"),
            Line2D([], [], marker="o", linestyle="-", color=FRONT_COLOR, markerfacecolor="none", markersize=11,
                   label="Pareto front")]


def _short(name: str, width: int = 34) -> str:
    return name if len(name) <= width else "…" + name[-(width - 1):]


# ============================================================================= HTML
_PAGE_CSS = """
.reco { border-radius: 8px; padding: 14px 18px; margin: 12px 0 6px; font-size: 15px; }
.reco.ok { background: #dafbe1; border: 1px solid #4ac26b; }
.reco.none { background: #ffebe9; border: 1px solid #ff8182; }
.reco b { font-size: 16px; }
table.cands td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
table.cands td.num .ci { display: block; color: var(--muted); font-size: 11.5px; }
table.cands tr.best td { background: #f0fff4; }
table.cands tr.best td:first-child { box-shadow: inset 4px 0 0 var(--pass); }
table.cands td.why { font-size: 12px; color: #8c1d18; padding-top: 0; }
table.cands tr.whyrow td { border-top: 0; }
table.cands tr:has(+ tr.whyrow) td { border-bottom: 0; }
table.cands th { white-space: normal; vertical-align: bottom; }
table.cands td:first-child { white-space: nowrap; }
table.cands td, table.cands th { padding: 5px 6px; }
table.cands th .sub { display: block; font-weight: 400; color: var(--muted); font-size: 11px; }
.front { display: inline-block; font-size: 11px; font-weight: 700; border: 1.5px solid var(--ink);
         border-radius: 10px; padding: 0 6px; margin: 1px 2px; white-space: nowrap; }
.badge.error { background: #6e7781; }
.badge.incomplete { background: var(--skip); }
"""

#: table columns: (report key, header, sub-header, signed)
_COLUMNS = [
    ("label_loyalty", "label loyalty", "same label as the parent", False),
    ("probability_loyalty", "probability loyalty", "1 − √JS", False),
    ("diff/accuracy", "Δ accuracy", "candidate − parent", True),
    ("diff/ece_equal_mass", "Δ ECE", "equal-mass bins", True),
    ("diff/brier_loss", "Δ Brier", "candidate − parent", True),
]
_SECTION_COLUMNS = [
    ("alignment/lime/normalized/top_k_jaccard", "LIME top-k", "Jaccard vs parent", False),
    ("alignment/shap/normalized/top_k_jaccard", "SHAP top-k", "Jaccard vs parent", False),
    ("robustness/word/diff/after_attack_accuracy", "Δ attacked acc.", "word attack", True),
    ("robustness/char/diff/after_attack_accuracy", "Δ attacked acc.", "char attack", True),
]


def _num(c: Any, key: str, signed: bool) -> str:
    if not c.ok or c.report is None or key not in c.report.metrics:
        return f'<td class="num nm">{MISSING}</td>'
    e: Estimate = c.report.metrics[key]
    ci = format_ci(e, signed=signed)
    return (f'<td class="num">{_e(format_number(e.value, signed=signed))}'
            + (f'<span class="ci">{_e(ci)}</span>' if ci else "") + "</td>")


def _ratio(c: Any, key: str) -> str:
    v = c.value(key)
    return f'<td class="num">{_e(format_number(v))}×</td>' if v is not None else f'<td class="num nm">{MISSING}</td>'


def _order(comparison: Any) -> list[Any]:
    """Passing first, then failing, then errors; within each, fastest first."""
    def rank(c: Any) -> tuple[int, float]:
        group = 2 if not c.ok else (0 if c.verdict is not None and c.verdict.passed else 1)
        return group, -(c.value("speedup") or 0.0)

    return sorted(comparison.candidates, key=rank)


def _recommendation(comparison: Any) -> str:
    best = comparison.best()
    if best is None:
        measured = [c for c in comparison.candidates if c.ok]
        closest = max(measured, key=lambda c: c.value("label_loyalty", "lower") or 0.0) if measured else None
        extra = (f" The closest is <b>{_e(closest.name)}</b>: {_e(summary_line(closest.report, closest.verdict))}"
                 if closest is not None else "")
        return f'<div class="reco none">No candidate passes policy <b>{_e(comparison.policy_name)}</b>.{extra}</div>'
    c = comparison[best]
    lower = c.value("label_loyalty", "lower")
    size = c.value("size_ratio")
    return (f'<div class="reco ok">Best passing compression: <b>{_e(best)}</b> — '
            f"{_e(format_number(c.value('speedup')))}× the parent's speed"
            + (f", {_e(format_number(size))}× its size" if size is not None else "")
            + (f", label loyalty ≥ {_e(format_number(lower))} (lower CI bound)" if lower is not None else "")
            + ". It is on the speed-up front: no other passing candidate is both faster and more loyal.</div>")


def render_candidates_html(comparison: Any, *, figure: Any = None, links: Mapping[str, str] | None = None,
                           title: str | None = None) -> str:
    """The comparison as one self-contained HTML page (no script, no external resource, every text escaped).

    Parameters
    ----------
    comparison : CandidateComparison
    figure : Figure or PNG bytes, optional
        Default: :class:`CandidateFrontDisplay` drawn from ``comparison``.
    links : dict of candidate name to a URL, optional
        Each candidate's own report (the table's names link there).
    title : str, optional
        Default: "Candidates of <parent>".
    """
    links = dict(links or {})
    png = _front_png(comparison, figure)
    title = title or f"Candidates of {comparison.parent_name}"
    sections = [k for k in _SECTION_COLUMNS if any(c.value(k[0]) is not None for c in comparison.candidates)]
    columns = _COLUMNS + sections
    best = comparison.best()
    rows = [row for c in _order(comparison) for row in _candidate_rows(comparison, c, columns, links, best)]
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}{_PAGE_CSS}</style></head><body><main>",
        f"<h1>{_e(title)}</h1>", _meta(comparison), _recommendation(comparison),
        '<section id="front"><h2>Trust against speed and size</h2>', _figure_html(png), "</section>",
        '<section id="candidates"><h2>Every candidate</h2><div class="scroll"><table class="cands">',
        f"<thead>{_table_head(columns)}</thead><tbody>{''.join(rows)}</tbody></table></div>",
        '<p class="note">Numbers: point estimate, its paired bootstrap interval below. Δ = candidate − parent. '
        "A candidate's name links to its full report (figures, disagreements, definitions).</p></section>",
        "</main></body></html>"])


def _front_png(comparison: Any, figure: Any) -> bytes | bytearray | None:
    """The figure as PNG bytes: the one given, else :class:`CandidateFrontDisplay` (none when nothing was measured)."""
    if figure is None and any(c.ok for c in comparison.candidates):
        figure = CandidateFrontDisplay.from_comparison(comparison).plot().figure_
    if isinstance(figure, (bytes, bytearray)) or figure is None:
        return figure
    return figure_to_png(figure, dpi=110)


def _table_head(columns: Sequence[tuple[str, str, str, bool]]) -> str:
    return ("<tr><th>candidate</th><th>verdict</th>"
            + "".join(f"<th>{_e(h)}<span class=\"sub\">{_e(s)}</span></th>" for _, h, s, _ in columns)
            + '<th>speed-up<span class="sub">parent time / candidate time</span></th>'
            + '<th>size<span class="sub">candidate / parent on disk</span></th>'
            + '<th>Pareto front<span class="sub">loyalty bound vs</span></th></tr>')


def _candidate_rows(comparison: Any, c: Any, columns: Sequence[tuple[str, str, str, bool]],
                    links: Mapping[str, str], best: str | None) -> list[str]:
    """One candidate's table row (its error across the row when it was not measured), and why it fails."""
    name = _e(c.name)
    if c.name in links:
        name = f'<a href="{_e(links[c.name])}">{name}</a>'
    if not c.ok:
        return [f'<tr><td><code>{name}</code></td><td><span class="badge error">error</span></td>'
                f'<td colspan="{len(columns) + 3}" class="why">could not be evaluated: {_e(c.error)}</td></tr>']
    status = c.verdict.label if c.verdict is not None else "error"
    fronts = "".join(f'<span class="front">◆ {"speed" if a == "speedup" else "size"}</span>'
                     for a in ("speedup", "size_ratio") if c.name in comparison.front.get(a, ()))
    why = "" if c.verdict is None or c.verdict.passed else summary_line(c.report, c.verdict).split(": ", 1)[-1]
    rows = [f'<tr class="{"best" if c.name == best else ""}"><td><code>{name}</code></td>'
            f'<td><span class="badge {_e(status)}">{_e(status)}</span></td>'
            + "".join(_num(c, k, signed) for k, _, _, signed in columns)
            + _ratio(c, "speedup") + _ratio(c, "size_ratio")
            + f"<td>{fronts}</td></tr>"]
    if why:
        rows.append(f'<tr class="whyrow"><td></td><td colspan="{len(columns) + 4}" class="why">'
                    f"<b>fails:</b> {_e(why)}</td></tr>")
    return rows


def _figure_html(png: bytes | bytearray | None) -> str:
    if png is None:
        return ""
    import base64

    return (f'<figure class="wide"><img alt="label loyalty against speed-up and size" '
            f'src="data:image/png;base64,{base64.b64encode(bytes(png)).decode()}">'
            "<figcaption>Each dot is a candidate's lower confidence bound on label loyalty (the number "
            "the policy judges), its bar the interval. The ringed candidates form the Pareto front: no "
            "other candidate is both more loyal and faster (left) or smaller (right). The dashed line "
            "is the policy's threshold.</figcaption></figure>")


def _meta(comparison: Any) -> str:
    """The line under the title: the parent, how many candidates and examples, the policy, the data digest."""
    return (f'<div class="meta">parent <b>{_e(comparison.parent_name)}</b> &middot; '
            f"<b>{len(comparison.candidates)}</b> candidates &middot; <b>{comparison.n_examples:,}</b> examples "
            f"({_e(comparison.kind)}) &middot; policy <b>{_e(comparison.policy_name)}</b>"
            + (f' &middot; data digest <code title="{_e(comparison.data_digest)}">{_e(comparison.data_digest[:16])}'
               "…</code>" if comparison.data_digest else "")
            + " &middot; the parent was scored once for all candidates</div>")


def write_candidates_page(comparison: Any, out_dir: str | Path, *, dpi: int = 110,
                          reports: bool = True) -> dict[str, Path]:
    """Write ``candidates.html``, ``candidates_front.png``, ``candidates.csv`` and (``reports``) each
    candidate's report under ``<slug>/`` into ``out_dir``.

    Returns
    -------
    dict[str, Path]
        Relative file name -> path of each file written.
    """
    from .html import write_report

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    png = None
    if any(c.ok for c in comparison.candidates):
        png = figure_to_png(CandidateFrontDisplay.from_comparison(comparison).plot().figure_, dpi=dpi)
        (out / "candidates_front.png").write_bytes(png)
        paths["candidates_front.png"] = out / "candidates_front.png"
    links: dict[str, str] = {}
    if reports:
        taken: list[str] = []
        for c in comparison.candidates:
            if not c.ok:
                continue
            slug = candidate_slug(c.name, taken)
            taken.append(slug)
            for name, p in write_report(c.report, c.verdict, out / slug, dpi=dpi).items():
                paths[f"{slug}/{name}"] = p
            links[c.name] = f"{slug}/report.html"
    comparison.table().to_csv(out / "candidates.csv", index=False)
    paths["candidates.csv"] = out / "candidates.csv"
    (out / "candidates.html").write_text(render_candidates_html(comparison, figure=png, links=links),
                                         encoding="utf-8")
    paths["candidates.html"] = out / "candidates.html"
    logger.info("wrote the comparison of %d candidates to %s", len(comparison.candidates), out)
    return paths
