r"""The self-contained HTML report (and its PNG/CSV companions) that a reviewer reads in the MLflow UI.

:func:`render_report_html` returns one HTML document with everything inline: the style sheet,
the figures as base64 PNG ``data:`` URIs, no script, no external resource, no network access, so
that it renders the same in MLflow's artifact viewer (an ``<iframe>``), a browser opened from
disk, or an e-mail attachment. All user-supplied text (model names, labels, input texts, reasons,
settings) is escaped with :func:`html.escape`.

Layout, top to bottom: the verdict banner (PASS/FAIL, policy name and digest, every check's
reason: failed first, then skipped, then passed), the metrics table (value and confidence
interval for parent, candidate and their difference, grouped: fidelity, accuracy, calibration,
efficiency, alignment, robustness), the figures, the disagreement table, the alignment and
robustness sections, and "Definitions and settings".

:func:`write_report` writes the files an evaluation logs as artifacts.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import logging
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._errors import InvalidInputError
from .._format import format_ci, format_number
from .._types import Estimate, metric_info
from ._alignment import ALIGNMENT_CSS, alignment_fragment
from ._consistency import consistency_fragment
from ._robustness import robustness_fragment
from ._slices import slices_html
from ._update import update_fragment
from ._table import (
    GROUPS,
    build_rows,
    check_status_by_row,
    group_skip_reason,
    not_measured,
    ordered_checks,
)

logger = logging.getLogger(__name__)

__all__ = ["render_report_html", "write_report", "disagreement_frame", "report_figures", "figure_to_png",
           "FIGURE_CAPTIONS"]

#: what each standard figure shows (used as the caption in the HTML report)
FIGURE_CAPTIONS = {
    "reliability_equal_mass": "Reliability diagram, equal-mass bins (each bin holds the same number of examples). "
                              "Points below the diagonal are over-confident; the bars below count the examples "
                              "per bin (parent up, candidate down).",
    "reliability_equal_width": "Reliability diagram, equal-width bins (Guo et al.). Bins with few examples are "
                               "noisy: read the counts below.",
    "confidence": "Left: distribution of each model's confidence. Right: each example's probability of the "
                  "parent's predicted class under both models; flipped labels are highlighted.",
    "flip_matrix": "Flip matrix: rows are the parent's label, columns the candidate's. The off-diagonal cells "
                   "are the examples on which the candidate changed the parent's decision.",
}

_GROUP_TITLES = {"fidelity": "Fidelity (loyalty)", "accuracy": "Accuracy", "calibration": "Calibration",
                 "efficiency": "Efficiency", "alignment": "Attribution alignment", "robustness": "Robustness",
                 "consistency": "Self-consistency (each model against itself, another batch plan)", "other": "Other"}

_CSS = """
:root { --pass:#1a7f37; --fail:#cf222e; --skip:#9a6700; --ink:#1f2328; --muted:#59636e; --line:#d1d9e0;
        --soft:#f6f8fa; --parent:#0072B2; --candidate:#E69F00; }
* { box-sizing: border-box; }
body { margin: 0; padding: 20px 24px 40px; color: var(--ink); background: #fff;
       font: 14px/1.5 -apple-system, BlinkMacSystemFont, "Segoe UI", Helvetica, Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; }
h1 { font-size: 22px; margin: 0 0 4px; font-weight: 600; }
h2 { font-size: 18px; margin: 32px 0 10px; padding-bottom: 6px; border-bottom: 1px solid var(--line);
     font-weight: 600; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.meta { color: var(--muted); font-size: 13px; margin-bottom: 14px; }
.meta b { color: var(--ink); font-weight: 600; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
.banner { border-radius: 8px; padding: 16px 20px; color: #fff; display: flex; align-items: center;
          gap: 22px; flex-wrap: wrap; }
.banner.pass { background: var(--pass); } .banner.fail { background: var(--fail); }
.banner.none { background: #6e7781; }
.banner .word { font-size: 38px; font-weight: 800; letter-spacing: 2px; }
.banner .sub { font-size: 14px; opacity: .95; }
.banner .sub code { color: #fff; background: rgba(255,255,255,.18); padding: 1px 5px; border-radius: 4px;
                    word-break: break-all; }
ul.checks { list-style: none; padding: 0; margin: 12px 0 0; border: 1px solid var(--line); border-radius: 8px; }
ul.checks li { padding: 7px 12px; border-top: 1px solid var(--line); display: flex; gap: 10px;
               align-items: baseline; }
ul.checks li:first-child { border-top: 0; }
.badge { display: inline-block; min-width: 62px; text-align: center; font-size: 11px; font-weight: 700;
         text-transform: uppercase; border-radius: 10px; padding: 1px 8px; color: #fff; flex: none; }
.badge.pass { background: var(--pass); } .badge.fail { background: var(--fail); }
.badge.skipped { background: var(--skip); }
li.fail { background: #ffebe9; } li.skipped { background: #fff8c5; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 5px 8px; text-align: left; vertical-align: top; }
th { background: var(--soft); font-weight: 600; }
table.metrics td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
table.metrics td.num .ci { display: block; color: var(--muted); font-size: 11.5px; }
table.metrics tr.group td { background: #eef2f6; font-weight: 700; padding-top: 8px; }
table.metrics td.name { white-space: nowrap; }
table.metrics td.name .dir { color: var(--muted); font-size: 11px; margin-left: 4px; }
td.nm { color: var(--muted); font-style: italic; }
th.parent { border-top: 3px solid var(--parent); } th.candidate { border-top: 3px solid var(--candidate); }
.scroll { overflow-x: auto; }
.figs { display: flex; flex-wrap: wrap; gap: 8px 22px; align-items: flex-start; }
figure { margin: 10px 0 18px; flex: 1 1 480px; max-width: 720px; }
figure.wide { flex-basis: 100%; max-width: 1180px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 6px; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; max-width: 900px; }
table.dis td { font-size: 12.5px; }
table.dis tr.flip td { background: #ffe8dc; }
table.dis tr.flip td.cand { color: #b3261e; font-weight: 700; }
table.dis td.txt { min-width: 220px; max-width: 460px; word-break: break-word; }
.note { color: var(--muted); font-size: 13px; }
.section-box { border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; }
.section-box h2 { margin-top: 6px; }
dl.defs dt { font-weight: 600; margin-top: 10px; }
dl.defs dd { margin: 2px 0 0 18px; }
.formula { font-family: "Cambria Math", "STIX Two Math", "Latin Modern Math", Georgia, serif; font-size: 15px;
           background: var(--soft); padding: 4px 10px; border-radius: 4px; display: inline-block; margin: 3px 0; }
details summary { cursor: pointer; color: var(--muted); }
"""


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


# ============================================================================= figures
def figure_to_png(fig: Any, *, dpi: int = 110) -> bytes:
    """PNG bytes of a matplotlib figure (or PNG bytes passed through)."""
    if isinstance(fig, (bytes, bytearray)):
        if not bytes(fig[:8]) == b"\x89PNG\r\n\x1a\n":
            raise InvalidInputError("a figure given as bytes must be a PNG image")
        return bytes(fig)
    if not hasattr(fig, "savefig"):
        raise InvalidInputError(f"expected a matplotlib Figure or PNG bytes, got {type(fig).__name__}")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white", bbox_inches="tight", pad_inches=0.12)
    return buf.getvalue()


def report_figures(report: Any) -> dict[str, Any]:
    """The standard figures of a report, drawn: ``{name: matplotlib Figure}``.

    ``reliability_equal_mass`` and ``reliability_equal_width`` need gold labels,
    ``confidence`` the per-example predictions (a report from ``compare()`` has them, one read
    back from JSON does not); ``flip_matrix`` is always drawn. Figures that cannot be drawn are
    left out (logged at INFO with the reason).
    """
    from .displays import ConfidenceHistogramDisplay, FlipMatrixDisplay, ReliabilityDisplay

    figs: dict[str, Any] = {}
    if report.has_targets:
        for strategy in ("equal_mass", "equal_width"):
            try:
                disp = ReliabilityDisplay.from_report(report, strategy=strategy)
                figs[f"reliability_{strategy}"] = disp.plot().figure_
            except InvalidInputError as exc:
                logger.info("no %s reliability diagram: %s", strategy, exc)
    if report.predictions is not None:
        figs["confidence"] = ConfidenceHistogramDisplay.from_report(report).plot().figure_
    else:
        logger.info("no confidence figure: the report holds no per-example predictions")
    if report.flip_matrix or report.predictions is not None:
        figs["flip_matrix"] = FlipMatrixDisplay.from_report(report).plot().figure_
    return figs


# ============================================================================= disagreements
def disagreement_frame(report: Any, max_rows: int | None = None, *, flips_only: bool = False) -> pd.DataFrame:
    r"""Per-example comparison of the two models, largest probability shift first.

    For example :math:`i` with parent prediction :math:`\hat p_i = \arg\max_j P_{ij}`, the sort
    key is :math:`|\Delta P_i| = |P_{i\hat p_i} - Q_{i\hat p_i}|`, the change in the probability
    of the parent's class.

    Parameters
    ----------
    report : TrustReport
        Must hold its per-example predictions (``report.predictions``).
    max_rows : int, optional
        Keep the first ``max_rows`` rows after sorting.
    flips_only : bool, default False
        Keep only the examples whose predicted label differs.

    Returns
    -------
    DataFrame
        Columns: ``row`` (position in the evaluated data), the feature columns, ``gold``
        (label name; only with gold labels), ``parent_label``, ``parent_confidence``,
        ``candidate_label``, ``candidate_confidence``, ``flipped``, ``abs_delta_parent_class``.
    """
    if max_rows is not None and (isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 0):
        raise InvalidInputError(f"Expected `max_rows` to be None or an integer >= 0, got {max_rows!r}")
    pred = getattr(report, "predictions", None)
    if pred is None:
        raise InvalidInputError("the disagreement table needs the per-example predictions, and this report holds "
                                "none (a report read back from JSON keeps only the summary)")
    P, Q = np.asarray(pred.parent), np.asarray(pred.candidate)
    n = P.shape[0]
    rows = np.arange(n)
    labels = np.asarray([str(x) for x in report.labels], dtype=object)
    pp, pq = P.argmax(axis=1), Q.argmax(axis=1)
    delta = np.abs(P[rows, pp] - Q[rows, pp])
    frame = pred.records.reset_index(drop=True).copy()
    frame.insert(0, "row", rows)
    if pred.targets is not None:
        frame["gold"] = labels[np.asarray(pred.targets, dtype=np.int64)]
    frame["parent_label"] = labels[pp]
    frame["parent_confidence"] = P[rows, pp]
    frame["candidate_label"] = labels[pq]
    frame["candidate_confidence"] = Q[rows, pq]
    frame["flipped"] = pp != pq
    frame["abs_delta_parent_class"] = delta
    if flips_only:
        frame = frame[frame["flipped"].to_numpy()]
    order = np.lexsort((frame["row"].to_numpy(), -frame["abs_delta_parent_class"].to_numpy()))
    frame = frame.iloc[order].reset_index(drop=True)
    if max_rows is not None:
        frame = frame.iloc[:max_rows]
    return frame


# ============================================================================= HTML pieces
def _banner(report: Any, verdict: Any) -> str:
    if verdict is None:
        return ('<div class="banner none"><span class="word">NOT JUDGED</span>'
                '<span class="sub">no verdict was given with this report</span></div>')
    cls = "pass" if verdict.passed else "fail"
    n_fail = sum(c.status == "fail" for c in verdict.checks)
    n_skip = sum(c.status == "skipped" for c in verdict.checks)
    n_pass = sum(c.status == "pass" for c in verdict.checks)
    digest = verdict.policy_digest or "—"
    head = (f'<div class="banner {cls}"><span class="word">{verdict.label.upper()}</span>'
            f'<span class="sub">policy <b>{_e(verdict.policy_name)}</b> &middot; digest <code>{_e(digest)}</code>'
            f'<br>{n_fail} failed &middot; {n_skip} skipped &middot; {n_pass} passed</span></div>')
    items = []
    for c in ordered_checks(verdict):
        items.append(f'<li class="{_e(c.status)}"><span class="badge {_e(c.status)}">{_e(c.status)}</span>'
                     f'<span>{_e(c.reason)}</span></li>')
    body = f'<ul class="checks">{"".join(items)}</ul>' if items else '<p class="note">The policy has no checks.</p>'
    return head + body


def _cell(e: Estimate | None, *, signed: bool = False, colspan: int = 1) -> str:
    span = f' colspan="{colspan}" style="text-align:center"' if colspan > 1 else ""
    if e is None:
        return f'<td class="num"{span}>—</td>'
    ci = format_ci(e, signed=signed)
    ci_html = f'<span class="ci">{_e(ci)}</span>' if ci else ""
    return f'<td class="num"{span}>{_e(format_number(e.value, signed=signed))}{ci_html}</td>'


def _metric_title(name: str) -> tuple[str, str]:
    """(direction arrow, description) of a row's base metric."""
    try:
        info = metric_info(name)
    except KeyError:
        return "", ""
    arrow = "↑ higher is better" if info.higher_is_better else "↓ lower is better"
    return arrow, info.description


def _metrics_table(report: Any, verdict: Any) -> str:
    groups = build_rows(report.metrics)
    status = check_status_by_row(verdict)
    conf = _confidence_level(report)
    head = ('<table class="metrics"><thead><tr><th>metric</th>'
            '<th class="parent">parent</th><th class="candidate">candidate</th>'
            '<th>candidate − parent</th><th>check</th></tr></thead><tbody>')
    out = [head]
    for g in GROUPS:
        rows = groups.get(g, [])
        reason = group_skip_reason(report, g)
        extra = _per_class_rows(report) if g == "fidelity" else []
        if not rows and not reason and not extra:
            continue
        out.append(f'<tr class="group"><td colspan="5">{_e(_GROUP_TITLES[g])}</td></tr>')
        if not rows and reason:
            out.append(f'<tr><td class="nm" colspan="5">{_e(not_measured(reason))}</td></tr>')
            continue
        for row in rows:
            arrow, desc = _metric_title(row.name)
            dir_html = f'<span class="dir" title="{_e(arrow)}">{_e(arrow[:1])}</span>' if arrow else ""
            st = status.get(row.name)
            badge = f'<span class="badge {_e(st)}">{_e(st)}</span>' if st else ""
            name_html = f'<td class="name" title="{_e(desc)}"><code>{_e(row.name)}</code>{dir_html}</td>'
            if row.is_pair:
                cells = _cell(row.values["pair"], colspan=3)
            else:
                cells = (_cell(row.values.get("parent")) + _cell(row.values.get("candidate"))
                         + _cell(row.values.get("diff"), signed=True))
            out.append(f"<tr>{name_html}{cells}<td>{badge}</td></tr>")
        out.extend(extra)
    out.append("</tbody></table>")
    note = (f'<p class="note">Brackets: {_e(_pct(conf))} paired percentile-bootstrap interval (the same resampled '
            "examples for both models). A value spanning three columns is one number for the pair. "
            "↑/↓: the direction that is better.</p>") if conf else ""
    return '<div class="scroll">' + "".join(out) + "</div>" + note


def _per_class_rows(report: Any) -> list[str]:
    if not report.per_class_loyalty:
        return []
    rows = []
    for lab, v in zip(report.labels, report.per_class_loyalty):
        value = "—" if v is None or not math.isfinite(v) else format_number(v)
        rows.append(f'<tr><td class="name"><code>label_loyalty</code> <span class="note">parent predicts '
                    f'{_e(lab)}</span></td><td class="num" colspan="3" style="text-align:center">{_e(value)}</td>'
                    "<td></td></tr>")
    return rows


def _pct(conf: float | None) -> str:
    return "" if conf is None else f"{100 * conf:g}%"


def _confidence_level(report: Any) -> float | None:
    for e in report.metrics.values():
        if e.confidence is not None:
            return float(e.confidence)
    c = (report.settings or {}).get("confidence")
    return float(c) if isinstance(c, (int, float)) else None


def _figures_html(figures: Mapping[str, Any]) -> str:
    if not figures:
        return '<p class="note">No figures.</p>'
    out = []
    for name, fig in figures.items():
        raw = figure_to_png(fig)
        png = base64.b64encode(raw).decode("ascii")
        caption = FIGURE_CAPTIONS.get(name, name.replace("_", " "))
        wide = ' class="wide"' if _png_aspect(raw) > 1.6 else ""
        out.append(f'<figure id="fig-{_e(name)}"{wide}><img alt="{_e(name)}" src="data:image/png;base64,{png}">'
                   f"<figcaption>{_e(caption)}</figcaption></figure>")
    return '<div class="figs">' + "".join(out) + "</div>"


def _png_aspect(png: bytes) -> float:
    """Width / height from a PNG's IHDR chunk."""
    import struct

    try:
        w, h = struct.unpack(">II", png[16:24])
        return w / h if h else 1.0
    except struct.error:
        return 1.0


def _disagreement_html(frame: pd.DataFrame | None, report: Any, max_rows: int, text_limit: int = 400) -> str:
    if frame is None:
        return f'<p class="note">{_e(not_measured("the report holds no per-example predictions"))}</p>'
    frame = frame.iloc[:max_rows]
    if len(frame) == 0:
        return '<p class="note">No examples to show.</p>'
    n_flip = int(frame["flipped"].sum()) if "flipped" in frame else None
    cols = [c for c in frame.columns if c != "flipped"]
    feature_cols = set(report.feature_columns)
    head = "".join(f"<th>{_e(_pretty_col(c))}</th>" for c in cols)
    body = []
    for _, r in frame.iterrows():
        cls = ' class="flip"' if bool(r.get("flipped", False)) else ""
        tds = []
        for c in cols:
            v = r[c]
            if isinstance(v, (float, np.floating)):
                tds.append(f'<td class="num">{_e(format_number(float(v)))}</td>')
            else:
                s = str(v)
                if len(s) > text_limit:
                    s = s[: text_limit - 1] + "…"
                klass = ' class="txt"' if c in feature_cols else (' class="cand"' if c == "candidate_label" else "")
                tds.append(f"<td{klass}>{_e(s)}</td>")
        body.append(f"<tr{cls}>{''.join(tds)}</tr>")
    flips = f" {n_flip} of them flip the label (highlighted)." if n_flip else ""
    F = np.asarray(report.flip_matrix) if report.flip_matrix else None
    overall = (f" Over all {int(F.sum()):,} examples, {int(F.sum() - np.trace(F)):,} flip the label."
               if F is not None and F.size else "")
    note = (f'<p class="note">The {len(frame)} examples where the probability of the parent\'s predicted class '
            f"moved most, |ΔP| = |P(parent's class) − Q(parent's class)|.{flips}{overall}</p>")
    return (note + f'<div class="scroll"><table class="dis"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def _pretty_col(c: str) -> str:
    return {"abs_delta_parent_class": "|ΔP|", "parent_label": "parent label", "candidate_label": "candidate label",
            "parent_confidence": "parent conf.", "candidate_confidence": "candidate conf."}.get(str(c), str(c))


_SECTION_TITLES = {"alignment": "Attribution alignment", "robustness": "Robustness",
                   "consistency": "Self-consistency under another batch plan"}
#: each section's view: a fragment rendered from the section's result (its style rules are in the page's head)
_SECTION_RENDERERS: dict[str, Callable[[Any], str]] = {"alignment": alignment_fragment,
                                                       "robustness": robustness_fragment,
                                                       "consistency": consistency_fragment}


def _section_html(report: Any, section: str) -> str:
    """The section's own HTML (it brings its heading), or a heading and why it was not measured."""
    h2 = f"<h2>{_e(_SECTION_TITLES.get(section, section))}</h2>"
    if section not in (report.sections or {}):
        reason = (report.skipped or {}).get(section, "this section was not run")
        return f'{h2}<p class="note">{_e(not_measured(reason))}</p>'
    try:
        result = getattr(report, section)()
        if result is None:
            raise LookupError("no result")
        body = _SECTION_RENDERERS[section](result)
    except Exception as exc:  # a rendering problem must not hide the rest of the report
        logger.exception("could not render the %s section", section)
        raw = json.dumps(report.sections[section], indent=1, default=str)[:20_000]
        return (f'{h2}<p class="note">The {_e(section)} section could not be rendered ({_e(type(exc).__name__)}: '
                f'{_e(exc)}); its raw result:</p><details><summary>raw result</summary>'
                f'<pre class="mono">{_e(raw)}</pre></details>')
    return f'<div class="section-box" id="sec-{_e(section)}">{body}</div>'


def _flatten(d: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.extend(_flatten(v, key + "."))
        else:
            out.append((key, v))
    return out


def _setting_value(v: Any, limit: int = 600) -> str:
    s = v if isinstance(v, str) else json.dumps(v, default=str)
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _setting(report: Any, *names: str, default: Any = None) -> Any:
    s = report.settings or {}
    metrics = s.get("metrics")
    inner: Mapping[str, Any] = metrics if isinstance(metrics, Mapping) else {}
    for name in names:
        if name in s and s[name] is not None:
            return s[name]
        if name in inner and inner[name] is not None:
            return inner[name]
    return default


def _base_words(base: Any) -> str:
    try:
        b = float(base)
    except (TypeError, ValueError):
        return _e(base)
    if abs(b - math.e) < 1e-9:
        return "e (natural log, scipy's default; 1 − √JS then never falls below about 0.167)"
    if b == 2:
        return "2 (JS in bits, so JS and the loyalty lie in [0, 1])"
    return f"{b:g}"


def _definitions(report: Any) -> str:
    base = _setting(report, "js_base", "base", default=2.0)
    nb_w = _setting(report, "n_bins_equal_width", default="?")
    nb_m = _setting(report, "n_bins_equal_mass", default="?")
    mbc = _setting(report, "min_bin_count", default="?")
    n_res = _setting(report, "n_resamples", default="?")
    conf = _setting(report, "confidence", default="?")
    seed = _setting(report, "random_state", default="?")
    scheme = _setting(report, "bootstrap", default="examples")
    interval = _setting(report, "interval", default="percentile, paired")
    conf_s = _pct(conf) if isinstance(conf, (int, float)) else str(conf)
    defs = [
        ("Label loyalty", "LL = (1/n) Σ<sub>i</sub> [argmax<sub>j</sub> P<sub>ij</sub> = argmax<sub>j</sub> "
                          "Q<sub>ij</sub>]",
         "P: the parent's probabilities, Q: the candidate's; ties in argmax go to the lowest class index."),
        ("Probability loyalty", "PL = (1/n) Σ<sub>i</sub> (1 − √JS<sub>b</sub>(P<sub>i</sub> ‖ Q<sub>i</sub>)), "
                                "JS<sub>b</sub>(p‖q) = ½ KL<sub>b</sub>(p‖m) + ½ KL<sub>b</sub>(q‖m), m = (p+q)/2",
         f"Log base b = {_base_words(base)}."),
        ("Flip rates", "NFR = (1/n) Σ<sub>i</sub> [parent right ∧ candidate wrong], "
                       "PFR = (1/n) Σ<sub>i</sub> [parent wrong ∧ candidate right]",
         "Flip matrix: rows are the parent's label, columns the candidate's."),
        ("ECE", "ECE = Σ<sub>b</sub> (|B<sub>b</sub>| / n) · |acc(B<sub>b</sub>) − conf(B<sub>b</sub>)|",
         f"Confidence = top-class probability. Two bin schemes: {_e(nb_w)} equal-width bins "
         f"(edges linspace(0, 1, M+1); a value on an interior edge goes to the lower bin, 1.0 to the last) "
         f"and {_e(nb_m)} equal-mass bins (rank-based: stable sort of the confidences, cut into groups "
         "of near-equal size)."),
        ("MCE", "MCE = max<sub>b : |B<sub>b</sub>| ≥ m</sub> |acc(B<sub>b</sub>) − conf(B<sub>b</sub>)|",
         f"Only bins with at least m = {_e(mbc)} examples count (MCE is very noisy on small bins)."),
        ("Brier score", "BS = (1/n) Σ<sub>i</sub> Σ<sub>j</sub> (Q<sub>ij</sub> − [y<sub>i</sub> = j])²",
         "Summed over all classes (range [0, 2]); for two classes twice scikit-learn's brier_score_loss."),
        ("Log loss", "NLL = −(1/n) Σ<sub>i</sub> ln max(Q<sub>i y<sub>i</sub></sub>, 10<sup>−15</sup>)",
         "Natural log."),
        ("Confidence intervals", "",
         f"Bootstrap: {_e(interval)}; resampling unit: {_e(scheme)}; {_e(n_res)} resamples; "
         f"{_e(conf_s)} two-sided interval; seed {_e(seed)}. Differences are candidate − parent, computed "
         "resample by resample. The gate judges the pessimistic end of an interval, not the point estimate."),
    ]
    items = []
    for name, formula, note in defs:
        f_html = f'<div class="formula">{formula}</div>' if formula else ""
        items.append(f"<dt>{_e(name)}</dt><dd>{f_html}<div>{note}</div></dd>")
    settings_rows = "".join(f"<tr><td><code>{_e(k)}</code></td><td class=\"mono\">{_e(_setting_value(v))}</td></tr>"
                            for k, v in _flatten(report.settings or {}))
    settings_tbl = ('<h3>Settings recorded with the report</h3><div class="scroll"><table><thead><tr><th>setting</th>'
                    f"<th>value</th></tr></thead><tbody>{settings_rows}</tbody></table></div>") if settings_rows \
        else '<p class="note">The report records no settings.</p>'
    skipped = report.skipped or {}
    skipped_html = ""
    if skipped:
        rows = "".join(f"<tr><td><code>{_e(k)}</code></td><td>{_e(v)}</td></tr>" for k, v in skipped.items())
        skipped_html = (f"<h3>Not measured</h3><table><thead><tr><th>what</th><th>why</th></tr></thead>"
                        f"<tbody>{rows}</tbody></table>")
    return f'<dl class="defs">{"".join(items)}</dl>{settings_tbl}{skipped_html}'


def _meta(report: Any) -> str:
    labels = ", ".join(str(x) for x in report.labels)
    if len(labels) > 300:
        labels = labels[:299] + "…"
    parts = [
        f"parent <b>{_e(report.parent_name)}</b>",
        f"candidate <b>{_e(report.candidate_name)}</b>",
        f"<b>{report.n_examples:,}</b> examples ({_e(report.kind)})",
        f"gold labels: <b>{'yes' if report.has_targets else 'no'}</b>",
        f"labels: {_e(labels)}",
    ]
    if report.feature_columns:
        parts.append("features: " + _e(", ".join(str(c) for c in report.feature_columns)[:300]))
    if report.data_digest:
        parts.append(f'data digest <code title="{_e(report.data_digest)}">{_e(report.data_digest[:16])}…</code>')
    if report.created_at:
        parts.append(f"created {_e(report.created_at)}")
    return '<div class="meta">' + " &middot; ".join(parts) + "</div>"


# ============================================================================= public API
def render_report_html(report: Any, verdict: Any, *, title: str | None = None,
                       figures: Mapping[str, Any] | None = None, disagreements: pd.DataFrame | None = None,
                       max_disagreements: int = 50) -> str:
    """Render a report and its verdict as one self-contained HTML document.

    Parameters
    ----------
    report : TrustReport
    verdict : Verdict or None
        The policy's judgement; ``None`` shows "NOT JUDGED".
    title : str, optional
        Default: "Trust-equivalence: <candidate> vs <parent>".
    figures : dict[str, Figure or PNG bytes], optional
        Embedded in order as base64 PNG; default: :func:`report_figures` (``{}`` embeds none).
        Known names (``reliability_equal_mass``, ``reliability_equal_width``, ``confidence``,
        ``flip_matrix``) get a caption.
    disagreements : DataFrame, optional
        Default: :func:`disagreement_frame` when the report holds predictions.
    max_disagreements : int, default 50
        Rows of the disagreement table shown.

    Returns
    -------
    str
        The HTML document: no script, no external resource; every user text escaped.
    """
    if isinstance(max_disagreements, bool) or not isinstance(max_disagreements, int) or max_disagreements < 0:
        raise InvalidInputError(f"Expected `max_disagreements` >= 0, got {max_disagreements!r}")
    if figures is None:
        figures = report_figures(report)
    if disagreements is None and report.predictions is not None:
        disagreements = disagreement_frame(report, max_rows=max_disagreements)
    title = title or f"Trust-equivalence: {report.candidate_name} vs {report.parent_name}"
    now = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}{ALIGNMENT_CSS}</style></head><body><main>",
        f"<h1>{_e(title)}</h1>",
        _meta(report),
        '<section id="verdict">', _banner(report, verdict), "</section>",
        '<section id="metrics"><h2>Metrics</h2>', _metrics_table(report, verdict), "</section>",
        '<section id="figures"><h2>Figures</h2>', _figures_html(figures), "</section>",
        '<section id="disagreements"><h2>Where the models disagree</h2>',
        _disagreement_html(disagreements, report, max_disagreements), "</section>",
        '<section id="slices">', slices_html(report, verdict), "</section>",
        '<section id="alignment">', _section_html(report, "alignment"), "</section>",
        '<section id="robustness">', _section_html(report, "robustness"), "</section>",
        '<section id="consistency">', _section_html(report, "consistency"), "</section>",
        '<section id="update">', update_fragment(report, verdict), "</section>",
        '<section id="definitions"><h2>Definitions and settings</h2>', _definitions(report), "</section>",
        f'<p class="note">Generated by mlflow-trusteq at {_e(now)}.</p>',
        "</main></body></html>",
    ]
    return "\n".join(parts)


def write_report(report: Any, verdict: Any, out_dir: str | Path, *, dpi: int = 110,
                 max_disagreements: int = 50) -> dict[str, Path]:
    """Write the report's figures, disagreement table and HTML into ``out_dir``.

    Files (each only when it can be made): ``reliability_equal_mass.png``,
    ``reliability_equal_width.png`` (with gold labels), ``confidence.png`` and
    ``disagreements.csv`` (with per-example predictions; the CSV holds every example, sorted by
    ``|ΔP|``), ``flip_matrix.png``, and ``report.html`` (the figures embedded, the top
    ``max_disagreements`` rows of the table).

    Returns
    -------
    dict[str, Path]
        File name -> path of each file written, e.g. ``paths["report.html"]``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    figures = report_figures(report)
    pngs = {name: figure_to_png(fig, dpi=dpi) for name, fig in figures.items()}
    for name, png in pngs.items():
        p = out / f"{name}.png"
        p.write_bytes(png)
        paths[p.name] = p
    disagreements = None
    if report.predictions is not None:
        full = disagreement_frame(report)
        p = out / "disagreements.csv"
        full.to_csv(p, index=False)
        paths[p.name] = p
        disagreements = full.iloc[:max_disagreements]
    text = render_report_html(report, verdict, figures=pngs, disagreements=disagreements,
                              max_disagreements=max_disagreements)
    p = out / "report.html"
    p.write_text(text, encoding="utf-8")
    paths[p.name] = p
    logger.info("wrote %d report files to %s", len(paths), out)
    return paths
