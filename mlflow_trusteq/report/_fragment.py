"""The pieces the section fragments share: an HTML table of rendered rows, a cell per estimate, escaped settings.

A section view (:mod:`._robustness`, :mod:`._consistency`) renders plain data as
``<section>`` fragments; its tables are built here, one row per line, so every fragment's tables
have the same shape and the per-role metric tables the same header.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .._format import MISSING, format_estimate

__all__ = ["html_table", "estimate_cell", "escaped_settings", "ROLE_HEADS"]

#: the header of a metric table with one column per role
ROLE_HEADS = ("metric", "parent", "candidate", "candidate − parent")


def html_table(heads: Sequence[str], rows: Iterable[str], *, css_class: str | None = None) -> str:
    """``<table>`` with the header cells ``heads`` and the rendered ``<tr>`` ``rows``, one per line.

    The heads and rows are HTML already: escape what they hold before.
    """
    cls = f' class="{css_class}"' if css_class else ""
    head = "".join(f"<th>{h}</th>" for h in heads)
    return "\n".join([f"<table{cls}><thead><tr>{head}</tr></thead><tbody>", *rows, "</tbody></table>"])


def estimate_cell(metrics: Mapping[str, Any], key: str, *, colspan: int = 1) -> str:
    """A ``<td>`` with the estimate of ``key`` and its interval (the missing mark when it is absent)."""
    span = f" colspan={colspan}" if colspan != 1 else ""
    return f"<td{span}>{format_estimate(metrics.get(key)) or MISSING}</td>"


def escaped_settings(settings: Mapping[str, Any], keys: Sequence[str]) -> dict[str, str]:
    """The ``keys`` of a section's settings as escaped text, for its introduction (``None`` when absent)."""
    return {k: html.escape(str(settings.get(k))) for k in keys}
