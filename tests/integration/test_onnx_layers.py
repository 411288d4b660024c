"""Per-layer activations of a real ONNX Runtime int8 candidate against its real ONNX parent (tiny BERT)."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pandas as pd
import pytest

from mlflow_trusteq import as_proba_model, compare
from mlflow_trusteq.explain.onnx_layers import compare_layers

pytestmark = pytest.mark.slow

TEXTS = ["a fine , moving film", "terrible and boring", "i loved every minute of it", "meh", "not good at all",
         "the best picture of the year", "a dull , lifeless script", "charming"]


@pytest.fixture(scope="module")
def onnx_pair(tiny_bert, tmp_path_factory):
    from trusteq_training import export_onnx, quantize_int8

    model, tok, _ = tiny_bert
    d = tmp_path_factory.mktemp("layers")
    fp32 = export_onnx(model, tok, d / "model.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        int8 = quantize_int8(fp32, d / "model.int8.onnx")
    return fp32, int8, tok


def _one_tensor(path, tok, tensor):
    """The tensor's values on TEXTS, by adding it as a graph output with onnx itself (not qdq_loss_debug)."""
    import onnx
    import onnxruntime as ort

    m = onnx.load(str(path))
    m.graph.output.append(onnx.helper.make_empty_tensor_value_info(tensor))
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    out = []
    for text in TEXTS:
        enc = tok(text, truncation=True, max_length=128, return_tensors="np")
        feed = {i.name: np.asarray(enc.get(i.name, np.zeros_like(enc["input_ids"]))).astype(np.int64)
                for i in sess.get_inputs()}
        out.append(sess.run([tensor], feed)[0].ravel())
    return np.concatenate(out).astype(np.float64)


def test_int8_layers_diverge_and_are_ranked(onnx_pair):
    fp32, int8, tok = onnx_pair
    records = pd.DataFrame({"sentence": TEXTS})
    result = compare_layers(as_proba_model(fp32, tokenizer=tok), as_proba_model(int8, tokenizer=tok), records,
                            top_k=4)
    d = result.to_dict()
    assert d["candidate_quantized"] and d["n_inputs"] == len(TEXTS) and d["n_compared"] > 10
    top = d["top"]
    assert len(top) == 4 and all(r["relative_l2"] > 0 for r in top)
    assert [r["relative_l2"] for r in top] == sorted((r["relative_l2"] for r in top), reverse=True)
    assert all(r["sqnr_db"] == pytest.approx(-20 * np.log10(r["relative_l2"]), rel=1e-6) for r in top)
    # the worst layer's error, recomputed independently from the two graphs
    worst = top[0]["tensor"]
    p, c = _one_tensor(fp32, tok, worst), _one_tensor(int8, tok, worst)
    ok = np.isfinite(p) & np.isfinite(c)
    assert top[0]["relative_l2"] == pytest.approx(np.linalg.norm(c[ok] - p[ok]) / np.linalg.norm(p[ok]), rel=1e-6)
    # the rows not listed are no worse than the last one listed
    assert all(r["relative_l2"] <= top[-1]["relative_l2"] for r in result.rows[4:])


def test_a_model_against_a_copy_of_itself_has_no_error(onnx_pair, tmp_path):
    fp32, _, tok = onnx_pair
    copy = shutil.copy(fp32, tmp_path / "copy.onnx")
    result = compare_layers(as_proba_model(fp32, tokenizer=tok), as_proba_model(copy, tokenizer=tok),
                            pd.DataFrame({"sentence": TEXTS[:3]}))
    assert not result.candidate_quantized
    assert all(r["relative_l2"] == 0.0 for r in result.rows)


def test_compare_reports_logs_and_shows_the_layer_table(onnx_pair, local_registry):
    from mlflow import MlflowClient

    from mlflow_trusteq.integration.runlog import log_evaluation
    from mlflow_trusteq.policy import Policy
    from mlflow_trusteq.report.html import render_report_html

    fp32, int8, tok = onnx_pair
    data = pd.DataFrame({"sentence": TEXTS * 4, "label": [1, 0, 1, 0, 0, 1, 0, 1] * 4})
    kw = {"parent_kwargs": {"tokenizer": tok}, "candidate_kwargs": {"tokenizer": tok}, "n_resamples": 50,
          "consistency": False}
    report = compare(str(fp32), str(int8), data, targets="label", onnx_layers=3, **kw)
    layers = report.settings["onnx_layers"]
    assert len(layers["top"]) == 3 and layers["n_inputs"] == 8
    verdict = Policy.default().judge(report)
    page = render_report_html(report, verdict, figures={})
    assert "Per-layer activations (ONNX)" in page and layers["top"][0]["tensor"] in page
    client = MlflowClient()
    run_id = client.create_run(client.get_experiment_by_name("trusteq-tests").experiment_id).info.run_id
    _, artifacts = log_evaluation(client, run_id, report, verdict, Policy.default(), parent_uri=str(fp32),
                                  candidate=None, max_disagreements=5)
    assert artifacts["onnx_layers.csv"] == "trusteq/onnx_layers.csv"
    local = client.download_artifacts(run_id, "trusteq/onnx_layers.csv")
    assert list(pd.read_csv(local)["tensor"]) == [r["tensor"] for r in layers["top"]]


def test_a_non_onnx_pair_records_why_it_was_not_measured(tfidf_pair, sst2_small):
    parent, candidate = tfidf_pair
    _, dev = sst2_small
    report = compare(parent, candidate, dev.iloc[:60], targets="label", onnx_layers=True, n_resamples=20,
                     consistency=False)
    assert "not an ONNX Runtime model" in report.settings["onnx_layers"]["error"]
