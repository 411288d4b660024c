"""The robustness view: the metrics per recipe and the attacked examples, changed words marked.

Renders a :class:`~mlflow_trusteq.attack.RobustnessResult` (plain data: settings, rows,
estimates) as a ``<section class="trusteq-robustness">`` fragment (:func:`robustness_fragment`);
:func:`highlight_diff` marks the words an attack changed.
"""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

from ._fragment import ROLE_HEADS, escaped_settings, estimate_cell, html_table

__all__ = ["robustness_fragment", "highlight_diff"]

_MAIN_METRICS = ("after_attack_accuracy", "attack_success_rate", "mean_queries", "median_queries", "words_changed")


def highlight_diff(original: str, perturbed: str) -> tuple[str, str]:
    """HTML of both texts with the words that differ wrapped in ``<mark>`` (escaped otherwise)."""
    from ..attack._words import tokenize

    a, b = tokenize(original).tokens, tokenize(perturbed).tokens
    if len(a) != len(b):
        return html.escape(original), html.escape(perturbed)
    ha, hb = [], []
    for x, y in zip(a, b):
        if x != y:
            ha.append(f"<mark class=\"orig\">{html.escape(x)}</mark>")
            hb.append(f"<mark class=\"pert\">{html.escape(y)}</mark>")
        else:
            ha.append(html.escape(x))
            hb.append(html.escape(y))
    return "".join(ha), "".join(hb)


def _intro(settings: dict[str, Any]) -> str:
    s = escaped_settings(settings, ("n_attacked", "query_budget", "max_words_changed", "attack_field", "random_state"))
    return (f"<p>Same black-box attack on parent and candidate: {s['n_attacked']} examples that both classify "
            f"correctly, query budget {s['query_budget']} per example and model, at most "
            f"{s['max_words_changed']} of the words changed, field {s['attack_field']}, "
            f"seed {s['random_state']}.</p>")


def _metrics_table(metrics: dict[str, Any], recipe: str) -> str:
    def cell(key: str, colspan: int = 1) -> str:
        return estimate_cell(metrics, f"{recipe}/{key}", colspan=colspan)

    rows = [f"<tr><td>{m}</td>{cell(f'parent/{m}')}{cell(f'candidate/{m}')}{cell(f'diff/{m}')}</tr>"
            for m in _MAIN_METRICS]
    rows += [f"<tr><td>own sample: accuracy</td>{cell('own/parent/accuracy')}"
             f"{cell('own/candidate/accuracy')}<td></td></tr>",
             "<tr><td>own sample: after_attack_accuracy</td>"
             f"{cell('own/parent/after_attack_accuracy')}{cell('own/candidate/after_attack_accuracy')}"
             f"{cell('own/diff/after_attack_accuracy')}</tr>",
             f"<tr><td>transfer_rate (parent → candidate)</td>{cell('transfer_rate', 3)}</tr>",
             f"<tr><td>transfer_rate (candidate → parent)</td>{cell('reverse/transfer_rate', 3)}</tr>"]
    return html_table(ROLE_HEADS, rows)


def _examples_table(table: pd.DataFrame, recipe: str, max_rows: int) -> str:
    """The attacked examples of one recipe where either attack succeeded ("" when none)."""
    if table.empty:
        return ""
    sub = table[table["recipe"] == recipe]
    sub = sub[(sub["parent_status"] == "success") | (sub["candidate_status"] == "success")].head(max_rows)
    if sub.empty:
        return ""
    return html_table(["gold", "original → attacked against the parent", "parent", "attacked against the candidate",
                       "candidate"], (_example_row(r) for _, r in sub.iterrows()), css_class="examples")


def _example_row(r: pd.Series) -> str:
    esc = html.escape
    o_p, a_p = highlight_diff(r["original"], r["parent_perturbed"])
    _, a_c = highlight_diff(r["original"], r["candidate_perturbed"])
    return (f"<tr><td>{esc(str(r['gold']))}</td><td>{o_p}<br>{a_p}</td>"
            f"<td>{esc(str(r['parent_pred_before']))} → {esc(str(r['parent_pred_after']))} "
            f"({r['parent_queries']} q)</td><td>{a_c}</td>"
            f"<td>{esc(str(r['candidate_pred_before']))} → {esc(str(r['candidate_pred_after']))} "
            f"({r['candidate_queries']} q)</td></tr>")


def robustness_fragment(result: Any, *, max_rows: int = 20) -> str:
    """The metrics and up to ``max_rows`` attacked examples per recipe, as an HTML fragment."""
    out = ['<section class="trusteq-robustness"><h2>Robustness</h2>', _intro(result.settings)]
    table = result.table()
    for recipe in result.settings.get("recipes", []):
        rs = result.settings.get("recipe_settings", {}).get(recipe, {})
        out.append(f"<h3>{html.escape(recipe)}: {html.escape(str(rs.get('transformation', '')))}</h3>")
        out.append(f"<p>Word source: {html.escape(str(rs.get('word_source', '')))}</p>")
        out.append(_metrics_table(result.metrics, recipe))
        examples = _examples_table(table, recipe, max_rows)
        if examples:
            out.append(examples)
    out.append("</section>")
    return "\n".join(out)
