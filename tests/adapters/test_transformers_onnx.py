"""Transformers and ONNX Runtime adapters on a real (tiny) BERT: batching, pairs, export, int8."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
from scipy.special import softmax as scipy_softmax

from mlflow_trusteq import InvalidInputError, ModelAdapterError
from mlflow_trusteq.adapters import (
    OnnxTabularAdapter,
    OnnxTextAdapter,
    TransformersAdapter,
    as_proba_model,
)


def _torch_proba(model, tok, texts):
    import torch

    with torch.inference_mode():
        out = []
        for t in texts:
            enc = tok(*t, return_tensors="pt", truncation=True, max_length=128) if isinstance(t, tuple) else \
                tok(t, return_tensors="pt", truncation=True, max_length=128)
            out.append(model(**enc).logits.double().numpy())
    return scipy_softmax(np.vstack(out), axis=1)


def test_transformers_matches_unbatched_torch_and_restores_order(tiny_bert, sst2_small):
    model, tok, _ = tiny_bert
    _, dev = sst2_small
    texts = list(dev["sentence"][:60])
    adapter = as_proba_model(model, tokenizer=tok, max_tokens_per_batch=300, batch_size=16)
    assert isinstance(adapter, TransformersAdapter)
    assert adapter.labels == ("negative", "positive")
    n_params = sum(p.numel() for p in model.parameters())
    assert adapter.size_bytes >= 4 * n_params
    P = adapter.predict_proba(dev[["sentence"]].iloc[:60])
    assert P.shape == (60, 2) and P.dtype == np.float64
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-12)
    one_by_one = np.vstack([adapter.predict_proba([t]) for t in texts])
    np.testing.assert_allclose(P, one_by_one, atol=1e-5)
    np.testing.assert_allclose(P, _torch_proba(model, tok, texts), atol=1e-5)
    # real model, real data: well above chance
    acc = np.mean(P.argmax(1) == dev["label"][:60].to_numpy())
    assert acc > 0.6


def test_text_pairs_run_and_differ_from_single_texts(tiny_bert):
    model, tok, _ = tiny_bert
    adapter = TransformersAdapter(model, tok)
    pairs = pd.DataFrame({"s1": ["a great movie", "dull and slow", "fine"],
                          "s2": ["I hated it", "a joy to watch", "fine"]})
    P2 = adapter.predict_proba(pairs)
    P1 = adapter.predict_proba(pairs[["s1"]])
    assert P2.shape == (3, 2)
    assert np.abs(P2 - P1).max() > 1e-4
    want = _torch_proba(model, tok, list(zip(pairs["s1"], pairs["s2"])))
    np.testing.assert_allclose(P2, want, atol=1e-5)


def test_pipeline_is_unwrapped(tiny_bert):
    from transformers import pipeline

    model, tok, _ = tiny_bert
    pipe = pipeline("text-classification", model=model, tokenizer=tok)
    adapter = as_proba_model(pipe)
    want = _torch_proba(model, tok, ["what a film"])
    np.testing.assert_allclose(adapter.predict_proba(["what a film"]), want, atol=1e-6)


def test_transformers_errors(tiny_bert):
    model, tok, _ = tiny_bert
    with pytest.raises(ModelAdapterError, match="needs its tokenizer"):
        as_proba_model(model)
    adapter = TransformersAdapter(model, tok)
    three = pd.DataFrame({"a": ["x"], "b": ["y"], "c": ["z"]})
    with pytest.raises(InvalidInputError, match="got 3 columns"):
        adapter.predict_proba(three)
    with pytest.raises(ModelAdapterError, match="3 names but model"):
        TransformersAdapter(model, tok, labels=["a", "b", "c"])


def test_onnx_export_matches_torch(tiny_bert, tiny_bert_onnx, sst2_small):
    model, tok, _ = tiny_bert
    fp32, _ = tiny_bert_onnx
    _, dev = sst2_small
    records = dev[["sentence"]]
    onnx_model = as_proba_model(str(fp32), tokenizer=tok, max_tokens_per_batch=512)
    assert isinstance(onnx_model, OnnxTextAdapter)
    assert onnx_model.labels == ("negative", "positive")  # read back from metadata_props
    assert set(onnx_model.input_names) == {"input_ids", "attention_mask", "token_type_ids"}
    assert onnx_model.size_bytes == os.path.getsize(fp32)
    P = TransformersAdapter(model, tok).predict_proba(records)
    np.testing.assert_allclose(onnx_model.predict_proba(records), P, atol=1e-5)
    pairs = dev[["sentence", "sentence"]].iloc[:20].set_axis(["a", "b"], axis=1)
    want = TransformersAdapter(model, tok).predict_proba(pairs)
    np.testing.assert_allclose(onnx_model.predict_proba(pairs), want, atol=1e-5)


def test_int8_is_close_not_identical_and_smaller(tiny_bert, tiny_bert_onnx, sst2_small):
    import onnx

    model, tok, _ = tiny_bert
    fp32, int8 = tiny_bert_onnx
    _, dev = sst2_small
    P = as_proba_model(fp32, tokenizer=tok).predict_proba(dev[["sentence"]])
    Q = as_proba_model(int8, tokenizer=tok).predict_proba(dev[["sentence"]])
    diff = np.abs(P - Q).max()
    assert 1e-7 < diff < 0.2
    assert np.mean(P.argmax(1) == Q.argmax(1)) >= 0.9
    ratio = os.path.getsize(fp32) / os.path.getsize(int8)
    assert 2.5 < ratio < 4.5, ratio
    props = {p.key: p.value for p in onnx.load(str(int8)).metadata_props}
    assert json.loads(props["trusteq.labels"]) == ["negative", "positive"]
    ops = {n.op_type for n in onnx.load(str(int8)).graph.node}
    assert "DynamicQuantizeLinear" in ops or "MatMulInteger" in ops


def test_onnx_text_errors(tiny_bert_onnx, tiny_bert):
    _, tok, _ = tiny_bert
    fp32, _ = tiny_bert_onnx
    with pytest.raises(ModelAdapterError, match="needs its tokenizer"):
        OnnxTextAdapter(str(fp32), None)
    with pytest.raises(ModelAdapterError, match="not found"):
        OnnxTextAdapter("/nonexistent/model.onnx", tok)
    with pytest.raises(ModelAdapterError, match="token ids.*no tokenizer"):
        as_proba_model(str(fp32))


def _mlp_onnx(path, rng, *, softmax_head: bool):
    import torch

    torch.manual_seed(0)
    layers = [torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)]
    if softmax_head:
        layers.append(torch.nn.Softmax(dim=1))
    mlp = torch.nn.Sequential(*layers).eval()
    torch.onnx.export(mlp, (torch.zeros(2, 5),), str(path), input_names=["x"], output_names=["out"],
                      dynamic_axes={"x": {0: "n"}, "out": {0: "n"}}, dynamo=False)
    return mlp


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("softmax_head", [False, True])
def test_onnx_tabular_mlp(tmp_path, rng, softmax_head):
    import torch

    mlp = _mlp_onnx(tmp_path / "mlp.onnx", rng, softmax_head=softmax_head)
    X = rng.normal(size=(300, 5)).astype(np.float32)
    with torch.inference_mode():
        out = mlp(torch.from_numpy(X)).double().numpy()
    want = out if softmax_head else scipy_softmax(out, axis=1)
    model = as_proba_model(str(tmp_path / "mlp.onnx"), labels=["a", "b", "c"], batch_size=64)
    assert isinstance(model, OnnxTabularAdapter)
    np.testing.assert_allclose(model.predict_proba(pd.DataFrame(X)), want, atol=1e-5)
    with pytest.raises(ModelAdapterError, match="no labels"):
        OnnxTabularAdapter(str(tmp_path / "mlp.onnx"))


def test_onnx_tabular_zipmap(tmp_path, rng):
    """A skl2onnx-style graph: Softmax then ZipMap -> list of {class: probability} dicts."""
    import onnx
    from onnx import TensorProto, helper

    W = rng.normal(size=(4, 3)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["X", "W"], ["z"]),
             helper.make_node("Softmax", ["z"], ["p"], axis=1),
             helper.make_node("ArgMax", ["p"], ["label"], axis=1, keepdims=0),
             helper.make_node("ZipMap", ["p"], ["output_probability"], domain="ai.onnx.ml",
                              classlabels_int64s=[7, 3, 5])]
    zipmap_type = helper.make_sequence_type_proto(helper.make_map_type_proto(
        TensorProto.INT64, helper.make_tensor_type_proto(TensorProto.FLOAT, [])))
    graph = helper.make_graph(
        nodes, "zipmap", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
         helper.make_value_info("output_probability", zipmap_type)],
        initializer=[onnx.numpy_helper.from_array(W, "W")])
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)]
    proto = helper.make_model(graph, opset_imports=opsets)
    proto.ir_version = 8
    onnx.save(proto, str(tmp_path / "zip.onnx"))
    X = rng.normal(size=(50, 4)).astype(np.float32)
    model = as_proba_model(str(tmp_path / "zip.onnx"), batch_size=16)
    # onnxruntime hands ZipMap rows back as dicts ordered by key: the labels follow the keys
    assert model.labels == ("3", "5", "7")
    np.testing.assert_allclose(model.predict_proba(X), scipy_softmax(X @ W, axis=1)[:, [1, 2, 0]], atol=1e-6)
    in_graph_order = OnnxTabularAdapter(str(tmp_path / "zip.onnx"), labels=["7", "3", "5"])
    np.testing.assert_allclose(in_graph_order.predict_proba(X), scipy_softmax(X @ W, axis=1), atol=1e-6)
