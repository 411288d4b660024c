"""The attribution-alignment view: the parent's and the candidate's attributions side by side.

Renders an :class:`~mlflow_trusteq.explain.AlignmentResult` (plain data: examples, estimates,
settings). Each shown example (worst-aligned first) gets, per method, a parent row and a
candidate row of its words, shaded red where the word pushes toward the explained class and blue
where it pushes away, the intensity proportional to ``|attribution|`` (scaled per example and
method over both rows), with a one-line caption.

- :func:`alignment_summary`: one sentence per method (plain text).
- :func:`alignment_fragment`: a ``<section class="trusteq-alignment">`` for the report; its style
  rules (:data:`ALIGNMENT_CSS`) are all scoped to that class, so the report includes them once in
  its own style sheet.
- :func:`render_alignment_html`: the same view as a page of its own.
"""

from __future__ import annotations

import html
import math
from typing import Any

import numpy as np

from .._format import format_estimate

__all__ = ["ALIGNMENT_CSS", "alignment_summary", "alignment_fragment", "render_alignment_html"]

#: Style rules of the fragment, every one scoped to ``.trusteq-alignment``.
ALIGNMENT_CSS = """
.trusteq-alignment .ex{border:1px solid #ddd;border-radius:6px;padding:.6em .8em;margin:.8em 0}
.trusteq-alignment .cap{font-size:.9em;color:#444;margin-bottom:.4em}
.trusteq-alignment .row{margin:.2em 0;line-height:1.9}
.trusteq-alignment .who{display:inline-block;width:7.5em;font-size:.8em;color:#666}
.trusteq-alignment .w{padding:.1em .2em;border-radius:3px;margin:0 .05em}
.trusteq-alignment .sum{background:#f7f7f7;padding:.6em .8em;border-radius:6px}
"""

_PAGE_CSS = "body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}"


def alignment_summary(result: Any) -> str:
    """One sentence per method: the alignment, its noise floor, and what that means."""
    est = result.estimates()
    lines = []
    for m in result.methods:
        a = est[f"{m}/top_k_jaccard"]
        text = f"{m.upper()}: top-{result.settings.get('top_k')} Jaccard {format_estimate(a)}"
        if f"{m}/noise_floor/top_k_jaccard" in est:
            fl = est[f"{m}/noise_floor/top_k_jaccard"]
            det = m == "shap"
            text += f", noise floor {format_estimate(fl)}" + (" (deterministic explainer: exactly 1)" if det else "")
            if det:
                text += "; the SHAP floor carries no sampling noise, so any gap is the models' or max_evals'."
            elif result.within_noise_floor(m):
                text += ("; parent vs candidate is within the noise floor of the explainer: "
                         "not evidence of anything.")
            else:
                text += ("; parent vs candidate is below the noise floor (paired 95% interval of the gap "
                         "excludes 0): the models rely on different words.")
        lines.append(text)
    return " ".join(lines)


def _shade(w: float, scale: float) -> str:
    if scale <= 0 or not math.isfinite(w) or w == 0:
        return "transparent"
    a = min(1.0, abs(w) / scale) * 0.85
    return f"rgba(220,38,38,{a:.3f})" if w > 0 else f"rgba(37,99,235,{a:.3f})"


def _pieces(e: dict[str, Any]) -> list[tuple[str, int]]:
    """(piece, feature index or -1) in reading order: the words of all text fields, or the columns."""
    if "fields" not in e:
        out: list[tuple[str, int]] = []
        for j, name in enumerate(e["features"]):
            out.extend([(name, j), (" ", -1)])
        return out
    from ..explain._features import text_features

    f = text_features(e["fields"])
    out = []
    for fi, (pieces, feats) in enumerate(zip(f.pieces, f.piece_feature)):
        if fi:
            out.append((" ‖ ", -1))
        out.extend((p, int(j)) for p, j in zip(pieces, feats))
    return out


def _render_row(e: dict[str, Any], w: np.ndarray, scale: float) -> str:
    out = []
    for p, j in _pieces(e):
        if j < 0 or j >= len(w):
            out.append(html.escape(p))
        else:
            out.append(f'<span class="w" style="background:{_shade(float(w[j]), scale)}" '
                       f'title="{html.escape(e["features"][j])}: {w[j]:+.4f}">{html.escape(p)}</span>')
    return "".join(out)


def _caption(e: dict[str, Any], methods: list[str]) -> str:
    caps = []
    for m in methods:
        j = e.get(f"{m}/metrics", {}).get("top_k_jaccard")
        fj = (e.get(f"{m}/floor_metrics", {}) or {}).get("top_k_jaccard")
        caps.append(f"{m.upper()} Jaccard@{e['k']} {'n/a' if j is None else f'{j:.2f}'}"
                    + ("" if fj is None else f" (floor {fj:.2f})"))
    return f"row {e['row']} · explained class '{e['target_label']}' · " + " · ".join(caps)


def _example_html(e: dict[str, Any], methods: list[str]) -> str:
    rows = [f"<div class='cap'>{html.escape(_caption(e, methods))}</div>"]
    for m in methods:
        a = np.asarray(e.get(f"{m}/parent", []), dtype=float)
        b = np.asarray(e.get(f"{m}/candidate", []), dtype=float)
        if a.size == 0:
            continue
        scale = float(max(np.abs(a).max(initial=0), np.abs(b).max(initial=0)))
        for who, w in (("parent", a), ("candidate", b)):
            rows.append(f"<div class='row'><span class='who'>{m.upper()} {who}</span>"
                        f"{_render_row(e, w, scale)}</div>")
    return f"<div class='ex'>{''.join(rows)}</div>"


def alignment_fragment(result: Any, *, max_examples: int = 20) -> str:
    """The attribution comparison as a ``<section class="trusteq-alignment">`` (style: :data:`ALIGNMENT_CSS`)."""
    methods = list(result.methods)
    primary = methods[0]

    def worst_key(e: dict[str, Any]) -> float:
        v = e.get(f"{primary}/metrics", {}).get("top_k_jaccard")
        return 2.0 if v is None else float(v)

    shown = sorted(result.examples, key=worst_key)[:max_examples]
    body = ['<section class="trusteq-alignment">',
            "<h2>Attribution alignment: parent vs candidate</h2>"
            f"<p class='sum'>{html.escape(alignment_summary(result))}</p>",
            "<p>Red: the word pushes toward the explained class; blue: away from it; darker = larger |attribution| "
            f"(scaled per example and method). {len(shown)} of {len(result.examples)} explained examples, "
            f"worst {primary.upper()} top-k Jaccard first.</p>"]
    body.extend(_example_html(e, methods) for e in shown)
    body.append("</section>")
    return "".join(body)


def render_alignment_html(result: Any, *, max_examples: int = 20) -> str:
    """The attribution comparison as a complete, self-contained HTML page."""
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>trusteq attribution alignment</title>"
            f"<style>{_PAGE_CSS}{ALIGNMENT_CSS}</style></head><body>"
            f"{alignment_fragment(result, max_examples=max_examples)}</body></html>")
