"""`trusteq` CLI: exit codes (0 pass, 1 fail, 2 usage) and messages, on a real local MLflow store."""

from __future__ import annotations

import secrets
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from mlflow_trusteq.cli import cli


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
        for model in (parent, parent, weak, three, parent):
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
