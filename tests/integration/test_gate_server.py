"""A real `mlflow server --app-name trusteq-gate`, and every way around the gate we could think of.

One server per module (sqlite store, 127.0.0.1, stopped by its process-group id).  Each attack
goes through the MLflow client and through raw REST on both /api/2.0/mlflow and
/ajax-api/2.0/mlflow; each must be refused with PERMISSION_DENIED and leave the registry exactly
as it was (every model, version, tag, alias, stage and timestamp).
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

requests = pytest.importorskip("requests")

from mlflow.exceptions import MlflowException  # noqa: E402

from mlflow_trusteq._errors import InvalidInputError, VerdictError  # noqa: E402
from mlflow_trusteq.integration import registry  # noqa: E402
from trusteq_gate.signing import (  # noqa: E402
    TAG_AUTH_HEADER,
    TAG_PARENT,
    TAG_RUN_ID,
    TAG_SIGNATURE,
    TAG_VERDICT,
    VERDICT_TAGS,
    Keyring,
    tag_write_token,
)
from trusteq_gate.testing import API_PATHS, assert_denied, gate_server, register_files, rest  # noqa: E402
from trusteq_gate.testing import registry_snapshot as snapshot  # noqa: E402

pytestmark = pytest.mark.slow

KEY = secrets.token_hex(32)
RING = Keyring.from_secret(KEY)
PATHS = list(API_PATHS)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with gate_server(tmp_path_factory.mktemp("gate"), env={"TRUSTEQ_SIGNING_KEY": KEY}) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server):
    return server.client()


@pytest.fixture(scope="module")
def reg(client):
    """parent v1 (no verdict), v2 (signed pass), v3 (signed fail), v4 (no verdict); and a copy target."""
    name = f"sentiment-{uuid.uuid4().hex[:6]}"
    client.create_registered_model(name)
    for i in range(1, 5):
        register_files(client, name, {"model.bin": f"{name}/{i}".encode()})
    for v in ("2", "3", "4"):
        registry.set_parent(client, name, v, f"models:/{name}/1")
    registry.record_verdict(client, name, "2", verdict="pass", run_id="run-pass", parent_uri=f"models:/{name}/1",
                            data_digest="sha256:data", policy_digest="sha256:policy", reasons=[], keyring=RING)
    registry.record_verdict(client, name, "3", verdict="fail", run_id="run-fail", parent_uri=f"models:/{name}/1",
                            data_digest="sha256:data", policy_digest="sha256:policy",
                            reasons=["fidelity/loyalty_score: lower bound 0.81 < 0.95"], keyring=RING)
    target = f"{name}-prod"
    client.create_registered_model(target)
    return {"name": name, "target": target}


def assert_client_denied(exc_info, *needles):
    assert "PERMISSION_DENIED" in str(exc_info.value)
    for n in needles:
        assert n in str(exc_info.value)


# --- aliases ------------------------------------------------------------------------------------

@pytest.mark.parametrize("base", PATHS)
@pytest.mark.parametrize("version", ["1", "3", "4"])
def test_alias_refused_without_valid_pass_rest(server, reg, base, version):
    before = snapshot(server)
    msg = assert_denied(rest(server, base, "POST", "/registered-models/alias",
                             {"name": reg["name"], "alias": "champion", "version": version}),
                        f"models:/{reg['name']}/{version}", "Details: ")
    assert snapshot(server) == before
    assert "\n" not in msg and len(msg) < 500, msg  # one line: what, the first reason, the link
    # no run of that id on this server: the details are the gate's verify endpoint for the version
    assert msg.endswith(f"Details: {server.url}/api/2.0/trusteq/verify?name={reg['name']}&version={version}"), msg
    if version == "3":
        assert "fidelity/loyalty_score: lower bound 0.81 < 0.95" in msg  # the verdict's own reason


@pytest.mark.parametrize("alias", ["champion", "production", "anything"])
def test_alias_refused_without_valid_pass_client(server, client, reg, alias):
    before = snapshot(server)
    with pytest.raises(MlflowException) as ei:
        client.set_registered_model_alias(reg["name"], alias, "3")
    assert_client_denied(ei, "signed 'fail' verdict")
    assert snapshot(server) == before


@pytest.mark.parametrize("base", PATHS)
def test_double_encoded_body_is_parsed_like_mlflow_does(server, reg, base):
    before = snapshot(server)
    body = json.dumps(json.dumps({"name": reg["name"], "alias": "champion", "version": "3"}))
    assert_denied(rest(server, base, "POST", "/registered-models/alias", data=body))
    assert snapshot(server) == before


# --- stage transitions ----------------------------------------------------------------------------

@pytest.mark.parametrize("base", PATHS)
@pytest.mark.parametrize("stage", ["Production", "staging", "STAGING"])
def test_stage_transition_refused(server, reg, base, stage):
    before = snapshot(server)
    assert_denied(rest(server, base, "POST", "/model-versions/transition-stage",
                       {"name": reg["name"], "version": "3", "stage": stage, "archive_existing_versions": True}),
                  "stage")
    assert snapshot(server) == before


def test_stage_transition_refused_client(server, client, reg):
    before = snapshot(server)
    with pytest.raises(MlflowException) as ei:
        client.transition_model_version_stage(reg["name"], "4", "Production")
    assert_client_denied(ei, "no trusteq verdict")
    assert snapshot(server) == before


# --- tags: forged, copied, replayed, tampered ----------------------------------------------------

@pytest.mark.parametrize("base", PATHS)
def test_forged_verdict_tag_refused(server, reg, base):
    before = snapshot(server)
    for key, value in [(TAG_VERDICT, "pass"), ("TrustEq.Verdict", "pass"), (TAG_SIGNATURE, "hmac-sha256-v2:00")]:
        assert_denied(rest(server, base, "POST", "/model-versions/set-tag",
                           {"name": reg["name"], "version": "3", "key": key, "value": value}),
                      TAG_AUTH_HEADER)
    forged = f"v2:{RING.active}:{int(time.time() * 1000)}:{'0' * 32}:{'0' * 64}"
    assert_denied(rest(server, base, "POST", "/model-versions/set-tag",
                       {"name": reg["name"], "version": "3", "key": TAG_VERDICT, "value": "pass"},
                       headers={TAG_AUTH_HEADER: forged}), "does not authorize")
    assert_denied(rest(server, base, "DELETE", "/model-versions/delete-tag",
                       {"name": reg["name"], "version": "3", "key": TAG_SIGNATURE}))
    assert_denied(rest(server, base, "POST", "/registered-models/set-tag",
                       {"name": reg["name"], "key": "trusteq.verdict", "value": "pass"}))
    assert snapshot(server) == before


def test_forged_tag_refused_client(server, client, reg):
    before = snapshot(server)
    with pytest.raises(MlflowException) as ei:
        client.set_model_version_tag(reg["name"], "3", TAG_VERDICT, "pass")
    assert_client_denied(ei, "trusteq.verdict")
    with pytest.raises(MlflowException):
        client.delete_model_version_tag(reg["name"], "3", TAG_VERDICT)
    with pytest.raises(MlflowException):  # lineage is frozen once a verdict is signed
        client.set_model_version_tag(reg["name"], "2", TAG_PARENT, "models:/elsewhere/1")
    assert snapshot(server) == before


@pytest.mark.parametrize("base", PATHS)
def test_copied_signature_and_replayed_credential_refused(server, client, reg, base):
    """Copy v2's (valid pass) verdict tags onto v4, replaying the evaluator's credential headers."""
    name = reg["name"]
    src = client.get_model_version(name, "2").tags
    before = snapshot(server)
    for key in [t for t in VERDICT_TAGS if t != TAG_PARENT and t in src]:  # lineage is writable while v4 is unsigned
        # a credential captured from the legitimate write on v2 ...
        captured = tag_write_token(RING, op="set", name=name, version="2", key=key, value=src[key])
        # ... replayed on another version, and for another value on the same version
        assert_denied(rest(server, base, "POST", "/model-versions/set-tag",
                           {"name": name, "version": "4", "key": key, "value": src[key]},
                           headers={TAG_AUTH_HEADER: captured}), "does not authorize")
        assert_denied(rest(server, base, "POST", "/model-versions/set-tag",
                           {"name": name, "version": "2", "key": key, "value": src[key] + "x"},
                           headers={TAG_AUTH_HEADER: captured}), "does not authorize")
    assert snapshot(server) == before


def test_key_holder_cannot_promote_a_copied_or_tampered_verdict(server, client, reg):
    """Even with the credential, tags that don't verify for the version are not a verdict."""
    from trusteq_gate.client import write_model_version_tags

    name = f"keyholder-{uuid.uuid4().hex[:6]}"
    client.create_registered_model(name)
    register_files(client, name, {"model.bin": b"k1"})
    register_files(client, name, {"model.bin": b"k2"})
    good = registry.record_verdict(client, name, "1", verdict="pass", run_id="r", parent_uri="models:/p/1",
                                   data_digest="d", policy_digest="p", reasons=[], keyring=RING)
    write_model_version_tags(client, name, "2", good, RING)  # a copied signature
    before = snapshot(server)
    with pytest.raises(MlflowException) as ei:
        client.set_registered_model_alias(name, "champion", "2")
    assert_client_denied(ei, "does not verify")
    assert snapshot(server) == before
    write_model_version_tags(client, name, "1", {TAG_RUN_ID: "another-run"}, RING)  # a tampered field
    before = snapshot(server)
    for base in PATHS:
        assert_denied(rest(server, base, "POST", "/registered-models/alias",
                           {"name": name, "alias": "champion", "version": "1"}), "does not verify")
    assert snapshot(server) == before


