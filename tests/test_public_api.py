"""The package's public face: a small documented API, cheap to import (issue 11)."""

from __future__ import annotations

import inspect
import subprocess
import sys

import mlflow_trusteq

PUBLIC = {"compare", "compare_candidates", "CandidateComparison",
          "TrustReport", "Estimate", "TrustEqConfig", "AlignmentConfig", "RobustnessConfig", "Policy",
          "Verdict", "as_proba_model", "TrustEqError", "InvalidInputError", "LabelMismatchError", "ModelAdapterError",
          "PolicyError", "VerdictError", "MissingDependencyError", "ModelOutputError", "__version__"}


def test_the_entry_points_are_exported_and_documented():
    assert set(mlflow_trusteq.__all__) == PUBLIC
    for name in PUBLIC - {"__version__"}:
        obj = getattr(mlflow_trusteq, name)
        assert obj.__doc__ and obj.__doc__.strip(), f"{name} has no docstring"
    assert inspect.isfunction(mlflow_trusteq.compare) and inspect.isfunction(mlflow_trusteq.as_proba_model)
    assert issubclass(mlflow_trusteq.PolicyError, mlflow_trusteq.TrustEqError)


def test_compare_is_the_function_even_after_its_module_is_imported():
    code = ("import mlflow_trusteq.compare, inspect; from mlflow_trusteq import compare; "
            "assert inspect.isfunction(compare), compare")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_importing_the_package_is_cheap():
    heavy = ["torch", "transformers", "shap", "onnxruntime", "lime", "mlflow", "matplotlib", "sklearn"]
    code = f"import sys, mlflow_trusteq; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]", f"`import mlflow_trusteq` imports {out.strip()}"


def test_unknown_attributes_are_attribute_errors():
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        mlflow_trusteq.nope  # noqa: B018
