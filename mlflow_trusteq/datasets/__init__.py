"""Small real data sets shipped with the package (see each folder's SOURCE.md and licence).

>>> from mlflow_trusteq.datasets import load_sst2
>>> df = load_sst2("dev")
>>> list(df.columns)
['sentence', 'label']
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

__all__ = ["DATA_DIR", "load_sst2", "load_mrpc"]

DATA_DIR = Path(__file__).resolve().parent


def _load(name: str, split: str, columns: list[str]) -> pd.DataFrame:
    if split not in ("train", "dev"):
        raise ValueError(f"Expected `split` to be 'train' or 'dev', got {split!r}")
    frame = pd.read_csv(DATA_DIR / name / f"{split}.tsv", sep="\t", quoting=csv.QUOTE_NONE,
                        keep_default_na=False)
    return frame[columns].reset_index(drop=True)


def load_sst2(split: str = "dev") -> pd.DataFrame:
    """SST-2 (binary sentiment): columns ``sentence`` (str) and ``label`` (0 negative, 1 positive)."""
    frame = _load("sst2", split, ["sentence", "label"])
    frame["sentence"] = frame["sentence"].str.strip()
    return frame


def load_mrpc(split: str = "dev") -> pd.DataFrame:
    """MRPC (paraphrase pairs): ``sentence1``, ``sentence2``, ``label`` (1 paraphrase). Non-commercial licence."""
    return _load("mrpc", split, ["sentence1", "sentence2", "label"])
