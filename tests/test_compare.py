"""compare(): orchestration over real models, bad input, JSON round trip, efficiency numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score

from mlflow_trusteq import InvalidInputError, LabelMismatchError
from mlflow_trusteq.compare import TrustReport, compare


def test_identical_models_are_perfectly_loyal(tfidf_pair, sst2_small):
    parent, _ = tfidf_pair
    _, dev = sst2_small
    rep = compare(parent, parent, dev, targets="label", n_resamples=200)
    assert rep.value("label_loyalty") == 1.0 and rep.value("probability_loyalty") == pytest.approx(1.0)
    d = rep.metrics["diff/accuracy"]  # no discordant pair: the Bonett-Price interval +-z sqrt(2) / (n + 2)
    assert d.value == 0.0 and d.upper == -d.lower == pytest.approx(1.959964 * 2 ** 0.5 / (len(dev) + 2))
    assert rep.value("negative_flip_rate") == 0.0


def test_numbers_match_independent_references(tfidf_pair, sst2_small):
    parent, candidate = tfidf_pair
    _, dev = sst2_small
    rep = compare(parent, candidate, dev, targets="label", n_resamples=200)
    P = parent.predict_proba(dev["sentence"])
    Q = candidate.predict_proba(dev["sentence"])
    y = dev["label"].to_numpy()
    assert rep.value("label_loyalty") == pytest.approx(np.mean(P.argmax(1) == Q.argmax(1)))
    assert rep.value("parent/accuracy") == pytest.approx(accuracy_score(y, P.argmax(1)))
    assert rep.value("candidate/accuracy") == pytest.approx(accuracy_score(y, Q.argmax(1)))
    assert rep.value("diff/accuracy") == pytest.approx(rep.value("candidate/accuracy") - rep.value("parent/accuracy"))
    assert np.array(rep.flip_matrix).sum() == len(dev)
    # each CI contains its point estimate
    for key, est in rep.metrics.items():
        if est.lower is not None:
            assert est.lower - 1e-12 <= est.value <= est.upper + 1e-12, key
    assert rep.settings["n_resamples"] == 200 and rep.settings["js_base"] == 2.0
    assert rep.value("speedup") > 0 and rep.value("size_ratio") > 0
    assert "alignment" in rep.skipped and "robustness" in rep.skipped


def test_json_round_trip(tfidf_pair, sst2_small):
    parent, candidate = tfidf_pair
    _, dev = sst2_small
    rep = compare(parent, candidate, dev.iloc[:120], targets="label", n_resamples=100)
    again = TrustReport.from_json(rep.to_json())
    assert again == rep
    assert again.predictions is None  # per-example arrays stay in memory, not in the JSON


def test_without_labels_calibration_is_not_invented(tfidf_pair, sst2_small):
    parent, candidate = tfidf_pair
    _, dev = sst2_small
    rep = compare(parent, candidate, dev[["sentence"]], n_resamples=100)
    assert not rep.has_targets
    assert not any(k.endswith(("accuracy", "ece_equal_mass", "brier_loss")) for k in rep.metrics)
    assert "no gold labels" in rep.skipped["calibration"]
    assert "label_loyalty" in rep.metrics


def test_string_gold_labels_map_to_label_names(tiny_bert, sst2_small):
    from mlflow_trusteq.adapters import as_proba_model

    model, tok, _ = tiny_bert
    _, dev = sst2_small
    frame = dev.iloc[:64].assign(label=lambda d: d["label"].map({0: "negative", 1: "positive"}))
    adapter = as_proba_model(model, tokenizer=tok)
    rep = compare(adapter, adapter, frame, targets="label", n_resamples=50)
    P = adapter.predict_proba(frame[["sentence"]])
    expected = accuracy_score(dev["label"].iloc[:64], P.argmax(1))
    assert rep.value("parent/accuracy") == pytest.approx(expected)


def test_bad_input_is_named(tfidf_pair, sst2_small):
    parent, candidate = tfidf_pair
    _, dev = sst2_small
    with pytest.raises(InvalidInputError, match="targets column 'gold' is not in the data"):
        compare(parent, candidate, dev, targets="gold")
    with pytest.raises(InvalidInputError, match="empty"):
        compare(parent, candidate, dev.iloc[:0], targets="label")
    with pytest.raises(InvalidInputError, match=r"feature column\(s\) \['text'\] not in the data"):
        compare(parent, candidate, dev, targets="label", feature_columns=["text"])
    broken = dev.iloc[:10].copy()
    broken.loc[3, "sentence"] = None
    with pytest.raises(InvalidInputError, match="missing or non-text value at row 3"):
        compare(parent, candidate, broken, targets="label")
    nan_labels = dev.iloc[:10].copy().astype({"label": float})
    nan_labels.loc[4, "label"] = np.nan
    with pytest.raises(InvalidInputError, match="row 4"):
        compare(parent, candidate, nan_labels, targets="label")
    with pytest.raises(InvalidInputError, match=r"shape \(3,\)"):
        compare(parent, candidate, dev.iloc[:10][["sentence"]], targets=[0, 1, 0])


def test_candidate_with_other_labels_is_refused(tfidf_pair, sst2_small):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    parent, _ = tfidf_pair
    train, dev = sst2_small
    three = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=200)).fit(
        train["sentence"][:300], np.arange(300) % 3)
    with pytest.raises(LabelMismatchError) as info:
        compare(parent, three, dev, targets="label")
    assert "0" in str(info.value) and "2" in str(info.value)


def test_a_model_that_raises_midway_propagates_and_nothing_is_returned(tfidf_pair, sst2_small):
    from mlflow_trusteq.adapters import as_proba_model

    parent, candidate = tfidf_pair
    _, dev = sst2_small
    calls = {"n": 0}

    def flaky(records):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("GPU fell off the bus")
        return candidate.predict_proba(pd.DataFrame(records)["sentence"] if not isinstance(records, list)
                                       else records)

    flaky_model = as_proba_model(flaky, labels=["0", "1"])
    with pytest.raises(RuntimeError, match="fell off the bus"):
        compare(parent, flaky_model, dev, targets="label", chunk_size=100)


def test_tabular_pair_and_efficiency(rng):
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    X = rng.normal(size=(2000, 5))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(5)]).assign(y=y)
    features = frame.drop(columns="y")
    parent = LogisticRegression().fit(features, y)
    candidate = DecisionTreeClassifier(max_depth=3, random_state=0).fit(features, y)
    rep = compare(parent, candidate, frame, targets="y", n_resamples=100, chunk_size=300)
    assert rep.kind == "tabular" and rep.n_examples == 2000
    assert 0.8 < rep.value("label_loyalty") < 1.0
    assert rep.settings["parent_seconds"] > 0 and rep.settings["candidate_seconds"] > 0
    # the speed-up comes from the repeated, interleaved timings (mlflow_trusteq._timing), with its interval
    t = rep.settings["timing"]
    ratios = [a / b for a, b in zip(t["batch_seconds"]["parent"], t["batch_seconds"]["candidate"])]
    assert rep.value("speedup") == pytest.approx(float(np.exp(np.mean(np.log(ratios)))))
    assert rep.metrics["speedup"].lower <= rep.value("speedup") <= rep.metrics["speedup"].upper


def test_real_int8_candidate_gets_plausible_numbers(tiny_bert, sst2_small, tmp_path):
    """A real parent (tiny BERT) and a real int8 candidate (onnxruntime.quantization)."""
    from mlflow_trusteq.adapters import OnnxTextAdapter
    from trusteq_training import export_onnx, quantize_int8

    model, tok, _ = tiny_bert
    _, dev = sst2_small
    fp32 = export_onnx(model, tok, tmp_path / "m.onnx")
    int8 = quantize_int8(fp32, tmp_path / "m.int8.onnx")
    candidate = OnnxTextAdapter(str(int8), tok)
    rep = compare(model, candidate, dev, targets="label", parent_kwargs={"tokenizer": tok}, n_resamples=300)
    assert 0.9 <= rep.value("label_loyalty") <= 1.0
    assert 0.9 <= rep.value("probability_loyalty") <= 1.0
    assert abs(rep.value("diff/accuracy")) < 0.05
    assert 0.6 < rep.value("parent/accuracy") < 0.9  # the tiny parent is a real, if weak, sentiment model
    assert rep.value("size_ratio") < 0.5  # int8 weights against the float parameters
    assert rep.settings["parent_max_tokens_per_batch"] > 0


@pytest.mark.slow
def test_minilm_parent_and_int8_candidate(sst2_small, tmp_path):
    """MiniLM-L6 fine-tuned briefly (the real pretrained weights), its int8 export, compare()."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from mlflow_trusteq.adapters import OnnxTextAdapter
    from trusteq_training import export_onnx, fine_tune, minilm_path, quantize_int8

    train, dev = sst2_small
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(str(minilm_path()))
    model = AutoModelForSequenceClassification.from_pretrained(
        str(minilm_path()), num_labels=2, id2label={0: "negative", 1: "positive"},
        label2id={"negative": 0, "positive": 1})
    fine_tune(model, tok, list(train["sentence"][:1280]), list(train["label"][:1280]), epochs=1, lr=1e-4, seed=0)
    int8 = quantize_int8(export_onnx(model, tok, tmp_path / "minilm.onnx"), tmp_path / "minilm.int8.onnx")
    rep = compare(model, OnnxTextAdapter(str(int8), tok), dev.iloc[:300], targets="label",
                  parent_kwargs={"tokenizer": tok}, n_resamples=300)
    assert rep.value("parent/accuracy") > 0.75  # pretrained weights learn SST-2 quickly
    assert 0.85 <= rep.value("label_loyalty") <= 1.0
    assert rep.value("size_ratio") < 0.4
