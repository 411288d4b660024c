"""A self-contained HTML view that puts the parent's and the candidate's attributions side by side.

Each shown example (worst-aligned first) gets, per method, a parent row and a candidate row of its
words, shaded red where the word pushes toward the explained class and blue where it pushes
away, the intensity proportional to ``|attribution|`` (scaled per example and method over both
rows), with a one-line caption.
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from .alignment import AlignmentResult

__all__ = ["render_alignment_html"]

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
.ex{border:1px solid #ddd;border-radius:6px;padding:.6em .8em;margin:.8em 0}
.cap{font-size:.9em;color:#444;margin-bottom:.4em}
.row{margin:.2em 0;line-height:1.9}.who{display:inline-block;width:7.5em;font-size:.8em;color:#666}
.w{padding:.1em .2em;border-radius:3px;margin:0 .05em}
.sum{background:#f7f7f7;padding:.6em .8em;border-radius:6px}
"""


def _shade(w: float, scale: float) -> str:
    if scale <= 0 or not math.isfinite(w) or w == 0:
        return "transparent"
    a = min(1.0, abs(w) / scale) * 0.85
    return f"rgba(220,38,38,{a:.3f})" if w > 0 else f"rgba(37,99,235,{a:.3f})"


def _words_row(e: dict[str, Any], weights: list[float]) -> list[tuple[str, int]]:
    """(piece, feature index or -1) in reading order over all fields of a text example."""
    from ._features import text_features

    f = text_features(e["fields"])
    out: list[tuple[str, int]] = []
    for fi, (pieces, feats) in enumerate(zip(f.pieces, f.piece_feature)):
        if fi:
            out.append((" ‖ ", -1))
        out.extend((p, int(j)) for p, j in zip(pieces, feats))
    return out


def _render_row(e: dict[str, Any], w: np.ndarray, scale: float) -> str:
    if "fields" in e:
        parts = _words_row(e, w.tolist())
    else:
        parts = []
        for j, name in enumerate(e["features"]):
            parts.extend([(name, j), (" ", -1)])
    out = []
    for p, j in parts:
        if j < 0 or j >= len(w):
            out.append(html.escape(p))
        else:
            out.append(f'<span class="w" style="background:{_shade(float(w[j]), scale)}" '
                       f'title="{html.escape(e["features"][j])}: {w[j]:+.4f}">{html.escape(p)}</span>')
    return "".join(out)


def render_alignment_html(result: AlignmentResult, *, max_examples: int = 20) -> str:
    """The attribution comparison page (a complete HTML document)."""
    methods = list(result.methods)
    primary = methods[0]

    def worst_key(e: dict[str, Any]) -> float:
        v = e.get(f"{primary}/metrics", {}).get("top_k_jaccard")
        return 2.0 if v is None else float(v)

    shown = sorted(result.examples, key=worst_key)[:max_examples]
    body = [f"<h2>Attribution alignment: parent vs candidate</h2><p class='sum'>{html.escape(result.summary())}</p>",
            "<p>Red: the word pushes toward the explained class; blue: away from it; darker = larger |attribution| "
            f"(scaled per example and method). {len(shown)} of {len(result.examples)} explained examples, "
            f"worst {primary.upper()} top-k Jaccard first.</p>"]
    for e in shown:
        caps = []
        for m in methods:
            met = e.get(f"{m}/metrics", {})
            fl = e.get(f"{m}/floor_metrics", {}) or {}
            j = met.get("top_k_jaccard")
            fj = fl.get("top_k_jaccard")
            caps.append(f"{m.upper()} Jaccard@{e['k']} {'n/a' if j is None else f'{j:.2f}'}"
                        + ("" if fj is None else f" (floor {fj:.2f})"))
        cap = f"row {e['row']} · explained class '{e['target_label']}' · " + " · ".join(caps)
        rows = [f"<div class='cap'>{html.escape(cap)}</div>"]
        for m in methods:
            a = np.asarray(e.get(f"{m}/parent", []), dtype=float)
            b = np.asarray(e.get(f"{m}/candidate", []), dtype=float)
            if a.size == 0:
                continue
            scale = float(max(np.abs(a).max(initial=0), np.abs(b).max(initial=0)))
            for who, w in (("parent", a), ("candidate", b)):
                rows.append(f"<div class='row'><span class='who'>{m.upper()} {who}</span>"
                            f"{_render_row(e, w, scale)}</div>")
        body.append(f"<div class='ex'>{''.join(rows)}</div>")
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>trusteq attribution alignment</title>"
            f"<style>{_STYLE}</style></head><body>{''.join(body)}</body></html>")
