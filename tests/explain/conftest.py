"""Small ProbaModel implementations over real scikit-learn models, for the explain tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


class SkText:
    """ProbaModel over a fitted sklearn text pipeline; pairs are joined with ' || '."""

    def __init__(self, pipe, name="sk", labels=("negative", "positive")):
        self.pipe, self.name, self.labels, self.size_bytes = pipe, name, tuple(labels), None

    def predict_proba(self, records):
        df = pd.DataFrame(records)
        texts = df.iloc[:, 0].astype(str) if df.shape[1] == 1 else df.iloc[:, 0].astype(str) + " || " + \
            df.iloc[:, 1].astype(str)
        return np.asarray(self.pipe.predict_proba(list(texts)), dtype=np.float64)


class Callable:
    def __init__(self, fn, labels, name="fn"):
        self.fn, self.labels, self.name, self.size_bytes = fn, tuple(labels), name, None

    def predict_proba(self, records):
        return np.asarray(self.fn(pd.DataFrame(records)), dtype=np.float64)


@pytest.fixture(scope="session")
def sk_models(tfidf_pair):
    parent, candidate = tfidf_pair
    return SkText(parent, "parent"), SkText(candidate, "candidate")
