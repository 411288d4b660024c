"""Reading evaluation data from disk (CSV, TSV, Parquet), shared by the CLI and the webhook."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

from ._errors import InvalidInputError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["read_table"]


def read_table(path: str) -> pd.DataFrame:
    """Read a CSV, TSV or Parquet file by its extension.

    Parameters
    ----------
    path : str
        ``.csv``, ``.tsv``/``.tab`` (tab-separated, no quoting, empty strings kept) or
        ``.parquet``/``.pq``.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    InvalidInputError
        The file does not exist, has an unknown extension, or cannot be parsed.
    """
    import pandas as pd

    p = Path(path)
    if not p.exists():
        raise InvalidInputError(f"data file {path!r} does not exist")
    suffix = p.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(p)
        if suffix in (".tsv", ".tab"):
            return pd.read_csv(p, sep="\t", quoting=csv.QUOTE_NONE, keep_default_na=False)
        if suffix == ".csv":
            return pd.read_csv(p)
    except Exception as exc:
        raise InvalidInputError(f"cannot read data file {path!r} as {suffix[1:].upper()}: {exc}") from None
    raise InvalidInputError(f"data file {path!r}: unknown format {suffix!r}; use .csv, .tsv or .parquet")
