"""Per-alias policies on a real ``mlflow server --app-name trusteq-gate``, and the server's config errors.

The server is told (``TRUSTEQ_GATE_ALIAS_POLICIES``) that ``@canary`` needs a pass of the canary
policy and ``@champion`` (and stage Production) a pass of the champion policy.  One version's
signed verdict passes canary and fails champion: it may take ``@canary`` and is refused
``@champion``, with the reason.  What a client sends cannot change which policy applies, and
outcomes it forges or alters do not verify.
"""

from __future__ import annotations

import json

import pytest
from gate_helpers import KEY, PATHS, RING, add_version, assert_denied, new_model, new_name, rest, snapshot
from mlflow.exceptions import MlflowException

from trusteq_gate.alias_policies import AliasPolicies, AliasPolicyError
from trusteq_gate.app import GateConfig
from trusteq_gate.client import sign_and_write_verdict, write_model_version_tags
from trusteq_gate.signing import TAG_AUTH_HEADER, TAG_POLICIES, PolicyOutcome
from trusteq_gate.testing import gate_server

CANARY_DIGEST = "1" * 64
CHAMPION_DIGEST = "2" * 64
CHAMPION_NEXT = "3" * 64
FAILED_CHECK = "label_loyalty: lower bound of its CI 0.931 < 0.95"
SERVER_POLICIES = f"""
# what the server requires: alias pattern -> policy
[aliases.canary]
policy = "canary"
digest = "{CANARY_DIGEST}"

[aliases."champion*"]
policy = "champion"
digest = ["{CHAMPION_DIGEST}", "{CHAMPION_NEXT}"]

[stages.Production]
policy = "champion"
digest = "{CHAMPION_DIGEST}"
"""


def _outcomes(canary: bool = True, champion: bool = False) -> list[PolicyOutcome]:
    return [PolicyOutcome("default", "0" * 64, champion, () if champion else (FAILED_CHECK,)),
            PolicyOutcome("canary", CANARY_DIGEST, canary, () if canary else ("label_loyalty: 0.85 < 0.90",)),
            PolicyOutcome("champion", CHAMPION_DIGEST, champion, () if champion else (FAILED_CHECK, "diff/accuracy"))]


def _evaluate(client, name, version, policies, verdict="fail", run_id="run-x"):
    return sign_and_write_verdict(client, name, str(version), RING, verdict=verdict, run_id=run_id,
                                  parent=f"models:/{name}/1", data_digest="sha256:data", policy_digest="0" * 64,
                                  reasons=[FAILED_CHECK] if verdict == "fail" else [], policies=policies)


# --- the server's configuration ------------------------------------------------------------------

def _write(tmp_path, text):
    p = tmp_path / "alias-policies.toml"
    p.write_text(text)
    return {"TRUSTEQ_GATE_ALIAS_POLICIES": str(p)}


def test_alias_policy_file_is_parsed_into_requirements(tmp_path):
    policies = AliasPolicies.from_env(_write(tmp_path, SERVER_POLICIES + '\n[aliases.canary2]\npolicy = "c"\n'
                                             f'digest = "{CANARY_DIGEST}"\nmodels = "fraud*, risk"\n'))
    assert [r.name for r in policies.for_alias("sentiment", "canary")] == ["canary"]
    assert policies.for_alias("sentiment", "champion-eu")[0].digests == (CHAMPION_DIGEST, CHAMPION_NEXT)
    assert policies.for_alias("sentiment", "other") == ()
    assert policies.for_alias("sentiment", "canary2") == () and policies.for_alias("risk", "canary2")
    assert policies.for_stage("m", "production")[0].name == "champion" and policies.for_stage("m", "Staging") == ()
    assert AliasPolicies.from_env({}) == AliasPolicies() == AliasPolicies.from_env({"TRUSTEQ_GATE_ALIAS_POLICIES": ""})
    cfg = GateConfig(None, aliases="prod*", policies=policies)
    assert cfg.alias_rule("m", "canary")[0]  # an alias with its own policy is gated, whatever the patterns say
    assert cfg.alias_rule("m", "dev") == (False, ())