# --- promote by copy -------------------------------------------------------------------------------

@pytest.mark.parametrize("base", PATHS)
@pytest.mark.parametrize("src", ["3", "4", "@alias-free"])
def test_promote_by_copy_refused_rest(server, client, reg, base, src):
    name = reg["name"]
    source = f"models:/{name}/{src}" if not src.startswith("@") else f"models:/{name}/latest"
    tags = [{"key": k, "value": v} for k, v in client.get_model_version(name, "3").tags.items()]
    before = snapshot(server)
    assert_denied(rest(server, base, "POST", "/model-versions/create",
                       {"name": reg["target"], "source": source, "tags": tags}), "Copying (promoting)")
    assert snapshot(server) == before


def test_promote_by_copy_refused_client(server, client, reg):
    before = snapshot(server)
    with pytest.raises(MlflowException) as ei:
        client.copy_model_version(f"models:/{reg['name']}/3", reg["target"])
    assert_client_denied(ei, "Copying (promoting)")
    assert snapshot(server) == before


@pytest.mark.parametrize("base", PATHS)
def test_copy_of_a_pass_with_doctored_tags_and_new_version_with_verdict_tags_refused(server, client, reg, base):
    name = reg["name"]
    tags = client.get_model_version(name, "2").tags
    doctored = [{"key": k, "value": (v + "x" if k == TAG_RUN_ID else v)} for k, v in tags.items()]
    before = snapshot(server)
    assert_denied(rest(server, base, "POST", "/model-versions/create",
                       {"name": reg["target"], "source": f"models:/{name}/2", "tags": doctored}), "differ")
    assert_denied(rest(server, base, "POST", "/model-versions/create",
                       {"name": name, "source": "s3://trusteq-test/new",
                        "tags": [{"key": k, "value": v} for k, v in tags.items()]}), "trusteq.verdict")
    assert snapshot(server) == before


