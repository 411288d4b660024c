"""The runnable examples in the docstrings are tests too."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "mlflow_trusteq.metrics.loyalty",
    "mlflow_trusteq.metrics.calibration",
    "mlflow_trusteq.metrics.bootstrap",
    "mlflow_trusteq.metrics.pair",
    "mlflow_trusteq.adapters.labels",
    "mlflow_trusteq.datasets",
    "mlflow_trusteq.attack.wordnet",
    "mlflow_trusteq._keys",
    "mlflow_trusteq._format",
    "mlflow_trusteq.candidates",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no docstring examples"
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"
