"""Signed verdicts: what verifies and what does not (no server; fast)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest

from trusteq_gate.signing import (
    SCHEME,
    TAG_CONTENT_DIGEST,
    TAG_DATA_DIGEST,
    TAG_KEY_ID,
    TAG_PARENT,
    TAG_POLICIES,
    TAG_POLICY_DIGEST,
    TAG_REASONS,
    TAG_RUN_ID,
    TAG_SIGNATURE,
    TAG_VERDICT,
    VERDICT_TAGS,
    Decision,
    Keyring,
    PolicyOutcome,
    PolicyRequirement,
    SigningKeyError,
    check_tag_write_token,
    check_version,
    is_trusteq_tag,
    parse_version_number,
    sign_verdict,
    tag_write_token,
    tag_write_token_id,
)

KEY_A = "a" * 16 + "0123456789abcdef0123456789abcdef"
KEY_B = "b" * 16 + "fedcba9876543210fedcba9876543210"
IDENT = {"name": "sentiment", "version": "2", "source": "runs:/abc/model"}
FIELDS = {"verdict": "pass", "run_id": "r-123", "parent": "models:/sentiment/1", "data_digest": "sha256:d1",
          "policy_digest": "sha256:p1", "reasons": [], "content_digest": "sha256-tree-v1:c1"}


def _signed(keyring: Keyring, **over):
    f = {**FIELDS, **over}
    return sign_verdict(keyring, **IDENT, **f)


def _check(tags, keyring, **ident):
    return check_version(**{**IDENT, **ident}, tags=tags, keyring=keyring)


def test_signature_matches_a_hand_computed_hmac():
    ring = Keyring.from_secret(KEY_A, key_id="k1")
    tags = _signed(ring, reasons=["loyalty too low"])
    payload = {"scheme": "hmac-sha256-v2", "key_id": "k1", "name": "sentiment", "version": "2",
               "source": "runs:/abc/model", "parent": "models:/sentiment/1", "verdict": "pass", "run_id": "r-123",
               "data_digest": "sha256:d1", "policy_digest": "sha256:p1", "reasons": ["loyalty too low"],
               "content_digest": "sha256-tree-v1:c1"}
    msg = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    expected = hmac.new(KEY_A.encode(), msg, hashlib.sha256).hexdigest()
    assert tags[TAG_SIGNATURE] == f"{SCHEME}:{expected}"
    assert set(tags) == set(VERDICT_TAGS) - {TAG_POLICIES}  # a verdict without per-policy outcomes


CANARY = PolicyOutcome("canary", "c" * 64, True)
CHAMPION = PolicyOutcome("champion", "e" * 64, False, ("label_loyalty: lower bound 0.93 < 0.95", "diff/accuracy"))


def test_policy_outcomes_are_signed_by_hand_computed_hmac():
    ring = Keyring.from_secret(KEY_A, key_id="k1")
    tags = _signed(ring, policies=[CANARY, CHAMPION])
    assert set(tags) == set(VERDICT_TAGS)
    value = ('[{"digest":"' + "c" * 64 + '","name":"canary","passed":true,"reasons":[]},{"digest":"' + "e" * 64
             + '","name":"champion","passed":false,"reasons":["label_loyalty: lower bound 0.93 < 0.95",'
             '"diff/accuracy"]}]')
    assert tags[TAG_POLICIES] == value
    payload = {"scheme": "hmac-sha256-v2", "key_id": "k1", **IDENT, **FIELDS, "policies": value}
    msg = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    assert tags[TAG_SIGNATURE] == f"{SCHEME}:{hmac.new(KEY_A.encode(), msg, hashlib.sha256).hexdigest()}"


def test_required_policy_decides_by_digest_not_by_name_nor_overall_verdict():
    ring = Keyring.from_secret(KEY_A)
    tags = _signed(ring, verdict="fail", reasons=["overall: loyalty low"], policies=[CANARY, CHAMPION])
    canary = [PolicyRequirement("canary", ("c" * 64,), "test file")]
    champion = [PolicyRequirement("champion", ("e" * 64,), "test file")]
    assert not _check(tags, ring).ok  # the overall verdict (no requirement) is a fail
    ok = check_version(**IDENT, tags=tags, keyring=ring, required=canary, required_for="alias 'canary'")
    assert ok.ok and ok.fields["satisfied_policies"] == ["canary"] and ok.fields["required_for"] == "alias 'canary'"
    no = check_version(**IDENT, tags=tags, keyring=ring, required=champion, required_for="alias 'champion'")
    assert not no.ok and no.signature_valid
    assert no.headline == ("models:/sentiment/2: alias 'champion' requires policy 'champion', which the verdict "
                           "fails: label_loyalty: lower bound 0.93 < 0.95 (and 1 more)")
    # both required: both must pass
    assert not check_version(**IDENT, tags=tags, keyring=ring, required=canary + champion).ok
    # a policy the verdict was not judged against (another digest), even under the right name
    other = [PolicyRequirement("canary", ("d" * 64,), "test file")]
    missing = check_version(**IDENT, tags=tags, keyring=ring, required=other, required_for="alias 'canary'")
    assert not missing.ok and "was not judged against it" in missing.headline and "'canary' (cccccccccccc)" in \
        missing.headline
    # an old verdict without per-policy outcomes meets no requirement, but its overall pass still verifies
    old = _signed(ring)
    assert _check(old, ring).ok and not check_version(**IDENT, tags=old, keyring=ring, required=canary).ok


def test_altered_or_added_policy_outcomes_do_not_verify():
    ring = Keyring.from_secret(KEY_A)
    canary = [PolicyRequirement("canary", ("c" * 64,))]
    champion = [PolicyRequirement("champion", ("e" * 64,))]
    tags = _signed(ring, policies=[CANARY, CHAMPION])
    flipped = {**tags, TAG_POLICIES: tags[TAG_POLICIES].replace('"passed":false', '"passed":true')}
    decision = check_version(**IDENT, tags=flipped, keyring=ring, required=champion)
    assert not decision.ok and not decision.signature_valid and "does not verify" in decision.headline
    removed = {k: v for k, v in tags.items() if k != TAG_POLICIES}  # dropping the outcomes breaks the signature too
    assert not _check(removed, ring).signature_valid
    added = {**_signed(ring), TAG_POLICIES: json.dumps([CANARY.to_dict()])}  # outcomes added to a signed verdict
    assert not check_version(**IDENT, tags=added, keyring=ring, required=canary).signature_valid
    garbage = _signed(ring, policies=[CANARY])
    garbage[TAG_POLICIES] = "not json"
    assert not check_version(**IDENT, tags=garbage, keyring=ring, required=canary).ok
    with pytest.raises(ValueError, match="passed"):
        PolicyOutcome.from_dict({"name": "x", "digest": "y", "passed": "yes", "reasons": []})


def test_valid_pass_verifies_and_fail_is_refused_with_its_reasons():
    ring = Keyring.from_secret(KEY_A)
    ok = _check(_signed(ring), ring)
    assert ok.ok and ok.signature_valid and ok.verdict == "pass" and ok.reasons == ()
    assert ok.fields["run_id"] == "r-123" and ok.fields["parent"] == "models:/sentiment/1"
    bad = _check(_signed(ring, verdict="fail", reasons=["loyalty 0.81 < 0.95"]), ring)
    assert not bad.ok and bad.signature_valid and bad.verdict == "fail"
    assert bad.verdict_reasons == ("loyalty 0.81 < 0.95",)
    assert any("loyalty 0.81 < 0.95" in r for r in bad.reasons)


@pytest.mark.parametrize("tag", [TAG_VERDICT, TAG_RUN_ID, TAG_PARENT, TAG_DATA_DIGEST, TAG_POLICY_DIGEST,
                                 TAG_REASONS, TAG_KEY_ID, TAG_CONTENT_DIGEST])
def test_any_changed_tag_breaks_the_signature(tag):
    ring = Keyring.from_secret(KEY_A)
    tags = _signed(ring, verdict="fail")
    changed = {TAG_VERDICT: "pass", TAG_REASONS: json.dumps(["a reason added after signing"])}
    tags[tag] = changed.get(tag, tags[tag] + "x")
    d = _check(tags, ring)
    assert not d.ok and not d.signature_valid


@pytest.mark.parametrize("ident", [{"name": "other"}, {"version": "3"}, {"source": "runs:/evil/model"}])
def test_replay_on_another_version_or_source_does_not_verify(ident):
    ring = Keyring.from_secret(KEY_A)
    d = _check(_signed(ring), ring, **ident)
    assert not d.ok and not d.signature_valid
    assert "does not verify" in " ".join(d.reasons)


def test_hand_typed_and_incomplete_verdicts_are_refused():
    ring = Keyring.from_secret(KEY_A)
    typed = {TAG_VERDICT: "pass"}
    d = _check(typed, ring)
    assert not d.ok and "incomplete" in d.reasons[0]
    forged = {**_signed(ring)}
    forged[TAG_SIGNATURE] = f"{SCHEME}:" + "0" * 64
    assert not _check(forged, ring).ok
    assert "no trusteq verdict" in _check({}, ring).reasons[0]
    not_scheme = {**_signed(ring), TAG_SIGNATURE: "md5:abc"}
    assert "not a hmac-sha256-v2" in _check(not_scheme, ring).reasons[0]
    v1 = {**_signed(ring), TAG_SIGNATURE: "hmac-sha256-v1:" + "0" * 64}
    assert "retired scheme hmac-sha256-v1" in _check(v1, ring).reasons[0]


def test_signature_made_with_another_key_does_not_verify():
    mine, theirs = Keyring.from_secret(KEY_A, key_id="k1"), Keyring.from_secret(KEY_B, key_id="k1")
    d = _check(_signed(theirs), mine)
    assert not d.ok and not d.signature_valid
    unknown = _check(_signed(Keyring.from_secret(KEY_B, key_id="k9")), mine)
    assert "'k9'" in unknown.reasons[0] and "not in this keyring" in unknown.reasons[0]


def test_no_keyring_fails_closed_with_how_to():
    d = _check(_signed(Keyring.from_secret(KEY_A)), None)
    assert not d.ok and "TRUSTEQ_SIGNING_KEY" in d.reasons[0]


def test_keyring_from_env_single_key_file_and_errors(tmp_path):
    ring = Keyring.from_env({"TRUSTEQ_SIGNING_KEY": KEY_A})
    assert ring.active.startswith("k") and list(ring.keys.values()) == [KEY_A.encode()]
    assert KEY_A not in repr(ring)
    f = tmp_path / "key"
    f.write_text(KEY_B + "\n")
    ring_f = Keyring.from_env({"TRUSTEQ_SIGNING_KEY_FILE": str(f), "TRUSTEQ_SIGNING_KEY_ID": "prod-1"})
    assert ring_f.active == "prod-1" and ring_f.keys["prod-1"] == KEY_B.encode()
    with pytest.raises(SigningKeyError, match="TRUSTEQ_SIGNING_KEY"):
        Keyring.from_env({})
    with pytest.raises(SigningKeyError, match="at least 32"):
        Keyring.from_env({"TRUSTEQ_SIGNING_KEY": "short"})
    with pytest.raises(SigningKeyError, match="cannot be read"):
        Keyring.from_env({"TRUSTEQ_SIGNING_KEY_FILE": str(tmp_path / "missing")})


def test_rotation_sign_with_newest_verify_with_all(tmp_path):
    old = Keyring.from_env({"TRUSTEQ_SIGNING_KEY": KEY_A, "TRUSTEQ_SIGNING_KEY_ID": "2025"})
    tags_old = _signed(old)
    ring_file = tmp_path / "keys"
    ring_file.write_text(f"# trusteq keyring\n2025={KEY_A}\n\n2026={KEY_B}\n")
    both = Keyring.from_env({"TRUSTEQ_SIGNING_KEYS_FILE": str(ring_file)})
    assert both.active == "2026" and set(both.keys) == {"2025", "2026"}
    assert _check(tags_old, both).ok  # old verdicts still verify during the rotation
    tags_new = _signed(both)
    assert tags_new[TAG_KEY_ID] == "2026" and _check(tags_new, both).ok
    pinned = Keyring.from_env({"TRUSTEQ_SIGNING_KEYS_FILE": str(ring_file), "TRUSTEQ_SIGNING_KEY_ID": "2025"})
    assert pinned.active == "2025"
    ring_file.write_text(f"2026={KEY_B}\n")  # the old key retired
    new_only = Keyring.from_env({"TRUSTEQ_SIGNING_KEYS_FILE": str(ring_file)})
    assert not _check(tags_old, new_only).ok and _check(tags_new, new_only).ok
    ring_file.write_text("no-equals-sign\n")
    with pytest.raises(SigningKeyError, match="line 1"):
        Keyring.from_env({"TRUSTEQ_SIGNING_KEYS_FILE": str(ring_file)})


def test_copied_version_inherits_only_an_unchanged_valid_verdict():
    ring = Keyring.from_secret(KEY_A)
    src_tags = _signed(ring)
    registry = {("sentiment", "2"): (IDENT["source"], src_tags)}

    def lookup(name, version):
        return registry.get((name, version))

    copy = check_version(name="prod", version="1", source="models:/sentiment/2", tags=dict(src_tags),
                         keyring=ring, lookup=lookup)
    assert copy.ok and copy.fields["inherited_from"] == "models:/sentiment/2"
    # the same tags on a version that is not a copy of sentiment/2: refused
    assert not check_version(name="prod", version="1", source="runs:/x/m", tags=dict(src_tags), keyring=ring,
                             lookup=lookup).ok
    # a copy whose verdict tags were changed: refused
    changed = {**src_tags, TAG_RUN_ID: "r-other"}
    assert not check_version(name="prod", version="1", source="models:/sentiment/2", tags=changed, keyring=ring,
                             lookup=lookup).ok
    # a copy of a failing version: signature valid, still refused
    registry[("sentiment", "2")] = (IDENT["source"], _signed(ring, verdict="fail", reasons=["r"]))
    failed = check_version(name="prod", version="1", source="models:/sentiment/2",
                           tags=dict(registry[("sentiment", "2")][1]), keyring=ring, lookup=lookup)
    assert not failed.ok and failed.signature_valid


def test_tag_write_token_authorizes_exactly_one_write():
    ring = Keyring.from_secret(KEY_A)
    write = {"op": "set", "name": "m", "version": "1", "key": TAG_VERDICT, "value": "pass"}
    token = tag_write_token(ring, **write)
    assert check_tag_write_token(ring, token, **write) is None
    for change in ({"value": "fail"}, {"version": "2"}, {"key": TAG_RUN_ID}, {"op": "delete"}, {"name": "n"}):
        assert "does not authorize" in check_tag_write_token(ring, token, **{**write, **change})
    assert "no X-TrustEq-Tag-Auth" in check_tag_write_token(ring, None, **write)
    assert "malformed" in check_tag_write_token(ring, "garbage", **write)
    old = tag_write_token(ring, **write, ts_ms=int(time.time() * 1000) - 3_600_000)
    assert "expired" in check_tag_write_token(ring, old, **write)
    v1 = f"v1:{ring.active}:{int(time.time())}:" + "0" * 64  # the retired single-field format
    assert "malformed" in check_tag_write_token(ring, v1, **write)
    a, b = tag_write_token(ring, **write), tag_write_token(ring, **write)
    assert tag_write_token_id(a)[0] != tag_write_token_id(b)[0]  # every credential has its own nonce
    nonce, ts_ms = tag_write_token_id(a)
    forged_nonce = a.replace(nonce, "f" * 32)  # the nonce is signed: it cannot be swapped for a fresh one
    assert "does not authorize" in check_tag_write_token(ring, forged_nonce, **write)
    other = Keyring.from_secret(KEY_B, key_id=ring.active)
    assert "does not authorize" in check_tag_write_token(other, token, **write)
    assert "no signing key" in check_tag_write_token(None, token, **write)


def test_decision_round_trips_through_json_and_namespace():
    ring = Keyring.from_secret(KEY_A)
    d = _check(_signed(ring, verdict="fail", reasons=["a", "b"]), ring)
    assert Decision.from_dict(json.loads(json.dumps(d.to_dict()))) == d
    assert is_trusteq_tag("trusteq.verdict") and is_trusteq_tag("TrustEq.Verdict") and not is_trusteq_tag("x.trusteq")
    with pytest.raises(ValueError, match="'maybe'"):
        sign_verdict(ring, **IDENT, **{**FIELDS, "verdict": "maybe"})


def test_content_check_refuses_changed_or_unreadable_files():
    ring = Keyring.from_secret(KEY_A)
    tags = _signed(ring)
    same = check_version(**IDENT, tags=tags, keyring=ring, content_of=lambda n, v: "sha256-tree-v1:c1")
    assert same.ok and same.fields["content_checked"] is True
    changed = check_version(**IDENT, tags=tags, keyring=ring, content_of=lambda n, v: "sha256-tree-v1:other")
    assert not changed.ok and changed.signature_valid and "files changed" in changed.reasons[0]

    def unreadable(n, v):
        raise FileNotFoundError("no model files at '/gone'")

    gone = check_version(**IDENT, tags=tags, keyring=ring, content_of=unreadable)
    assert not gone.ok and "cannot be read" in gone.reasons[0] and "/gone" in gone.reasons[0]
    assert check_version(**IDENT, tags=tags, keyring=ring).fields["content_checked"] is False


@pytest.mark.parametrize("text, expected", [("1", 1), (" 7 ", 7), ("007", 7), (str(2**63 - 1), 2**63 - 1),
                                            (str(2**63), None), ("1" * 20, None), ("0", None), ("-1", None),
                                            ("1.0", None), ("", None), ("\u0661", None), ("latest", None)])
def test_version_numbers_the_registry_can_store(text, expected):
    assert parse_version_number(text) == expected
