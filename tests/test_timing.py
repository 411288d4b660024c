"""Speed-up with an interval: paired, interleaved timings (issue 10, item 4)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mlflow_trusteq import InvalidInputError
from mlflow_trusteq._timing import measure_speed, speedup_interval


def test_speedup_interval_is_students_on_the_log_ratios():
    tp = np.array([2.0, 2.3, 1.8, 2.1, 2.6])
    tc = np.array([1.0, 1.1, 0.9, 1.2, 1.0])
    e = speedup_interval(tp, tc)
    ref = stats.ttest_1samp(np.log(tp / tc), 0.0).confidence_interval(0.95)
    assert e.value == pytest.approx(stats.gmean(tp / tc))
    assert (e.lower, e.upper) == pytest.approx((np.exp(ref.low), np.exp(ref.high)))


@pytest.mark.parametrize("tp, tc", [([1.0], [1.0, 2.0]), ([0.0], [1.0]), ([np.inf], [1.0]), ([], [])])
def test_speedup_interval_validates(tp, tc):
    with pytest.raises(InvalidInputError):
        speedup_interval(tp, tc)


class _Clocked:
    """A fake model whose call advances a fake clock by ``cost`` seconds per row, recording the call order."""

    def __init__(self, name, cost, clock, log):
        self.name, self.cost, self.clock, self.log = name, cost, clock, log

    def predict_proba(self, records):
        self.log.append((self.name, len(records)))
        self.clock[0] += self.cost * len(records)
        return np.full((len(records), 2), 0.5)


def test_measure_speed_interleaves_the_same_batches_and_measures_latency():
    clock, log = [0.0], []
    parent = _Clocked("parent", 0.002, clock, log)
    candidate = _Clocked("candidate", 0.001, clock, log)
    records = pd.DataFrame({"x": range(500)})
    res = measure_speed(parent, candidate, records, repeats=5, rows=100, clock=lambda: clock[0])
    assert res.batch_rows == 100 and len(res.batch_seconds["parent"]) == 5
    assert res.speedup.value == pytest.approx(2.0) and res.speedup.lower == pytest.approx(2.0)
    assert res.latency("parent").value == pytest.approx(0.002)
    timed = [name for name, rows in log[2:12]]  # after one warm-up call each
    assert timed == ["parent", "candidate", "candidate", "parent"] * 2 + ["parent", "candidate"]
    assert all(rows == 100 for _, rows in log[:12]) and all(rows == 1 for _, rows in log[12:])
    assert "cpu_count" in res.settings()["threads"]
