"""to_probabilities, record normalisation, token-budget planning, label alignment."""

from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from scipy.special import softmax as scipy_softmax

from mlflow_trusteq import InvalidInputError, LabelMismatchError
from mlflow_trusteq.adapters import (
    align_labels,
    encode_targets,
    normalise_text_records,
    plan_token_batches,
    to_probabilities,
)


def test_logits_are_softmaxed_like_scipy(rng):
    z = rng.normal(scale=5, size=(50, 3))
    np.testing.assert_allclose(to_probabilities(z), scipy_softmax(z, axis=1), rtol=1e-12, atol=0)


def test_softmax_is_stable_for_huge_logits():
    z = np.array([[1000.0, 0.0], [-1000.0, 1000.0]])
    p = to_probabilities(z)
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p, [[1.0, 0.0], [0.0, 1.0]])


def test_probabilities_stay(rng):
    p = scipy_softmax(rng.normal(size=(20, 4)), axis=1).astype(np.float32)
    out = to_probabilities(p)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, p, atol=1e-6)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-12)


def test_rows_in_unit_interval_not_summing_to_one_are_logits_when_told():
    # without kind= this is ambiguous, an error (tests/adapters/test_logits_rule.py)
    z = np.array([[0.2, 0.3], [0.9, 0.05]])
    np.testing.assert_allclose(to_probabilities(z, kind="logits"), scipy_softmax(z, axis=1))


def test_one_logit_row_makes_the_whole_matrix_logits():
    z = np.array([[0.3, 0.7], [2.0, -1.0]])  # the first row alone looks like probabilities
    np.testing.assert_allclose(to_probabilities(z), scipy_softmax(z, axis=1))


def test_binary_single_column_probability_and_logit():
    p = np.array([0.1, 0.8, 1.0])
    np.testing.assert_allclose(to_probabilities(p), np.column_stack([1 - p, p]))
    np.testing.assert_allclose(to_probabilities(p.reshape(-1, 1)), np.column_stack([1 - p, p]))
    z = np.array([-3.0, 0.5, 4.0])
    np.testing.assert_allclose(to_probabilities(z), np.column_stack([1 - expit(z), expit(z)]))
    with pytest.raises(InvalidInputError, match="single score column"):
        to_probabilities(p, n_labels=3)


def test_kind_proba_rejects_non_probabilities():
    with pytest.raises(InvalidInputError, match="row 1"):
        to_probabilities(np.array([[0.5, 0.5], [2.0, -1.0]]), kind="proba", name="m")
    with pytest.raises(InvalidInputError, match="kind"):
        to_probabilities(np.zeros((2, 2)), kind="probs")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_output_names_the_model(bad):
    z = np.array([[0.1, 0.9], [bad, 0.0]])
    with pytest.raises(InvalidInputError, match=r"'my-model'.*NaN or infinite.*\[1\]"):
        to_probabilities(z, name="my-model")


def test_wrong_number_of_columns():
    with pytest.raises(InvalidInputError, match="3 score columns but has 2 labels"):
        to_probabilities(np.zeros((4, 3)), n_labels=2)


def test_text_records_forms():
    assert normalise_text_records(pd.DataFrame({"s": ["a", "b"]})) == ["a", "b"]
    pairs = pd.DataFrame({"s1": ["a", "b"], "s2": ["c", "d"]})
    assert normalise_text_records(pairs) == [("a", "c"), ("b", "d")]
    assert normalise_text_records(["a", "b"]) == ["a", "b"]
    assert normalise_text_records([("a", "c")]) == [("a", "c")]
    assert normalise_text_records(pd.Series(["x"])) == ["x"]


def test_three_text_columns_is_an_error():
    df = pd.DataFrame({"a": ["x"], "b": ["y"], "c": ["z"]})
    with pytest.raises(InvalidInputError, match=r"1 column \(texts\) or 2 columns.*got 3 columns \['a', "
                                                 r"'b', 'c'\]"):
        normalise_text_records(df)


def test_non_text_record_is_quoted():
    with pytest.raises(InvalidInputError, match="record 1 .* not text: None"):
        normalise_text_records(["fine", None])
    with pytest.raises(InvalidInputError, match="single string"):
        normalise_text_records("oops")


def test_plan_token_batches_respects_budget_and_covers_everything(rng):
    lengths = rng.integers(1, 60, size=500)
    batches = plan_token_batches(lengths, max_tokens_per_batch=256, batch_size=32)
    seen = np.concatenate(batches)
    assert sorted(seen.tolist()) == list(range(500))
    for b in batches:
        assert len(b) <= 32
        assert len(b) * lengths[b].max() <= 256 or len(b) == 1
    # sorted: the batches' longest inputs never increase
    longest = [lengths[b].max() for b in batches]
    assert longest == sorted(longest, reverse=True)


def test_plan_token_batches_overlong_input_alone():
    batches = plan_token_batches([500, 3, 3], max_tokens_per_batch=100, batch_size=8)
    assert [b.tolist() for b in batches] == [[0], [1, 2]]


def test_align_labels_identity_permutation_and_mismatch(caplog):
    np.testing.assert_array_equal(align_labels(["neg", "pos"], ["neg", "pos"]), [0, 1])
    with caplog.at_level(logging.INFO, logger="mlflow_trusteq.adapters.labels"):
        perm = align_labels(["a", "b", "c"], ["c", "a", "b"])
    assert np.array(["c", "a", "b"])[perm].tolist() == ["a", "b", "c"]
    assert "another order" in caplog.text
    with pytest.raises(LabelMismatchError) as err:
        align_labels(["negative", "positive"], ["0", "1"])
    msg = str(err.value)
    assert "['negative', 'positive']" in msg and "['0', '1']" in msg
    with pytest.raises(LabelMismatchError, match="duplicate"):
        align_labels(["a", "a"], ["a", "a"])


def test_encode_targets():
    assert encode_targets(["pos", "neg", "pos"], ["neg", "pos"]).tolist() == [1, 0, 1]
    assert encode_targets(np.array([0, 1, 1]), ["negative", "positive"]).tolist() == [0, 1, 1]
    assert encode_targets([1.0, 0.0], ["negative", "positive"]).tolist() == [1, 0]
    assert encode_targets(["1", "0"], ["0", "1"]).tolist() == [1, 0]  # names win over indices
    assert encode_targets([1, 0], ["1", "0"]).tolist() == [0, 1]  # label "1" is column 0
    with pytest.raises(InvalidInputError, match=r"\['2', 'maybe'\]"):
        encode_targets([0, 2, "maybe"], ["negative", "positive"])
    with pytest.raises(InvalidInputError, match=r"missing \(NaN\).* row 1"):
        encode_targets([0, np.nan], ["negative", "positive"])


def test_import_is_lazy():
    code = ("import sys, mlflow_trusteq.adapters as a; from mlflow_trusteq.adapters import as_proba_model; "
            "heavy = [m for m in ('torch', 'transformers', 'onnxruntime', 'onnx', 'shap', 'lime') if m "
            "in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
