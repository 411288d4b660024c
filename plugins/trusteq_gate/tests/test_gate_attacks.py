"""Attacks on a real ``mlflow server --app-name trusteq-gate`` (issue 9), each with the registry unchanged after.

Every test first tries the attack as it worked on the gate before this fix (each one promoted an
unverified version there), then checks the refusal and that the whole registry (models,
versions, tags, aliases, stages, timestamps) is exactly as it was.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pytest
import requests
from gate_helpers import (
    KEY,
    PATHS,
    RING,
    add_version,
    add_version_raw,
    create_model_raw,
    assert_denied,
    evaluate,
    new_model,
    new_name,
    rest,
    snapshot,
)
from mlflow.exceptions import MlflowException

from trusteq_gate.signing import TAG_AUTH_HEADER, TAG_SIGNATURE, TAG_VERDICT, sign_verdict, tag_write_token
from trusteq_gate.testing import gate_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client(uvicorn_server):
    return uvicorn_server.client()


@pytest.fixture(scope="module")
def reg(client):
    """``src``: v1 parent (no verdict), v2 signed pass, v3 signed fail; ``dst``: an empty gated target."""
    name = new_model(client, "src", 3)
    evaluate(client, name, "2")
    evaluate(client, name, "3", verdict="fail", reasons=["fidelity/loyalty_score: lower bound 0.81 < 0.95"])
    dst = new_name("dst")
    client.create_registered_model(dst)
    return {"name": name, "dst": dst}


# --- 1. "is this a copy?" is decided as MLflow decides it -----------------------------------------

@pytest.fixture(scope="module")
def plain(client):
    """``src`` with one version and no verdict, and an empty target (no signing involved)."""
    name = new_name("plain")
    client.create_registered_model(name)
    add_version(client, name)
    dst = new_name("plain-dst")
    client.create_registered_model(dst)
    return {"name": name, "dst": dst}


SPELLINGS = ["models:/{n}/{v}", " models:/{n}/{v}", "\x01models:/{n}/{v}", "\x1fmodels:/{n}/{v}",
             "mod\tels:/{n}/{v}", "m\no\rdels:/{n}/{v}", "MODELS:/{n}/{v}", "Models:/{n}/{v}",
             "models:/{n}/{v}\n", "models:/{n}/{v} ", "\tmodels:/{n}/{v}\x00", "models\t:/{n}/{v}",
             "models:/{n}/0{v}", "models:///{n}/{v}"]


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_copy_in_any_spelling_mlflow_normalises_is_refused(uvicorn_server, plain, spelling):
    before = snapshot(uvicorn_server)
    source = spelling.format(n=plain["name"], v="1")
    resp = rest(uvicorn_server, PATHS[0], "POST", "/model-versions/create", {"name": plain["dst"], "source": source})
    assert_refused(resp)
    assert snapshot(uvicorn_server) == before


def assert_refused(resp):
    """The gate's 403, or MLflow's own 400 for a source it does not accept at all."""
    if resp.status_code == 400:
        assert resp.json()["error_code"] == "INVALID_PARAMETER_VALUE", resp.text
    else:
        assert_denied(resp, "Copying (promoting)")


def test_copy_is_refused_on_a_server_without_key_in_every_spelling(tmp_path):
    with gate_server(tmp_path, env={"TRUSTEQ_SIGNING_KEY": "", "TRUSTEQ_SIGNING_KEY_FILE": "",
                                    "TRUSTEQ_SIGNING_KEYS_FILE": ""}) as srv:
        c = srv.client()
        c.create_registered_model("src")
        add_version(c, "src")
        c.create_registered_model("dst")
        before = snapshot(srv)
        for spelling in SPELLINGS:
            resp = rest(srv, PATHS[1], "POST", "/model-versions/create",
                        {"name": "dst", "source": spelling.format(n="src", v="1")})
            assert_refused(resp)
            if spelling == "models:/{n}/{v}":
                assert_denied(resp, "No signing key is configured")
        assert snapshot(srv) == before


def test_copy_of_a_failing_version_is_refused(uvicorn_server, reg):
    before = snapshot(uvicorn_server)
    for base in PATHS:
        assert_denied(rest(uvicorn_server, base, "POST", "/model-versions/create",
                           {"name": reg["dst"], "source": f"models:/{reg['name']}/3"}), "signed 'fail' verdict")
    assert snapshot(uvicorn_server) == before


# --- 2. the version checked is the version copied -------------------------------------------------

@pytest.mark.parametrize("suffix", ["latest", "@champion", "Production"])
def test_non_literal_copy_source_is_refused_even_when_it_resolves_to_a_pass(uvicorn_server, client, suffix):
    name = new_name("race")
    client.create_registered_model(name)
    add_version(client, name)
    add_version(client, name, b"candidate")
    evaluate(client, name, "2")
    client.set_registered_model_alias(name, "champion", "2")
    client.transition_model_version_stage(name, "2", "Production")
    dst = new_name("race-dst")
    client.create_registered_model(dst)
    source = f"models:/{name}/{suffix}" if not suffix.startswith("@") else f"models:/{name}{suffix}"
    before = snapshot(uvicorn_server)
    # the gate resolved this to v2 (a pass), then MLflow resolved it again: a version created meanwhile won
    assert_denied(rest(uvicorn_server, PATHS[0], "POST", "/model-versions/create", {"name": dst, "source": source}),
                  "not the literal version URI", f"models:/{name}/2")
    assert snapshot(uvicorn_server) == before
    copy = client.copy_model_version(f"models:/{name}/2", dst)  # the literal source is the honest path
    assert copy.source == f"models:/{name}/2"


# --- 3. prompts, renames, delete-and-recreate -----------------------------------------------------

def test_a_prompt_tag_does_not_switch_the_gate_off(uvicorn_server, client):
    name = new_name("fake-prompt")
    create_model_raw(uvicorn_server, name, tags={"mlflow.prompt.is_prompt": "true"})
    add_version_raw(uvicorn_server, client, name, b"unverified model")
    before = snapshot(uvicorn_server)
    for base in PATHS:
        assert_denied(rest(uvicorn_server, base, "POST", "/registered-models/alias",
                           {"name": name, "alias": "champion", "version": "1"}), "no trusteq verdict")
    assert snapshot(uvicorn_server) == before
    # genuine prompts (a template, no model files) still take aliases
    prompt = new_name("prompt")
    client.register_prompt(prompt, "Summarize: {{text}}")
    client.set_prompt_alias(prompt, "production", 1)


@pytest.fixture(scope="module")
def scoped_server(tmp_path_factory):
    """Only ``prod-*`` models are gated; gunicorn with two workers."""
    env = {"TRUSTEQ_SIGNING_KEY": KEY, "TRUSTEQ_GATE_MODELS": "prod-*"}
    with gate_server(tmp_path_factory.mktemp("gate-scoped"), env=env, flavour="gunicorn", workers=2) as srv:
        yield srv


@pytest.mark.parametrize("carried", ["alias", "stage", "prompt-alias"])
def test_rename_into_a_gated_name_carries_aliases_and_stages_as_promotions(scoped_server, carried):
    c = scoped_server.client()
    free = new_name("staging")
    tags = {"mlflow.prompt.is_prompt": "true"} if carried == "prompt-alias" else None
    create_model_raw(scoped_server, free, tags=tags)
    add_version_raw(scoped_server, c, free, b"unverified")
    if carried == "stage":
        c.transition_model_version_stage(free, "1", "Production")
    else:
        set_alias_raw(scoped_server, free, "champion", "1")  # not gated under this name
    target = "prod-" + free
    before = snapshot(scoped_server)
    for base in PATHS:
        assert_denied(rest(scoped_server, base, "POST", "/registered-models/rename",
                           {"name": free, "new_name": target}), "Renaming", "into a gated name")
    assert snapshot(scoped_server) == before


def test_delete_and_recreate_a_gated_name_by_rename_is_refused(scoped_server):
    c = scoped_server.client()
    gated = "prod-" + new_name("sentiment")
    c.create_registered_model(gated)
    add_version(c, gated)
    c.delete_registered_model(gated)  # deleting is never refused ...
    free = new_name("lookalike")
    create_model_raw(scoped_server, free, tags={"mlflow.prompt.is_prompt": "true"})
    add_version_raw(scoped_server, c, free, b"unverified")
    set_alias_raw(scoped_server, free, "champion", "1")
    before = snapshot(scoped_server)
    assert_denied(rest(scoped_server, PATHS[0], "POST", "/registered-models/rename",  # the name comes back gated
                       {"name": free, "new_name": gated}), "alias 'champion'")
    assert snapshot(scoped_server) == before


def test_rename_with_a_passing_alias_and_renames_of_prompts_work(scoped_server):
    c = scoped_server.client()
    free = new_name("ok")
    c.create_registered_model(free)
    add_version(c, free)
    evaluate(c, free, "1")
    c.set_registered_model_alias(free, "champion", "1")
    c.rename_registered_model(free, "prod-" + free)
    assert c.get_model_version_by_alias("prod-" + free, "champion").version == "1"
    prompt = new_name("prompt")
    c.register_prompt(prompt, "Hi {{name}}")
    c.set_prompt_alias(prompt, "champion", 1)
    r = rest(scoped_server, PATHS[0], "POST", "/registered-models/rename",
             {"name": prompt, "new_name": "prod-" + prompt})
    assert r.status_code == 200, r.text


def set_alias_raw(server, name, alias, version):
    r = rest(server, PATHS[0], "POST", "/registered-models/alias", {"name": name, "alias": alias, "version": version})
    assert r.status_code == 200, r.text


# --- 4. captured credentials do not replay; verdicts are monotonic --------------------------------

def _captured_pass(server, name, version):
    """Write a pass as the evaluator does, keeping every request (body and X-TrustEq-Tag-Auth header)."""
    c = server.client()
    from trusteq_gate.content import client_version_digest

    mv = c.get_model_version(name, version)
    tags = sign_verdict(RING, name=name, version=version, source=mv.source, verdict="pass", run_id="run-pass",
                        parent=f"models:/{name}/1", data_digest="d", policy_digest="p",
                        content_digest=client_version_digest(c, name, version))
    sent = []
    for key in [k for k in tags if k != TAG_SIGNATURE] + [TAG_SIGNATURE]:
        body = {"name": name, "version": version, "key": key, "value": tags[key]}
        headers = {TAG_AUTH_HEADER: tag_write_token(RING, op="set", name=name, version=version, key=key,
                                                    value=tags[key])}
        r = rest(server, PATHS[0], "POST", "/model-versions/set-tag", body, headers)
        assert r.status_code == 200, r.text
        sent.append((body, headers))
    return sent


def test_captured_credentials_replay_neither_immediately_nor_after_a_reevaluation(scoped_server):
    """Two gunicorn workers: the record of used credentials is in the database, not in one process."""
    c = scoped_server.client()
    name = "prod-" + new_name("replay")
    c.create_registered_model(name)
    add_version(c, name)
    add_version(c, name, b"candidate")
    captured = _captured_pass(scoped_server, name, "2")
    for body, headers in captured:  # the same writes again, at once (also on the worker that did not see them)
        for _ in range(2):
            assert_denied(rest(scoped_server, PATHS[1], "POST", "/model-versions/set-tag", body, headers))
    assert_denied(rest(scoped_server, PATHS[1], "POST", "/model-versions/set-tag", *captured[-1]), "already used")
    evaluate(c, name, "2", verdict="fail", reasons=["calibration drifted"], run_id="run-fail")
    before = snapshot(scoped_server)
    for body, headers in captured:  # the pass, replayed within its 5 minutes after the re-evaluation
        assert_denied(rest(scoped_server, PATHS[0], "POST", "/model-versions/set-tag", body, headers))
    assert snapshot(scoped_server) == before
    assert c.get_model_version(name, "2").tags[TAG_VERDICT] == "fail"
    with pytest.raises(MlflowException, match="calibration drifted"):
        c.set_registered_model_alias(name, "champion", "2")


def test_an_older_unused_credential_never_overwrites_a_newer_verdict(scoped_server):
    c = scoped_server.client()
    name = "prod-" + new_name("monotonic")
    c.create_registered_model(name)
    add_version(c, name)
    withheld = tag_write_token(RING, op="set", name=name, version="1", key=TAG_VERDICT, value="pass")
    time.sleep(0.01)
    evaluate(c, name, "1", verdict="fail", reasons=["r"], run_id="run-new")
    before = snapshot(scoped_server)
    assert_denied(rest(scoped_server, PATHS[0], "POST", "/model-versions/set-tag",
                       {"name": name, "version": "1", "key": TAG_VERDICT, "value": "pass"},
                       {TAG_AUTH_HEADER: withheld}), "older than the latest")
    assert snapshot(scoped_server) == before


# --- 5. the verdict is bound to the files ------------------------------------------------------------

def test_artifacts_overwritten_after_the_pass_are_not_promoted(uvicorn_server, client):
    name = new_name("swap")
    client.create_registered_model(name)
    add_version(client, name)
    mv = add_version(client, name, b"the judged weights")
    evaluate(client, name, "2")
    client.set_registered_model_alias(name, "candidate-ok", "2")  # promotable while the files are the judged ones
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "model.bin").write_bytes(b"other weights")
        client.log_artifact(mv.run_id, str(Path(tmp, "model.bin")), "model")  # the artifact write of an attacker
    dst = new_name("swap-dst")
    client.create_registered_model(dst)
    before = snapshot(uvicorn_server)
    for base in PATHS:
        assert_denied(rest(uvicorn_server, base, "POST", "/registered-models/alias",
                           {"name": name, "alias": "champion", "version": "2"}), "files changed")
        assert_denied(rest(uvicorn_server, base, "POST", "/model-versions/transition-stage",
                           {"name": name, "version": "2", "stage": "Production", "archive_existing_versions": False}),
                      "files changed")
        assert_denied(rest(uvicorn_server, base, "POST", "/model-versions/create",
                           {"name": dst, "source": f"models:/{name}/2"}), "files changed")
    assert snapshot(uvicorn_server) == before
    verify = requests.get(uvicorn_server.url + "/api/2.0/trusteq/verify", params={"name": name, "version": "2"},
                          timeout=30).json()
    assert verify["ok"] is False and verify["signature_valid"] is True


def test_an_added_file_also_breaks_the_binding(uvicorn_server, client):
    name = new_name("addfile")
    client.create_registered_model(name)
    mv = add_version(client, name)
    evaluate(client, name, "1")
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "python_model.pkl").write_bytes(b"code that runs at load time")
        client.log_artifact(mv.run_id, str(Path(tmp, "python_model.pkl")), "model")
    before = snapshot(uvicorn_server)
    with pytest.raises(MlflowException, match="files changed"):
        client.set_registered_model_alias(name, "champion", "1")
    assert snapshot(uvicorn_server) == before


# --- 6. model-level trusteq.* tags: one rule on every route ---------------------------------------

def test_model_level_trusteq_tags_need_the_credential_on_every_route(uvicorn_server, client):
    name = new_name("rmtags")
    before = snapshot(uvicorn_server)
    for base in PATHS:
        assert_denied(rest(uvicorn_server, base, "POST", "/registered-models/create",
                           {"name": name, "tags": [{"key": "trusteq.verdict", "value": "pass"}]}), TAG_AUTH_HEADER)
        assert_denied(rest(uvicorn_server, base, "POST", "/registered-models/create",
                           {"name": name, "tags": [{"key": "TrustEq.Signature", "value": "x"}]}), TAG_AUTH_HEADER)
    assert snapshot(uvicorn_server) == before
    client.create_registered_model(name, tags={"team": "nlp"})  # other tags are free
    before = snapshot(uvicorn_server)
    assert_denied(rest(uvicorn_server, PATHS[0], "POST", "/registered-models/set-tag",
                       {"name": name, "key": "trusteq.verdict", "value": "pass"}), TAG_AUTH_HEADER)
    assert snapshot(uvicorn_server) == before


# --- defects ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("version", ["1" * 20, str(2**63), "99999999999999999999999"])
def test_huge_version_numbers_are_a_400_that_names_the_problem(uvicorn_server, plain, version):
    before = snapshot(uvicorn_server)
    for base in PATHS:
        r = rest(uvicorn_server, base, "POST", "/registered-models/alias",
                 {"name": plain["name"], "alias": "champion", "version": version})
        assert r.status_code == 400 and "not a model version number" in r.json()["message"], r.text
    r = requests.get(uvicorn_server.url + "/api/2.0/trusteq/verify", params={"name": plain["name"], "version": version},
                     timeout=30)
    assert r.status_code == 400 and "not a model version number" in r.json()["message"], r.text
    assert snapshot(uvicorn_server) == before


# --- the honest path, on every server flavour -------------------------------------------------------

def honest_path(server) -> None:
    c = server.client()
    name = "prod-" + new_name("honest")
    c.create_registered_model(name)
    add_version(c, name)
    add_version(c, name, b"candidate", tags={"trusteq.parent": f"models:/{name}/1"})
    with pytest.raises(MlflowException, match="PERMISSION_DENIED"):
        c.set_registered_model_alias(name, "champion", "2")
    evaluate(c, name, "2")
    c.set_registered_model_alias(name, "champion", "2")
    c.transition_model_version_stage(name, "2", "Production")
    copy = c.copy_model_version(f"models:/{name}/2", name + "-copy")
    c.set_registered_model_alias(name + "-copy", "champion", copy.version)  # the copy inherits the verdict
    c.delete_registered_model_alias(name, "champion")  # demoting is never blocked
    c.transition_model_version_stage(name, "2", "Archived")
    evaluate(c, name, "2", verdict="fail", reasons=["calibration drifted"], run_id="run-2")  # re-evaluation
    with pytest.raises(MlflowException, match="calibration drifted"):
        c.set_registered_model_alias(name, "champion", "2")
    evaluate(c, name, "2", run_id="run-3")
    c.set_registered_model_alias(name, "champion", "2")
    assert c.get_model_version_by_alias(name, "champion").version == "2"


def test_honest_path_uvicorn(uvicorn_server):
    honest_path(uvicorn_server)


def test_honest_path_gunicorn_two_workers(scoped_server):
    honest_path(scoped_server)
