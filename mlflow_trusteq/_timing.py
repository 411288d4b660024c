r"""Speed of two models with an interval: repeated, interleaved timings on the same batches.

:func:`measure_speed` (what ``compare()`` calls after scoring, so both models are warm) times
both models on **the same batch** ``R`` times, alternating which goes first, then both at batch
size 1 (latency); :func:`speedup_interval` turns the paired timings into the speed-up and its
interval. The thread settings in force are recorded with the timings (:func:`thread_settings`):
a speed-up is a property of a machine and its settings, not of the models alone.

The speed-up of repeat :math:`r` is :math:`s_r = t^{parent}_r / t^{candidate}_r`; the reported
speed-up is their geometric mean and the interval is Student's on the logarithms,

.. math::

    \exp\Big(\bar\ell \pm t_{R-1,\,1-\alpha/2}\,\frac{s_\ell}{\sqrt R}\Big), \qquad
    \ell_r = \ln s_r,

which is exact when the log-ratios are normal and, the two timings of a repeat being taken
back to back, cancels the drift of the machine's load between repeats.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from ._errors import InvalidInputError
from ._types import Estimate

__all__ = ["SpeedResult", "measure_speed", "speedup_interval", "thread_settings", "TIMING_REPEATS",
           "TIMING_ROWS", "TIMING_BUDGET_S"]

#: repeats of the interleaved timing (fewer when :data:`TIMING_BUDGET_S` runs out, never fewer than 3)
TIMING_REPEATS = 7
#: rows of the batch timed in each repeat (the first rows of the data)
TIMING_ROWS = 128
#: seconds the repeats may take in all before they stop (after at least 3)
TIMING_BUDGET_S = 20.0


def thread_settings() -> dict[str, Any]:
    """The thread settings that change a timing: CPU count, the usual environment variables, torch's."""
    out: dict[str, Any] = {"cpu_count": os.cpu_count()}
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TOKENIZERS_PARALLELISM"):
        out[var] = os.environ.get(var)
    torch = sys.modules.get("torch")
    if torch is not None:
        out["torch_num_threads"] = int(torch.get_num_threads())
        out["torch_num_interop_threads"] = int(torch.get_num_interop_threads())
    return out


def speedup_interval(parent_seconds: Any, candidate_seconds: Any, *, confidence: float = 0.95) -> Estimate:
    """Geometric-mean speed-up of paired timings with Student's interval on the log-ratios (module docstring).

    Examples
    --------
    >>> e = speedup_interval([2.0, 2.2, 1.9, 2.1], [1.0, 1.0, 1.0, 1.0])
    >>> round(e.value, 3), e.lower < e.value < e.upper
    (2.047, True)
    """
    tp = np.asarray(parent_seconds, dtype=np.float64).ravel()
    tc = np.asarray(candidate_seconds, dtype=np.float64).ravel()
    if tp.shape != tc.shape or tp.size == 0:
        raise InvalidInputError(f"Expected paired timings of the same length, got {tp.size} and {tc.size}")
    if not (np.all(np.isfinite(tp)) and np.all(np.isfinite(tc)) and np.all(tp > 0) and np.all(tc > 0)):
        raise InvalidInputError("timings must be finite and > 0 seconds")
    if isinstance(confidence, bool) or not 0.0 < float(confidence) < 1.0:
        raise InvalidInputError(f"Expected 0 < `confidence` < 1, got {confidence!r}")
    ell = np.log(tp / tc)
    point = float(np.exp(ell.mean()))
    if ell.size < 2:
        return Estimate(point, None, None, confidence)
    half = float(stats.t.ppf(0.5 + confidence / 2.0, ell.size - 1)) * float(ell.std(ddof=1)) / math.sqrt(ell.size)
    return Estimate(point, float(np.exp(ell.mean() - half)), float(np.exp(ell.mean() + half)), confidence)


@dataclass(frozen=True)
class SpeedResult:
    """Paired timings of both models and what they give.

    ``batch_seconds[role]``: one entry per repeat, the seconds of one call on the same
    ``batch_rows`` rows; ``latency_seconds[role]``: seconds of one call on one row, per repeat.
    """

    batch_rows: int
    batch_seconds: dict[str, list[float]]
    latency_seconds: dict[str, list[float]]
    speedup: Estimate
    threads: dict[str, Any] = field(default_factory=dict)

    def latency(self, role: str) -> Estimate:
        """Median seconds per call at batch size 1."""
        return Estimate(float(np.median(self.latency_seconds[role])))

    def settings(self) -> dict[str, Any]:
        """What the report records: the protocol, the raw timings and the thread settings."""
        return {"protocol": "interleaved repeats on the same batch after scoring (both warm); speed-up = geometric "
                            "mean of per-repeat ratios, Student-t interval on their logarithms",
                "batch_rows": self.batch_rows, "repeats": len(self.batch_seconds["parent"]),
                "batch_seconds": self.batch_seconds, "latency_seconds": self.latency_seconds,
                "threads": self.threads}


def measure_speed(parent: Any, candidate: Any, records: Any, *, repeats: int = TIMING_REPEATS,
                  rows: int = TIMING_ROWS, budget_s: float = TIMING_BUDGET_S, confidence: float = 0.95,
                  clock: Callable[[], float] = time.perf_counter) -> SpeedResult:
    """Time ``predict_proba`` of both models on the same first ``rows`` records, ``repeats`` times, interleaved.

    Each repeat times the two models back to back, the order alternating between repeats; one
    warm-up call of each on the batch comes first. Then the same at batch size 1 (the first
    record). Stops early (after at least 3 repeats) when ``budget_s`` is spent.
    """
    n = len(records)
    if n == 0:
        raise InvalidInputError("no records to time")
    batch = records.iloc[: min(rows, n)] if hasattr(records, "iloc") else records[: min(rows, n)]
    single = records.iloc[:1] if hasattr(records, "iloc") else records[:1]
    models = {"parent": parent, "candidate": candidate}
    out: dict[str, dict[str, list[float]]] = {}
    start = clock()
    for what, data in (("batch", batch), ("latency", single)):
        for m in models.values():  # warm-up on this shape
            m.predict_proba(data)
        secs: dict[str, list[float]] = {"parent": [], "candidate": []}
        for r in range(repeats):
            for role in (("parent", "candidate") if r % 2 == 0 else ("candidate", "parent")):
                t0 = clock()
                models[role].predict_proba(data)
                secs[role].append(max(clock() - t0, 1e-9))
            if r >= 2 and clock() - start > budget_s:
                break
        out[what] = secs
    speed = speedup_interval(out["batch"]["parent"], out["batch"]["candidate"], confidence=confidence)
    return SpeedResult(len(batch), out["batch"], out["latency"], speed, thread_settings())