BAD_FILES = [
    ("[aliases.canary\n", "is not valid TOML"),
    ("", "names no alias or stage"),
    ("[alias.canary]\npolicy = 'c'\n", "unknown top-level key(s) ['alias']"),
    (f"[aliases.canary]\npolicy = 'c'\ndigest = '{CANARY_DIGEST}'\nthreshold = 0.9\n", "unknown key(s) ['threshold']"),
    (f"[aliases.canary]\ndigest = '{CANARY_DIGEST}'\n", "'policy'"),
    ("[aliases.canary]\npolicy = 'c'\n", "'digest' must be a policy digest"),
    ("[aliases.canary]\npolicy = 'c'\ndigest = 'sha256:abc'\n", "'sha256:abc' is not a policy digest"),
    (f"[aliases.canary]\npolicy = 'c'\ndigest = '{CANARY_DIGEST.upper()}0'\n", "is not a policy digest"),
    ("[aliases.canary]\npolicy = 'c'\ndigest = []\n", "non-empty list"),
    (f"[stages.archived]\npolicy = 'c'\ndigest = '{CANARY_DIGEST}'\n", "'archived' is not a promotion stage"),
    (f"[aliases.canary]\npolicy = 'c'\ndigest = '{CANARY_DIGEST}'\nmodels = 3\n", "'models'"),
    ("aliases = 'canary'\n", "[aliases] must be a table"),
]


@pytest.mark.parametrize(("text", "needle"), BAD_FILES)
def test_malformed_alias_policy_file_is_an_error_that_names_the_problem(tmp_path, text, needle):
    env = _write(tmp_path, text)
    with pytest.raises(AliasPolicyError) as ei:
        GateConfig.from_env(env)
    assert needle in str(ei.value) and "TRUSTEQ_GATE_ALIAS_POLICIES" in str(ei.value)


def test_missing_alias_policy_file_is_an_error(tmp_path):
    with pytest.raises(AliasPolicyError, match="cannot be read"):
        GateConfig.from_env({"TRUSTEQ_GATE_ALIAS_POLICIES": str(tmp_path / "nope.toml")})


@pytest.mark.slow
def test_server_with_a_malformed_alias_policy_file_does_not_start(tmp_path):
    env = {"TRUSTEQ_SIGNING_KEY": KEY, **_write(tmp_path, "[aliases.canary]\npolicy = 'c'\ndigest = 'nope'\n")}
    with pytest.raises(RuntimeError, match="failed to load") as ei:
        with gate_server(tmp_path / "srv", env=env):
            pass
    assert "'nope' is not a policy digest" in str(ei.value)


# --- on a real server ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("alias-policies")
    env = {"TRUSTEQ_SIGNING_KEY": KEY, **_write(tmp, SERVER_POLICIES)}
    with gate_server(tmp / "srv", env=env) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server):
    return server.client()


@pytest.fixture(scope="module")
def reg(client):
    """v1 parent; v2 passes canary, fails champion (and overall); v3 an overall pass without outcomes."""
    name = new_model(client, "alias", 3)
    run_id = client.get_model_version(name, "2").run_id  # a real run: the refusal links to its report
    _evaluate(client, name, 2, _outcomes(canary=True, champion=False), run_id=run_id)
    _evaluate(client, name, 3, None, verdict="pass")
    return {"name": name, "run_id": run_id}


def test_same_version_goes_to_canary_and_is_refused_champion_with_the_reason(server, client, reg):
    name = reg["name"]
    client.set_registered_model_alias(name, "canary", "2")
    assert client.get_model_version_by_alias(name, "canary").version == "2"
    before = snapshot(server)
    for base in PATHS:
        msg = assert_denied(rest(server, base, "POST", "/registered-models/alias",
                                 {"name": name, "alias": "champion", "version": "2"}),
                            f"Setting alias 'champion' on models:/{name}/2 is refused",
                            "alias 'champion' requires policy 'champion', which the verdict fails",
                            FAILED_CHECK, "(and 1 more)")
        assert "\n" not in msg and len(msg) < 600, msg  # one line
        assert msg.endswith(f"Details: {server.url}/#/experiments/0/runs/{reg['run_id']}/artifacts/"
                            "trusteq/report.html"), msg
    with pytest.raises(MlflowException, match="requires policy 'champion'"):
        client.set_registered_model_alias(name, "champion-eu", "2")  # a pattern ("champion*") matches it too
    assert_denied(rest(server, PATHS[0], "POST", "/model-versions/transition-stage",
                       {"name": name, "version": "2", "stage": "Production", "archive_existing_versions": False}),
                  "stage 'Production' requires policy 'champion'")
    assert snapshot(server) == before


