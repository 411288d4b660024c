"""Per-alias policies end to end: the real evaluator judges one candidate against a canary and a champion
policy, a real ``mlflow server --app-name trusteq-gate`` requires each for its alias.

The server's file pins the digests that ``trusteq policy-digest`` prints for the two policy files;
the same registered version (a real scikit-learn TF-IDF pair on SST-2) then takes ``@canary`` and is
refused ``@champion``, with the failing check in the one-line refusal and the evaluation's report
behind its link.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from mlflow_trusteq.cli import cli
from mlflow_trusteq.integration.evaluator import evaluate_and_log
from mlflow_trusteq.integration.promote import PromotionRefused, promote_version
from mlflow_trusteq.policy import Policy
from trusteq_gate.signing import TAG_POLICIES, parse_policies_tag
from trusteq_gate.testing import assert_denied, gate_server, rest

pytestmark = pytest.mark.slow

CANARY = 'name = "canary"\n[checks.label_loyalty]\nthreshold = 0.5\n'
# 200 rows resolve a lower bound of 0.97 (n >= 124); the half-data TF-IDF candidate is far below it
CHAMPION = 'name = "champion"\n[checks.label_loyalty]\nthreshold = 0.97\n'


@pytest.fixture(scope="module")
def policy_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("policies")
    (root / "canary.toml").write_text(CANARY)
    (root / "champion.toml").write_text(CHAMPION)
    return root / "canary.toml", root / "champion.toml"


def test_policy_digest_command_prints_the_policy_digest(policy_files, tmp_path):
    res = CliRunner().invoke(cli, ["policy-digest", *map(str, policy_files)])
    assert res.exit_code == 0, res.output
    lines = [line.split() for line in res.output.splitlines()]
    assert [(d, n) for d, n, _ in lines] == [(Policy.from_toml(p).digest, Policy.from_toml(p).name)
                                            for p in policy_files]
    bad = tmp_path / "bad.toml"
    bad.write_text("[checks.label_loyalty]\nthreshhold = 0.9\n")
    res = CliRunner().invoke(cli, ["policy-digest", str(bad)])
    assert res.exit_code == 2 and "threshhold" in res.output


@pytest.fixture(scope="module")
def server(tmp_path_factory, policy_files, signing_key):
    canary, champion = (Policy.from_toml(p).digest for p in policy_files)
    root = tmp_path_factory.mktemp("alias-gate")
    config = root / "alias-policies.toml"
    config.write_text(f'[aliases.canary]\npolicy = "canary"\ndigest = "{canary}"\n\n'
                      f'[aliases.champion]\npolicy = "champion"\ndigest = "{champion}"\n')
    with gate_server(root / "srv", env={"TRUSTEQ_SIGNING_KEY": signing_key,
                                        "TRUSTEQ_GATE_ALIAS_POLICIES": str(config)}) as srv:
        yield srv


@pytest.fixture(scope="module")
def evaluated(server, tfidf_pair, sst2_small, policy_files):
    """models:/sk-alias/2, evaluated against v1 under the default policy plus canary and champion."""
    import mlflow

    client = MlflowClient(server.url, server.url)
    parent, candidate = tfidf_pair
    _, dev = sst2_small
    mlflow.set_tracking_uri(server.url)
    mlflow.set_registry_uri(server.url)
    with mlflow.start_run():
        mlflow.sklearn.log_model(parent, name="p", registered_model_name="sk-alias", pip_requirements=["scikit-learn"])
        mlflow.sklearn.log_model(candidate, name="c", registered_model_name="sk-alias",
                                 pip_requirements=["scikit-learn"])
    outcome = evaluate_and_log("models:/sk-alias/2", dev.iloc[:200], targets="label", client=client,
                               config={"parent": "models:/sk-alias/1", "n_resamples": 200,
                                       "policies": {"canary": str(policy_files[0]),
                                                    "champion": str(policy_files[1])}})
    return client, outcome


def test_evaluator_signs_each_policys_outcome(evaluated, policy_files):
    client, outcome = evaluated
    outcomes = parse_policies_tag(client.get_model_version("sk-alias", "2").tags[TAG_POLICIES])
    by_name = {o.name: o for o in outcomes}
    assert set(by_name) == {outcome.verdict.policy_name, "canary", "champion"}
    assert by_name["canary"].digest == Policy.from_toml(policy_files[0]).digest and by_name["canary"].passed
    assert not by_name["champion"].passed and by_name["champion"].reasons[0].startswith("label_loyalty")
    assert "below the threshold 0.97" in by_name["champion"].reasons[0]  # measured, not incomplete
    assert by_name[outcome.verdict.policy_name].passed == outcome.verdict.passed


def test_same_version_to_canary_but_not_champion_on_the_real_server(server, evaluated):
    client, outcome = evaluated
    client.set_registered_model_alias("sk-alias", "canary", "2")
    assert client.get_model_version_by_alias("sk-alias", "canary").version == "2"
    msg = assert_denied(rest(server, "/api/2.0/mlflow", "POST", "/registered-models/alias",
                             {"name": "sk-alias", "alias": "champion", "version": "2"}),
                        "Setting alias 'champion' on models:/sk-alias/2 is refused",
                        "alias 'champion' requires policy 'champion', which the verdict fails: label_loyalty")
    assert "\n" not in msg and msg.endswith(f"/runs/{outcome.run_id}/artifacts/trusteq/report.html")
    with pytest.raises(MlflowException, match="requires policy 'champion'"):
        client.set_registered_model_alias("sk-alias", "champion", "2")
    # trusteq promote asks the server, which knows the alias's policy
    with pytest.raises(PromotionRefused):
        promote_version(client, "sk-alias", "2", alias="champion")
    client.delete_registered_model_alias("sk-alias", "canary")
    promote_version(client, "sk-alias", "2", alias="canary")
    res = CliRunner().invoke(cli, ["verify", "sk-alias", "2", "--alias", "champion", "--tracking-uri", server.url])
    assert res.exit_code == 1 and "alias 'champion' requires: 'champion'" in res.output, res.output


def test_a_bad_named_policy_changes_nothing(evaluated, tmp_path):
    from mlflow_trusteq._errors import PolicyError

    client, _ = evaluated
    before = client.get_model_version("sk-alias", "2").tags
    bad = tmp_path / "bad.toml"
    bad.write_text("[checks.label_loyalty]\nthreshhold = 0.9\n")
    with pytest.raises(PolicyError, match="threshhold"):
        evaluate_and_log("models:/sk-alias/2", None, client=client,
                         config={"parent": "models:/sk-alias/1", "policies": {"canary": str(bad)}})
    assert client.get_model_version("sk-alias", "2").tags == before
