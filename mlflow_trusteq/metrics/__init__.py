"""Pure-numpy trust metrics: loyalty, calibration, bootstrap. No model, no MLflow.

Data by position, options keyword-only, a plain ``float`` back; inputs are validated once at
these public functions and every error is an :class:`~mlflow_trusteq.InvalidInputError`.
:func:`summarize_pair` computes all of them for a parent/candidate pair with one paired bootstrap.
"""

from __future__ import annotations

from .bootstrap import assign_groups, bootstrap_ci, bootstrap_counts, mean_ci, percentile_interval
from .calibration import (
    ReliabilityBins,
    brier_loss,
    debiased_squared_ece,
    expected_calibration_error,
    log_loss,
    max_calibration_error,
    reliability_bins,
)
from .loyalty import (
    flip_matrix,
    js_divergence,
    label_loyalty_score,
    negative_flip_rate,
    per_class_loyalty,
    positive_flip_rate,
    probability_loyalty_score,
)
from .intervals import bias_corrected_interval, min_examples, paired_difference_interval, wilson_interval
from .pair import MODEL_METRICS, PairSummary, interval_kind, summarize_pair

__all__ = [
    "label_loyalty_score",
    "js_divergence",
    "probability_loyalty_score",
    "negative_flip_rate",
    "positive_flip_rate",
    "flip_matrix",
    "per_class_loyalty",
    "ReliabilityBins",
    "reliability_bins",
    "expected_calibration_error",
    "debiased_squared_ece",
    "max_calibration_error",
    "brier_loss",
    "log_loss",
    "PairSummary",
    "summarize_pair",
    "MODEL_METRICS",
    "bootstrap_ci",
    "mean_ci",
    "bootstrap_counts",
    "assign_groups",
    "percentile_interval",
    "wilson_interval",
    "paired_difference_interval",
    "bias_corrected_interval",
    "min_examples",
    "interval_kind",
]
