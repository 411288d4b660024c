"""Small real data sets shipped with the package (see each folder's SOURCE.md and licence).

Only SST-2 ships (its licence allows redistribution); the tests' MRPC sample (non-commercial)
lives under ``tests/data/mrpc`` and is read with :func:`read_split` too.

>>> from mlflow_trusteq.datasets import load_sst2
>>> df = load_sst2("dev")
>>> list(df.columns)
['sentence', 'label']
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pandas as pd

from .._errors import InvalidInputError

__all__ = ["DATA_DIR", "load_sst2", "read_split"]

DATA_DIR = Path(__file__).resolve().parent


def read_split(folder: str | os.PathLike[str], split: str, columns: list[str]) -> pd.DataFrame:
    """The ``columns`` of ``<folder>/<split>.tsv`` (tab-separated, quoting disabled, no NA parsing).

    Parameters
    ----------
    folder : path-like
        A data set folder holding ``train.tsv`` and ``dev.tsv``.
    split : {"train", "dev"}
    columns : list of str

    Returns
    -------
    pandas.DataFrame
        The columns in that order, with a fresh index.
    """
    if split not in ("train", "dev"):
        raise InvalidInputError(f"Expected `split` to be 'train' or 'dev', got {split!r}")
    frame = pd.read_csv(Path(folder) / f"{split}.tsv", sep="\t", quoting=csv.QUOTE_NONE, keep_default_na=False)
    return frame[columns].reset_index(drop=True)


def load_sst2(split: str = "dev") -> pd.DataFrame:
    """SST-2 (binary sentiment): columns ``sentence`` (str) and ``label`` (0 negative, 1 positive)."""
    frame = read_split(DATA_DIR / "sst2", split, ["sentence", "label"])
    frame["sentence"] = frame["sentence"].str.strip()
    return frame
