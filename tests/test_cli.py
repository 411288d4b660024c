"""`trusteq` CLI: exit codes (0 pass, 1 fail, 2 usage) and messages, on a real local MLflow store."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from mlflow_trusteq.cli import cli

from _models import float32_copy


@pytest.fixture(scope="module")
def store(tmp_path_factory, tfidf_pair, sst2_small):
    """sqlite store with sk-sst2 v1 (parent), v2 (same model: passes), v3 (weaker: fails), v4 (3 labels),
    v5 (same model, never evaluated: no lineage tag)."""
    import mlflow
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    root = tmp_path_factory.mktemp("cli")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", uri)
    mp.setenv("TRUSTEQ_SIGNING_KEY", secrets.token_hex(32))
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    mlflow.set_experiment(experiment_id=mlflow.create_experiment("cli", artifact_location=(root / "a").as_uri()))
    train, dev = sst2_small
    parent, weak = tfidf_pair
    three = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=300)).fit(
        train["sentence"][:300], np.arange(300) % 3)
    with mlflow.start_run():
        for model in (parent, float32_copy(parent), weak, three, float32_copy(parent)):
            mlflow.sklearn.log_model(model, name="m", registered_model_name="sk-sst2",
                                     pip_requirements=["scikit-learn"])
    data = root / "dev.tsv"
    dev.iloc[:300].to_csv(data, sep="\t", index=False)
    yield {"uri": uri, "data": str(data), "root": root}
    mp.undo()


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_pass_exits_0_and_prints_a_summary(store):
    r = run("evaluate", "models:/sk-sst2/2", "--parent", "models:/sk-sst2/1", "--data", store["data"],
            "--text-column", "sentence", "--label-column", "label", "--n-resamples", "200")
    assert r.exit_code == 0, r.output
    assert "PASS" in r.output and "label_loyalty" in r.output.replace(" ", "_").lower()
    run_id = r.output.split("trusteq show ")[1].split(")")[0]
    shown = run("show", run_id)
    assert shown.exit_code == 0 and "PASS" in shown.output
    # the promotion path from the shell
    promoted = run("promote", "sk-sst2", "2", "--alias", "champion")
    assert promoted.exit_code == 0, promoted.output


def test_fail_exits_1_with_reasons_and_promotion_is_refused(store):
    r = run("evaluate", "models:/sk-sst2/3", "--parent", "models:/sk-sst2/1", "--data", store["data"],
            "--text-column", "sentence", "--label-column", "label", "--n-resamples", "200")
    assert r.exit_code == 1, r.output
    assert "FAIL" in r.output and "label_loyalty" in r.output
    refused = run("promote", "sk-sst2", "3", "--alias", "champion")
    assert refused.exit_code == 1 and "refused" in refused.output


@pytest.mark.parametrize("args, message", [
    (["models:/sk-sst2/5", "--data", "{data}", "--text-column", "sentence", "--label-column", "label"],
     "no parent"),
    (["--parent", "models:/sk-sst2/1", "--data", "{root}/nope.csv", "--text-column", "sentence"], "does not exist"),
    (["--parent", "models:/sk-sst2/1", "--data", "{root}/bad.parquet", "--text-column", "sentence"],
     "cannot read data file"),
    (["--parent", "models:/sk-sst2/1", "--data", "{data}", "--text-column", "text", "--label-column", "label"],
     "column 'text' is not in"),
    (["--parent", "models:/sk-sst2/4", "--data", "{data}", "--text-column", "sentence", "--label-column", "label"],
     "label"),
    (["--parent", "models:/sk-sst2/1", "--data", "{data}", "--text-column", "sentence", "--label-column", "label",
      "--policy", "{root}/typo.toml"], "unknown key(s) ['treshold']"),
    (["--parent", "models:/sk-sst2/99", "--data", "{data}", "--text-column", "sentence"], "99"),
])
def test_usage_errors_exit_2_with_a_clear_message(store, args, message):
    root = store["root"]
    (root / "bad.parquet").write_text("this is not parquet")
    (root / "typo.toml").write_text("[checks.label_loyalty]\ntreshold = 0.9\n")
    filled = [a.format(data=store["data"], root=root) for a in args]
    candidate = [] if filled[0].startswith("models:/") else ["models:/sk-sst2/2"]
    r = CliRunner().invoke(cli, ["evaluate", *candidate, *filled])
    assert r.exit_code == 2, r.output
    assert message in r.output


def test_help_texts_explain_themselves():
    top = run("--help")
    assert top.exit_code == 0 and "CANDIDATE" in top.output and "PARENT" in top.output
    sub = run("evaluate", "--help")
    flat = " ".join(sub.output.split())
    assert "--label-column" in flat and "exit 0 pass, 1 fail, 2 usage" in flat


def test_console_script_is_installed():
    r = subprocess.run([sys.executable, "-m", "mlflow_trusteq.cli", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and "version" in r.stdout.lower()


def test_evaluate_options_are_the_config_fields():
    """Every option of `trusteq evaluate` sets a TrustEqConfig field or is declared CLI-only; defaults agree."""
    from mlflow_trusteq import TrustEqConfig
    from mlflow_trusteq.cli import CLI_ONLY_OPTIONS, CONFIG_OPTIONS, config_from_options

    params = {p.name: p for p in cli.commands["evaluate"].params}
    assert set(params) == set(CONFIG_OPTIONS) | set(CLI_ONLY_OPTIONS)
    assert not set(CONFIG_OPTIONS) & set(CLI_ONLY_OPTIONS)
    assert set(CONFIG_OPTIONS.values()) <= set(TrustEqConfig.field_names())
    defaults = TrustEqConfig()
    command = cli.commands["evaluate"]
    plain = command.make_context("evaluate", ["models:/m/2", "--data", "d.csv"]).params
    assert plain["seed"] == defaults.random_state and plain["n_resamples"] == defaults.n_resamples
    cfg = config_from_options({k: plain[k] for k in CONFIG_OPTIONS})
    assert cfg == TrustEqConfig(parent="lineage"), "the CLI's defaults are the config's"
    args = ["models:/m/2", "--data", "d.csv", "--text-column", "sentence", "--alignment", "--explain-examples", "3",
            "--seed", "5", "--no-record"]
    given = command.make_context("evaluate", args).params
    cfg = config_from_options({k: given[k] for k in CONFIG_OPTIONS})
    assert cfg.feature_columns == ("sentence",) and cfg.random_state == 5 and cfg.parent == "lineage"
    assert cfg.alignment == {"random_state": 5, "n_examples": 3} and cfg.robustness is False
    assert cfg.record_verdict is False and cfg.n_resamples == defaults.n_resamples


def test_read_table_lives_below_the_cli():
    """integration/webhook.py reads data files without importing the CLI (no upward import)."""
    from pathlib import Path

    import mlflow_trusteq.integration.webhook as webhook

    assert "from ..cli" not in Path(webhook.__file__).read_text()
    from mlflow_trusteq._data import read_table

    with pytest.raises(Exception, match="does not exist"):
        read_table("/nonexistent/file.csv")


# --- issue 14: the CLI's mistakes are loud, its outputs are for people and for scripts ----------------------------


def _run_id(output: str) -> str:
    return output.split("trusteq show ")[1].split(")")[0]


def test_show_exits_0_for_a_shown_fail_with_or_without_json(store):
    r = run("evaluate", "models:/sk-sst2/3", "--parent", "models:/sk-sst2/1", "--data", store["data"],
            "--text-column", "sentence", "--label-column", "label", "--n-resamples", "100", "--no-record")
    assert r.exit_code == 1 and "FAIL" in r.output
    run_id = _run_id(r.output)
    shown = run("show", run_id)
    assert shown.exit_code == 0 and "FAIL" in shown.output, "showing is not judging"
    as_json = run("show", run_id, "--json")
    assert as_json.exit_code == 0 and json.loads(as_json.stdout)["n_examples"] == 200


def test_show_keeps_mlflow_progress_bars_out(store):
    r = run("evaluate", "models:/sk-sst2/2", "--parent", "models:/sk-sst2/1", "--data", store["data"],
            "--text-column", "sentence", "--label-column", "label", "--n-resamples", "100", "--no-record")
    assert r.exit_code == 0, r.output
    for extra in ([], ["--json"]):
        shown = run("show", _run_id(r.output), *extra)
        assert shown.exit_code == 0 and "Downloading artifacts" not in shown.output, shown.output


def test_evaluate_json_and_quiet(store):
    args = ["evaluate", "models:/sk-sst2/2", "--parent", "models:/sk-sst2/1", "--data", store["data"],
            "--text-column", "sentence", "--label-column", "label", "--n-resamples", "100", "--no-record"]
    r = run(*args, "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)  # stdout is the JSON alone: logs and MLflow's messages go to stderr
    assert out["verdict"] == "pass" and out["passed"] is True and out["candidate"] == "models:/sk-sst2/2"
    assert out["metrics"]["label_loyalty"]["value"] == 1.0 and out["data_digest"].startswith("sha256-rows-v1:")
    assert out["recorded"] is False and "record_verdict=False" in out["not_recorded"]
    report = json.loads(run("show", out["run_id"], "--json").stdout)
    assert report["metrics"]["label_loyalty"]["value"] == out["metrics"]["label_loyalty"]["value"]
    quiet = run(*args, "--quiet")
    assert quiet.exit_code == 0 and quiet.stdout == ""
    failing = run(*args[:1], "models:/sk-sst2/3", *args[2:], "--quiet")
    assert failing.exit_code == 1 and failing.stdout == ""


@pytest.fixture(scope="module")
def tabular(store):
    """sk-tab v1/v2: logistic regressions on three numeric features; a CSV with the features and the label."""
    import mlflow
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    y = (X["a"] + 0.3 * X["b"] > 0).astype(int)
    with mlflow.start_run():
        for C in (1.0, 0.5):
            mlflow.sklearn.log_model(LogisticRegression(C=C).fit(X, y), name="m", registered_model_name="sk-tab",
                                     pip_requirements=["scikit-learn"])
    path = store["root"] / "tab.csv"
    X.assign(label=y).to_csv(path, index=False)
    return str(path)


def test_tabular_data_without_label_column_is_a_usage_error(tabular):
    r = run("evaluate", "models:/sk-tab/2", "--parent", "models:/sk-tab/1", "--data", tabular, "--no-record")
    assert r.exit_code == 2, r.output
    assert "--label-column" in r.output and "tabular" in r.output


def test_robustness_on_tabular_data_says_not_applicable(tabular):
    r = run("evaluate", "models:/sk-tab/2", "--parent", "models:/sk-tab/1", "--data", tabular, "--label-column",
            "label", "--robustness", "--n-resamples", "100", "--no-record", "--json")
    assert r.exit_code in (0, 1), r.output
    assert json.loads(r.stdout)["skipped"]["robustness"].startswith("not applicable")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("command", ["evaluate", "show"])
def test_an_unreachable_tracking_server_is_a_usage_error_within_seconds(store, command):
    import os
    import time

    uri = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    args = (["evaluate", "models:/sk-sst2/2", "--parent", "models:/sk-sst2/1", "--data", store["data"],
             "--text-column", "sentence", "--label-column", "label"] if command == "evaluate"
            else ["show", "0123456789abcdef0123456789abcdef"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_HTTP_REQUEST")}
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "mlflow_trusteq.cli", *args, "--tracking-uri", uri, "--timeout", "2"],
                       capture_output=True, text=True, timeout=120, env=env)
    elapsed = time.monotonic() - t0
    assert r.returncode == 2, r.stderr
    assert f"the tracking server {uri} did not answer" in r.stderr and "--timeout" in r.stderr
    assert elapsed < 30, f"took {elapsed:.0f} s"