def test_alias_without_a_policy_of_its_own_needs_the_overall_pass(server, client, reg):
    name = reg["name"]
    before = snapshot(server)
    assert_denied(rest(server, PATHS[1], "POST", "/registered-models/alias",
                       {"name": name, "alias": "staging-eu", "version": "2"}), "signed 'fail' verdict")
    assert_denied(rest(server, PATHS[0], "POST", "/model-versions/transition-stage",
                       {"name": name, "version": "2", "stage": "Staging", "archive_existing_versions": False}),
                  "signed 'fail' verdict")
    # v3: an overall pass, but judged against no named policy: fine for other aliases, not for canary
    assert_denied(rest(server, PATHS[0], "POST", "/registered-models/alias",
                       {"name": name, "alias": "canary", "version": "3"}),
                  "alias 'canary' requires policy 'canary'", "was not judged against it",
                  f"Details: {server.url}/api/2.0/trusteq/verify?name={name}&version=3")
    assert snapshot(server) == before
    client.set_registered_model_alias(name, "staging-eu", "3")


def test_verify_endpoint_answers_under_the_alias_policy(server, reg):
    import requests

    url = server.url + "/api/2.0/trusteq/verify"
    canary = requests.get(url, params={"name": reg["name"], "version": "2", "alias": "canary"}, timeout=30).json()
    assert canary["ok"] and canary["fields"]["satisfied_policies"] == ["canary"]
    champion = requests.get(url, params={"name": reg["name"], "version": "2", "alias": "champion"}, timeout=30).json()
    assert not champion["ok"] and champion["fields"]["required_policies"][0]["digests"] == [CHAMPION_DIGEST,
                                                                                           CHAMPION_NEXT]
    assert [o["name"] for o in champion["fields"]["policies"]] == ["default", "canary", "champion"]
    r = requests.get(url, params={"name": reg["name"], "version": "2", "alias": "a", "stage": "Production"},
                     timeout=30)
    assert r.status_code == 400


def test_a_client_cannot_claim_a_laxer_policy(server, client, reg):
    """Forged, altered or mislabelled per-policy outcomes never open @champion."""
    name = reg["name"]
    v2_tags = client.get_model_version(name, "2").tags
    # 1. no credential: writing the outcomes tag at all is refused
    before = snapshot(server)
    claimed = json.dumps([{"name": "champion", "digest": CHAMPION_DIGEST, "passed": True, "reasons": []}])
    for base in PATHS:
        assert_denied(rest(server, base, "POST", "/model-versions/set-tag",
                           {"name": name, "version": "2", "key": TAG_POLICIES, "value": claimed}), TAG_AUTH_HEADER)
    # 2. the request cannot name a policy: extra fields are not read
    assert_denied(rest(server, PATHS[0], "POST", "/registered-models/alias",
                       {"name": name, "alias": "champion", "version": "2", "policy": "canary"},
                       headers={"X-TrustEq-Policy": CANARY_DIGEST}), "requires policy 'champion'")
    assert snapshot(server) == before
    # 3. with the evaluator's write credential, the outcome flipped to pass after signing: does not verify
    flipped = v2_tags[TAG_POLICIES].replace('"passed":false', '"passed":true')
    write_model_version_tags(client, name, "2", {TAG_POLICIES: flipped}, RING)
    assert_denied(rest(server, PATHS[0], "POST", "/registered-models/alias",
                       {"name": name, "alias": "champion", "version": "2"}), "does not verify")
    # 4. a signed verdict that calls the canary policy "champion": matched by digest, so still refused
    mislabelled = [PolicyOutcome("champion", CANARY_DIGEST, True)]
    _evaluate(client, name, 2, mislabelled, verdict="pass", run_id="run-mislabelled")
    before = snapshot(server)
    assert_denied(rest(server, PATHS[1], "POST", "/registered-models/alias",
                       {"name": name, "alias": "champion", "version": "2"}), "was not judged against it")
    assert snapshot(server) == before


def test_a_copy_inherits_the_outcomes_and_meets_the_same_policies(server, client):
    name = new_name("copysrc")
    client.create_registered_model(name)
    add_version(client, name, b"parent")
    add_version(client, name, b"candidate")
    # an overall pass (a copy needs one), canary passed, the stricter champion failed
    _evaluate(client, name, 2, _outcomes(canary=True, champion=False), verdict="pass")
    dst = new_name("copydst")
    client.create_registered_model(dst)
    copy = client.copy_model_version(f"models:/{name}/2", dst)
    client.set_registered_model_alias(dst, "canary", copy.version)
    with pytest.raises(MlflowException, match="requires policy 'champion'"):
        client.set_registered_model_alias(dst, "champion", copy.version)