# --- parallel attempts ------------------------------------------------------------------------------

def test_parallel_attempts_all_refused(server, client, reg):
    name = reg["name"]
    fail_tags = [{"key": k, "value": v} for k, v in client.get_model_version(name, "3").tags.items()]
    attempts = []
    for i in range(24):
        base = PATHS[i % 2]
        kind = i % 4
        if kind == 0:
            attempts.append((base, "POST", "/registered-models/alias",
                             {"name": name, "alias": f"champion{i % 3}", "version": str(3 + i % 2)}))
        elif kind == 1:
            attempts.append((base, "POST", "/model-versions/transition-stage",
                             {"name": name, "version": "3", "stage": "Production", "archive_existing_versions": False}))
        elif kind == 2:
            attempts.append((base, "POST", "/model-versions/create",
                             {"name": reg["target"], "source": f"models:/{name}/3", "tags": fail_tags}))
        else:
            attempts.append((base, "POST", "/model-versions/set-tag",
                             {"name": name, "version": "3", "key": TAG_VERDICT, "value": "pass"}))
    before = snapshot(server)
    with ThreadPoolExecutor(max_workers=12) as pool:
        responses = list(pool.map(lambda a: rest(server, a[0], a[1], a[2], a[3]), attempts))
    assert [r.status_code for r in responses] == [403] * len(attempts)
    assert snapshot(server) == before


