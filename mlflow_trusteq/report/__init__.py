"""Plots and the self-contained HTML report of a trust-equivalence comparison.

- Displays (compute with ``from_predictions``/``from_report``, draw with ``plot(ax=None)``):
  :class:`ReliabilityDisplay`, :class:`ConfidenceHistogramDisplay`, :class:`FlipMatrixDisplay`.
- :func:`render_report_html` / :func:`write_report`: one HTML file with the verdict, the
  metrics, the figures (embedded PNG), the disagreement table and the definitions; plus the PNG
  and CSV files an evaluation logs as artifacts.
- :func:`summary_table`: a short plain-text summary for the terminal; :func:`summary_line`: the
  verdict in one line (the ``trusteq.summary`` tag on the run and the model version).
- The sections' views, rendered from their results (plain data): :func:`alignment_fragment`,
  :func:`alignment_summary`, :func:`render_alignment_html` (a page of its own) and
  :func:`robustness_fragment`; ``AlignmentResult.html()``/``summary()`` and
  ``RobustnessResult.html()`` delegate to them.
- Several candidates of one parent (:func:`mlflow_trusteq.compare_candidates`):
  :class:`CandidateFrontDisplay` (label loyalty against speed-up and size, the Pareto fronts),
  :func:`render_candidates_html` and :func:`write_candidates_page`.

matplotlib is imported only when something is drawn.
"""

from __future__ import annotations

from ._candidates import CandidateFrontDisplay, render_candidates_html, write_candidates_page
from ._alignment import alignment_fragment, alignment_summary, render_alignment_html
from ._consistency import consistency_fragment
from ._robustness import robustness_fragment
from .displays import ConfidenceHistogramDisplay, FlipMatrixDisplay, ReliabilityDisplay
from .html import disagreement_frame, figure_to_png, render_report_html, report_figures, write_report
from .summary import summary_line, summary_table

__all__ = [
    "ReliabilityDisplay",
    "ConfidenceHistogramDisplay",
    "FlipMatrixDisplay",
    "render_report_html",
    "write_report",
    "disagreement_frame",
    "report_figures",
    "figure_to_png",
    "summary_table",
    "summary_line",
    "alignment_fragment",
    "alignment_summary",
    "render_alignment_html",
    "robustness_fragment",
    "consistency_fragment",
    "CandidateFrontDisplay",
    "render_candidates_html",
    "write_candidates_page",
]
