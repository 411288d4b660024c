"""The attack search and measure_robustness on real (small) models."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from _attack_models import ConstantModel, CountingModel, KeywordModel, SklearnTextModel

from mlflow_trusteq._errors import InvalidInputError, LabelMismatchError, MissingDependencyError
from mlflow_trusteq._types import metric_info
from mlflow_trusteq.attack._words import tokenize
from mlflow_trusteq.attack import (
    RobustnessConfig,
    RobustnessResult,
    attack_text,
    measure_robustness,
)

def main_rows(res):
    """The rows of the main sample (examples both models classify correctly)."""
    t = res.table()
    return t[t["pool"] == "both_correct"].reset_index(drop=True)


CHAR = RobustnessConfig(recipes=("char",), n_examples=30, query_budget=60, progress=False)


def test_an_input_blind_model_cannot_be_attacked(sst2_dev_frame):
    records, y = sst2_dev_frame
    model = ConstantModel()
    res = measure_robustness(model, ConstantModel(name="constant2"), records, y, config=CHAR)
    est = res.estimates()
    # every attacked example is classified correctly before the attack (accuracy 1 on the sample) ...
    assert (main_rows(res)["parent_pred_before"] == main_rows(res)["gold"]).all()
    # ... and after it: after-attack accuracy == accuracy
    assert est["char/parent/after_attack_accuracy"].value == 1.0
    assert est["char/candidate/after_attack_accuracy"].value == 1.0
    assert est["char/parent/attack_success_rate"].value == 0.0
    assert est["char/diff/after_attack_accuracy"].value == 0.0
    assert np.isnan(est["char/transfer_rate"].value)  # nothing to transfer
    assert res.settings["parent_accuracy"] == pytest.approx(np.mean(y == 1))
    assert (res.table()["parent_perturbed"] == res.table()["original"]).all()
    # the "each its own correct" view over rows drawn from all records: accuracy < 1, unchanged by the attack
    own = res.table().drop_duplicates("index")
    assert len(own[own["pool"] == "own_only"]) > 0
    assert est["char/own/parent/accuracy"].value < 1.0
    assert est["char/own/parent/after_attack_accuracy"].value == est["char/own/parent/accuracy"].value


def test_a_brittle_model_is_attacked(sst2_dev_frame):
    records, y = sst2_dev_frame
    parent = KeywordModel(bias=-0.1)  # no keyword -> negative; positives rest on one or two keywords
    res = measure_robustness(parent, KeywordModel(weight=1.0, bias=-0.1, name="kw2"), records, y, config=CHAR)
    est = res.estimates()
    assert est["char/parent/attack_success_rate"].lower > 0.0
    assert est["char/parent/after_attack_accuracy"].value == pytest.approx(
        1 - est["char/parent/attack_success_rate"].value)
    t = res.table()
    won = t[t["parent_status"] == "success"]
    assert (won["parent_perturbed"] != won["original"]).all()
    assert (won["parent_pred_after"] != won["gold"]).all()
    # no more than 30% of the words changed, and the reported fraction is right
    assert (won["parent_words_changed"] <= 0.3 + 1e-12).all()
    assert est["char/parent/words_changed"].value == pytest.approx(won["parent_words_changed"].mean())
    # every positive example whose label rests on keywords that the attack may all edit is flipped
    fragile = 0
    for _, r in t.iterrows():
        n_words = len(tokenize(r["original"]).words)
        if r["gold"] == "positive" and 1 <= parent.score(r["original"]) <= int(0.3 * n_words):
            assert r["parent_status"] == "success", r["original"]
            fragile += 1
    assert fragile >= 3
    # the own view: attacks lower accuracy (TextAttack's accuracy under attack <= accuracy)
    assert est["char/own/parent/after_attack_accuracy"].value < est["char/own/parent/accuracy"].value
    # keyword models with the same keywords: everything found against one transfers
    assert est["char/transfer_rate"].value == 1.0


def test_results_are_independently_checkable(sst2_dev_frame, tfidf_pair):
    """Re-score every perturbed text outside the attack and recount the queries with a wrapper."""
    records, y = sst2_dev_frame
    parent = CountingModel(SklearnTextModel(tfidf_pair[0], "tfidf-parent"))
    candidate = SklearnTextModel(tfidf_pair[1], "tfidf-candidate")
    cfg = RobustnessConfig(recipes=("char",), n_examples=25, query_budget=40, progress=False, random_state=3)
    res = measure_robustness(parent, candidate, records, y, config=cfg)
    t = main_rows(res)
    assert len(t) == res.settings["n_attacked"] == 25
    rescored = parent.model.predict_proba(pd.DataFrame({"sentence": t["parent_perturbed"]}))
    labels = np.array(res.settings["labels"])
    assert (labels[rescored.argmax(1)] == t["parent_pred_after"]).all()
    assert rescored.max(1) == pytest.approx(t["parent_confidence_after"].to_numpy())
    success = (t["parent_status"] == "success").to_numpy()
    assert res.estimates()["char/parent/attack_success_rate"].value == pytest.approx(success.mean())
    # the transfer flags: the candidate's label on the parent's adversarial texts
    on_adv = candidate.predict_proba(pd.DataFrame({"sentence": t["parent_perturbed"][success]}))
    expected = (labels[on_adv.argmax(1)] != t["gold"][success]).mean() if success.any() else np.nan
    assert res.estimates()["char/transfer_rate"].value == pytest.approx(expected, nan_ok=True)
    # queries: the clean pass (all rows) + the attack queries reported per example + transfer to the parent
    n_reverse = int((t["candidate_status"] == "success").sum())
    assert parent.rows == len(records) + res.table()["parent_queries"].sum() + n_reverse
    assert res.estimates()["char/parent/mean_queries"].value == pytest.approx(t["parent_queries"].mean())
    assert res.estimates()["char/parent/median_queries"].value == pytest.approx(t["parent_queries"].median())
    e = res.estimates()["char/parent/median_queries"]
    assert e.lower <= e.value <= e.upper


@pytest.mark.parametrize("budget", [1, 2, 5, 13, 40])
def test_the_query_budget_is_never_exceeded(sst2_dev_frame, budget):
    records, y = sst2_dev_frame
    for i in range(40):
        model = CountingModel(KeywordModel())
        out = attack_text(model, records.iloc[i], int(y[i]), recipe="char", query_budget=budget,
                          max_words_changed=1.0, example_key=i)
        assert model.rows <= budget
        assert out.queries == model.rows


def test_the_query_budget_holds_for_the_word_recipe(sst2_dev_frame):
    records, y = sst2_dev_frame
    hit_budget = 0
    for i in range(30):
        model = CountingModel(KeywordModel(weight=0.2))  # hard to flip: the search runs long
        out = attack_text(model, records.iloc[i], int(y[i]), recipe="word", query_budget=25,
                          max_words_changed=1.0, example_key=i)
        assert model.rows <= 25 and out.queries == model.rows
        hit_budget += model.rows == 25
    assert hit_budget > 0  # the cap was actually reached


def test_same_seed_same_result(sst2_dev_frame, tfidf_pair):
    records, y = sst2_dev_frame
    p, c = SklearnTextModel(tfidf_pair[0], "p"), SklearnTextModel(tfidf_pair[1], "c")
    a = measure_robustness(p, c, records, y, config=CHAR)
    b = measure_robustness(p, c, records, y, config=CHAR)
    assert json.dumps(a.to_dict()) == json.dumps(b.to_dict())
    other = measure_robustness(p, c, records, y, config=RobustnessConfig(
        recipes=("char",), n_examples=30, query_budget=60, progress=False, random_state=1))
    assert main_rows(other)["index"].tolist() != main_rows(a)["index"].tolist()
    assert a.settings["random_state"] == 0 and other.settings["random_state"] == 1


def test_parent_and_candidate_get_the_same_examples_and_edits(sst2_dev_frame):
    records, y = sst2_dev_frame
    # identical models: identical attacks, so every number of the candidate equals the parent's
    res = measure_robustness(KeywordModel(), KeywordModel(name="copy"), records, y, config=CHAR)
    t = main_rows(res)
    assert (t["parent_perturbed"] == t["candidate_perturbed"]).all()
    assert (t["parent_queries"] == t["candidate_queries"]).all()
    assert res.estimates()["char/diff/after_attack_accuracy"].value == 0.0


@pytest.mark.parametrize("field", ["sentence1", "sentence2", None])
def test_pairs_attack_only_the_chosen_field(field):
    from _mrpc import load_mrpc

    dev = load_mrpc("dev").iloc[:80].reset_index(drop=True)
    records = dev[["sentence1", "sentence2"]]
    attacked = field or "sentence2"  # default: the last text column
    other = "sentence1" if attacked == "sentence2" else "sentence2"
    # models that read the attacked field (so the attack has something to find); targets = their labels
    model = CountingModel(KeywordModel(weight=2.0, bias=-0.1, field=attacked))
    y = model.model.predict_proba(records).argmax(1)
    cfg = RobustnessConfig(recipes=("char",), n_examples=60, query_budget=30, attack_field=field, progress=False)
    res = measure_robustness(model, KeywordModel(weight=1.0, bias=-0.1, field=attacked, name="kw2"), records, y,
                             config=cfg)
    assert res.settings["attack_field"] == attacked
    changed = 0
    originals = dict(zip(records[other], records[attacked]))
    assert len(originals) == len(records)  # the other field identifies the example
    for call in model.calls[1:]:  # the attack (and transfer) queries, after the clean pass
        assert list(call.columns) == ["sentence1", "sentence2"]
        for a, o in zip(call[attacked], call[other]):
            assert o in originals  # the other field of every query is an original one, unchanged
            changed += a != originals[o]
    assert changed > 0
    assert res.estimates()["char/parent/attack_success_rate"].value > 0
    t = res.table()
    assert (t[other] == records.loc[t["index"], other].to_numpy()).all()
    won = t[t["parent_status"] == "success"]
    assert (won["parent_perturbed"] != won["original"]).all()
    assert (won["original"] == records.loc[won["index"], attacked].to_numpy()).all()


def test_word_recipe_swaps_synonyms(sst2_dev_frame):
    records, y = sst2_dev_frame
    cfg = RobustnessConfig(recipes=("word",), n_examples=40, query_budget=100, progress=False)
    res = measure_robustness(KeywordModel(), KeywordModel(weight=0.8, name="kw2"), records, y, config=cfg)
    est = res.estimates()
    assert est["word/parent/attack_success_rate"].lower > 0.0
    from mlflow_trusteq.attack._words import tokenize
    from mlflow_trusteq.attack.wordnet import load_wordnet

    wn = load_wordnet()
    t = res.table()
    for _, r in t[t["parent_status"] == "success"].iterrows():
        a, b = tokenize(r["original"]).tokens, tokenize(r["parent_perturbed"]).tokens
        assert len(a) == len(b)
        for x, z in zip(a, b):
            if x != z:  # every change is a WordNet synonym of the original word
                assert z.lower() in wn.synonyms(x, wn.dominant_pos(x))
    s = res.settings["recipe_settings"]["word"]
    assert s["word_source_version"].startswith("WordNet 3") and s["pos_constraint"] == "dominant"


def test_json_round_trip_and_html(sst2_dev_frame):
    records, y = sst2_dev_frame
    res = measure_robustness(KeywordModel(), KeywordModel(weight=1.0, name="kw2"), records, y, config=CHAR)
    back = RobustnessResult.from_dict(json.loads(json.dumps(res.to_dict())))
    assert back.estimates() == res.estimates() or all(
        back.estimates()[k].to_dict() == v.to_dict() for k, v in res.estimates().items())
    pd.testing.assert_frame_equal(back.table(), res.table(), check_dtype=False)
    assert back.settings == json.loads(json.dumps(res.settings))
    page = res.html(max_rows=3)
    assert page.startswith('<section class="trusteq-robustness">') and "<mark" in page
    assert page.count('<tr><td>negative</td>') + page.count('<tr><td>positive</td>') <= 3


def test_metric_keys_and_directions(sst2_dev_frame):
    records, y = sst2_dev_frame
    res = measure_robustness(KeywordModel(), KeywordModel(name="kw2"), records, y, config=CHAR)
    keys = set(res.estimates())
    for role in ("parent", "candidate"):
        for m in ("after_attack_accuracy", "attack_success_rate", "mean_queries", "median_queries", "words_changed"):
            assert f"char/{role}/{m}" in keys
    assert {"char/diff/after_attack_accuracy", "char/transfer_rate", "char/reverse/transfer_rate"} <= keys
    assert metric_info("robustness/char/parent/after_attack_accuracy").higher_is_better
    assert not metric_info("robustness/char/parent/attack_success_rate").higher_is_better
    assert not metric_info("robustness/char/transfer_rate").higher_is_better
    assert metric_info("robustness/char/parent/mean_queries").upper_bound is None


def test_bad_input_is_named(sst2_dev_frame):
    records, y = sst2_dev_frame
    m = KeywordModel()
    with pytest.raises(InvalidInputError, match="'wordz'"):
        RobustnessConfig(recipes=("wordz",))
    with pytest.raises(InvalidInputError, match="query_budget"):
        RobustnessConfig(query_budget=0)
    with pytest.raises(InvalidInputError, match="max_words_changed"):
        RobustnessConfig(max_words_changed=1.5)
    with pytest.raises(InvalidInputError, match="'hypothesis'"):
        measure_robustness(m, m, records, y, config=RobustnessConfig(recipes=("char",), attack_field="hypothesis"))
    with pytest.raises(InvalidInputError, match="'neutral'"):
        measure_robustness(m, m, records, np.array(["neutral"] * len(records)), config=CHAR)
    with pytest.raises(InvalidInputError, match="rows"):
        measure_robustness(m, m, records, y[:5], config=CHAR)
    with pytest.raises(LabelMismatchError):
        measure_robustness(m, ConstantModel(labels=("neg", "pos")), records, y, config=CHAR)
    with pytest.raises(InvalidInputError, match="both"):
        measure_robustness(ConstantModel((0.9, 0.1)), ConstantModel((0.1, 0.9)), records, y, config=CHAR)
    # label names work as targets too
    names = np.where(y == 1, "positive", "negative")
    a = measure_robustness(m, m, records, names, config=CHAR)
    b = measure_robustness(m, m, records, y, config=CHAR)
    assert a.to_dict() == b.to_dict()


def test_missing_wordnet_fails_before_any_query(sst2_dev_frame, monkeypatch, tmp_path):
    from mlflow_trusteq.attack import wordnet

    records, y = sst2_dev_frame
    wordnet.load_wordnet.cache_clear()
    monkeypatch.setenv("TRUSTEQ_WORDNET_DIR", str(tmp_path))  # a named folder without WordNet's files
    model = CountingModel(KeywordModel())
    try:
        with pytest.raises(MissingDependencyError, match="apt-get install -y --no-install-recommends wordnet-base"):
            measure_robustness(model, model, records, y, config=RobustnessConfig(recipes=("word",), progress=False))
        assert model.calls == []
    finally:
        wordnet.load_wordnet.cache_clear()


def test_textattack_adapter_says_how_to_install():
    pytest.importorskip  # noqa: B018
    try:
        import textattack  # noqa: F401
    except ImportError:
        from mlflow_trusteq.attack.textattack import run_textattack

        with pytest.raises(MissingDependencyError, match="pip install textattack"):
            run_textattack(KeywordModel(), pd.DataFrame({"text": ["a good movie"]}), [1])
    else:  # pragma: no cover - textattack is not installed in CI
        pytest.skip("textattack installed: the adapter is exercised by test_textattack_recipe")
