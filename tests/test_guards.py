"""Comparability guards on real scikit-learn models through compare() and the policy (no registry)."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier

from mlflow_trusteq import compare
from mlflow_trusteq._errors import PolicyError
from mlflow_trusteq._guards import DEFAULT_MAX_PLAUSIBLE_GAIN, GuardPolicy
from mlflow_trusteq.policy import Policy
from mlflow_trusteq.report.html import render_report_html

COLS = ["a", "b", "c", "d"]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(900, 4))
    y = (X[:, 0] + 0.8 * X[:, 1] + 0.7 * rng.normal(size=900) > 0).astype(int)
    train = pd.DataFrame(X[:500], columns=COLS)
    test = pd.DataFrame(X[500:], columns=COLS).assign(label=y[500:])
    return train, y[:500], test


@pytest.fixture(scope="module")
def parent(data):
    train, y, _ = data
    return LogisticRegression().fit(train, y)


def _judge(parent, candidate, test, policy=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = compare(parent, candidate, test, targets="label", n_resamples=200, consistency=False)
    return report, Policy.load(policy).judge(report)


def _check(verdict, name):
    found = [c for c in verdict.checks if c.metric == name]
    assert len(found) == 1, f"no {name} check in the verdict: {[c.metric for c in verdict.checks]}"
    return found[0]


def test_same_model_fails_the_verdict(parent, data):
    # a deep copy: another object, the same content (what a "compression" that changed nothing gives)
    report, verdict = _judge(parent, copy.deepcopy(parent), data[2])
    g = _check(verdict, "guard_same_model")
    assert g.status == "fail" and "identical content" in g.reason and "sklearn-state-sha256" in g.reason
    assert not verdict.passed and verdict.label == "fail"  # a measured failure, not "incomplete"
    # everything else would pass: loyalty 1, no accuracy change
    assert all(c.status != "fail" for c in verdict.checks if not c.metric.startswith("guard_"))
    kinds = report.settings["guards"]["content"]
    assert kinds["sklearn-state-sha256"]["parent"] == kinds["sklearn-state-sha256"]["candidate"]


def test_a_changed_model_passes_the_same_model_guard(parent, data):
    candidate = copy.deepcopy(parent)
    candidate.coef_ = candidate.coef_ * (1 + 1e-9)  # predicts the same, but is not the same content
    _, verdict = _judge(parent, candidate, data[2])
    assert _check(verdict, "guard_same_model").status == "pass"


def test_a_callable_has_no_content_so_the_guard_says_it_was_not_judged(parent, data):
    from mlflow_trusteq.adapters import CallableAdapter

    wrapped = CallableAdapter(parent.predict_proba, labels=[0, 1], name="callable")
    _, verdict = _judge(parent, wrapped, data[2])
    g = _check(verdict, "guard_same_model")
    assert g.status == "skipped" and "cannot be compared" in g.reason


def test_implausibly_better_candidate_fails(data):
    train, y, test = data
    weak = DummyClassifier(strategy="most_frequent").fit(train, y)
    # a "candidate" that saw the evaluation rows: a 1-nearest-neighbour memorises them (a data leak)
    leaky = KNeighborsClassifier(n_neighbors=1).fit(test[COLS], test["label"])
    report, verdict = _judge(weak, leaky, test)
    g = _check(verdict, "guard_implausible_gain")
    assert g.status == "fail" and "implausibly better" in g.reason
    assert g.bound == report.metrics["diff/accuracy"].lower > DEFAULT_MAX_PLAUSIBLE_GAIN
    assert g.threshold == DEFAULT_MAX_PLAUSIBLE_GAIN


def test_plausible_gain_limit_is_a_policy_option(data):
    train, y, test = data
    weak = DummyClassifier(strategy="most_frequent").fit(train, y)
    leaky = KNeighborsClassifier(n_neighbors=1).fit(test[COLS], test["label"])
    policy = {"checks": {"label_loyalty": {"threshold": 0.0}}, "guards": {"max_plausible_gain": 1.0}}
    _, verdict = _judge(weak, leaky, test, policy)
    assert _check(verdict, "guard_implausible_gain").status == "pass"
    policy["guards"] = {"max_plausible_gain": False}  # TOML has no null
    _, verdict = _judge(weak, leaky, test, policy)
    assert not [c for c in verdict.checks if c.metric == "guard_implausible_gain"]


def test_parent_below_the_accuracy_floor_fails(data, tmp_path):
    train, y, test = data
    rng = np.random.default_rng(1)
    weak = LogisticRegression().fit(train, rng.integers(0, 2, len(y)))  # trained on noise labels
    weak2 = copy.deepcopy(weak)
    weak2.intercept_ = weak2.intercept_ + 1e-6
    toml = tmp_path / "floor.toml"
    toml.write_text('[checks]\nlabel_loyalty = { threshold = 0.5 }\n\n[guards]\nparent_accuracy_floor = 0.7\n')
    report, verdict = _judge(weak, weak2, test, str(toml))
    g = _check(verdict, "guard_parent_accuracy_floor")
    assert g.status == "fail" and "below the policy's floor 0.7" in g.reason
    assert g.value == report.metrics["parent/accuracy"].value < 0.7
    assert not verdict.passed
    # without a floor the policy has no such guard, and the same pair passes
    _, verdict = _judge(weak, weak2, test, {"checks": {"label_loyalty": {"threshold": 0.5}}})
    assert verdict.passed and not [c for c in verdict.checks if c.metric == "guard_parent_accuracy_floor"]


def test_parent_floor_without_labels_fails_closed(parent, data):
    candidate = copy.deepcopy(parent)
    candidate.coef_ = candidate.coef_ * 1.01
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = compare(parent, candidate, data[2][COLS], n_resamples=100, consistency=False)
    policy = Policy.from_dict({"checks": {"label_loyalty": {"threshold": 0.5}},
                               "guards": {"parent_accuracy_floor": 0.6}})
    g = _check(policy.judge(report), "guard_parent_accuracy_floor")
    assert g.status == "fail" and "could not be judged" in g.reason


def test_data_change_guard_is_skipped_without_a_registry(parent, data):
    candidate = copy.deepcopy(parent)
    candidate.coef_ = candidate.coef_ * 1.01
    _, verdict = _judge(parent, candidate, data[2])
    g = _check(verdict, "guard_data_changed")
    assert g.status == "skipped" and "no registry" in g.reason


def test_guards_change_the_policy_digest_and_round_trip():
    a = Policy.from_dict({"checks": {"label_loyalty": {"threshold": 0.9}}})
    b = Policy.from_dict({"checks": {"label_loyalty": {"threshold": 0.9}}, "guards": {"parent_accuracy_floor": 0.7}})
    assert a.digest != b.digest
    assert Policy.from_dict(b.to_dict()).guards == b.guards == GuardPolicy(parent_accuracy_floor=0.7)


@pytest.mark.parametrize("guards, match", [
    ({"parent_floor": 0.7}, "unknown key"),
    ({"parent_accuracy_floor": 1.5}, r"in \[0, 1\]"),
    ({"parent_accuracy_floor": True}, "parent_accuracy_floor"),
    ({"max_plausible_gain": "0.1"}, "max_plausible_gain"),
    ({"same_model": "no"}, "boolean"),
    ({"data_change": "sometimes"}, "data_change"),
    ("strict", "must be a table"),
])
def test_bad_guard_options_are_policy_errors(guards, match):
    with pytest.raises(PolicyError, match=match):
        Policy.from_dict({"checks": {"label_loyalty": {"threshold": 0.9}}, "guards": guards})


def test_report_shows_guards_and_update_metrics(parent, data):
    report, verdict = _judge(parent, copy.deepcopy(parent), data[2])
    page = render_report_html(report, verdict, figures={})
    assert 'id="update"' in page and "Comparability guards" in page and "guard_same_model" in page
    assert "backward trust compatibility" in page and "McNemar" in page and "AURC" in page
    assert "onnx_layers" not in report.settings  # the per-layer ONNX comparison is off by default


_FIT_AND_DIGEST = """
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from mlflow_trusteq._guards import model_content_digest
from mlflow_trusteq.adapters import as_proba_model
from mlflow_trusteq.datasets import load_sst2
train = load_sst2("train").iloc[:400]
m = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=200)).fit(train["sentence"], train["label"])
print(model_content_digest(as_proba_model(m))[1])
"""


def test_the_same_sklearn_model_has_one_digest_in_every_process():
    """The same fitted TF-IDF pipeline in two processes: one digest (its pickle differs: ``_stop_words_id``)."""
    import os
    import subprocess
    import sys

    digests = {subprocess.run([sys.executable, "-c", _FIT_AND_DIGEST], capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONHASHSEED": seed}).stdout.strip() for seed in ("1", "2")}
    assert len(digests) == 1 and len(next(iter(digests))) == 64, digests
