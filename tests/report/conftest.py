"""Synthetic but realistic parent/candidate probabilities, and TrustReports built from them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlflow_trusteq._types import Estimate
from mlflow_trusteq.compare import Predictions, TrustReport
from mlflow_trusteq.metrics.pair import summarize_pair
from mlflow_trusteq.policy import Policy


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _make_pair(n: int = 600, k: int = 2, seed: int = 0):
    """(P, Q, y): a confident, slightly over-confident parent and a noisier candidate derived from it."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    z = rng.normal(0.0, 1.0, size=(n, k))
    z[np.arange(n), y] += rng.normal(1.6, 1.2, size=n)   # signal for the gold class
    P = _softmax(2.2 * z)                                   # sharpened: over-confident
    Q = _softmax(1.3 * z + rng.normal(0.0, 0.7, size=(n, k)))  # the candidate: noisier, softer
    return P, Q, y


def _make_report(P, Q, y=None, *, labels=None, records=None, parent_name="bert-base (v1)",
                candidate_name="bert-base-int8 (v2)", n_resamples=200) -> TrustReport:
    """A TrustReport assembled the way compare() assembles it, from probabilities."""
    n, k = P.shape
    labels = tuple(labels or [f"class_{i}" for i in range(k)])
    if records is None:
        records = pd.DataFrame({"sentence": [f"example sentence number {i}" for i in range(n)]})
    s = summarize_pair(P, Q, y, n_resamples=n_resamples, random_state=0)
    metrics = dict(s.estimates)
    skipped = {}
    if y is None:
        skipped["calibration"] = "not measured: no gold labels were given (pass `targets=`)"
        skipped["accuracy"] = "not measured: no gold labels were given (pass `targets=`)"
    metrics["parent/throughput"] = Estimate(812.5)
    metrics["candidate/throughput"] = Estimate(1490.0)
    metrics["speedup"] = Estimate(1490.0 / 812.5)
    metrics["size_ratio"] = Estimate(0.26)
    skipped["alignment"] = "not requested (pass `alignment=True` or a config)"
    skipped["robustness"] = "not requested (pass `robustness=True` or a config)"
    settings = {"js_base": 2.0, "n_bins_equal_width": 15, "n_bins_equal_mass": 10, "min_bin_count": 10,
                "n_resamples": n_resamples, "confidence": 0.95, "random_state": 0, "chunk_size": 65536,
                "targets_column": "label" if y is not None else None, "label_order": list(labels),
                "candidate_label_permutation": list(range(k)), "metrics": dict(s.settings)}
    from mlflow_trusteq._types import to_jsonable

    return TrustReport(
        metrics=metrics, labels=labels, n_examples=n, has_targets=y is not None, kind="text",
        feature_columns=tuple(records.columns), parent_name=parent_name, candidate_name=candidate_name,
        settings=settings, skipped=skipped, flip_matrix=s.flip_matrix,
        per_class_loyalty=list(s.per_class_loyalty), reliability=to_jsonable(s.reliability),
        data_digest="ab" * 32, created_at="2026-11-23T12:00:00+00:00",
        predictions=Predictions(P, Q, None if y is None else np.asarray(y), records))


@pytest.fixture
def make_pair():
    """``make_pair(n=600, k=2, seed=0) -> (P, Q, y)``."""
    return _make_pair


@pytest.fixture
def make_report():
    """``make_report(P, Q, y=None, *, labels=None, records=None, ...) -> TrustReport``."""
    return _make_report


@pytest.fixture(scope="session")
def pair():
    return _make_pair()


@pytest.fixture(scope="session")
def report(pair):
    """A report with labels (frozen: tests derive variants with dataclasses.replace)."""
    P, Q, y = pair
    return _make_report(P, Q, y, labels=["negative", "positive"])


@pytest.fixture(scope="session")
def verdict(report):
    return Policy.default().judge(report)


@pytest.fixture(scope="session")
def report_html(report, verdict):
    """The full HTML of ``report`` with its default figures, rendered once."""
    from mlflow_trusteq.report import render_report_html

    return render_report_html(report, verdict)