# --- the honest path ------------------------------------------------------------------------------

def test_honest_path_evaluate_pass_promote_and_demote(server, client):
    from click.testing import CliRunner

    from mlflow_trusteq.cli._promote import promote_command, verify_command

    name = f"honest-{uuid.uuid4().hex[:6]}"
    client.create_registered_model(name)
    register_files(client, name, {"model.bin": b"h1"})
    register_files(client, name, {"model.bin": b"h2"}, tags={TAG_PARENT: f"models:/{name}/1"})
    assert registry.get_parent(client, name, "2") == f"models:/{name}/1"
    with pytest.raises(InvalidInputError, match="names itself"):
        registry.set_parent(client, name, "2", f"models:/{name}/2")
    runner = CliRunner()
    env = {"TRUSTEQ_SIGNING_KEY": KEY}
    res = runner.invoke(promote_command, [name, "2", "--alias", "champion", "--tracking-uri", server.url], env=env)
    assert res.exit_code == 1 and "no trusteq verdict" in res.output

    registry.record_verdict(client, name, "2", verdict="pass", run_id="run-1", parent_uri=f"models:/{name}/1",
                            data_digest="sha256:d", policy_digest="sha256:p", reasons=[], keyring=RING)
    assert registry.verify_verdict(client, name, "2", keyring=RING).ok
    res = runner.invoke(verify_command, [name, "2", "--tracking-uri", server.url], env=env)
    assert res.exit_code == 0 and "PROMOTABLE" in res.output and "run-1" in res.output
    res = runner.invoke(promote_command, [name, "2", "--alias", "champion", "--tracking-uri", server.url], env=env)
    assert res.exit_code == 0, res.output
    assert client.get_model_version_by_alias(name, "champion").version == "2"
    res = runner.invoke(promote_command, [name, "2", "--stage", "production", "--tracking-uri", server.url], env=env)
    assert res.exit_code == 0, res.output
    assert client.get_model_version(name, "2").current_stage == "Production"

    # promote by copy of a passing version works, and the copy inherits the verdict
    copy = client.copy_model_version(f"models:/{name}/2", f"{name}-prod")
    assert copy.source == f"models:/{name}/2"
    client.set_registered_model_alias(f"{name}-prod", "champion", copy.version)

    # demoting is never blocked
    client.delete_registered_model_alias(name, "champion")
    client.transition_model_version_stage(name, "2", "Archived")
    client.transition_model_version_stage(name, "2", "None")
    assert client.get_registered_model(name).aliases == {}

    # a new evaluation that fails replaces the pass: promotion is refused again
    registry.clear_verdict(client, name, "2", keyring=RING)
    registry.record_verdict(client, name, "2", verdict="fail", run_id="run-2", parent_uri=f"models:/{name}/1",
                            data_digest="sha256:d", policy_digest="sha256:p", reasons=["calibration drifted"],
                            keyring=RING)
    res = runner.invoke(promote_command, [name, "2", "--alias", "champion", "--tracking-uri", server.url], env=env)
    assert res.exit_code == 1 and "calibration drifted" in res.output


