"""Issue 14: the same numbers whatever the entry point, and mistakes that are loud.

Real scikit-learn models in a real (sqlite) MLflow registry, evaluated through
``mlflow.models.evaluate(..., evaluators="trusteq")``, ``evaluate_and_log`` and the ``trusteq`` CLI.
The size and the data digest are checked against independent re-computations (``os.walk``,
``csv`` + ``hashlib``), never against trusteq itself.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import secrets

import mlflow
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from mlflow import MlflowClient

from mlflow_trusteq import InvalidInputError, VerdictError
from mlflow_trusteq.cli import cli
from mlflow_trusteq.integration import evaluate_and_log
from mlflow_trusteq.integration.registry import verify_verdict

from _models import float32_copy

NAME = "sk-paths"


@pytest.fixture(scope="module")
def store(tmp_path_factory, tfidf_pair, sst2_small):
    """v1 parent, v2 a different (smaller) pipeline, v3 the parent in float32 (passes), v4 the same (no lineage)."""
    root = tmp_path_factory.mktemp("paths")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", uri)
    mp.setenv("TRUSTEQ_SIGNING_KEY", secrets.token_hex(32))
    mp.delenv("TRUSTEQ_SIGNING_KEY_FILE", raising=False)
    mp.delenv("TRUSTEQ_SIGNING_KEYS_FILE", raising=False)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    mlflow.set_experiment(experiment_id=mlflow.create_experiment("paths", artifact_location=(root / "a").as_uri()))
    parent, candidate = tfidf_pair
    with mlflow.start_run():
        for model in (parent, candidate, float32_copy(parent), float32_copy(parent)):
            mlflow.sklearn.log_model(model, name="m", registered_model_name=NAME, pip_requirements=["scikit-learn"])
    _, dev = sst2_small
    data = root / "dev.tsv"
    dev.to_csv(data, sep="\t", index=False)
    yield {"uri": uri, "data": str(data), "dev": dev, "root": root}
    mp.undo()
    mlflow.set_tracking_uri(previous)


def _api(uri: str, data: pd.DataFrame, **config):
    with mlflow.start_run() as run:
        result = mlflow.models.evaluate(uri, data, model_type="classifier", targets="label",
                                        evaluators="trusteq", evaluator_config=config)
    return result, run.info.run_id


def _cli(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _report(run_id: str) -> dict:
    return json.loads(mlflow.artifacts.load_text(f"runs:/{run_id}/trusteq/report.json"))


def _folder_bytes(version: str) -> int:
    """Independent: the files of the version's model folder, by os.walk (MLflow's own meta file aside)."""
    path = MlflowClient().get_model_version_download_uri(NAME, version)
    path = path[len("file://"):] if path.startswith("file://") else path
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            if not (root == path and f == "registered_model_meta"):
                total += os.path.getsize(os.path.join(root, f))
    return total


def _cli_json(version: str, store, *extra: str) -> dict:
    r = _cli("evaluate", f"models:/{NAME}/{version}", "--parent", f"models:/{NAME}/1", "--data", store["data"],
             "--text-column", "sentence", "--label-column", "label", "--n-resamples", "100", "--no-record",
             "--json", *extra)
    assert r.exit_code in (0, 1), r.output
    return json.loads(r.stdout)


def test_size_ratio_is_one_rule_for_the_api_and_the_cli(store):
    _, run_id = _api(f"models:/{NAME}/2", store["dev"], parent=f"models:/{NAME}/1", n_resamples=100,
                     record_verdict=False)
    api = MlflowClient().get_run(run_id).data.metrics["trusteq/size_ratio"]
    shell = _cli_json("2", store)["metrics"]["size_ratio"]["value"]
    expected = _folder_bytes("2") / _folder_bytes("1")
    assert api == pytest.approx(expected, rel=1e-12) and shell == pytest.approx(expected, rel=1e-12)
    assert _report(run_id)["settings"]["size_rule"] == {"parent": "mlflow_model_folder",
                                                        "candidate": "mlflow_model_folder"}


def _reference_digest(path: str, features: list[str], label: str) -> str:
    """The README's recipe, re-implemented on the TSV with the csv module (no pandas)."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    h = hashlib.sha256()

    def line(cells):
        h.update((json.dumps(cells, separators=(",", ":"), ensure_ascii=False) + "\n").encode("utf-8"))

    line([*features, True])
    for row in rows:
        line([row[c] for c in features] + [int(row[label])])
    return "sha256-rows-v1:" + h.hexdigest()


