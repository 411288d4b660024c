"""Test helpers that make models (imported as ``from tests._models import ...``)."""

from __future__ import annotations

import numpy as np


def float32_copy(model):
    """The model with its float weights cast to float32 and back: a real (tiny) compression.

    A loyal candidate whose content differs from the parent's, where a test needs a pass:
    ``compare(parent, parent)`` is refused by the ``guard_same_model`` comparability guard (a
    "compression" that changed nothing). Works on scikit-learn estimators and pipelines.
    """
    import copy

    out = copy.deepcopy(model)
    steps = [s for _, s in out.steps] if hasattr(out, "steps") else [out]
    changed = False
    for step in steps:
        for name in ("coef_", "intercept_", "feature_log_prob_", "theta_"):
            value = getattr(step, name, None)
            if isinstance(value, np.ndarray) and value.dtype == np.float64:
                setattr(step, name, value.astype(np.float32).astype(np.float64))
                changed = True
    assert changed, f"float32_copy: no float64 weights found in {model!r}"
    return out
