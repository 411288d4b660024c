"""registry.py on a local sqlite registry (no server): lineage, record, verify, clear."""

from __future__ import annotations

import secrets

import pytest

from mlflow_trusteq._errors import InvalidInputError, VerdictError
from mlflow_trusteq.integration import registry
from trusteq_gate.testing import register_files
from trusteq_gate.signing import TAG_PARENT, TAG_POLICIES, TAG_POLICY_DIGEST, TAG_SIGNATURE, VERDICT_TAGS, Keyring

KEY = secrets.token_hex(32)
RING = Keyring.from_secret(KEY)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path_factory.mktemp('reg') / 'mlflow.db'}"
    c = MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = c.create_experiment("reg", artifact_location=(tmp_path_factory.mktemp("art")).as_uri())
    c.create_registered_model("sent")
    for i in range(1, 4):
        register_files(c, "sent", {"model.bin": f"sent {i}".encode()}, experiment_id=exp)
    return c


def _record(client, version, verdict="pass", reasons=(), keyring=RING):
    return registry.record_verdict(client, "sent", version, verdict=verdict, run_id=f"run-{version}",
                                   parent_uri="models:/sent/1", data_digest="sha256:d", policy_digest="sha256:p",
                                   reasons=list(reasons), keyring=keyring)


def test_lineage(client):
    assert registry.get_parent(client, "sent", 2) is None
    registry.set_parent(client, "sent", 2, "models:/sent/1")
    assert registry.get_parent(client, "sent", "2") == "models:/sent/1"
    with pytest.raises(InvalidInputError, match="names itself"):
        registry.set_parent(client, "sent", 2, "models:/sent/2")
    client.set_registered_model_alias("sent", "me", "2")
    with pytest.raises(InvalidInputError, match="names itself"):  # through an alias too
        registry.set_parent(client, "sent", 2, "models:/sent@me")
    client.delete_registered_model_alias("sent", "me")
    for bad in ("", None):
        with pytest.raises(InvalidInputError, match="parent model URI"):
            registry.set_parent(client, "sent", 2, bad)
    with pytest.raises(InvalidInputError, match="'0'"):
        registry.get_parent(client, "sent", "0")


def test_record_verify_and_clear(client):
    tags = _record(client, 2)
    assert set(tags) == set(VERDICT_TAGS) - {TAG_POLICIES}  # no per-policy outcomes given
    d = registry.verify_verdict(client, "sent", 2, keyring=RING)
    assert d.ok and d.fields["run_id"] == "run-2" and d.fields["parent"] == "models:/sent/1"
    # the same tags copied onto version 3 do not verify there
    for k, v in tags.items():
        client.set_model_version_tag("sent", "3", k, v)
    d3 = registry.verify_verdict(client, "sent", 3, keyring=RING)
    assert not d3.ok and not d3.signature_valid
    # a changed field on version 2 breaks it
    client.set_model_version_tag("sent", "2", TAG_POLICY_DIGEST, "sha256:other")
    assert not registry.verify_verdict(client, "sent", 2, keyring=RING).ok
    # a fail verdict verifies as a signature but is not promotable, and says why
    _record(client, 2, verdict="fail", reasons=["calibration drifted"])
    df = registry.verify_verdict(client, "sent", 2, keyring=RING)
    assert not df.ok and df.signature_valid and df.verdict_reasons == ("calibration drifted",)
    cleared = registry.clear_verdict(client, "sent", 2, keyring=RING)
    assert cleared[0] == TAG_SIGNATURE and TAG_PARENT not in cleared
    mv_tags = client.get_model_version("sent", "2").tags
    assert TAG_SIGNATURE not in mv_tags and mv_tags[TAG_PARENT] == "models:/sent/1"
    assert registry.clear_verdict(client, "sent", 2, keyring=RING) == []


def test_errors_name_the_problem(client, monkeypatch):
    for var in ("TRUSTEQ_SIGNING_KEY", "TRUSTEQ_SIGNING_KEY_FILE", "TRUSTEQ_SIGNING_KEYS_FILE"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(VerdictError, match="TRUSTEQ_SIGNING_KEY"):
        _record(client, 3, keyring=None)
    no_key = registry.verify_verdict(client, "sent", 3)
    assert not no_key.ok and "TRUSTEQ_SIGNING_KEY" in " ".join(no_key.reasons)
    with pytest.raises(InvalidInputError, match="'maybe'"):
        _record(client, 3, verdict="maybe")
    with pytest.raises(InvalidInputError, match="reasons"):
        registry.record_verdict(client, "sent", 3, verdict="pass", run_id="r", parent_uri="models:/sent/1",
                                data_digest="d", policy_digest="p", reasons="not a list")
    with pytest.raises(InvalidInputError, match="names itself"):
        registry.record_verdict(client, "sent", 3, verdict="pass", run_id="r", parent_uri="models:/sent/3",
                                data_digest="d", policy_digest="p", reasons=[], keyring=RING)
    monkeypatch.setenv("TRUSTEQ_SIGNING_KEY", KEY)
    assert _record(client, 3, keyring=None)  # from the environment
    assert registry.verify_verdict(client, "sent", 3).ok
    monkeypatch.delenv("TRUSTEQ_SIGNING_KEY")
    assert registry.clear_verdict(client, "sent", 3)  # a local store needs no key to clear
