"""The self-consistency view: each model's loyalty to itself under two batch plans, and the rows that flip.

Renders a :class:`~mlflow_trusteq._consistency.ConsistencyResult` (plain data: settings, flipped
rows, estimates) as a ``<section class="trusteq-consistency">`` fragment
(:func:`consistency_fragment`), after the pattern of :mod:`._robustness`.
"""

from __future__ import annotations

import html
from typing import Any

from .._format import MISSING
from ._fragment import ROLE_HEADS, escaped_settings, estimate_cell, html_table

__all__ = ["consistency_fragment"]

_METRICS = (("label_loyalty", "label self-loyalty"), ("probability_loyalty", "probability self-loyalty"))


def _plan_text(plan: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in plan.items()) or "the model's own plan"


def _intro(settings: dict[str, Any]) -> str:
    s = escaped_settings(settings, ("n_sampled", "n_requested", "random_state", "headline_plan", "other_plan"))
    return (f"<p>Each model against <em>itself</em>: {s['n_sampled']} rows (of {s['n_requested']} requested, "
            f"seed {s['random_state']}) scored under the {s['other_plan']} batch plan and compared with the same "
            f"model's {s['headline_plan']}-plan scores in this report. Nothing but the batching changes, so a model "
            "whose predictions move depends on the other rows of its batch (dynamic quantization computes its "
            "activation scales per batch, padding included).</p>")


def _plans_table(settings: dict[str, Any]) -> str:
    plans = settings.get("plans", {})
    head, other = settings.get("headline_plan", "evaluation"), settings.get("other_plan", "serving")
    rows = []
    for role in ("parent", "candidate"):
        p = plans.get(role, {})
        rows.append(f"<tr><td>{role}</td><td>{html.escape(_plan_text(p.get(head, {})))}</td>"
                    f"<td>{html.escape(_plan_text(p.get(other, {})))}</td></tr>")
    return html_table(["model", f"{html.escape(str(head))} plan (this report)", f"{html.escape(str(other))} plan"],
                      rows)


def _metrics_table(metrics: dict[str, Any], settings: dict[str, Any]) -> str:
    method = settings.get("method", "batch")
    rows = [f"<tr><td>{title}</td>" + "".join(estimate_cell(metrics, f"{method}/{role}/{metric}")
                                              for role in ("parent", "candidate", "diff")) + "</tr>"
            for metric, title in _METRICS]
    flipped = [settings.get(f"{r}_n_flipped", MISSING) for r in ("parent", "candidate")]
    change = [settings.get(f"{r}_max_abs_change") for r in ("parent", "candidate")]
    rows.append(f"<tr><td>rows whose label flips</td><td>{flipped[0]}</td><td>{flipped[1]}</td><td></td></tr>")
    rows.append("<tr><td>largest |Δp|</td>" + "".join(
        f"<td>{MISSING if c is None else f'{float(c):.2g}'}</td>" for c in change) + "<td></td></tr>")
    return html_table(ROLE_HEADS, rows)


def _flips_table(flips: list[dict[str, Any]], max_rows: int) -> str:
    if not flips:
        return "<p>No sampled row changes its label with the batch plan.</p>"
    esc = html.escape
    rows = [f"<tr><td>{int(r['row'])}</td><td>{esc(str(r['model']))}</td><td>{esc(str(r['label']))}</td>"
            f"<td>{esc(str(r['other_label']))}</td>"
            f"<td>{float(r['probability']):.3f} → {float(r['other_probability']):.3f}</td>"
            f"<td>{float(r['max_abs_change']):.3f}</td></tr>" for r in flips[:max_rows]]
    return html_table(["row", "model", "label (this report)", "label (other plan)",
                       "p(label): this report → other plan", "largest |Δp|"], rows, css_class="examples")


def consistency_fragment(result: Any, *, max_rows: int = 50) -> str:
    """Self-loyalty per model with intervals, both plans, and up to ``max_rows`` flipped rows, as HTML."""
    settings = dict(result.settings or {})
    return "\n".join(['<section class="trusteq-consistency"><h2>Self-consistency under another batch plan</h2>',
                      _intro(settings), _plans_table(settings), _metrics_table(result.metrics, settings),
                      _flips_table(list(result.flips or []), max_rows), "</section>"])
