"""One rule maps gold targets to class indices, in every section of a comparison."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlflow_trusteq import InvalidInputError
from mlflow_trusteq.adapters import CallableAdapter, encode_targets

#: integer-like label names in a different order than their indices: where two rules differ
LABELS = ["1", "0"]


def _keyword_model(records):
    """Column 0 is label "1" (a review with "good"), column 1 label "0"."""
    texts = records.iloc[:, 0] if isinstance(records, pd.DataFrame) else pd.Series(list(records))
    good = texts.str.contains("good").to_numpy()
    return np.column_stack([np.where(good, 0.9, 0.1), np.where(good, 0.1, 0.9)])


def test_encode_targets_missing_and_shape():
    with pytest.raises(InvalidInputError, match="missing.*row 2"):
        encode_targets(np.array([0, 1, None], dtype=object), ["a", "b"])
    with pytest.raises(InvalidInputError, match="missing.*row 1"):
        encode_targets([1.0, np.nan], ["a", "b"])
    with pytest.raises(InvalidInputError, match="1-D"):
        encode_targets(np.zeros((3, 2)), ["a", "b"])


def test_compare_maps_the_gold_labels_once_for_every_section():
    """Gold labels 1/0 name labels "1"/"0" (columns 0/1): robustness must use the same indices as calibration."""
    from mlflow_trusteq.attack import RobustnessConfig
    from mlflow_trusteq.compare import compare

    words = ["good", "fine", "plain", "long", "bad", "dull"]
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(words[1:4], 4)) + (" good film" if i % 2 else " bad film") for i in range(40)]
    gold = [1 if i % 2 else 0 for i in range(40)]  # label *names*: "good" reviews are "1"
    data = pd.DataFrame({"sentence": texts, "label": gold})
    model = CallableAdapter(_keyword_model, LABELS, name="keyword")
    report = compare(model, model, data, targets="label", n_resamples=20,
                     robustness=RobustnessConfig(recipes=("char",), n_examples=10, query_budget=10, progress=False))
    assert report.metrics["parent/accuracy"].value == 1.0  # the model is right on every row
    assert "robustness" in report.sections, report.skipped.get("robustness")
    assert report.sections["robustness"].settings["n_attacked"] > 0
