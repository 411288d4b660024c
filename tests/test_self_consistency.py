"""Self-consistency (issue 16): each model against itself under another batch plan.

The real case: ONNX Runtime's dynamic int8 quantization computes activation scales per batch
tensor, so the int8 tiny BERT's probabilities move when only its batching changes, and the float
export's do not. The fast cases use a model whose batch dependence is written out (it centres its
features on the batch mean, the classic train-mode normalisation bug), so that the numbers can be
checked by hand.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import jensenshannon

from mlflow_trusteq import InvalidInputError, Policy, TrustReport, compare
from mlflow_trusteq.adapters import BatchPlan, CallableAdapter, as_proba_model, plan_token_batches
from mlflow_trusteq.report import render_report_html

W = np.array([1.5, -2.0, 0.5])


def _logits(X: np.ndarray) -> np.ndarray:
    z = X @ W
    return np.column_stack([-z, z])


def _steady(records):
    return _logits(np.asarray(records, dtype=float))


def _batch_centred(records):
    """Centres each batch on its own mean: alone (batch size 1) every row scores 0, i.e. [0.5, 0.5]."""
    X = np.asarray(records, dtype=float)
    return _logits(X - X.mean(axis=0, keepdims=True))


@pytest.fixture(scope="module")
def tabular():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(120, 3)) + np.array([0.6, 0.0, 0.0])  # off-centre: the batch mean matters
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    df["label"] = (X @ W > 0).astype(int)
    return df


def _models():
    return (CallableAdapter(_steady, ["0", "1"], name="steady", batch_size=256, kind="logits"),
            CallableAdapter(_batch_centred, ["0", "1"], name="centred", batch_size=256, kind="logits"))


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_self_loyalty_matches_a_hand_computation_and_the_policy_fails_the_flipper(tabular):
    parent, candidate = _models()
    report = compare(parent, candidate, tabular, targets="label", n_resamples=300,
                     consistency={"n_samples": 50, "random_state": 5})
    res = report.consistency()
    rows = np.array(res.settings["rows"])
    assert res.settings["n_sampled"] == 50 and res.settings["random_state"] == 5 and len(set(rows)) == 50
    X = tabular[["a", "b", "c"]].to_numpy()
    # the reference: the headline scores one batch of all 120 rows; the other plan scores each row alone
    E = _softmax(_logits(X - X.mean(axis=0)))[rows]
    R = np.full_like(E, 0.5)
    same = E.argmax(1) == R.argmax(1)
    expected_ll = same.mean()
    expected_pl = np.mean(1 - jensenshannon(E, R, base=2, axis=1))
    cand = report.metrics["consistency/batch/candidate/label_loyalty"]
    assert cand.value == pytest.approx(expected_ll) and 0 < expected_ll < 1
    assert report.metrics["consistency/batch/candidate/probability_loyalty"].value == pytest.approx(expected_pl)
    assert cand.lower < cand.value < cand.upper
    par = report.metrics["consistency/batch/parent/label_loyalty"]
    assert (par.value, par.lower, par.upper) == (1.0, 1.0, 1.0)
    assert report.metrics["consistency/batch/parent/probability_loyalty"].value == pytest.approx(1.0, abs=1e-7)
    diff = report.metrics["consistency/batch/diff/label_loyalty"]
    assert diff.value == pytest.approx(expected_ll - 1.0) and diff.upper < 0
    # the rows that flip are named, with both labels, and only the candidate's
    flipped = sorted(r["row"] for r in res.flips)
    assert flipped == sorted(rows[~same].tolist())
    assert {r["model"] for r in res.flips} == {"candidate"} and all(r["other_label"] == "0" for r in res.flips)
    assert res.settings["candidate_n_flipped"] == int((~same).sum()) and res.settings["parent_n_flipped"] == 0
    verdict = Policy.default().judge(report)
    check = next(c for c in verdict.checks if c.metric == "consistency/batch/diff/label_loyalty")
    assert check.status == "fail" and not verdict.passed
    # the report shows the self-loyalty beside the loyalty to the parent, and the flipped rows
    page = render_report_html(report, verdict)
    assert "Self-consistency" in page and "consistency/batch/label_loyalty" in page
    assert f"<td>{flipped[0]}</td><td>candidate</td>" in page
    # and it survives JSON
    again = TrustReport.from_json(report.to_json())
    assert again.consistency().flips == res.flips
    assert again.metrics["consistency/batch/candidate/label_loyalty"] == cand


def test_headline_numbers_under_the_serving_plan(tabular):
    parent, candidate = _models()
    own = compare(parent, candidate, tabular, targets="label", n_resamples=50)
    served = compare(parent, candidate, tabular, targets="label", n_resamples=50, headline_plan="serving")
    # under the serving plan (batch size 1) the centred model predicts [0.5, 0.5] everywhere: label 0
    assert served.predictions.candidate == pytest.approx(np.full((120, 2), 0.5))
    assert served.value("label_loyalty") == pytest.approx(np.mean(_steady(tabular[["a", "b", "c"]]).argmax(1) == 0))
    assert own.value("label_loyalty") != served.value("label_loyalty")
    assert served.settings["headline_plan"] == "serving" and served.settings["serving_plan"] == {"batch_size": 1}
    assert served.settings["candidate_scoring"]["batch_plan"] == {"batch_size": 1}
    assert own.settings["candidate_scoring"]["batch_plan"] == {"batch_size": 256}
    # self-consistency then compares the serving plan with the model's own
    res = served.consistency()
    assert res.settings["headline_plan"] == "serving" and res.settings["other_plan"] == "evaluation"
    assert res.settings["plans"]["candidate"] == {"serving": {"batch_size": 1}, "evaluation": {"batch_size": 256}}
    assert served.metrics["consistency/batch/candidate/label_loyalty"].value < 1.0


def test_a_configurable_serving_plan_and_a_sample_larger_than_the_data(tabular):
    parent, candidate = _models()
    report = compare(parent, candidate, tabular, targets="label", n_resamples=50, serving_plan={"batch_size": 120},
                     consistency={"n_samples": 10_000})
    res = report.consistency()
    assert res.settings["n_requested"] == 10_000 and res.settings["n_sampled"] == 120
    # all 120 rows in one batch of the serving plan: exactly the headline batch, so no dependence shows
    assert report.metrics["consistency/batch/candidate/label_loyalty"].value == 1.0
    assert res.flips == []


def test_bad_plans_are_clear_errors_before_anything_is_scored(tabular):
    parent, candidate = _models()
    called = []
    with pytest.raises(InvalidInputError, match="batch_size"):
        compare(parent, candidate, tabular, targets="label", serving_plan={"batch_size": 0})
    with pytest.raises(InvalidInputError, match="unknown batch plan key"):
        compare(parent, candidate, tabular, targets="label", serving_plan={"batchsize": 1})
    with pytest.raises(InvalidInputError, match="padding_side"):
        compare(parent, candidate, tabular, targets="label", serving_plan={"padding_side": "middle"})
    with pytest.raises(InvalidInputError, match="cannot take the batch plan's"):
        compare(parent, candidate, tabular, targets="label", serving_plan={"batch_size": 1, "padding_side": "left"},
                before_measuring=lambda: called.append(1))
    with pytest.raises(InvalidInputError, match="headline_plan"):
        compare(parent, candidate, tabular, targets="label", headline_plan="served")
    with pytest.raises(InvalidInputError, match="n_samples"):
        compare(parent, candidate, tabular, targets="label", consistency={"n_samples": 0})
    with pytest.raises(InvalidInputError, match="unknown consistency key"):
        compare(parent, candidate, tabular, targets="label", consistency={"samples": 3})
    assert called == []


def test_off_and_not_rebatchable_models_are_recorded(tabular):
    parent, candidate = _models()
    off = compare(parent, candidate, tabular, targets="label", n_resamples=50, consistency=False)
    assert "consistency" not in off.sections and off.skipped["consistency"].startswith("not requested")

    class Ready:  # a ProbaModel trusteq did not build: its batching is not ours to change
        labels, name, size_bytes = ("0", "1"), "ready", None

        def predict_proba(self, records):
            return _softmax(_steady(records))

    auto = compare(Ready(), candidate, tabular, targets="label", n_resamples=50)
    assert auto.skipped["consistency"].startswith("not requested (consistency='auto')")
    asked = compare(Ready(), candidate, tabular, targets="label", n_resamples=50, consistency=True)
    assert asked.skipped["consistency"].startswith("not measured")
    verdict = Policy.default().judge(asked)
    assert next(c for c in verdict.checks if c.metric == "consistency/batch/diff/label_loyalty").status == "fail"


def test_plan_token_batches_in_data_order():
    lengths = [3, 40, 5, 5, 38, 2]
    batches = plan_token_batches(lengths, max_tokens_per_batch=80, batch_size=4, sort="none")
    assert [b.tolist() for b in batches] == [[0, 1], [2, 3], [4, 5]]  # order kept, |B| * longest <= 80
    assert [b.tolist() for b in plan_token_batches(lengths, max_tokens_per_batch=80, batch_size=4)] == \
        [[1, 4], [2, 3, 0, 5]]
    with pytest.raises(InvalidInputError, match="sort"):
        plan_token_batches(lengths, max_tokens_per_batch=80, batch_size=4, sort="random")


def test_batch_plan_validation():
    assert BatchPlan.from_value(None).given() == {}
    assert BatchPlan.from_value({"batch_size": 2, "sort": "none"}).describe() == "batch_size=2, sort=none"
    for bad in ({"batch_size": True}, {"max_length": 0}, {"sort": "random"}, {"max_tokens_per_batch": -1}):
        with pytest.raises(InvalidInputError):
            BatchPlan.from_value(bad)


# --------------------------------------------------------------------------- the real int8 model


@pytest.fixture(scope="module")
def onnx_pair(tiny_bert, tmp_path_factory):
    """(float .onnx, dynamic-int8 .onnx) of the fine-tuned tiny BERT, exported and quantized for real."""
    from trusteq_training import export_onnx, quantize_int8

    model, tok, _ = tiny_bert
    d = tmp_path_factory.mktemp("consistency_onnx")
    fp32 = export_onnx(model, tok, d / "model.onnx")
    return fp32, quantize_int8(fp32, d / "model.int8.onnx")


def test_dynamic_int8_depends_on_its_batch_and_the_float_model_does_not(tiny_bert, onnx_pair, sst2_small):
    _, tok, _ = tiny_bert
    fp32, int8 = onnx_pair
    _, dev = sst2_small
    report = compare(str(fp32), str(int8), dev, targets="label", n_resamples=200,
                     parent_kwargs={"tokenizer": tok}, candidate_kwargs={"tokenizer": tok},
                     consistency={"n_samples": 120, "random_state": 1})
    res = report.consistency()
    m = report.metrics
    # float: batching changes nothing
    assert res.settings["parent_max_abs_change"] <= 1e-6 and res.settings["parent_n_flipped"] == 0
    assert m["consistency/batch/parent/label_loyalty"].value == 1.0
    assert m["consistency/batch/parent/probability_loyalty"].value >= 1 - 1e-3
    # dynamic int8: the same rows, one at a time instead of in length-sorted batches of 64, score differently
    assert res.settings["candidate_max_abs_change"] > 1e-3
    pl = m["consistency/batch/candidate/probability_loyalty"]
    assert pl.upper < 1.0 and m["consistency/batch/diff/probability_loyalty"].upper < 0
    # an independent reference: score the sampled rows one by one with ONNX Runtime directly
    import onnxruntime as ort

    session = ort.InferenceSession(str(int8), providers=["CPUExecutionProvider"])
    rows = res.settings["rows"]
    alone = []
    for text in dev["sentence"].iloc[rows]:
        enc = tok([text], truncation=True, max_length=128, return_tensors="np")
        feed = {i.name: enc[i.name].astype(np.int64) for i in session.get_inputs()}
        alone.append(session.run(["logits"], feed)[0][0])
    R = _softmax(np.array(alone, dtype=np.float64))
    E = report.predictions.candidate[rows]
    assert np.mean(1 - jensenshannon(E, R, base=2, axis=1)) == pytest.approx(pl.value, abs=1e-6)
    assert np.abs(E - R).max() == pytest.approx(res.settings["candidate_max_abs_change"], abs=1e-6)
    # every setting that changes the numbers is recorded
    for role in ("parent", "candidate"):
        s = report.settings[f"{role}_scoring"]
        assert s["adapter"] == "OnnxTextAdapter" and s["execution_providers"] == ["CPUExecutionProvider"]
        assert {"graph_optimization_level", "intra_op_num_threads", "inter_op_num_threads"} <= set(s)
        assert s["truncation"] == "longest_first" and s["max_length"] == 128
        assert s["batch_plan"]["batch_size"] == 64 and s["batch_plan"]["sort"] == "length"
    assert report.settings["serving_plan"] == {"batch_size": 1}


def test_torch_settings_are_recorded(tiny_bert):
    import torch

    model, tok, _ = tiny_bert
    s = as_proba_model(model, tokenizer=tok).scoring_settings()
    assert s["torch_num_threads"] == torch.get_num_threads() and s["torch_dtype"] == "float32"
    assert s["device"] == "cpu" and s["truncation"] == "longest_first" and s["batch_plan"]["padding_side"] == "right"
    left = as_proba_model(model, tokenizer=tok).with_batch_plan({"padding_side": "left", "max_length": 16})
    assert left.scoring_settings()["batch_plan"]["padding_side"] == "left" and left.max_length == 16
