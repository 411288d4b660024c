"""The attacks on real transformer models: tiny BERT (torch) vs its int8 ONNX export."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlflow_trusteq.attack import RobustnessConfig, RobustnessResult, measure_robustness

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bert_pair(tiny_bert, tmp_path_factory):
    pytest.importorskip("onnxruntime")
    from mlflow_trusteq.adapters import as_proba_model
    from trusteq_training import export_onnx, quantize_int8

    model, tok, _ = tiny_bert
    d = tmp_path_factory.mktemp("tiny_bert_onnx")
    fp32 = export_onnx(model, tok, d / "model.onnx")
    int8 = quantize_int8(fp32, d / "model.int8.onnx")
    parent = as_proba_model(model, tokenizer=tok, name="tiny-bert")
    candidate = as_proba_model(str(int8), tokenizer=tok, name="tiny-bert-int8")
    return parent, candidate


def test_word_and_char_attacks_on_bert_and_its_int8_export(bert_pair, sst2_small):
    parent, candidate = bert_pair
    _, dev = sst2_small
    records, y = dev[["sentence"]], dev["label"].to_numpy()
    cfg = RobustnessConfig(recipes=("word", "char"), n_examples=15, query_budget=60, progress=False)
    res = measure_robustness(parent, candidate, records, y, config=cfg)
    est = res.estimates()
    t = res.table()
    for recipe in ("word", "char"):
        sub = t[t["recipe"] == recipe]
        for role in ("parent", "candidate"):
            assert (sub[f"{role}_queries"] <= 60).all()
            assert 0.0 <= est[f"{recipe}/{role}/after_attack_accuracy"].value <= 1.0
        # a 2-layer BERT at ~70% accuracy is brittle: the word attack flips some of it
        assert est[f"{recipe}/parent/attack_success_rate"].value > 0.0
        # independent re-scoring of the adversarial texts found against the parent
        won = sub[sub["parent_status"] == "success"]
        if len(won):
            again = parent.predict_proba(won[["parent_perturbed"]].rename(columns={"parent_perturbed": "sentence"}))
            assert (np.array(res.settings["labels"])[again.argmax(1)] == won["parent_pred_after"]).all()
    back = RobustnessResult.from_dict(json.loads(json.dumps(res.to_dict())))
    assert back.estimates().keys() == est.keys()
