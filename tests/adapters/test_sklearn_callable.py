"""scikit-learn and plain-function adapters, and as_proba_model's dispatch and errors."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from scipy.special import softmax as scipy_softmax

from mlflow_trusteq import InvalidInputError, ModelAdapterError
from mlflow_trusteq.adapters import CallableAdapter, ProbaModel, SklearnAdapter, as_proba_model


def test_text_pipeline_matches_predict_proba(tfidf_pair, sst2_small):
    parent, _ = tfidf_pair
    _, dev = sst2_small
    model = as_proba_model(parent, batch_size=37)
    assert isinstance(model, SklearnAdapter) and isinstance(model, ProbaModel)
    assert model.labels == ("0", "1")
    assert model.size_bytes and model.size_bytes > 10_000
    want = parent.predict_proba(dev["sentence"])
    np.testing.assert_allclose(model.predict_proba(dev[["sentence"]]), want, rtol=0, atol=1e-15)
    np.testing.assert_allclose(model.predict_proba(list(dev["sentence"])), want, rtol=0, atol=1e-15)


def test_labels_override_renames_in_classes_order(tfidf_pair):
    parent, _ = tfidf_pair
    model = as_proba_model(parent, labels=["negative", "positive"])
    assert model.labels == ("negative", "positive")
    with pytest.raises(ModelAdapterError, match="3 names but model .* has 2 classes"):
        as_proba_model(parent, labels=["a", "b", "c"])


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
def test_tabular_estimator_with_dataframe(rng):
    from sklearn.ensemble import RandomForestClassifier

    X = pd.DataFrame(rng.normal(size=(200, 4)), columns=list("abcd"))
    y = np.where(X["a"] + X["b"] > 0, "yes", "no")
    clf = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    model = as_proba_model(clf, batch_size=64)
    assert model.labels == ("no", "yes")
    np.testing.assert_array_equal(model.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(model.predict_proba(X.to_numpy()), clf.predict_proba(X.to_numpy()))


def test_decision_function_only_binary_is_sigmoid_and_warns(sst2_small, caplog):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    train, dev = sst2_small
    svm = make_pipeline(TfidfVectorizer(), LinearSVC()).fit(train["sentence"], train["label"])
    with caplog.at_level(logging.WARNING):
        model = as_proba_model(svm, name="svm")
    assert "no predict_proba" in caplog.text
    z = svm.decision_function(dev["sentence"])
    np.testing.assert_allclose(model.predict_proba(dev[["sentence"]]), np.column_stack([expit(-z), expit(z)]))


def test_decision_function_multiclass_is_softmax(rng):
    from sklearn.svm import LinearSVC

    X = rng.normal(size=(150, 3))
    y = np.argmax(X, axis=1)
    svm = LinearSVC().fit(X, y)
    want = scipy_softmax(svm.decision_function(X), axis=1)
    np.testing.assert_allclose(as_proba_model(svm).predict_proba(X), want)


def test_unfitted_or_regressor_is_refused(rng):
    from sklearn.linear_model import LinearRegression, LogisticRegression

    with pytest.raises(ModelAdapterError, match="no `classes_`"):
        as_proba_model(LogisticRegression())
    reg = LinearRegression().fit(rng.normal(size=(10, 2)), rng.normal(size=10))
    with pytest.raises(ModelAdapterError, match="no `classes_`"):
        as_proba_model(reg)


def test_callable_logits_softmax_like_scipy(rng):
    W = rng.normal(size=(4, 3))
    calls = []

    def fn(batch):
        calls.append(len(batch))
        return np.asarray(batch) @ W

    X = rng.normal(size=(100, 4))
    model = as_proba_model(fn, labels=["a", "b", "c"], batch_size=32)
    assert isinstance(model, CallableAdapter)
    np.testing.assert_allclose(model.predict_proba(X), scipy_softmax(X @ W, axis=1), rtol=1e-12)
    assert calls == [32, 32, 32, 4]


def test_callable_on_texts_and_pairs():
    def fn(batch):
        return np.array([[len(x[0]) if isinstance(x, tuple) else len(x), 1.0] for x in batch])

    model = CallableAdapter(fn, ["long", "short"], kind="logits")
    p_single = model.predict_proba(pd.DataFrame({"s": ["aaaa", "b"]}))
    np.testing.assert_allclose(p_single, scipy_softmax([[4, 1], [1, 1]], axis=1))
    p_pair = model.predict_proba(pd.DataFrame({"s1": ["aaaa"], "s2": ["b"]}))
    np.testing.assert_allclose(p_pair, scipy_softmax([[4, 1]], axis=1))


def test_callable_nan_output_names_the_model():
    model = CallableAdapter(lambda b: np.full((len(b), 2), np.nan), ["a", "b"], name="broken-model")
    with pytest.raises(InvalidInputError, match="'broken-model' returned NaN"):
        model.predict_proba(np.zeros((3, 2)))


def test_callable_without_labels_and_unknown_objects():
    with pytest.raises(ModelAdapterError, match="needs labels"):
        as_proba_model(lambda b: b)
    with pytest.raises(ModelAdapterError, match="supported: a ProbaModel.*scikit-learn.*InferenceSession"):
        as_proba_model(42)


def test_proba_model_passes_through(tfidf_pair):
    model = as_proba_model(tfidf_pair[0])
    assert as_proba_model(model) is model
