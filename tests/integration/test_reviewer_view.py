"""What a reviewer sees without digging: the summary, the report link and the description, through
``mlflow.models.evaluate`` on a real local store; and ``EvaluationResult.artifacts``/``.tables``."""

from __future__ import annotations

import mlflow
import pytest
from mlflow import MlflowClient

from mlflow_trusteq.integration.runlog import BLOCK_BEGIN, BLOCK_END, merge_description

from _models import float32_copy

pytestmark = pytest.mark.slow

USER_NOTE = "Int8 export of the sentiment model, owner: nlp-team. Do not delete this line."


@pytest.fixture(scope="module")
def sk_store(local_registry, tfidf_pair):
    """The local registry: sk-review v1 parent, v2 a weaker candidate (fails), v3 the parent in float32 (passes)."""
    parent, weak = tfidf_pair
    with mlflow.start_run():
        for model in (parent, weak, float32_copy(parent)):
            mlflow.sklearn.log_model(model, name="m", registered_model_name="sk-review",
                                     pip_requirements=["scikit-learn"])
    MlflowClient().update_model_version("sk-review", "2", description=USER_NOTE)
    return "sk-review"


def test_failing_version_gets_summary_report_link_and_description(sk_store, sst2_small, evaluate_trusteq):
    name = sk_store
    _, dev = sst2_small
    result, run_id = evaluate_trusteq(f"models:/{name}/2", dev, parent=f"models:/{name}/1", n_resamples=200)
    assert result.metrics["trusteq/verdict"] == 0.0
    client = MlflowClient()
    mv = client.get_model_version(name, "2")
    summary = mv.tags["trusteq.summary"]
    assert summary.startswith("FAIL: label loyalty 0.") and "[" in summary and "< 0.95" in summary, summary
    assert len(summary) <= 250
    assert mv.tags["trusteq.report"] == f"runs:/{run_id}/trusteq/report.html"
    assert "trusteq.report_url" not in mv.tags  # a sqlite store has no UI URL
    # the run says the same
    run_tags = client.get_run(run_id).data.tags
    assert run_tags["trusteq.summary"] == summary and run_tags["trusteq.report"] == mv.tags["trusteq.report"]
    note = run_tags["mlflow.note.content"]  # the run's Description
    assert "FAIL" in note and "label loyalty 0." in note and "trusteq/report.html" in note
    # the description: the user's text kept, one trusteq block with the verdict, the parent and the run
    desc = mv.description
    assert desc.startswith(USER_NOTE)
    assert desc.count(BLOCK_BEGIN) == 1 and desc.count(BLOCK_END) == 1
    block = desc[desc.index(BLOCK_BEGIN):]
    assert "FAIL" in block and f"models:/{name}/1" in block and run_id in block and "trusteq/report.html" in block
    # the link resolves: the report is where the tag says
    assert "FAIL" in mlflow.artifacts.load_text(mv.tags["trusteq.report"])

    # re-evaluated: the block is replaced, not appended; the user's text is still there
    _, run2 = evaluate_trusteq(f"models:/{name}/2", dev.iloc[:150], parent=f"models:/{name}/1", n_resamples=100)
    desc2 = client.get_model_version(name, "2").description
    assert desc2.startswith(USER_NOTE) and desc2.count(BLOCK_BEGIN) == 1 and run2 in desc2 and run_id not in desc2


def test_clearing_the_verdict_clears_what_the_reviewer_reads(sk_store, sst2_small, evaluate_trusteq):
    """A re-evaluation clears the old verdict first: the summary, the link and the block's words go too."""
    from mlflow_trusteq.integration.registry import clear_verdict

    name = sk_store
    _, dev = sst2_small
    evaluate_trusteq(f"models:/{name}/2", dev.iloc[:120], parent=f"models:/{name}/1", n_resamples=50)
    client = MlflowClient()
    clear_verdict(client, name, "2")
    mv = client.get_model_version(name, "2")
    assert not {"trusteq.summary", "trusteq.report", "trusteq.verdict"} & set(mv.tags)
    assert mv.description.startswith(USER_NOTE) and mv.description.count(BLOCK_BEGIN) == 1
    assert "FAIL" not in mv.description and "cleared" in mv.description


