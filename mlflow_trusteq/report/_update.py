"""The "Model update" view: how the candidate's mistakes relate to the parent's, and the guards.

Renders the model-update metrics (:mod:`mlflow_trusteq.metrics.update`: the split of disagreement,
backward trust and error compatibility, McNemar's test, the change in AURC), the comparability
guards of the verdict (:mod:`mlflow_trusteq._guards`) and, when it was measured, the per-layer
comparison of an ONNX int8 candidate (:mod:`mlflow_trusteq.explain.onnx_layers`) as one
``<section>`` fragment: :func:`update_fragment`.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping
from typing import Any

from .._format import MISSING, format_estimate

__all__ = ["update_fragment", "guards_fragment", "layers_fragment"]

logger = logging.getLogger(__name__)

_ROWS = (("negative_flip_rate", "negative flips (parent right, candidate wrong) / n"),
         ("positive_flip_rate", "positive flips (parent wrong, candidate right) / n"),
         ("wrong_to_other_wrong_rate", "wrong to other wrong (both wrong, different labels) / n"),
         ("backward_trust_compatibility", "backward trust compatibility (BTC)"),
         ("backward_error_compatibility", "backward error compatibility (BEC)"))


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _metric_rows(metrics: Mapping[str, Any]) -> list[str]:
    out = []
    for key, title in _ROWS:
        out.append(f"<tr><td>{_e(title)}</td><td colspan=\"3\">{_e(format_estimate(metrics.get(key)) or MISSING)}"
                   "</td></tr>")
    cells = "".join(f"<td>{_e(format_estimate(metrics.get(f'{r}/aurc'), signed=r == 'diff') or MISSING)}</td>"
                    for r in ("parent", "candidate", "diff"))
    out.append(f"<tr><td>AURC (risk-coverage, confidence = max probability)</td>{cells}</tr>")
    return out


def _mcnemar_line(settings: Mapping[str, Any]) -> str:
    test = settings.get("mcnemar") or {}
    if not test:
        return ""
    method = ("exact binomial test" if test.get("method") == "exact"
              else "chi-square test with continuity correction")
    return (f"<p>McNemar's test on the paired correctness ({_e(method)}, b = {_e(test.get('negative_flips'))} "
            f"negative and c = {_e(test.get('positive_flips'))} positive flips): statistic "
            f"{_e(format_estimate_value(test.get('statistic')))}, "
            f"p = {_e(format_estimate_value(test.get('p_value')))}. "
            "A small p-value says the two models are right at different rates.</p>")


def format_estimate_value(v: Any) -> str:
    try:
        return f"{float(v):.4g}"
    except (TypeError, ValueError):
        return MISSING


def update_fragment(report: Any, verdict: Any = None) -> str:
    """The whole "Model update" section: metrics, McNemar, guards and (when measured) the layer table.

    A rendering problem shows as a note in the section; it never hides the rest of the report.
    """
    try:
        return _render(report, verdict)
    except Exception as exc:
        logger.exception("could not render the model-update section")
        return (f'<h2>Model update</h2><p class="note">This section could not be rendered ({_e(type(exc).__name__)}: '
                f"{_e(exc)}).</p>")


def _render(report: Any, verdict: Any) -> str:
    parts = ["<h2>Model update: how the candidate's mistakes relate to the parent's</h2>"]
    settings = (report.settings or {}).get("update")
    if settings is None:
        reason = (report.skipped or {}).get("update", "not measured")
        parts.append(f'<p class="note">{_e(reason)}</p>')
    else:
        parts.append("<p>Rates over all n examples, proportions with Wilson intervals; the AURC difference has a "
                     "bias-corrected paired bootstrap interval (Bansal et al. 2019 for BTC/BEC).</p>")
        parts.append('<table><thead><tr><th>metric</th><th>parent</th><th>candidate</th><th>candidate − parent'
                     "</th></tr></thead><tbody>")
        parts.extend(_metric_rows(report.metrics))
        parts.append("</tbody></table>")
        parts.append(_mcnemar_line(settings))
    parts.append(guards_fragment(verdict))
    layers = (report.settings or {}).get("onnx_layers")
    if layers:
        parts.append(layers_fragment(layers))
    return "\n".join(p for p in parts if p)


def guards_fragment(verdict: Any) -> str:
    """The comparability guards of the verdict, one row each (status and reason)."""
    checks = [c for c in getattr(verdict, "checks", ()) if str(c.metric).startswith("guard_")]
    if not checks:
        return ""
    rows = "".join(f'<tr><td><code>{_e(c.metric)}</code></td><td><span class="badge {_e(c.status)}">'
                   f"{_e(c.status)}</span></td><td>{_e(c.reason)}</td></tr>" for c in checks)
    return ("<h3>Comparability guards</h3><table><thead><tr><th>guard</th><th>status</th><th>reason</th></tr>"
            f"</thead><tbody>{rows}</tbody></table>")


def layers_fragment(layers: Mapping[str, Any]) -> str:
    """The top-k layers by activation error of an ONNX int8 candidate against its ONNX parent."""
    if layers.get("error"):
        return f'<h3>Per-layer activations (ONNX)</h3><p class="note">not measured: {_e(layers["error"])}</p>'
    rows = "".join(
        f"<tr><td>{i + 1}</td><td><code>{_e(r['tensor'])}</code></td><td>{_e(r.get('op_type', ''))}</td>"
        f"<td>{_e(format_estimate_value(r['relative_l2']))}</td><td>{_e(format_estimate_value(r['sqnr_db']))}</td>"
        "</tr>" for i, r in enumerate(layers.get("top", [])))
    return (f"<h3>Per-layer activations (ONNX): the {len(layers.get('top', []))} most divergent of "
            f"{_e(layers.get('n_compared'))} tensors, on {_e(layers.get('n_inputs'))} inputs</h3>"
            "<p>Each intermediate output of the parent's graph that the candidate's graph also produces, compared "
            "on the same inputs: relative L2 error ‖c − p‖ / ‖p‖ (higher is worse) and SQNR = 10 log10(‖p‖² / "
            "‖c − p‖²) dB (lower is worse).</p>"
            "<table><thead><tr><th>#</th><th>tensor</th><th>op</th><th>relative L2</th><th>SQNR (dB)</th></tr>"
            f"</thead><tbody>{rows}</tbody></table>")
