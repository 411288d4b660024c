from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import spearmanr

from mlflow_trusteq._errors import InvalidInputError
from mlflow_trusteq._types import metric_info
from mlflow_trusteq.explain.agreement import (agreement, feature_agreement, rank_correlation, sign_agreement,
                                              top_k, top_k_jaccard)


def test_hand_computed_cases():
    a = [0.9, -0.5, 0.1, 0.0]
    b = [0.0, 0.6, -0.2, 0.8]
    # top-2: a -> {0, 1}; b -> {3, 1}
    assert top_k_jaccard(a, b, 2) == pytest.approx(1 / 3)
    assert feature_agreement(a, b, 2) == pytest.approx(0.5)
    # signs on a's top-2: feature 0: + vs 0 (differ), feature 1: - vs + (differ)
    assert sign_agreement(a, b, 2) == 0.0
    assert top_k(a, 2).tolist() == [0, 1]


def test_short_inputs_use_min_k():
    assert top_k_jaccard([1.0, 2.0], [2.0, 1.0], 10) == 1.0
    assert feature_agreement([1.0, 2.0, 3.0], [3.0, 0.0, 0.0], 10) == 1.0
    assert math.isnan(top_k_jaccard([], [], 10))


def test_rank_correlation_matches_scipy(rng):
    a, b = rng.normal(size=30), rng.normal(size=30)
    assert rank_correlation(a, b) == pytest.approx(spearmanr(np.abs(a), np.abs(b)).statistic)
    assert math.isnan(rank_correlation([1.0, 1.0, -1.0], [0.1, 0.2, 0.3]))
    assert math.isnan(rank_correlation([1.0], [2.0]))


def test_agreement_bundle_and_validation():
    m = agreement([1, 2, 3], [1, 2, 3], 2)
    assert m["top_k_jaccard"] == m["feature_agreement"] == m["sign_agreement"] == 1.0
    assert m["rank_correlation"] == pytest.approx(1.0)
    with pytest.raises(InvalidInputError, match="same length"):
        top_k_jaccard([1, 2], [1, 2, 3], 2)
    with pytest.raises(InvalidInputError, match="`k` >= 1, got 0"):
        top_k_jaccard([1, 2], [1, 2], 0)


def test_metrics_registered():
    assert metric_info("alignment/lime/top_k_jaccard").higher_is_better
    assert metric_info("alignment/shap/rank_correlation").lower_bound == -1.0
