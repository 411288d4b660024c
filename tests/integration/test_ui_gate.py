"""The MLflow UI obeys the gate: adding an alias to a failing version shows the refusal.

Headless Debian chromium (/usr/bin/chromium, installed by .ci/run) driven by Playwright's Python
package; never `playwright install`.  The screenshot is kept in tests/artifacts/.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
KEY = secrets.token_hex(32)
REASON = "fidelity/loyalty_score: lower bound 0.81 < 0.95"


@pytest.fixture(scope="module")
def failing_version(tmp_path_factory):
    from mlflow import MlflowClient

    from mlflow_trusteq.integration import registry
    from trusteq_gate.signing import Keyring
    from trusteq_gate.testing import gate_server, register_files

    with gate_server(tmp_path_factory.mktemp("ui-gate"), env={"TRUSTEQ_SIGNING_KEY": KEY}) as srv:
        client = MlflowClient(srv.url, srv.url)
        client.create_registered_model("sentiment")
        register_files(client, "sentiment", {"model.bin": b"parent"})
        candidate = register_files(client, "sentiment", {"model.bin": b"candidate"},
                                   tags={"trusteq.parent": "models:/sentiment/1"})
        # the verdict names a real run of this server: the refusal links to its report
        registry.record_verdict(client, "sentiment", "2", verdict="fail", run_id=candidate.run_id,
                                parent_uri="models:/sentiment/1", data_digest="sha256:d",
                                policy_digest="sha256:p", reasons=[REASON], keyring=Keyring.from_secret(KEY))
        client.create_registered_model("sentiment-prod")
        yield srv, client


def _snapshot(client) -> list:
    return [(m.name, dict(m.aliases), dict(m.tags), [(v.version, v.current_stage, dict(v.tags), v.source)
                                                     for v in client.search_model_versions(f"name = '{m.name}'")])
            for m in client.search_registered_models()]


def _version_page(browser, srv):
    """A browser page on the failing version's page of the gate server."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{srv.url}/#/models/sentiment/versions/2")
    return page


def _refused_post(page, endpoint: str, submit):
    """``submit()`` and the POST to ``endpoint`` that it sends, checked to be the gate's refusal (403)."""
    with page.expect_response(lambda r: endpoint in r.url and r.request.method == "POST") as resp_info:
        submit()
    resp = resp_info.value
    assert resp.status == 403 and resp.json()["error_code"] == "PERMISSION_DENIED"
    return resp


def test_ui_add_alias_to_failing_version_shows_refusal(failing_version, chromium):
    srv, client = failing_version
    before = _snapshot(client)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "ui_gate_refusal.png"
    with chromium() as browser:
        page = _version_page(browser, srv)
        page.get_by_text("Aliases").first.wait_for(timeout=60_000)
        page.get_by_text("Add", exact=True).first.click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_role("combobox").fill("champion")
        dialog.get_by_role("combobox").press("Enter")
        resp = _refused_post(page, "/registered-models/alias", dialog.get_by_role("button", name="Save aliases").click)
        assert "ajax-api/2.0/mlflow/registered-models/alias" in resp.url
        shown = page.get_by_text("trusteq-gate", exact=False).first
        shown.wait_for(timeout=30_000)
        text = shown.inner_text()
        page.screenshot(path=str(shot), full_page=False)
    assert "refused" in text and "signed 'fail' verdict" in text and REASON in text, text
    # short: one sentence and the link to the evaluation's report, not every reason and hint
    run_id = client.get_model_version("sentiment", "2").tags["trusteq.run_id"]
    assert f"Details: {srv.url}/#/experiments/0/runs/{run_id}/artifacts/trusteq/report.html" in text, text
    assert len(text) < 500 and "Evaluate it against its parent" not in text, text
    assert shot.stat().st_size > 10_000
    assert _snapshot(client) == before


def test_ui_promote_model_copy_of_failing_version_shows_refusal(failing_version, chromium):
    """The UI's "Promote model" copies the version (CreateModelVersion from models:/sentiment/2)."""
    srv, client = failing_version
    before = _snapshot(client)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "ui_gate_promote_refusal.png"
    with chromium() as browser:
        page = _version_page(browser, srv)
        page.get_by_role("button", name="Promote model").click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_role("combobox").first.click()
        page.locator("[class*='select-item-option']", has_text="sentiment-prod").first.click()
        promote = dialog.get_by_role("button", name="Promote", exact=True)
        resp = _refused_post(page, "/model-versions/create", promote.click)
        sent = resp.request.post_data_json
        assert sent["source"] == "models:/sentiment/2" and sent["name"] == "sentiment-prod"
        shown = page.get_by_text("Copying (promoting)", exact=False).first
        shown.wait_for(timeout=30_000)
        text = shown.inner_text()
        page.wait_for_timeout(1500)  # let the notification finish sliding in
        page.screenshot(path=str(shot), full_page=False)
    assert "refused" in text, text
    assert _snapshot(client) == before