def test_one_data_digest_for_the_api_and_the_cli_and_by_hand(store):
    _, run_id = _api(f"models:/{NAME}/2", store["dev"], parent=f"models:/{NAME}/1", n_resamples=100,
                     record_verdict=False)
    api = MlflowClient().get_run(run_id).data.tags["trusteq.data_digest"]
    shell = _cli_json("2", store)["data_digest"]
    assert api == shell == _reference_digest(store["data"], ["sentence"], "label")


def test_the_candidates_logged_model_gets_its_own_numbers_whichever_uri_names_it(store):
    client = MlflowClient()
    source = client.get_model_version(NAME, "2").source
    assert source.startswith("models:/m-")
    model_id = source[len("models:/"):]
    for uri in (source, f"models:/{NAME}/2"):
        _, run_id = _api(uri, store["dev"], parent=f"models:/{NAME}/1", n_resamples=100, record_verdict=False)
        attached = {m.key for m in client.get_logged_model(model_id).metrics if m.run_id == run_id}
        assert "trusteq/label_loyalty" in attached and "trusteq/candidate/accuracy" in attached, (uri, attached)
        assert not [k for k in attached if k.startswith("trusteq/parent/")], (uri, attached)


def _pass_on_v3(store) -> dict:
    client = MlflowClient()
    _api(f"models:/{NAME}/3", store["dev"], parent=f"models:/{NAME}/1", n_resamples=100)
    tags = client.get_model_version(NAME, "3").tags
    assert tags["trusteq.verdict"] == "pass" and verify_verdict(client, NAME, "3").ok
    return tags


def test_no_signing_key_is_an_error_and_the_earlier_pass_stays(store, monkeypatch):
    before = _pass_on_v3(store)
    key = os.environ["TRUSTEQ_SIGNING_KEY"]
    monkeypatch.delenv("TRUSTEQ_SIGNING_KEY")
    with pytest.raises(VerdictError, match=r"TRUSTEQ_SIGNING_KEY.*record_verdict=False"):
        _api(f"models:/{NAME}/3", store["dev"], parent=f"models:/{NAME}/1", n_resamples=100)
    assert MlflowClient().get_model_version(NAME, "3").tags == before
    outcome = evaluate_and_log(f"models:/{NAME}/3", store["dev"], targets="label",
                               config={"parent": f"models:/{NAME}/1", "n_resamples": 50, "record_verdict": False})
    assert outcome.verdict.passed and not outcome.version_tags and "record_verdict=False" in outcome.not_recorded
    monkeypatch.setenv("TRUSTEQ_SIGNING_KEY", key)
    assert verify_verdict(MlflowClient(), NAME, "3").ok


def test_a_verdict_that_cannot_be_recorded_is_said_on_stderr_during_mlflow_evaluate(store, monkeypatch, capfd):
    """The files change between the start and the end (here: the start's digest is stale)."""
    import mlflow_trusteq.integration.evaluator as evaluator

    monkeypatch.setattr(evaluator, "content_digest_of", lambda *a: "sha256-tree-v1:" + "0" * 64)
    with pytest.warns(evaluator.VerdictNotRecordedWarning, match="no verdict was recorded on models:/sk-paths/3"):
        _api(f"models:/{NAME}/3", store["dev"], parent=f"models:/{NAME}/1", n_resamples=50)
    assert "no verdict was recorded on models:/sk-paths/3" in capfd.readouterr().err


@pytest.mark.parametrize("mistake", ["parent name typo", "parent model id typo", "NaN feature", "label mismatch",
                                     "one row"])
