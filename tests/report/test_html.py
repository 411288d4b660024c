"""The HTML report: verdict, reasons, settings, embedded PNGs, escaping, no external resources."""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from mlflow_trusteq import InvalidInputError
from mlflow_trusteq._types import Estimate
from mlflow_trusteq.compare import TrustReport
from mlflow_trusteq.policy import Policy
from mlflow_trusteq.report import disagreement_frame, render_report_html, write_report
from mlflow_trusteq.report.html import _flatten

PNG_SIG = b"\x89PNG\r\n\x1a\n"
EVIL = "<script>alert('x')</script> & \"quotes\""


def _images(text: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)]


def _decode_png(raw: bytes) -> np.ndarray:
    import matplotlib.image as mpimg

    return mpimg.imread(io.BytesIO(raw), format="png")


def test_verdict_banner_and_every_reason_in_order(report_html, verdict):
    assert not verdict.passed  # the synthetic candidate fails the default policy
    text = report_html
    assert 'class="banner fail"' in text and ">FAIL<" in text
    assert html.escape(verdict.policy_name) in text and verdict.policy_digest in text
    positions = {}
    for c in verdict.checks:
        escaped = html.escape(c.reason, quote=True)
        assert escaped in text, c.reason
        positions.setdefault(c.status, []).append(text.index(escaped))
    assert positions["fail"] and positions["pass"] and positions["skipped"]
    assert max(positions["fail"]) < min(positions["skipped"]) <= max(positions["skipped"]) < min(positions["pass"])


def test_passing_verdict_shows_pass(report):
    v = Policy.from_dict({"name": "lenient <team>", "checks": {"label_loyalty": {"threshold": 0.5}}}).judge(report)
    assert v.passed
    text = render_report_html(report, v, figures={})
    assert 'class="banner pass"' in text and ">PASS<" in text
    assert "lenient &lt;team&gt;" in text and "lenient <team>" not in text


def test_no_verdict_says_not_judged(report):
    assert "NOT JUDGED" in render_report_html(report, None, figures={})


def test_metrics_table_values_and_intervals(report, verdict):
    text = render_report_html(report, verdict, figures={})
    e = report.metrics["diff/ece_equal_mass"]
    assert f"{e.value:+.4f}" in text and f"[{e.lower:+.4f}, {e.upper:+.4f}]" in text
    ll = report.metrics["label_loyalty"]
    assert f"{ll.value:.4f}" in text and f"[{ll.lower:.4f}, {ll.upper:.4f}]" in text
    # grouped, in the documented order
    order = [text.index(f'<td colspan="5">{g}</td>') for g in
             ("Fidelity (loyalty)", "Accuracy", "Calibration", "Efficiency", "Attribution alignment", "Robustness")]
    assert order == sorted(order)


def test_every_setting_and_the_definitions_are_listed(report, verdict):
    text = render_report_html(report, verdict, figures={})
    flat = _flatten(report.settings)
    assert len(flat) > 15
    for key, _value in flat:
        assert f"<code>{html.escape(key)}</code>" in text, key
    for words in ("Label loyalty", "Probability loyalty", "1 − √JS", "Log base b = 2", "ECE", "MCE",
                  "Brier score", "Summed over all classes", "15 equal-width bins", "10 equal-mass bins",
                  "200 resamples", "95% two-sided interval", "seed 0"):
        assert words in text, words


def test_natural_log_base_is_named(make_report, pair):
    P, Q, y = pair
    r = make_report(P, Q, y)
    r = dataclasses.replace(r, settings={**r.settings, "js_base": float(np.e)})
    assert "Log base b = e (natural log" in render_report_html(r, None, figures={})


def test_figures_are_embedded_pngs_and_nothing_is_external(report_html):
    text = report_html
    images = _images(text)
    assert len(images) == 4  # two reliability diagrams, confidence, flip matrix
    for raw in images:
        assert raw.startswith(PNG_SIG)
        img = _decode_png(raw)
        assert img.shape[0] > 200 and img.shape[1] > 200
        assert img[..., :3].std() > 0.05  # not a blank canvas
    lowered = text.lower()
    assert "http://" not in lowered and "https://" not in lowered
    assert "<script" not in lowered and "<link" not in lowered and "@import" not in lowered
    for src in re.findall(r'src="([^"]*)"', text):
        assert src.startswith("data:image/png;base64,")


def test_user_text_is_escaped(make_report, pair):
    P, Q, y = pair
    records = pd.DataFrame({"sentence": [EVIL if i % 3 == 0 else f"plain text {i}" for i in range(len(y))]})
    r = make_report(P, Q, y, labels=["neg <i>", "pos & co"], records=records, parent_name="<b>parent</b>",
                    candidate_name=EVIL)
    v = Policy.default().judge(r)
    text = render_report_html(r, v, title=f"Report {EVIL}")
    assert "<script" not in text.lower()
    assert html.escape(EVIL, quote=True) in text
    assert "&lt;b&gt;parent&lt;/b&gt;" in text and "<b>parent</b>" not in text
    assert "neg &lt;i&gt;" in text and "pos &amp; co" in text
    assert "<i>" not in text


def test_report_without_labels_says_calibration_not_measured(make_report, pair):
    P, Q, _ = pair
    r = make_report(P, Q, None)
    v = Policy.default().judge(r)
    text = render_report_html(r, v)
    cal = text.index('<td colspan="5">Calibration</td>')
    nxt = text.index("<tr", cal + 10)
    assert "not measured: no gold labels were given" in text[nxt:nxt + 300]
    assert 'id="fig-reliability' not in text  # no reliability diagram without labels
    assert len(_images(text)) == 2  # confidence and flip matrix only
    assert ">gold<" not in text  # no gold column in the disagreement table


