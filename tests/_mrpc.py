"""The tests' MRPC sample (non-commercial licence, so it stays out of the package): ``tests/data/mrpc``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mlflow_trusteq.datasets import read_split

MRPC_DIR = Path(__file__).resolve().parent / "data" / "mrpc"


def load_mrpc(split: str = "dev") -> pd.DataFrame:
    """MRPC (paraphrase pairs): ``sentence1``, ``sentence2``, ``label`` (1 paraphrase); see ``data/mrpc/SOURCE.md``."""
    return read_split(MRPC_DIR, split, ["sentence1", "sentence2", "label"])