def test_passing_version_summary_names_the_numbers(sk_store, sst2_small, evaluate_trusteq):
    name = sk_store
    _, dev = sst2_small
    _, run_id = evaluate_trusteq(f"models:/{name}/3", dev.iloc[:150], parent=f"models:/{name}/1", n_resamples=100)
    mv = MlflowClient().get_model_version(name, "3")
    summary = mv.tags["trusteq.summary"]
    assert summary.startswith("PASS: label loyalty 1") and "speed-up" in summary and "checks passed" in summary
    assert mv.description.startswith(BLOCK_BEGIN) and run_id in mv.description


def test_evaluation_result_returns_what_was_logged(sk_store, sst2_small, evaluate_trusteq):
    from mlflow.models.evaluation.artifacts import ImageEvaluationArtifact, JsonEvaluationArtifact

    name = sk_store
    _, dev = sst2_small
    result, run_id = evaluate_trusteq(f"models:/{name}/2", dev.iloc[:150], parent=f"models:/{name}/1", n_resamples=100)
    arts = result.artifacts
    assert isinstance(arts["flip_matrix_png"], ImageEvaluationArtifact)
    assert arts["flip_matrix_png"].content.size[0] > 100
    assert isinstance(arts["verdict_json"], JsonEvaluationArtifact)
    assert arts["verdict_json"].content["verdict"] == "fail" and arts["verdict_json"].content["run_id"] == run_id
    assert "FAIL" in arts["report_html"].content
    assert arts["report_html"].uri.endswith("/trusteq/report.html") and run_id in arts["report_html"].uri
    tables = result.tables
    assert "trusteq_disagreements" in tables, sorted(tables)
    dis = tables["trusteq_disagreements"]
    assert len(dis) > 0 and "parent_label" in " ".join(dis.columns) or len(dis.columns) > 3
    logged = {a.path for a in MlflowClient().list_artifacts(run_id)}
    assert "trusteq_disagreements.json" in logged


def test_evaluator_config_nested_for_a_list_of_evaluators(sk_store):
    """The README's form: ``evaluators=["default", "trusteq"]`` with a config per evaluator (tabular data:
    MLflow's default evaluator feeds a data frame to the model, which a text pipeline cannot read)."""
    import pandas as pd
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X = X.iloc[:, :6]
    parent = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
    with mlflow.start_run():
        for model in (parent, float32_copy(parent)):
            mlflow.sklearn.log_model(model, name="m", registered_model_name="tab-review",
                                     pip_requirements=["scikit-learn"], input_example=X.iloc[:2])
    data = pd.concat([X, y.rename("label")], axis=1).iloc[:300]
    with mlflow.start_run():
        result = mlflow.models.evaluate("models:/tab-review/2", data, model_type="classifier",
                                        targets="label", evaluators=["default", "trusteq"],
                                        evaluator_config={"trusteq": {"parent": "models:/tab-review/1",
                                                                      "n_resamples": 100}})
    assert result.metrics["trusteq/verdict"] == 1.0
    assert "accuracy_score" in result.metrics  # MLflow's default evaluator ran too
    assert MlflowClient().get_model_version("tab-review", "2").tags["trusteq.summary"].startswith("PASS")


_B = f"{BLOCK_BEGIN}\nnew\n{BLOCK_END}"


@pytest.mark.parametrize("existing, expected", [
    (None, _B),
    ("", _B),
    ("mine", f"mine\n\n{_B}"),
    (f"mine\n\n{BLOCK_BEGIN}\nold\n{BLOCK_END}\nafter", f"mine\n\n{_B}\nafter"),
])
def test_merge_description_keeps_the_users_text(existing, expected):
    assert merge_description(existing, _B) == expected
    assert merge_description(merge_description(existing, _B), _B) == expected  # idempotent
