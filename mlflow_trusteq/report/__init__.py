"""Plots and the self-contained HTML report of a trust-equivalence comparison.

- Displays (compute with ``from_predictions``/``from_report``, draw with ``plot(ax=None)``):
  :class:`ReliabilityDisplay`, :class:`ConfidenceHistogramDisplay`, :class:`FlipMatrixDisplay`.
- :func:`render_report_html` / :func:`write_report`: one HTML file with the verdict, the
  metrics, the figures (embedded PNG), the disagreement table and the definitions; plus the PNG
  and CSV files an evaluation logs as artifacts.
- :func:`summary_table`: a short plain-text summary for the terminal.

matplotlib is imported only when something is drawn.
"""

from __future__ import annotations

from .displays import ConfidenceHistogramDisplay, FlipMatrixDisplay, ReliabilityDisplay
from .html import disagreement_frame, figure_to_png, render_report_html, report_figures, write_report
from .summary import summary_table

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
]