def test_report_read_back_from_json_renders_without_predictions(report, verdict):
    stored = TrustReport.from_json(report.to_json())
    text = render_report_html(stored, verdict)
    assert 'id="fig-reliability_equal_mass"' in text and 'id="fig-flip_matrix"' in text
    assert 'id="fig-confidence"' not in text
    assert "not measured: the report holds no per-example predictions" in text


def test_sections_own_html_is_included_or_the_skip_reason(report, verdict):
    from mlflow_trusteq.attack import RobustnessResult

    rob = RobustnessResult(
        settings={"n_attacked": 3, "query_budget": 50, "max_words_changed": 0.25, "attack_field": "sentence",
                  "random_state": 7, "recipes": ["word"],
                  "recipe_settings": {"word": {"transformation": "swap <synonyms>", "word_source": "WordNet"}}},
        rows=(), metrics={"word/parent/after_attack_accuracy": Estimate(0.25, 0.1, 0.4, 0.95),
                          "word/candidate/after_attack_accuracy": Estimate(0.5, 0.3, 0.7, 0.95)})
    r = dataclasses.replace(report, sections={"robustness": rob.to_dict()},
                            skipped={k: v for k, v in report.skipped.items() if k != "robustness"},
                            metrics={**report.metrics, **{f"robustness/{k}": e for k, e in rob.metrics.items()}})
    text = render_report_html(r, verdict, figures={})
    assert rob.html() in text  # a fragment: embedded as it is
    assert "swap &lt;synonyms&gt;" in text
    assert "not measured: not requested (pass `alignment=True` or a config)" in text
    assert "<code>robustness/word/after_attack_accuracy</code>" in text  # in the metrics table too
    broken = dataclasses.replace(report, sections={"alignment": {"methods": "oops"}})
    text = render_report_html(broken, verdict, figures={})
    assert "section could not be rendered" in text


def test_disagreement_frame_numbers_and_order(report, pair):
    P, Q, y = pair
    df = disagreement_frame(report)
    assert list(df.columns) == ["row", "sentence", "gold", "parent_label", "parent_confidence", "candidate_label",
                                "candidate_confidence", "flipped", "abs_delta_parent_class"]
    assert len(df) == len(y)
    assert np.all(np.diff(df["abs_delta_parent_class"].to_numpy()) <= 0)
    i = int(df["row"].iloc[0])
    p = int(P[i].argmax())
    assert df["abs_delta_parent_class"].iloc[0] == pytest.approx(abs(P[i, p] - Q[i, p]))
    assert df["parent_confidence"].iloc[0] == pytest.approx(P[i].max())
    assert df["candidate_confidence"].iloc[0] == pytest.approx(Q[i].max())
    assert df["gold"].iloc[0] == ("negative", "positive")[y[i]]
    assert df["sentence"].iloc[0] == f"example sentence number {i}"
    flips = disagreement_frame(report, max_rows=5, flips_only=True)
    assert len(flips) == 5 and flips["flipped"].all()
    assert int((P.argmax(1) != Q.argmax(1)).sum()) == int(disagreement_frame(report, flips_only=True).shape[0])
    with pytest.raises(InvalidInputError, match="-1"):
        disagreement_frame(report, max_rows=-1)
    with pytest.raises(InvalidInputError, match="predictions"):
        disagreement_frame(TrustReport.from_json(report.to_json()))


def test_write_report_writes_every_file(report, verdict, tmp_path):
    paths = write_report(report, verdict, tmp_path / "out", max_disagreements=10)
    assert set(paths) == {"reliability_equal_mass.png", "reliability_equal_width.png", "confidence.png",
                          "flip_matrix.png", "disagreements.csv", "report.html"}
    for name, p in paths.items():
        assert p.exists() and p.parent == tmp_path / "out"
        if name.endswith(".png"):
            assert p.read_bytes().startswith(PNG_SIG)
    csv = pd.read_csv(paths["disagreements.csv"])
    assert len(csv) == report.n_examples
    text = paths["report.html"].read_text(encoding="utf-8")
    assert len(_images(text)) == 4
    # the HTML embeds exactly the PNG files written beside it
    assert sorted(_images(text)) == sorted(paths[n].read_bytes() for n in paths if n.endswith(".png"))
    assert text.count("<tr class=\"flip\">") + text.count("<tr>") > 10


def test_bad_arguments(report):
    with pytest.raises(InvalidInputError, match="max_disagreements"):
        render_report_html(report, None, figures={}, max_disagreements=-3)
    with pytest.raises(InvalidInputError, match="PNG"):
        render_report_html(report, None, figures={"x": b"GIF89a...."})
    with pytest.raises(InvalidInputError, match="str"):
        render_report_html(report, None, figures={"x": "not a figure"})


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="headless chromium is not installed")
def test_headless_chromium_renders_the_report(report, verdict, tmp_path):
    """The page renders in a real browser engine (as in MLflow's artifact iframe): a non-blank screenshot."""
    paths = write_report(report, verdict, tmp_path)
    shot = tmp_path / "shot.png"
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}",
                    "--window-size=1200,2400", paths["report.html"].as_uri()],
                   check=True, timeout=120, capture_output=True)
    img = _decode_png(shot.read_bytes())
    assert img.shape[:2] == (2400, 1200)
    top = img[:300, :, :3]
    red = (top[..., 0] > 0.7) & (top[..., 1] < 0.3) & (top[..., 2] < 0.3)  # the FAIL banner
    assert red.mean() > 0.02
