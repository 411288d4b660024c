"""Fixtures of the adapter tests: an ONNX export of the tiny BERT and its int8 quantization."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_bert_onnx(tiny_bert, tmp_path_factory):
    """(float .onnx path, int8 .onnx path) of the tiny BERT, exported and quantized for real."""
    from trusteq_training import export_onnx, quantize_int8

    model, tok, _ = tiny_bert
    d = tmp_path_factory.mktemp("onnx")
    fp32 = export_onnx(model, tok, d / "model.onnx")
    int8 = quantize_int8(fp32, d / "model.int8.onnx")
    return fp32, int8
