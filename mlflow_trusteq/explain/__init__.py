"""Interpretability alignment: LIME and SHAP attributions of parent and candidate, paired, with a noise floor."""

from __future__ import annotations

from .agreement import feature_agreement, rank_correlation, sign_agreement, top_k, top_k_jaccard
from .alignment import METRICS, AlignmentConfig, AlignmentResult, measure_alignment

__all__ = ["AlignmentConfig", "AlignmentResult", "measure_alignment", "METRICS", "top_k", "top_k_jaccard",
           "feature_agreement", "rank_correlation", "sign_agreement"]
