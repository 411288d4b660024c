"""How numbers and estimates are written for people: one formatter for every text output.

Used by the terminal summary, the HTML report's tables and the policy's reasons.
"""

from __future__ import annotations

import math

from ._types import Estimate

__all__ = ["format_number", "format_ci", "format_estimate", "format_short"]

MISSING = "—"


def format_number(x: float | None, *, signed: bool = False) -> str:
    """Four significant digits, thousands separators for large values, ``—`` for missing.

    Examples
    --------
    >>> format_number(0.93125), format_number(12345.6), format_number(0.0004), format_number(None)
    ('0.9313', '12,346', '4.00e-04', '—')
    >>> format_number(0.012, signed=True)
    '+0.0120'
    """
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return MISSING
    x = float(x)
    sign = "+" if signed and x > 0 else ""
    if x == 0:
        return "0"
    if abs(x) >= 1000:
        return f"{sign}{x:,.0f}"
    if abs(x) >= 10:
        return f"{sign}{x:.4g}"
    if abs(x) >= 1e-3:
        return f"{sign}{x:.4f}"
    return f"{sign}{x:.2e}"


def format_ci(e: Estimate | None, *, signed: bool = False) -> str:
    """``[lower, upper]`` of an estimate, or ``""`` when it has no interval."""
    if e is None or e.lower is None or e.upper is None:
        return ""
    return f"[{format_number(e.lower, signed=signed)}, {format_number(e.upper, signed=signed)}]"


def format_estimate(e: Estimate | None, *, signed: bool = False) -> str:
    """``value [lower, upper]`` (the interval only when there is one); ``""`` for no estimate.

    Examples
    --------
    >>> format_estimate(Estimate(0.93125, 0.9151, 0.9472, 0.95))
    '0.9313 [0.9151, 0.9472]'
    >>> format_estimate(Estimate(-0.01, -0.02, 0.0), signed=True)
    '-0.0100 [-0.0200, 0]'
    """
    if e is None:
        return ""
    ci = format_ci(e, signed=signed)
    return format_number(e.value, signed=signed) + (f" {ci}" if ci else "")


def format_short(x: float) -> str:
    """Four significant digits, as the policy writes values and thresholds in its reasons."""
    return f"{x:.4g}"