def test_bad_input_does_not_change_the_registry(store, mistake):
    before = _pass_on_v3(store)
    dev = store["dev"].copy()
    parent = f"models:/{NAME}/1"
    if mistake == "parent name typo":
        parent = "models:/sk-pahts/1"
    elif mistake == "parent model id typo":  # what ModelVersion.source holds, one character off
        parent = MlflowClient().get_model_version(NAME, "1").source[:-1] + "x"
    elif mistake == "NaN feature":
        dev["sentence"] = dev["sentence"].astype(object)
        dev.loc[5, "sentence"] = np.nan
    elif mistake == "label mismatch":
        dev["label"] = dev["label"].map({0: "neg", 1: "pos"})
    else:
        dev = dev.iloc[:1]
    with pytest.raises(Exception) as err:
        _api(f"models:/{NAME}/3", dev, parent=parent, n_resamples=50)
    assert str(err.value)
    assert MlflowClient().get_model_version(NAME, "3").tags == before, mistake
    assert verify_verdict(MlflowClient(), NAME, "3").ok


def test_one_row_gets_a_clear_error(store):
    with pytest.raises(InvalidInputError, match=r"1 row\(s\) of data: a verdict is recorded from at least 10"):
        evaluate_and_log(f"models:/{NAME}/3", store["dev"].iloc[:1], targets="label",
                         config={"parent": f"models:/{NAME}/1"})


def test_incomplete_reads_differently_from_fail_and_both_block(store):
    client = MlflowClient()
    # no gold labels: calibration and accuracy cannot be measured -> incomplete (not a measured failure)
    incomplete = evaluate_and_log(f"models:/{NAME}/3", store["dev"][["sentence"]],
                                  config={"parent": f"models:/{NAME}/1", "n_resamples": 50})
    assert incomplete.verdict.label == "incomplete" and not incomplete.verdict.passed
    assert client.get_run(incomplete.run_id).data.tags["trusteq.verdict"] == "incomplete"
    tags = client.get_model_version(NAME, "3").tags
    reasons = json.loads(tags["trusteq.reasons"])
    assert tags["trusteq.verdict"] == "fail" and reasons[0].startswith("INCOMPLETE, not a measured failure")
    assert any("no gold labels" in r for r in reasons)
    assert not verify_verdict(client, NAME, "3").ok
    # measured and not equivalent -> fail
    failed = evaluate_and_log(f"models:/{NAME}/2", store["dev"], targets="label",
                              config={"parent": f"models:/{NAME}/1", "n_resamples": 50})
    assert failed.verdict.label == "fail"
    assert not json.loads(client.get_model_version(NAME, "2").tags["trusteq.reasons"])[0].startswith("INCOMPLETE")
    assert not verify_verdict(client, NAME, "2").ok


def test_trusteq_named_explicitly_claims_a_missing_or_misspelled_parent(store):
    with pytest.raises(InvalidInputError, match=r"unknown trusteq evaluator_config key\(s\) \['parnet'\]"):
        _api(f"models:/{NAME}/4", store["dev"], parnet=f"models:/{NAME}/1")
    with pytest.raises(InvalidInputError, match="no parent.*no trusteq.parent lineage tag"):
        _api(f"models:/{NAME}/4", store["dev"])
    # under evaluators=None trusteq still stays out of an evaluation that names no parent
    from mlflow.models.evaluation.base import resolve_evaluators_and_configs

    chosen = {b.name for b in resolve_evaluators_and_configs(None, {}, model_type="classifier")}
    assert "trusteq" not in chosen and "classifier" in chosen
    named = resolve_evaluators_and_configs(None, {"parent": "models:/a/1"}, model_type="classifier")
    assert "trusteq" in {b.name for b in named}


def test_robustness_on_tabular_data_is_not_applicable():
    from sklearn.linear_model import LogisticRegression

    from mlflow_trusteq import compare

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(120, 3)), columns=["a", "b", "c"])
    y = (X["a"] > 0).astype(int)
    parent = LogisticRegression().fit(X, y)
    candidate = LogisticRegression(C=0.5).fit(X, y)
    report = compare(parent, candidate, X.assign(label=y), targets="label", robustness=True, n_resamples=50)
    assert report.skipped["robustness"].startswith("not applicable: the robustness attacks")
    assert "tabular" in report.skipped["robustness"]
