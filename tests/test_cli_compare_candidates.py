"""``trusteq compare-candidates`` on a real local MLflow store with registered scikit-learn versions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlflow_trusteq.cli import cli

from _models import float32_copy


@pytest.fixture(scope="module")
def store(tmp_path_factory, sst2_small):
    """sqlite store: sk-family v1 parent, v2 the parent in float32, v3 2k words, v4 100 words."""
    import mlflow
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    root = tmp_path_factory.mktemp("cands")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    mlflow.set_experiment(experiment_id=mlflow.create_experiment("cands", artifact_location=(root / "a").as_uri()))
    train, dev = sst2_small
    with mlflow.start_run():
        parent = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=1000)).fit(train["sentence"],
                                                                                            train["label"])
        for features in (None, "float32", 2000, 100):
            model = parent if features is None else float32_copy(parent) if features == "float32" else make_pipeline(
                TfidfVectorizer(max_features=features), LogisticRegression(max_iter=1000)).fit(train["sentence"],
                                                                                               train["label"])
            mlflow.sklearn.log_model(model, name="m",
                                     registered_model_name="sk-family", pip_requirements=["scikit-learn"])
    data = root / "dev.tsv"
    dev.to_csv(data, sep="\t", index=False)
    yield {"data": str(data), "root": root}
    mp.undo()


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_writes_the_page_logs_it_and_exits_0(store, tmp_path):
    from mlflow import MlflowClient

    out = tmp_path / "page"
    res = run("compare-candidates", "--parent", "models:/sk-family/1", "models:/sk-family/2", "models:/sk-family/3",
              "models:/sk-family/4", "--data", store["data"], "--text-column", "sentence", "--label-column", "label",
              "--n-resamples", "100", "--out", str(out), "--log-to-mlflow")
    assert res.exit_code == 0, res.output
    assert "best passing candidate: models:/sk-family/" in res.output
    page = (out / "candidates.html").read_text()
    for v in (2, 3, 4):
        assert f"models:/sk-family/{v}" in page
    assert "×" in page and "size" in page
    run_id = res.output.split("logged to run ")[1].split(":")[0]
    client = MlflowClient()
    tags = client.get_run(run_id).data.tags
    assert tags["trusteq.report"] == f"runs:/{run_id}/trusteq/candidates/candidates.html"
    assert "best: models:/sk-family/" in tags["trusteq.summary"]
    logged = {a.path for a in client.list_artifacts(run_id, "trusteq/candidates")}
    assert "trusteq/candidates/candidates.html" in logged and "trusteq/candidates/candidates_front.png" in logged
    local = client.download_artifacts(run_id, "trusteq_candidates.json", str(tmp_path))
    table = json.loads(Path(local).read_text())
    assert len(table["data"]) == 3
    # sizes are measured for registered models: the size front exists too
    assert any(row for row in (out / "candidates.csv").read_text().splitlines()[1:] if ",True" in row)


def test_a_missing_candidate_is_shown_and_exits_1(store, tmp_path):
    res = run("compare-candidates", "--parent", "models:/sk-family/1", "models:/sk-family/2", "models:/sk-family/99",
              "--data", store["data"], "--text-column", "sentence", "--label-column", "label", "--n-resamples", "50",
              "--out", str(tmp_path))
    assert res.exit_code == 1, res.output
    assert "models:/sk-family/99  error" in res.output
    assert "could not be evaluated" in (tmp_path / "candidates.html").read_text()


@pytest.mark.parametrize("args, message", [
    ((), "Missing option '--parent'"),
    (("--parent", "models:/sk-family/1", "--label-column", "nope"), "column 'nope' is not in"),
    (("--parent", "models:/sk-family/1", "--policy", "/nonexistent.toml"), "nonexistent"),
    (("--parent", "models:/sk-family/2"), "also given as a candidate"),
])
def test_usage_errors_exit_2(store, tmp_path, args, message):
    res = CliRunner().invoke(cli, ["compare-candidates", "models:/sk-family/2", "--data", store["data"],
                                   "--text-column", "sentence", "--out", str(tmp_path), *args])
    assert res.exit_code == 2, res.output
    assert message in res.output


#: the options ``trusteq evaluate`` and ``trusteq compare-candidates`` share (cli/_options.py)
SHARED_OPTIONS = ("text_columns", "feature_columns", "label_column", "policy_path", "alignment", "explain_examples",
                  "robustness", "attack_examples", "query_budget", "seed", "n_resamples")


def test_the_measurement_options_are_the_same_in_both_commands():
    """Declared once: the same flags, types, defaults and help in ``evaluate`` and ``compare-candidates``."""
    evaluate = {p.name: p.to_info_dict() for p in cli.commands["evaluate"].params}
    compare = {p.name: p.to_info_dict() for p in cli.commands["compare-candidates"].params}
    for name in SHARED_OPTIONS:
        assert evaluate[name] == compare[name], name
    names = [p.name for p in cli.commands["compare-candidates"].params]
    assert names[names.index("text_columns"):names.index("text_columns") + len(SHARED_OPTIONS)] == list(SHARED_OPTIONS)


def test_the_options_compare_candidates_lacks_take_evaluates_defaults():
    """Every config option of ``evaluate`` that this command has not (``--engine``, ``--slices`` ...) gets the
    parsed default, so the config is the default config (click's marker of "no default" is not a value)."""
    from mlflow_trusteq import TrustEqConfig
    from mlflow_trusteq.cli import CONFIG_OPTIONS, config_from_options
    from mlflow_trusteq.cli._compare_candidates import _evaluate_defaults

    defaults = _evaluate_defaults()
    assert set(defaults) == set(CONFIG_OPTIONS)
    assert config_from_options({**defaults, "no_record": True}) == TrustEqConfig(parent="lineage",
                                                                                 record_verdict=False)
