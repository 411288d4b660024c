from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from mlflow_trusteq._errors import InvalidInputError
from mlflow_trusteq.explain import AlignmentConfig, AlignmentResult, measure_alignment

from .conftest import Callable, SkText

FAST = dict(n_examples=6, lime_num_samples=300, shap_max_evals=200, progress=False)


def _run(parent, candidate, records, **kw):
    pred = parent.predict_proba(records).argmax(1)
    return measure_alignment(parent, candidate, records, parent_pred=pred,
                             config=AlignmentConfig(**{**FAST, **kw}))


def test_identical_models_align_like_their_noise_floor(sk_models, sst2_small):
    parent, _ = sk_models
    rec = sst2_small[1][["sentence"]]
    r = _run(parent, parent, rec)
    est = r.estimates()
    for m in ("lime", "shap"):
        # paired perturbations: identical models agree exactly; the floor is the explainer's own noise
        assert est[f"{m}/top_k_jaccard"].value == 1.0
        assert est[f"{m}/normalized/top_k_jaccard"].value >= 1.0  # never below its own floor
        assert r.within_noise_floor(m)
    assert "not evidence of anything" in r.summary()
    assert 0.8 < est["lime/noise_floor/top_k_jaccard"].value < 1.0  # LIME is noisy, not degenerate
    assert est["shap/noise_floor/top_k_jaccard"].value == 1.0  # Partition is deterministic


def test_candidate_that_ignores_a_word_is_caught(sk_models, sst2_small):
    parent, _ = sk_models
    dev = sst2_small[1]
    rec = dev.loc[dev["sentence"].str.contains(r"\bnot\b"), ["sentence"]].reset_index(drop=True)
    strip = re.compile(r"\bnot\b")
    deaf = Callable(lambda df: parent.predict_proba(df.iloc[:, 0].map(lambda s: strip.sub("", s)).to_frame()),
                    parent.labels, "deaf")
    r = _run(parent, deaf, rec, n_examples=8)
    caught = 0
    for e in r.examples:
        j = e["features"].index("not")
        # an unused word gets only leftovers: LIME's ridge noise, SHAP's share of an unexpanded cluster
        # when max_evals runs out (exactly 0 with a full budget)
        for m in ("lime", "shap"):
            assert abs(e[f"{m}/candidate"][j]) < 0.5 * abs(e[f"{m}/parent"][j])
        for m in ("lime", "shap"):
            top_parent = np.argsort(-np.abs(e[f"{m}/parent"]), kind="stable")[:e["k"]]
            caught += int(j in top_parent and e[f"{m}/metrics"]["top_k_jaccard"] < 1.0)
    assert caught >= 8  # "not" drives the parent on most examples; the candidate never uses it
    est = r.estimates()
    assert est["lime/top_k_jaccard"].value < est["lime/noise_floor/top_k_jaccard"].value


def test_deterministic_under_a_seed_and_json_round_trip(sk_models, sst2_small):
    parent, candidate = sk_models
    rec = sst2_small[1][["sentence"]]
    a, b = _run(parent, candidate, rec), _run(parent, candidate, rec)
    assert a.to_dict() == b.to_dict()
    c = _run(parent, candidate, rec, random_state=1)
    assert c.settings["rows"] != a.settings["rows"]
    back = AlignmentResult.from_dict(json.loads(json.dumps(a.to_dict())))
    assert back.estimates() == a.estimates()
    assert back.settings["random_state"] == 0 and back.settings["k_used"] == a.settings["k_used"]
    t = a.table()
    assert len(t) == 6 and {"row", "text", "k", "lime/top_k_jaccard", "shap/noise_floor/top_k_jaccard"} <= set(t)
    page = a.html(max_examples=3)
    assert page.startswith("<!DOCTYPE html>") and page.count("class='ex'") == 3 and "noise floor" in page


def test_no_input_scored_twice(sk_models, sst2_small):
    parent, candidate = sk_models
    seen: list[str] = []

    def counting(df):
        seen.extend(df.iloc[:, 0])
        return parent.predict_proba(df)

    rec = sst2_small[1][["sentence"]]
    r = measure_alignment(Callable(counting, parent.labels, "count"), candidate, rec,
                          parent_pred=parent.predict_proba(rec).argmax(1), config=AlignmentConfig(**FAST))
    assert len(seen) == len(set(seen)) == r.n_evaluations["parent_scored"]
    assert r.n_evaluations["parent_requested"] > r.n_evaluations["parent_scored"]


