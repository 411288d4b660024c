"""The MLflow UI obeys the gate: adding an alias to a failing version shows the refusal.

Headless Debian chromium (/usr/bin/chromium, installed by .ci/run) driven by Playwright's Python
package; never `playwright install`.  The screenshot is kept in tests/artifacts/.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("TRUSTEQ_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
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
        register_files(client, "sentiment", {"model.bin": b"candidate"},
                       tags={"trusteq.parent": "models:/sentiment/1"})
        registry.record_verdict(client, "sentiment", "2", verdict="fail", run_id="run-ui",
                                parent_uri="models:/sentiment/1", data_digest="sha256:d",
                                policy_digest="sha256:p", reasons=[REASON], keyring=Keyring.from_secret(KEY))
        client.create_registered_model("sentiment-prod")
        yield srv, client


def _snapshot(client) -> list:
    return [(m.name, dict(m.aliases), dict(m.tags), [(v.version, v.current_stage, dict(v.tags), v.source)
                                                     for v in client.search_model_versions(f"name = '{m.name}'")])
            for m in client.search_registered_models()]


def _browser(p):
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.fail(f"chromium not found at {CHROMIUM!r}: .ci/run installs Debian's `chromium` package")
    return p.chromium.launch(executable_path=CHROMIUM, args=ARGS)


def test_ui_add_alias_to_failing_version_shows_refusal(failing_version):
    playwright = pytest.importorskip("playwright.sync_api")
    srv, client = failing_version
    before = _snapshot(client)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "ui_gate_refusal.png"
    with playwright.sync_playwright() as p:
        browser = _browser(p)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{srv.url}/#/models/sentiment/versions/2")
            page.get_by_text("Aliases").first.wait_for(timeout=60_000)
            page.get_by_text("Add", exact=True).first.click()
            dialog = page.get_by_role("dialog")
            dialog.get_by_role("combobox").fill("champion")
            dialog.get_by_role("combobox").press("Enter")
            with page.expect_response(lambda r: "/registered-models/alias" in r.url
                                      and r.request.method == "POST") as resp_info:
                dialog.get_by_role("button", name="Save aliases").click()
            resp = resp_info.value
            assert resp.status == 403 and resp.json()["error_code"] == "PERMISSION_DENIED"
            assert "ajax-api/2.0/mlflow/registered-models/alias" in resp.url
            shown = page.get_by_text("trusteq-gate", exact=False).first
            shown.wait_for(timeout=30_000)
            text = shown.inner_text()
            page.screenshot(path=str(shot), full_page=False)
        finally:
            browser.close()
    assert "refused" in text and "signed 'fail' verdict" in text, text
    assert shot.stat().st_size > 10_000
    assert _snapshot(client) == before


def test_ui_promote_model_copy_of_failing_version_shows_refusal(failing_version):
    """The UI's "Promote model" copies the version (CreateModelVersion from models:/sentiment/2)."""
    playwright = pytest.importorskip("playwright.sync_api")
    srv, client = failing_version
    before = _snapshot(client)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "ui_gate_promote_refusal.png"
    with playwright.sync_playwright() as p:
        browser = _browser(p)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{srv.url}/#/models/sentiment/versions/2")
            page.get_by_role("button", name="Promote model").click()
            dialog = page.get_by_role("dialog")
            dialog.get_by_role("combobox").first.click()
            page.locator("[class*='select-item-option']", has_text="sentiment-prod").first.click()
            with page.expect_response(lambda r: "/model-versions/create" in r.url
                                      and r.request.method == "POST") as resp_info:
                dialog.get_by_role("button", name="Promote", exact=True).click()
            resp = resp_info.value
            assert resp.status == 403 and resp.json()["error_code"] == "PERMISSION_DENIED"
            sent = resp.request.post_data_json
            assert sent["source"] == "models:/sentiment/2" and sent["name"] == "sentiment-prod"
            shown = page.get_by_text("Copying (promoting)", exact=False).first
            shown.wait_for(timeout=30_000)
            text = shown.inner_text()
            page.wait_for_timeout(1500)  # let the notification finish sliding in
            page.screenshot(path=str(shot), full_page=False)
        finally:
            browser.close()
    assert "refused" in text, text
    assert _snapshot(client) == before
