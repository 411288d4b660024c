"""The displays draw exactly the numbers of the metric functions (checked against sklearn and numpy)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import confusion_matrix

from mlflow_trusteq import InvalidInputError
from mlflow_trusteq.compare import TrustReport
from mlflow_trusteq.metrics.calibration import reliability_bins
from mlflow_trusteq.report import ConfidenceHistogramDisplay, FlipMatrixDisplay, ReliabilityDisplay


def _hand_ece(y, Q, n_bins):
    """Equal-width ECE by hand: bins (e_b, e_b+1], first closed (np.digitize with right=True)."""
    conf = Q.max(axis=1)
    correct = (Q.argmax(axis=1) == y).astype(float)
    edges = np.linspace(0, 1, n_bins + 1)
    idx = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        m = idx == b
        if m.any():
            ece += m.sum() / len(y) * abs(correct[m].mean() - conf[m].mean())
    return ece


@pytest.mark.parametrize("strategy", ["equal_width", "equal_mass"])
def test_reliability_draws_the_bins_of_reliability_bins(pair, strategy):
    P, Q, y = pair
    disp = ReliabilityDisplay.from_predictions(y, P, Q, n_bins=10, strategy=strategy).plot()
    for role, M in (("parent", P), ("candidate", Q)):
        ref = reliability_bins(y, M, n_bins=10, strategy=strategy)
        keep = np.asarray(ref.counts) > 0
        xy = disp.lines_[role].get_xydata()
        np.testing.assert_allclose(xy[:, 0], np.asarray(ref.mean_confidence)[keep])
        np.testing.assert_allclose(xy[:, 1], np.asarray(ref.accuracy)[keep])
        # counts panel: one bar per bin spanning its edges; parent upwards, candidate downwards
        bars = disp.counts_[role].patches
        sign = 1 if role == "parent" else -1
        np.testing.assert_allclose([b.get_height() for b in bars], sign * np.asarray(ref.counts, dtype=float))
        np.testing.assert_allclose([b.get_x() for b in bars], ref.edges[:-1])
        np.testing.assert_allclose([b.get_width() for b in bars], np.diff(ref.edges))
        assert sum(ref.counts) == len(y)
    assert disp.ax_counts_ is not disp.ax_ and disp.figure_ is disp.ax_.figure


def test_reliability_equal_width_matches_sklearn_calibration_curve(pair):
    P, Q, y = pair
    edges = np.linspace(0, 1, 16)
    for M in (P, Q):  # no confidence on a bin edge, so that edge rules cannot differ
        assert np.min(np.abs(M.max(axis=1)[:, None] - edges[None, :])) > 1e-9
    disp = ReliabilityDisplay.from_predictions(y, P, Q, n_bins=15, strategy="equal_width").plot()
    for role, M in (("parent", P), ("candidate", Q)):
        correct = (M.argmax(axis=1) == y).astype(int)
        prob_true, prob_pred = calibration_curve(correct, M.max(axis=1), n_bins=15, strategy="uniform")
        xy = disp.lines_[role].get_xydata()
        np.testing.assert_allclose(xy[:, 1], prob_true, atol=1e-12)
        np.testing.assert_allclose(xy[:, 0], prob_pred, atol=1e-12)


def test_reliability_legend_shows_each_models_ece(pair):
    P, Q, y = pair
    disp = ReliabilityDisplay.from_predictions(y, P, Q, n_bins=15, strategy="equal_width",
                                               parent_name="big", candidate_name="small").plot()
    texts = [t.get_text() for t in disp.ax_.get_legend().get_texts()]
    ece_p, ece_q = _hand_ece(y, P, 15), _hand_ece(y, Q, 15)
    assert 1e-3 <= min(ece_p, ece_q) and max(ece_p, ece_q) < 10  # written with four decimals (mlflow_trusteq._format)
    assert any(t.startswith("parent: big") and f"(ECE {ece_p:.4f})" in t for t in texts), texts
    assert any(t.startswith("candidate: small") and f"(ECE {ece_q:.4f})" in t for t in texts), texts
    assert "15 equal-width bins, n = 600" in disp.ax_.get_title(loc="left")


@pytest.mark.parametrize("strategy", ["equal_width", "equal_mass"])
def test_reliability_from_report_live_and_from_json_agree(report, pair, strategy):
    P, Q, y = pair
    n_bins = report.settings[f"n_bins_{strategy}"]
    live = ReliabilityDisplay.from_report(report, strategy=strategy)
    ref = ReliabilityDisplay.from_predictions(y, P, Q, n_bins=n_bins, strategy=strategy)
    for a, b in ((live.parent_bins, ref.parent_bins), (live.candidate_bins, ref.candidate_bins)):
        np.testing.assert_equal(a.to_dict(), b.to_dict())  # NaN-aware (empty bins)
    stored = TrustReport.from_json(report.to_json())  # no predictions: the stored bins are drawn
    assert stored.predictions is None
    back = ReliabilityDisplay.from_report(stored, strategy=strategy)
    np.testing.assert_allclose(back.parent_bins.accuracy, ref.parent_bins.accuracy)
    np.testing.assert_array_equal(back.candidate_bins.counts, ref.candidate_bins.counts)
    # the legend carries the report's ECE with its bootstrap interval
    back.plot()
    e = report.metrics[f"candidate/ece_{strategy}"]
    label = back.lines_["candidate"].get_label()
    assert 1e-3 <= e.lower <= e.value <= e.upper < 10
    assert f"ECE {e.value:.4f} [{e.lower:.4f}, {e.upper:.4f}]" in label


def test_reliability_without_labels_is_not_measured(make_report, pair):
    P, Q, _ = pair
    r = make_report(P, Q, None)
    with pytest.raises(InvalidInputError, match="not measured"):
        ReliabilityDisplay.from_report(r)


def test_reliability_bad_strategy_is_quoted(pair):
    P, Q, y = pair
    with pytest.raises(InvalidInputError, match="'quantile'"):
        ReliabilityDisplay.from_predictions(y, P, Q, strategy="quantile")


def test_reliability_plots_on_a_given_axes(pair):
    from matplotlib.figure import Figure

    P, Q, y = pair
    fig = Figure()
    ax = fig.add_subplot()
    disp = ReliabilityDisplay.from_predictions(y, P, Q).plot(ax=ax)
    assert disp.ax_ is ax and disp.figure_ is fig
    assert disp.ax_counts_ in fig.axes and disp.ax_counts_ is not ax


def test_confidence_histograms_and_scatter_equal_numpy(pair):
    P, Q, _ = pair
    disp = ConfidenceHistogramDisplay.from_predictions(P, Q, n_bins=20).plot()
    edges = np.linspace(0.5, 1.0, 21)
    for role, M in (("parent", P), ("candidate", Q)):
        values, drawn_edges, _ = disp.bars_[role].get_data()
        np.testing.assert_allclose(drawn_edges, edges)
        np.testing.assert_array_equal(values, np.histogram(M.max(axis=1), bins=edges)[0])
    pp, pq = P.argmax(axis=1), Q.argmax(axis=1)
    flips = np.flatnonzero(pp != pq)
    assert flips.size > 0
    np.testing.assert_allclose(disp.flips_.get_offsets(), np.c_[P[flips, pp[flips]], Q[flips, pp[flips]]])
    assert len(disp.agree_.get_offsets()) == len(P) - flips.size
    assert f"label flipped (n = {flips.size})" in [t.get_text() for t in disp.ax_[1].get_legend().get_texts()]


def test_confidence_large_n_switches_to_density_and_caps_points(pair):
    from matplotlib.collections import PolyCollection

    P, Q, _ = pair
    disp = ConfidenceHistogramDisplay.from_predictions(P, Q, max_points=20, random_state=3).plot()
    assert isinstance(disp.agree_, PolyCollection)  # hexbin
    assert len(disp.flips_.get_offsets()) == 20


def test_flip_matrix_equals_sklearn_confusion_matrix(make_pair):
    P, Q, _ = make_pair(900, 4, 1)
    labels = ["entailment", "neutral", "contradiction", "other"]
    disp = FlipMatrixDisplay.from_predictions(P, Q, labels=labels).plot()
    ref = confusion_matrix(P.argmax(axis=1), Q.argmax(axis=1), labels=range(4))
    np.testing.assert_array_equal(disp.matrix, ref)
    rows = ref.sum(axis=1, keepdims=True)
    for i in range(4):
        for j in range(4):
            assert disp.text_[i, j].get_text() == f"{ref[i, j]:,}\n{100 * ref[i, j] / rows[i, 0]:.1f}%"
    assert [t.get_text() for t in disp.ax_.get_xticklabels()] == labels
    ylab = [t.get_text() for t in disp.ax_.get_yticklabels()]
    assert all(lab in y for lab, y in zip(labels, ylab))
    flips = ref.sum() - np.trace(ref)
    assert f"{flips} of 900" in disp.ax_.get_title(loc="left")


def test_flip_matrix_from_report_and_validation(report):
    disp = FlipMatrixDisplay.from_report(report)
    np.testing.assert_array_equal(disp.matrix, np.asarray(report.flip_matrix))
    assert disp.labels == ("negative", "positive")
    with pytest.raises(InvalidInputError, match="3 labels"):
        FlipMatrixDisplay(np.eye(2, dtype=int), ("a", "b", "c"))
    with pytest.raises(InvalidInputError, match="square"):
        FlipMatrixDisplay(np.ones((2, 3), dtype=int), ("a", "b"))


def test_displays_need_no_pyplot_state(pair):
    """Figures are plain Figures, not registered with pyplot (nothing leaks in a server)."""
    import matplotlib.pyplot as plt

    P, Q, y = pair
    before = plt.get_fignums()
    ReliabilityDisplay.from_predictions(y, P, Q).plot()
    ConfidenceHistogramDisplay.from_predictions(P, Q).plot()
    FlipMatrixDisplay.from_predictions(P, Q).plot()
    assert plt.get_fignums() == before


def test_report_json_roundtrip_keeps_the_drawable_bins(report):
    d = json.loads(report.to_json())
    assert set(d["reliability"]) == {"parent", "candidate"}
    assert set(d["reliability"]["parent"]) == {"equal_width", "equal_mass"}
