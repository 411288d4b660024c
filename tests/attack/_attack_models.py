"""Small real models implementing the ProbaModel protocol, for the attack tests."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd


class ConstantModel:
    """Ignores its input: the same probabilities for every row."""

    def __init__(self, proba=(0.3, 0.7), labels=("negative", "positive"), name="constant"):
        self.proba = np.asarray(proba, dtype=float)
        self.labels = tuple(labels)
        self.name = name
        self.size_bytes = None

    def predict_proba(self, records):
        return np.tile(self.proba, (len(records), 1))


POSITIVE = {"good", "great", "charming", "funny", "best", "fine", "beautiful", "entertaining", "love", "moving",
            "fresh", "solid", "enjoyable", "wonderful", "smart", "fun"}
NEGATIVE = {"bad", "dull", "boring", "worst", "mess", "stupid", "flat", "tedious", "lack", "fails", "nothing",
            "never", "not", "no", "poor", "unfunny", "awful"}


class KeywordModel:
    """A brittle sentiment model: a logistic function of positive minus negative keyword counts.

    Reads the last column (or the column ``field``).
    """

    def __init__(self, weight=1.5, bias=0.1, field=None, name="keyword"):
        self.labels = ("negative", "positive")
        self.name = name
        self.size_bytes = None
        self.weight = weight
        self.bias = bias
        self.field = field

    def score(self, text):
        words = re.findall(r"[a-z']+", text.lower())
        return sum(w in POSITIVE for w in words) - sum(w in NEGATIVE for w in words)

    def predict_proba(self, records):
        frame = records if isinstance(records, pd.DataFrame) else pd.DataFrame({"text": list(records)})
        col = frame[self.field] if self.field else frame.iloc[:, -1]
        z = np.array([self.weight * self.score(t) + self.bias for t in col])
        p = 1.0 / (1.0 + np.exp(-z))
        return np.column_stack([1 - p, p])


class SklearnTextModel:
    """A fitted sklearn text pipeline over the last column."""

    def __init__(self, pipeline, name):
        self.pipeline = pipeline
        self.labels = ("negative", "positive")
        self.name = name
        self.size_bytes = None

    def predict_proba(self, records):
        return self.pipeline.predict_proba(list(records.iloc[:, -1]))


class CountingModel:
    """Wraps a model and records every predict_proba call (its frame)."""

    def __init__(self, model):
        self.model = model
        self.labels = model.labels
        self.name = f"counting({model.name})"
        self.size_bytes = None
        self.calls: list[pd.DataFrame] = []

    def predict_proba(self, records):
        self.calls.append(records.copy())
        return self.model.predict_proba(records)

    @property
    def rows(self):
        return sum(len(c) for c in self.calls)
