"""Where a reviewer looks, in the MLflow UI of a real ``mlflow server --app-name trusteq-gate``.

A candidate is evaluated through ``mlflow.models.evaluate`` against the server; headless Debian
chromium (Playwright, as in test_ui_gate.py) opens the model version page and finds the one-line
summary and the link to the report, and opens that link. Then ``trusteq compare-candidates`` logs a
comparison of three candidates to the server, and the page is opened in the browser. Screenshots
are kept in tests/artifacts/ (ui_version_summary.png, ui_version_summary_tag.png, ui_report_link.png,
candidates_page.png).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from _models import float32_copy

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
NAME = "sst2-tfidf"
USER_NOTE = "TF-IDF sentiment model, vocabulary pruned to 300 words for the edge build."


@pytest.fixture(scope="module")
def server(tmp_path_factory, sst2_small, signing_key):
    """The gate server, v1 parent, v2 a 300-word vocabulary (fails), v3 2k words, v4 the parent in float32."""
    import mlflow
    from mlflow import MlflowClient
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from trusteq_gate.testing import gate_server

    mp = pytest.MonkeyPatch()
    train, dev = sst2_small
    with gate_server(tmp_path_factory.mktemp("ui-review"), env={"TRUSTEQ_SIGNING_KEY": signing_key}) as srv:
        mp.setenv("MLFLOW_TRACKING_URI", srv.url)
        mlflow.set_tracking_uri(srv.url)
        mlflow.set_registry_uri(srv.url)
        mlflow.set_experiment("trusteq-review")
        with mlflow.start_run(run_name="train"):
            parent = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=1000)).fit(train["sentence"],
                                                                                                train["label"])
            for features in (None, 300, 2000, "float32"):
                model = parent if features is None else float32_copy(parent) if features == "float32" else \
                    make_pipeline(TfidfVectorizer(max_features=features), LogisticRegression(max_iter=1000)).fit(
                        train["sentence"], train["label"])
                mlflow.sklearn.log_model(model, name="m", registered_model_name=NAME,
                                         pip_requirements=["scikit-learn"])
        client = MlflowClient(srv.url, srv.url)
        client.update_model_version(NAME, "2", description=USER_NOTE)
        with mlflow.start_run(run_name="evaluate-v2") as run:
            mlflow.models.evaluate(f"models:/{NAME}/2", dev, model_type="classifier", targets="label",
                                   evaluators="trusteq", evaluator_config={"parent": f"models:/{NAME}/1",
                                                                           "n_resamples": 200})
        yield srv, client, run.info.run_id, dev
    mp.undo()


def test_version_page_shows_the_summary_and_links_the_report(server, chromium):
    srv, client, run_id, _ = server
    mv = client.get_model_version(NAME, "2")
    summary = mv.tags["trusteq.summary"]
    url = mv.tags["trusteq.report_url"]
    assert summary.startswith("FAIL: label loyalty") and url.startswith(srv.url)
    assert url.endswith(f"/runs/{run_id}/artifacts/trusteq/report.html")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 2600})
        page.goto(f"{srv.url}/#/models/{NAME}/versions/2")
        # the description, first on the page: the user's note, then the verdict in words
        page.get_by_text(USER_NOTE).first.wait_for(timeout=60_000)
        shown = page.get_by_text("trusteq verdict — FAIL: label loyalty", exact=False).first
        shown.wait_for(timeout=30_000)
        assert "label loyalty" in shown.inner_text()
        for marker in ("trusteq:begin", "trusteq:end"):
            assert page.get_by_text(marker).count() == 0, f"the block's delimiter {marker} shows as text"
        # the summary tag, in the version's tags table
        row = page.get_by_role("row").filter(has_text="trusteq.summary").first
        row.wait_for(timeout=30_000)
        assert summary[:40] in row.inner_text()
        link = page.get_by_role("link", name="the report").first
        href = link.get_attribute("href")
        assert href == url, href
        page.screenshot(path=str(ARTIFACTS / "ui_version_summary.png"), full_page=True)
        row.scroll_into_view_if_needed()
        page.get_by_text("Tags", exact=True).first.scroll_into_view_if_needed()
        row.screenshot(path=str(ARTIFACTS / "ui_version_summary_tag.png"))
        page.set_viewport_size({"width": 1400, "height": 1000})
        # the link leads to the report in the run's artifact view
        page.goto(href)
        page.get_by_text("report.html").first.wait_for(timeout=60_000)
        frame = page.frame_locator("iframe").first
        frame.get_by_text("FAIL", exact=True).first.wait_for(timeout=60_000)
        page.wait_for_timeout(800)
        page.screenshot(path=str(ARTIFACTS / "ui_report_link.png"), full_page=False)
    assert (ARTIFACTS / "ui_version_summary.png").stat().st_size > 20_000


def test_comparison_page_of_three_candidates(server, tmp_path, chromium):
    from click.testing import CliRunner

    from mlflow_trusteq.cli import cli

    srv, client, _, dev = server
    data = tmp_path / "dev.tsv"
    dev.to_csv(data, sep="\t", index=False)
    out = tmp_path / "page"
    res = CliRunner().invoke(cli, ["compare-candidates", "--parent", f"models:/{NAME}/1", f"models:/{NAME}/2",
                                   f"models:/{NAME}/3", f"models:/{NAME}/4", "--data", str(data),
                                   "--text-column", "sentence", "--label-column", "label", "--n-resamples", "200",
                                   "--out", str(out), "--log-to-mlflow", "--experiment", "trusteq-review"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    run_id = res.output.split("logged to run ")[1].split(":")[0]
    ui = client.get_run(run_id).data.tags["trusteq.report_url"]
    assert ui.endswith("/trusteq/candidates/candidates.html")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto((out / "candidates.html").as_uri())
        page.get_by_text("Best passing compression").first.wait_for(timeout=30_000)
        for v in (2, 3, 4):
            assert page.get_by_role("link", name=f"models:/{NAME}/{v}").count() == 1
        page.screenshot(path=str(ARTIFACTS / "candidates_page.png"), full_page=True)
        # and inside the MLflow UI, where the run's link leads
        page.goto(ui)
        page.frame_locator("iframe").first.get_by_text("Best passing compression").first.wait_for(
            timeout=60_000)
    assert (ARTIFACTS / "candidates_page.png").stat().st_size > 50_000
