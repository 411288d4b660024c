"""``compare_candidates``: several real candidates of one parent, the parent scored once, the fronts marked."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlflow_trusteq import CandidateComparison, InvalidInputError, compare, compare_candidates
from mlflow_trusteq.adapters import CallableAdapter
from mlflow_trusteq.candidates import pareto_front

from _models import float32_copy

LABELS = ["0", "1"]


@pytest.fixture(scope="module")
def family(sst2_small):
    """A TF-IDF parent and four real compressions of it (float32 weights, smaller vocabularies, a stronger penalty)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    train, dev = sst2_small

    def fit(max_features=None, C=1.0):
        return make_pipeline(TfidfVectorizer(max_features=max_features),
                             LogisticRegression(C=C, max_iter=1000)).fit(train["sentence"], train["label"])

    parent = fit()
    candidates = {"same": float32_copy(parent), "vocab-2k": fit(max_features=2000), "vocab-200": fit(max_features=200),
                  "C-0.1": fit(C=0.1)}
    return parent, candidates, dev


class _Counting:
    """A real model whose scoring calls are counted (the parent must be scored once, not per candidate)."""

    def __init__(self, model):
        self.model, self.calls = model, []

    def __call__(self, texts):
        self.calls.append(len(texts))
        return self.model.predict_proba(list(texts))


def test_the_parent_is_scored_once_for_all_candidates(family):
    parent, candidates, dev = family
    counting = _Counting(parent)
    adapter = CallableAdapter(counting, LABELS, input_kind="text", name="tfidf-parent")
    # consistency off: that stage re-scores a sample under another batch plan, per pair, by design
    comp = compare_candidates(adapter, candidates, dev, targets="label", n_resamples=50, consistency=False)
    assert isinstance(comp, CandidateComparison) and comp.names == tuple(candidates)
    # the probabilities: one warm-up batch and one pass over the data (a 200-row batch), whatever the number
    # of candidates; the speed probe (measure_speed) times small repeated batches of each pair on its own
    assert counting.calls.count(len(dev)) == 2, counting.calls[:20]


def test_each_report_is_what_compare_measures_for_that_pair(family):
    parent, candidates, dev = family
    comp = compare_candidates(parent, candidates, dev, targets="label", n_resamples=100)
    for name in ("same", "vocab-200"):
        alone = compare(parent, candidates[name], dev, targets="label", n_resamples=100)
        got = comp[name].report
        for key in ("label_loyalty", "probability_loyalty", "diff/accuracy", "diff/ece_equal_mass"):
            assert got.metrics[key] == alone.metrics[key], key
        assert got.data_digest == alone.data_digest
    assert comp["same"].verdict.passed and comp["same"].value("label_loyalty") == 1.0
    assert not comp["vocab-200"].verdict.passed


def test_fronts_and_best_follow_the_numbers(family):
    parent, candidates, dev = family
    comp = compare_candidates(parent, candidates, dev, targets="label", n_resamples=100)
    table = comp.table()
    assert list(table["candidate"]) == list(candidates)
    front = comp.front["speedup"]
    assert front, comp.front
    pts = {c.name: (c.value("speedup"), c.value("label_loyalty", "lower")) for c in comp.candidates}
    for name in front:  # nobody dominates a front member
        x, t = pts[name]
        assert not any(x2 >= x and t2 >= t and (x2 > x or t2 > t) for n2, (x2, t2) in pts.items() if n2 != name)
    for name in set(pts) - set(front):  # and somebody dominates every other one
        x, t = pts[name]
        assert any(x2 >= x and t2 >= t for n2, (x2, t2) in pts.items() if n2 != name)
    assert "same" in front  # loyalty 1: no one is more loyal
    assert comp.best() is not None and comp[comp.best()].verdict.passed
    assert table.loc[table["candidate"] == "same", "front/speedup"].item()


@pytest.mark.parametrize("points, higher, expected", [
    ({"a": (1.0, 0.9)}, True, ("a",)),
    ({"a": (1.0, 0.9), "b": (1.0, 0.9)}, True, ("a", "b")),  # ties: neither dominates
    ({"a": (1.0, 0.9), "b": (2.0, 0.95)}, True, ("b",)),
    ({"a": (0.3, 0.9), "b": (0.5, 0.95)}, False, ("b", "a")),  # smaller size is better
    ({"a": (math.nan, 0.99), "b": (1.0, 0.5)}, True, ("b",)),  # not measured: never on the front
])
def test_pareto_front_cases(points, higher, expected):
    assert pareto_front(points, x_higher_is_better=higher) == expected


def test_a_broken_candidate_is_shown_not_hidden_and_all_broken_raises(family):
    parent, candidates, dev = family
    broken = CallableAdapter(lambda texts: np.full((len(texts), 3), 1 / 3), ["a", "b", "c"], input_kind="text")
    comp = compare_candidates(parent, {"ok": candidates["same"], "three-labels": broken}, dev, targets="label",
                              n_resamples=50)
    assert comp["ok"].ok and not comp["three-labels"].ok
    assert "label" in comp["three-labels"].error.lower()
    assert comp.table().set_index("candidate").loc["three-labels", "verdict"] == "error"
    with pytest.raises(InvalidInputError, match="(?i)label"):
        compare_candidates(parent, {"three-labels": broken}, dev, targets="label", n_resamples=50)


@pytest.mark.parametrize("bad, match", [({}, "empty"), ("models:/m/2", "mapping"), (["x", "x"], "twice")])
def test_bad_candidate_lists_are_clear_errors(family, bad, match):
    parent, _, dev = family
    with pytest.raises(InvalidInputError, match=match):
        compare_candidates(parent, bad, dev, targets="label")


def test_the_page_shows_every_candidate_the_front_and_links_each_report(family, tmp_path):
    from PIL import Image

    from mlflow_trusteq.report import CandidateFrontDisplay, write_candidates_page
    from mlflow_trusteq.report._candidates import candidate_slug

    parent, candidates, dev = family
    comp = compare_candidates(parent, candidates, dev, targets="label", n_resamples=50)
    paths = write_candidates_page(comp, tmp_path)
    page = paths["candidates.html"].read_text()
    for name in candidates:
        assert f">{name}</a>" in page
        assert (tmp_path / candidate_slug(name) / "report.html").exists()
    assert "Best passing compression" in page and "◆ speed" in page and "data:image/png;base64," in page
    assert "<script" not in page
    assert Image.open(paths["candidates_front.png"]).size[0] > 600
    disp = CandidateFrontDisplay.from_comparison(comp)
    assert len(disp.points) == len(candidates) and disp.threshold == 0.95
    disp.plot()
    assert disp.figure_ is disp.ax_[0].figure