def test_another_tokenizer_text_pairs(sst2_small):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from _mrpc import load_mrpc

    train, dev = load_mrpc("train"), load_mrpc("dev").iloc[:50]
    joined = train["sentence1"] + " || " + train["sentence2"]
    word = SkText(make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=500)).fit(joined, train["label"]),
                  "word", labels=("0", "1"))
    char_pipe = make_pipeline(TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4)), LogisticRegression(max_iter=500))
    char = SkText(char_pipe.fit(joined, train["label"]), "char", labels=("0", "1"))
    rec = dev[["sentence1", "sentence2"]]
    pred = word.predict_proba(rec).argmax(1)
    r2 = measure_alignment(word, char, rec, parent_pred=pred, targets=dev["label"].to_numpy(),
                           config=AlignmentConfig(**{**FAST, "n_examples": 3, "target": "gold", "shap_max_evals": 120}))
    e = r2.examples[0]
    assert any(n.startswith("1:") for n in e["features"]) and any(n.startswith("2:") for n in e["features"])
    assert e["target"] == int(dev["label"].iloc[e["row"]])
    for m in ("lime", "shap"):
        assert 0.0 <= r2.estimates()[f"{m}/top_k_jaccard"].value <= 1.0
    assert r2.settings["target"] == "gold"


def test_tiny_bert_against_sklearn(tiny_bert, sk_models, sst2_small):
    import torch

    model, tok, _ = tiny_bert

    def bert_proba(df):
        with torch.no_grad():
            enc = tok(list(df.iloc[:, 0]), padding=True, truncation=True, max_length=64, return_tensors="pt")
            return torch.softmax(model(**enc).logits, -1).double().numpy()

    bert = Callable(bert_proba, ("negative", "positive"), "tiny_bert")
    r = _run(sk_models[0], bert, sst2_small[1][["sentence"]], n_examples=3, shap_max_evals=100,
             lime_num_samples=200)
    assert len(r.examples) == 3 and all(len(e["shap/candidate"]) == len(e["features"]) for e in r.examples)


def test_tabular():
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = load_breast_cancer(as_frame=True)
    X = data.data.iloc[:, :8]
    y = data.target
    lr = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    rf = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
    wrap = lambda m, n: Callable(lambda df: m.predict_proba(pd.DataFrame(df.to_numpy(), columns=X.columns)),  # noqa: E731
                                 ("0", "1"), n)
    parent, cand = wrap(lr, "lr"), wrap(rf, "rf")
    r = measure_alignment(parent, cand, X, parent_pred=lr.predict(X), kind="tabular",
                          config=AlignmentConfig(n_examples=4, lime_num_samples=200, shap_max_evals=100, top_k=3,
                                                 background_size=20, progress=False))
    assert r.settings["k_used"] == [3] * 4 and r.examples[0]["features"] == list(X.columns)
    same = measure_alignment(parent, parent, X, parent_pred=lr.predict(X), kind="tabular",
                             config=AlignmentConfig(n_examples=4, lime_num_samples=200, shap_max_evals=100, top_k=3,
                                                    background_size=20, progress=False))
    assert same.estimates()["shap/top_k_jaccard"].value == 1.0
    assert same.estimates()["lime/top_k_jaccard"].value == 1.0


def test_bad_input_is_named(sk_models, sst2_small):
    parent, candidate = sk_models
    rec = sst2_small[1][["sentence"]]
    with pytest.raises(InvalidInputError, match="'bogus'"):
        AlignmentConfig(methods=("bogus",))
    with pytest.raises(InvalidInputError, match="needs `targets`"):
        measure_alignment(parent, candidate, rec, parent_pred=np.zeros(len(rec), int),
                          config=AlignmentConfig(target="gold"))
    with pytest.raises(InvalidInputError, match="'maybe'"):
        measure_alignment(parent, candidate, rec, parent_pred=np.array(["maybe"] * len(rec)))
    other = Callable(lambda df: np.full((len(df), 2), 0.5), ("a", "b"), "other")
    with pytest.raises(InvalidInputError, match="Label mismatch"):
        measure_alignment(parent, other, rec, parent_pred=np.zeros(len(rec), int))


def test_token_budget_is_set_for_the_call_and_restored(sk_models, sst2_small):
    parent, candidate = sk_models
    seen = set()

    class Budgeted(Callable):
        max_tokens_per_batch = 8192

    model = Budgeted(lambda df: (seen.add(model.max_tokens_per_batch), parent.predict_proba(df))[1], parent.labels)
    rec = sst2_small[1][["sentence"]]
    measure_alignment(model, candidate, rec, parent_pred=parent.predict_proba(rec).argmax(1),
                      config=AlignmentConfig(**{**FAST, "n_examples": 2, "methods": ("lime",),
                                                "max_tokens_per_batch": 1024}))
    assert seen == {1024} and model.max_tokens_per_batch == 8192


def test_html_shows_worst_aligned_first(sk_models, sst2_small):
    parent, candidate = sk_models
    r = _run(parent, candidate, sst2_small[1][["sentence"]], methods=("lime",))
    page = r.html()
    worst = min(r.examples, key=lambda e: e["lime/metrics"]["top_k_jaccard"])
    first_caption = page.split("<div class='cap'>", 1)[1]
    assert first_caption.startswith(f"row {worst['row']} ")
    assert page.count("LIME parent") == page.count("LIME candidate") == len(r.examples)
    assert "rgba(220,38,38" in page and "rgba(37,99,235" in page
