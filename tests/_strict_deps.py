"""In CI a test skipped for a missing dependency fails the run: a skipped test is not a passed one.

Loaded from ``tests/conftest.py`` (``pytest_plugins``). Active when ``CI`` or
``TRUSTEQ_STRICT_DEPS`` is set to anything but ``""``, ``0``, ``false`` or ``no``; ``tests/run.sh``
first installs what it can (chromium, WordNet's files, a JDK), so a skip left over means a
dependency that could not be had.

A skip is for a missing dependency when its reason says so, as the suite's skips do:
``pytest.importorskip`` ("could not import ..."), or a reason that says "not installed" or names
the install command (``pip install``, ``apt-get install``). Other skips (e.g. "textattack
installed: ...", a test that does not apply) are left alone.
"""

from __future__ import annotations

import os
import re

import pytest

_MISSING = re.compile(r"could not import|no module named|not installed|pip install|apt-get install", re.IGNORECASE)


def strict() -> bool:
    """Whether skips for missing dependencies fail the run (``CI`` or ``TRUSTEQ_STRICT_DEPS`` set)."""
    return any(os.environ.get(var, "").strip().lower() not in ("", "0", "false", "no")
               for var in ("CI", "TRUSTEQ_STRICT_DEPS"))


def is_missing_dependency(reason: str) -> bool:
    """Whether a skip reason says a dependency is missing."""
    return bool(_MISSING.search(reason))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not (report.skipped and strict()) or getattr(report, "wasxfail", None) is not None:
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if is_missing_dependency(reason):
        report.outcome = "failed"
        report.longrepr = (f"skipped for a missing dependency, which fails the run when CI or TRUSTEQ_STRICT_DEPS "
                           f"is set: {reason}")
