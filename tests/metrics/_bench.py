"""``benchmarks/bench_coverage.py`` as a module: the coverage tests draw from its data-generating process."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("bench_coverage", ROOT / "benchmarks" / "bench_coverage.py")
assert _spec is not None and _spec.loader is not None
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)
