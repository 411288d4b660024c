"""The probabilities-or-logits rule of ``to_probabilities`` at low precision (issue 10, item 6)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax as scipy_softmax

from mlflow_trusteq import ModelOutputError
from mlflow_trusteq.adapters._base import to_probabilities


def _proba(k=2, n=2000, seed=0):
    return scipy_softmax(np.random.default_rng(seed).normal(0, 2.5, (n, k)), axis=1)


@pytest.mark.parametrize("k", [2, 3])
def test_float16_probabilities_are_renormalised_not_softmaxed(k):
    p = _proba(k)
    half = p.astype(np.float16)  # rows sum to 1 only within float16 precision (~2e-4 > 1e-4)
    assert np.abs(half.astype(np.float64).sum(1) - 1).max() > 1e-4
    out = to_probabilities(half)
    np.testing.assert_allclose(out, p, atol=2e-3)  # soft-maxed, the mean confidence would fall far
    assert out.max(1).mean() == pytest.approx(p.max(1).mean(), abs=1e-3)
    np.testing.assert_allclose(out.sum(1), 1.0, atol=1e-12)


@pytest.mark.parametrize("k", [2, 3])
def test_bfloat16_probabilities_cast_up_to_float32_are_renormalised(k):
    torch = pytest.importorskip("torch")
    p = _proba(k, seed=1)
    bf = torch.softmax(torch.tensor(np.log(p)).to(torch.bfloat16), dim=1).float().numpy()
    assert np.abs(bf.astype(np.float64).sum(1) - 1).max() > 1e-3
    out = to_probabilities(bf)
    np.testing.assert_allclose(out, p, atol=2e-2)
    assert out.max(1).mean() == pytest.approx(p.max(1).mean(), abs=5e-3)


def test_scores_in_unit_interval_that_do_not_sum_to_one_are_an_error_naming_both_readings():
    z = np.array([[0.2, 0.3], [0.9, 0.05]])
    with pytest.raises(ModelOutputError, match=r"(?s)read as probabilities.*read as logits.*kind='logits'"):
        to_probabilities(z, name="m")
    # told which it is, both readings work
    np.testing.assert_allclose(to_probabilities(z, kind="logits"), scipy_softmax(z, axis=1))


def test_logits_outside_unit_interval_are_still_softmaxed():
    z = np.random.default_rng(2).normal(0, 3, (50, 3)).astype(np.float16)
    np.testing.assert_allclose(to_probabilities(z), scipy_softmax(z.astype(np.float64), axis=1), rtol=1e-12)


def test_float64_probabilities_keep_the_strict_tolerance():
    p = _proba(2, n=10, seed=3)
    p[0] = [0.6, 0.41]  # 1 % off in float64 is not rounding: not a probability row
    with pytest.raises(ModelOutputError):
        to_probabilities(p, kind="proba")


@pytest.mark.parametrize(("output_name", "expected"), [("logits", "softmax"), ("probabilities", "renormalise")])
def test_onnx_output_name_decides_the_reading_once_for_every_batch(output_name, expected):
    """A logits model whose scores fall in [0, 1] for one batch (found by the main job's word attack on an int8
    ONNX export) is still read as logits: the graph's output name decides, not the batch's values."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from mlflow_trusteq.adapters import as_proba_model

    graph = helper.make_graph([helper.make_node("Identity", ["x"], [output_name])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])],
                              [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, [None, 2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    adapter = as_proba_model(session, labels=["neg", "pos"])
    if expected == "softmax":
        x = np.array([[0.10, 0.30], [0.70, 0.20]], dtype=np.float32)  # in [0, 1], rows do not sum to 1
    else:
        x = np.array([[0.25, 0.75], [0.60, 0.40]], dtype=np.float32)
    got = adapter.predict_proba(__import__("pandas").DataFrame(x, columns=["a", "b"]))
    want = scipy_softmax(x.astype(np.float64), axis=1) if expected == "softmax" else x / x.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert onnx.checker.check_model(model) is None