def test_demoting_a_failing_version_is_never_blocked(server, client, reg):
    for base in PATHS:
        r = rest(server, base, "POST", "/model-versions/transition-stage",
                 {"name": reg["name"], "version": "3", "stage": "Archived", "archive_existing_versions": False})
        assert r.status_code == 200, r.text
        r = rest(server, base, "DELETE", "/registered-models/alias", {"name": reg["name"], "alias": "nonexistent"})
        assert r.status_code != 403


def test_cli_usage_errors_and_keyless_verify_asks_the_server(server, reg):
    from click.testing import CliRunner

    from mlflow_trusteq.cli._promote import promote_command, verify_command

    runner = CliRunner()
    uri = ["--tracking-uri", server.url]
    env = {"TRUSTEQ_SIGNING_KEY": KEY}
    assert runner.invoke(promote_command, [reg["name"], "2", *uri], env=env).exit_code == 2  # no --alias/--stage
    assert runner.invoke(promote_command, [reg["name"], "two", "--alias", "c", *uri], env=env).exit_code == 2
    assert runner.invoke(promote_command, [reg["name"], "99", "--alias", "c", *uri], env=env).exit_code == 2
    assert runner.invoke(promote_command, [reg["name"], "2", "--alias", "c", "--stage", "Staging", *uri],
                         env=env).exit_code == 2
    # no key on this machine: the server's gate answers
    keyless = {"TRUSTEQ_SIGNING_KEY": "", "TRUSTEQ_SIGNING_KEY_FILE": "", "TRUSTEQ_SIGNING_KEYS_FILE": ""}
    res = runner.invoke(verify_command, [reg["name"], "2", "--json", *uri], env=keyless)
    assert res.exit_code == 0 and json.loads(res.output)["ok"] is True
    res = runner.invoke(verify_command, [reg["name"], "3", *uri], env=keyless)
    assert res.exit_code == 1 and "fidelity/loyalty_score" in res.output


def test_record_verdict_without_key_says_how_to_set_it(client, reg, monkeypatch):
    for var in ("TRUSTEQ_SIGNING_KEY", "TRUSTEQ_SIGNING_KEY_FILE", "TRUSTEQ_SIGNING_KEYS_FILE"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(VerdictError, match="TRUSTEQ_SIGNING_KEY"):
        registry.record_verdict(client, reg["name"], "4", verdict="pass", run_id="r", parent_uri="models:/x/1",
                                data_digest="d", policy_digest="p", reasons=[])
    with pytest.raises(InvalidInputError, match="'maybe'"):
        registry.record_verdict(client, reg["name"], "4", verdict="maybe", run_id="r", parent_uri="models:/x/1",
                                data_digest="d", policy_digest="p", reasons=[])


def test_prompts_are_exempt_but_a_model_cannot_become_a_prompt(server, client, reg):
    name = f"prompt-{uuid.uuid4().hex[:6]}"
    client.register_prompt(name, "Summarize: {{text}}")
    client.set_prompt_alias(name, "production", 1)  # prompts share the registry but are not gated
    before = snapshot(server)
    for base in PATHS:
        assert_denied(rest(server, base, "POST", "/registered-models/set-tag",
                           {"name": reg["name"], "key": "mlflow.prompt.is_prompt", "value": "true"}), "prompt")
    assert snapshot(server) == before
