"""Comparability guards through the evaluator on a real MLflow registry (sqlite) with real sklearn models."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

COLS = ["a", "b", "c", "d"]
NAME = "guards-tab"
pytestmark = pytest.mark.slow
#: judged on loyalty only (300 rows cannot resolve the default calibration margin); the guards are the default ones
POLICY = {"name": "guards-test", "checks": {"label_loyalty": {"threshold": 0.8}}}


@pytest.fixture(scope="module")
def tab_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1100, 4))
    y = (X[:, 0] + 0.8 * X[:, 1] + 0.7 * rng.normal(size=1100) > 0).astype(int)
    frame = pd.DataFrame(X, columns=COLS).assign(label=y)
    return frame.iloc[:500], frame.iloc[500:800].reset_index(drop=True), frame.iloc[800:].reset_index(drop=True)


@pytest.fixture(scope="module")
def versions(local_registry, tab_data):
    """v1 parent; v2 and v3 candidates of v1 (other regularisation); v4 registered from v1's own files."""
    import mlflow
    from mlflow import MlflowClient

    from mlflow_trusteq.integration.registry import set_parent

    train = tab_data[0]
    client = MlflowClient()
    for C in (1.0, 0.3, 0.1):
        model = LogisticRegression(C=C).fit(train[COLS], train["label"])
        with mlflow.start_run(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mlflow.sklearn.log_model(model, name="model", registered_model_name=NAME,
                                     pip_requirements=["scikit-learn"])
    v1 = client.get_model_version(NAME, "1")
    client.create_model_version(NAME, source=v1.source, run_id=v1.run_id)  # v4: the parent's files again
    for v in ("2", "3", "4"):
        set_parent(client, NAME, v, f"models:/{NAME}/1")
    return client


def _evaluate(version, data, **config):
    from mlflow_trusteq.integration.evaluator import evaluate_and_log

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return evaluate_and_log(f"models:/{NAME}/{version}", data, targets="label",
                                config={"parent": "lineage", "n_resamples": 200, "consistency": False, "policy": POLICY,
                                        **config})


def _guard(outcome, name):
    found = [c for c in outcome.verdict.checks if c.metric == name]
    assert len(found) == 1, [c.metric for c in outcome.verdict.checks]
    return found[0]


def test_a_failed_candidate_cannot_pass_on_other_data(versions, tab_data):
    _, a, b = tab_data
    strict = {"name": "strict", "checks": {"diff/accuracy": {"threshold": 0.05}}}  # demands a gain: a measured fail
    first = _evaluate("2", a, policy=strict)  # a measured fail, signed, on `a`
    assert first.verdict.label == "fail" and _guard(first, "guard_data_changed").status == "pass"
    tags = versions.get_model_version(NAME, "2").tags
    assert tags["trusteq.verdict"] == "fail" and tags["trusteq.data_digest"] == first.report.data_digest

    shopped = _evaluate("2", b)  # a laxer policy on other rows: not a way to turn the fail into a pass
    g = _guard(shopped, "guard_data_changed")
    assert g.status == "fail" and f"models:/{NAME}/2" in g.reason and first.run_id in g.reason
    assert all(c.status != "fail" for c in shopped.verdict.checks if c.metric != "guard_data_changed")
    assert shopped.verdict.label == "incomplete"  # nothing measured failed; it cannot be judged as it is
    assert versions.get_model_version(NAME, "2").tags["trusteq.verdict"] == "fail"

    # the shopped verdict is on `b` now, but it carries `a` forward: a second step on `b` is refused too
    assert _guard(_evaluate("2", b), "guard_data_changed").status == "fail"
    acknowledged = _evaluate("2", b, acknowledge_data_change=True)  # the caller says the change is intended
    g = _guard(acknowledged, "guard_data_changed")
    assert g.status == "pass" and "acknowledged" in g.reason
    assert acknowledged.verdict.passed, acknowledged.verdict.reasons
    assert versions.get_model_version(NAME, "2").tags["trusteq.verdict"] == "pass"

    again = _evaluate("2", a)  # default rule: an earlier *pass* on other data does not block
    g = _guard(again, "guard_data_changed")
    assert g.status == "pass" and "earlier pass verdict(s) on other data" in g.reason
    any_change = _evaluate("2", b, policy={**POLICY, "guards": {"data_change": "any"}})
    assert _guard(any_change, "guard_data_changed").status == "fail"


def test_data_change_against_the_parents_own_verdict(versions, tab_data):
    from mlflow_trusteq.integration.registry import set_parent

    _, a, b = tab_data
    _evaluate("2", a, acknowledge_data_change=True)  # v2 carries a signed verdict on `a`
    set_parent(versions, NAME, "3", f"models:/{NAME}/2")  # v3 is compressed from v2: v2's verdict is its lineage
    strict_any = {**POLICY, "guards": {"data_change": "any"}}
    other = _evaluate("3", b, policy=strict_any)
    g = _guard(other, "guard_data_changed")
    assert g.status == "fail" and f"models:/{NAME}/2" in g.reason
    same = _evaluate("3", a, policy=strict_any, acknowledge_data_change=True)
    assert _guard(same, "guard_data_changed").status == "pass"
    set_parent(versions, NAME, "3", f"models:/{NAME}/1")


def test_a_version_registered_from_the_parents_files_fails_the_same_model_guard(versions, tab_data):
    outcome = _evaluate("4", tab_data[1], acknowledge_data_change=True)
    g = _guard(outcome, "guard_same_model")
    assert g.status == "fail" and "sha256-tree-v1" in g.reason
    content = outcome.report.settings["guards"]["content"]["sha256-tree-v1"]
    assert content["parent"] == content["candidate"]
    assert not outcome.verdict.passed
    assert versions.get_model_version(NAME, "4").tags["trusteq.verdict"] == "fail"
    # a real candidate's files differ: the guard passes on both kinds of digest
    outcome = _evaluate("2", tab_data[1], acknowledge_data_change=True)
    assert _guard(outcome, "guard_same_model").status == "pass"
    assert set(outcome.report.settings["guards"]["content"]) == {"sha256-tree-v1", "sklearn-state-sha256"}


def test_an_incomplete_verdict_does_not_block_evaluating_on_more_data(versions, tab_data):
    """Too few rows give an *incomplete* verdict, which says "evaluate again": on more rows, not data shopping."""
    import mlflow

    from mlflow_trusteq.integration.registry import set_parent

    train, _, b = tab_data
    with mlflow.start_run(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        info = mlflow.sklearn.log_model(LogisticRegression(C=0.05).fit(train[COLS], train["label"]), name="model",
                                        registered_model_name=NAME, pip_requirements=["scikit-learn"])
    version = str(info.registered_model_version)
    set_parent(versions, NAME, version, f"models:/{NAME}/1")
    needs_rows = {"name": "needs-rows", "checks": {"label_loyalty": {"threshold": 0.99}}}  # ~300 rows to judge
    few = _evaluate(version, b.iloc[:40], policy=needs_rows)
    assert few.verdict.label == "incomplete", few.verdict.reasons
    assert versions.get_model_version(NAME, version).tags["trusteq.verdict"] == "fail"
    more = _evaluate(version, b)
    g = _guard(more, "guard_data_changed")
    assert g.status == "pass", g.reason
    assert more.verdict.passed, more.verdict.reasons
