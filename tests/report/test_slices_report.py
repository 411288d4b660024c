"""The slices section of the report: rankings, the forest plot, the slice table, example disagreements."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlflow_trusteq import InvalidInputError, Policy, as_proba_model, compare
from mlflow_trusteq.compare import TrustReport
from mlflow_trusteq.report import render_report_html
from mlflow_trusteq.report._slices import SliceForestDisplay, slices_fragment

LABELS = ["neg", "pos"]
POLICY = {"checks": {"label_loyalty": {"threshold": 0.95, "slices": "all"}}}


def _fn(flip_segment: int | None):
    def fn(batch: pd.DataFrame) -> np.ndarray:
        x = batch["x"].to_numpy(dtype=float)
        out = np.c_[x, 1 - x]
        if flip_segment is not None:
            bad = (batch["code"].to_numpy() == flip_segment) & (np.arange(len(x)) % 3 == 0)
            out[bad] = out[bad][:, ::-1]
        return out
    return fn


@pytest.fixture(scope="module")
def sliced() -> TrustReport:
    rng = np.random.default_rng(1)
    n = 1200
    code = rng.integers(0, 3, n)
    seg = np.array(["north", "south", "<b>east</b>"], dtype=object)[code]
    df = pd.DataFrame({"x": rng.uniform(0.02, 0.98, n), "code": code, "seg": seg, "y": rng.integers(0, 2, n)})
    parent = as_proba_model(_fn(None), labels=LABELS, input_kind="tabular", name="parent")
    candidate = as_proba_model(_fn(1), labels=LABELS, input_kind="tabular", name="candidate")
    return compare(parent, candidate, df, targets="y", slices=["seg", "builtin"], feature_columns=["x", "code"],
                   n_resamples=100, consistency=False)


def test_the_section_ranks_names_and_shows_examples(sliced):
    verdict = Policy.from_dict(POLICY).judge(sliced)
    page = render_report_html(sliced, verdict, figures={})
    section = page[page.index('<section id="slices">'):]
    section = section[:section.index("</section>")]
    assert "Where the candidate breaks: slices" in section
    assert "slices/each/label_loyalty" in section and "seg=south" in section and "Bonferroni over" in section
    assert section.count("data:image/png;base64,") == 1  # the forest plot
    for heading in ("Slices ranked by loss of loyalty", "Slices ranked by flips", "Every slice",
                    "Example disagreements in the worst slices"):
        assert heading in section, heading
    ranked = section[section.index("ranked by loss"):section.index("ranked by flips")]
    assert ranked.index("seg=south") < ranked.index("seg=north")  # the worst slice leads
    assert "<b>east</b>" not in section and "&lt;b&gt;east&lt;/b&gt;" in section  # user text escaped


def test_a_report_read_back_from_json_keeps_the_section(sliced):
    back = TrustReport.from_json(sliced.to_json())
    assert back.predictions is None
    verdict = Policy.from_dict(POLICY).judge(back)
    html = slices_fragment(back.slices(), verdict, aggregate=back.value("label_loyalty"))
    assert "seg=south" in html and "Example disagreements" in html
    assert verdict.to_dict() == Policy.from_dict(POLICY).judge(sliced).to_dict()


def test_without_slices_the_section_says_why(sliced):
    import dataclasses

    bare = dataclasses.replace(sliced, sections={}, skipped={"slices": "not requested (pass `slices=...`)"})
    page = render_report_html(bare, None, figures={})
    assert '<section id="slices">' in page and "not requested (pass `slices=...`)" in page


def test_forest_display_draws_worst_first_with_the_threshold_and_sizes(sliced):
    result = sliced.slices()
    disp = SliceForestDisplay.from_report(sliced, threshold=0.95).plot()
    assert disp.names[0] == "seg=south" and disp.names == [s.name for s in result.ranked()][:30]
    assert disp.estimates[0] == result.of_spec("seg")[2].family["label_loyalty"]  # the judged (corrected) interval
    assert "Bonferroni over" in disp.interval_words and disp.sizes[0] == result.of_spec("seg")[2].n
    vlines = [ln for ln in disp.ax_.lines if len(set(ln.get_xdata())) == 1 and len(ln.get_xdata()) == 2]
    xs = {round(float(ln.get_xdata()[0]), 6) for ln in vlines}
    assert 0.95 in xs and round(sliced.value("label_loyalty"), 6) in xs
    first = disp.ax_.collections[0].get_facecolor()[0]
    assert tuple(np.round(first[:3], 3)) == (0.835, 0.369, 0.0)  # the failing slice in vermillion
    last = disp.ax_.collections[-1].get_facecolor()[0]
    assert tuple(np.round(last[:3], 3)) == (0.0, 0.447, 0.698)  # a loyal slice in blue
    nominal = SliceForestDisplay.from_result(result, family=False)
    assert nominal.estimates[0] == result.ranked()[0].estimates["label_loyalty"] and "95 %" in nominal.interval_words


def test_forest_display_needs_slices(sliced):
    import dataclasses

    with pytest.raises(InvalidInputError, match="holds no slices"):
        SliceForestDisplay.from_report(dataclasses.replace(sliced, sections={}))
