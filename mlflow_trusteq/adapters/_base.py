"""The model contract and what every adapter shares.

Every model that trusteq judges becomes a :class:`ProbaModel`: ``predict_proba(records) -> (n, k)``
float64 probabilities whose columns follow ``labels``. This module holds

- the protocol itself;
- :func:`to_probabilities`: raw model output (probabilities, logits, one positive-class column)
  -> a valid ``(n, k)`` probability matrix;
- record normalisation (DataFrame / list of texts / list of text pairs / 2-D array);
- :func:`iter_token_budget_batches`: the length-sorted, token-budget batching that the
  transformers and ONNX text adapters both run on;
- :class:`BaseAdapter`: batching and the output checks, so an adapter only has to score a batch.

Memory: predictions run batch by batch; the only array that grows with ``n`` is the ``(n, k)``
result (plus, for text models, one chunk of at most ``chunk_size`` tokenised inputs).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .._errors import InvalidInputError, ModelAdapterError, ModelOutputError

logger = logging.getLogger(__name__)

__all__ = [
    "ProbaModel",
    "BaseAdapter",
    "to_probabilities",
    "softmax",
    "normalise_text_records",
    "iter_token_budget_batches",
    "plan_token_batches",
    "dir_size_bytes",
]

#: Rows of a probability matrix must sum to 1 within this tolerance.
SUM_TOLERANCE = 1e-4


@runtime_checkable
class ProbaModel(Protocol):
    """What trusteq needs of a model: class probabilities in a known label order.

    Attributes
    ----------
    labels : tuple of str
        Class names; the column order of :meth:`predict_proba`.
    name : str
        A human-readable name (URI, class name...), used in messages and reports.
    size_bytes : int or None
        Size on disk (or of the parameters in memory) where known.
    """

    labels: tuple[str, ...]
    name: str
    size_bytes: int | None

    def predict_proba(self, records: Any) -> np.ndarray:
        """``(n, k)`` float64 probabilities, rows summing to 1, columns in ``labels`` order."""
        ...


# --------------------------------------------------------------------------------------------
# probabilities


def softmax(z: np.ndarray) -> np.ndarray:
    r"""Row-wise soft-max in float64, numerically stable.

    .. math:: \mathrm{softmax}(z)_{ij} = \frac{e^{z_{ij} - m_i}}{\sum_l e^{z_{il} - m_i}},
              \quad m_i = \max_l z_{il}
    """
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _looks_like_proba(p: np.ndarray) -> bool:
    return bool(np.all(p >= 0.0) and np.all(p <= 1.0)
                and np.all(np.abs(p.sum(axis=1) - 1.0) <= SUM_TOLERANCE))


def to_probabilities(scores: Any, *, kind: str = "auto", n_labels: int | None = None,
                     name: str = "model") -> np.ndarray:
    r"""Turn raw model output into an ``(n, k)`` float64 probability matrix.

    Parameters
    ----------
    scores : array-like, shape (n,), (n, 1) or (n, k)
        What the model returned.
    kind : {"auto", "proba", "logits"}
        ``"proba"``: the scores are probabilities (checked: in [0, 1], rows sum to 1 within
        1e-4; then renormalised exactly). ``"logits"``: soft-maxed. ``"auto"``: logits are
        detected when any value is < 0 or > 1 or any row does not sum to 1 within 1e-4; the
        decision is taken once for the whole matrix (a model outputs logits or it doesn't).
    n_labels : int, optional
        The number of classes ``k`` the caller expects; checked.
    name : str
        The model's name, for error messages.

    Returns
    -------
    numpy.ndarray, shape (n, k), float64
        Rows sum to 1.

    Notes
    -----
    **Binary single-score outputs.** A 1-D output or a single column (allowed only when
    ``n_labels`` is 2 or None) is read as the score of the *positive* (second) class: a
    probability ``p`` if every value lies in [0, 1] (and ``kind`` is not ``"logits"``), else a
    logit ``z`` with :math:`p = \sigma(z) = 1 / (1 + e^{-z})`. It becomes the two columns
    :math:`(1 - p, p)`, i.e. ``labels[0]`` is the negative class.

    Soft-max of logits is shift-invariant, so subtracting the row maximum changes nothing but
    prevents overflow.

    Raises
    ------
    InvalidInputError
        An unknown ``kind``.
    ModelOutputError
        Non-numeric, NaN or infinite output (naming the model), a shape that does not match
        ``n_labels``, or ``kind="proba"`` with rows that are not probability vectors.
    """
    if kind not in ("auto", "proba", "logits"):
        raise InvalidInputError(f'Expected `kind` in ("auto", "proba", "logits"), got {kind!r}')
    s = np.asarray(scores)
    if s.dtype == object or not np.issubdtype(s.dtype, np.number):
        raise ModelOutputError(f"model {name!r} returned non-numeric output of dtype {s.dtype}")
    s = s.astype(np.float64, copy=False)
    if s.ndim == 1:
        s = s.reshape(-1, 1)
    if s.ndim != 2:
        raise ModelOutputError(f"model {name!r} returned output of shape {s.shape}; expected (n, k)")
    bad = ~np.isfinite(s)
    if bad.any():
        rows = np.unique(np.nonzero(bad)[0])
        raise ModelOutputError(
            f"model {name!r} returned NaN or infinite scores in {len(rows)} row(s) "
            f"(first rows: {rows[:5].tolist()}); cannot turn them into probabilities")
    if s.shape[1] == 1:
        if n_labels not in (None, 2):
            raise ModelOutputError(
                f"model {name!r} returned a single score column but has {n_labels} labels; "
                "a single column is only read as the positive-class score of a binary model")
        if kind != "logits" and np.all(s >= 0.0) and np.all(s <= 1.0):
            p = s[:, 0]
        elif kind == "proba":
            raise ModelOutputError(f"model {name!r}: kind='proba' but its single score column leaves [0, 1]")
        else:
            p = 1.0 / (1.0 + np.exp(-s[:, 0]))
        return np.column_stack([1.0 - p, p])
    if n_labels is not None and s.shape[1] != n_labels:
        raise ModelOutputError(
            f"model {name!r} returned {s.shape[1]} score columns but has {n_labels} labels")
    if kind == "logits":
        return softmax(s)
    if _looks_like_proba(s):
        return s / s.sum(axis=1, keepdims=True)
    if kind == "proba":
        sums = s.sum(axis=1)
        bad_rows = (np.abs(sums - 1.0) > SUM_TOLERANCE) | (s < 0.0).any(axis=1) | (s > 1.0).any(axis=1)
        worst = int(np.argmax(bad_rows))
        raise ModelOutputError(
            f"model {name!r}: kind='proba' but row {worst} = {s[worst].tolist()} (sum {sums[worst]:.6g}) "
            "is not a probability vector")
    return softmax(s)


# --------------------------------------------------------------------------------------------
# records


def _is_text(x: Any) -> bool:
    return isinstance(x, str)


def normalise_text_records(records: Any, *, name: str = "model") -> list[str] | list[tuple[str, str]]:
    """Records of a text model -> ``list[str]`` (single texts) or ``list[tuple[str, str]]`` (pairs).

    Accepts a DataFrame with 1 column (texts) or 2 columns (first, second), a Series, a list /
    tuple / 1-D array of strings, or a list of 2-tuples of strings. Anything else, a non-string
    value or 3+ columns raise :class:`InvalidInputError`.
    """
    return _text_rows_checked(_text_rows(records, name), name)


def _text_rows(records: Any, name: str) -> list[Any]:
    """The records of a text model as a list of rows (texts or pairs), not yet checked."""
    import pandas as pd

    if isinstance(records, str):
        raise InvalidInputError(
            f"model {name!r} takes a collection of records, got a single string {records[:60]!r}; "
            "wrap it in a list")
    if isinstance(records, pd.DataFrame):
        cols = list(records.columns)
        if len(cols) == 1:
            rows: list[Any] = records.iloc[:, 0].tolist()
        elif len(cols) == 2:
            rows = list(zip(records.iloc[:, 0].tolist(), records.iloc[:, 1].tolist()))
        else:
            raise InvalidInputError(
                f"a text model takes 1 column (texts) or 2 columns (text pairs), got {len(cols)} columns "
                f"{cols}; select the feature columns first")
    elif isinstance(records, pd.Series):
        rows = records.tolist()
    elif isinstance(records, np.ndarray):
        if records.ndim == 1:
            rows = records.tolist()
        elif records.ndim == 2 and records.shape[1] in (1, 2):
            rows = [r[0] if len(r) == 1 else (r[0], r[1]) for r in records.tolist()]
        else:
            raise InvalidInputError(
                f"a text model takes 1 or 2 text columns, got an array of shape {records.shape}")
    elif isinstance(records, Sequence) or hasattr(records, "__iter__"):
        rows = list(records)
    else:
        raise InvalidInputError(
            f"model {name!r} cannot read records of type {type(records).__name__}; "
            "pass a DataFrame, a list of texts or a list of (text, text) pairs")
    return rows


def _text_rows_checked(rows: list[Any], name: str) -> list[str] | list[tuple[str, str]]:
    """Rows that are all texts, or all ``(text, text)`` pairs; else the first bad row is named."""
    if not rows:
        return []
    if _is_text(rows[0]):
        for i, r in enumerate(rows):
            if not _is_text(r):
                raise InvalidInputError(
                    f"record {i} of the input to model {name!r} is not text: {r!r:.120} "
                    f"(type {type(r).__name__}); texts must be str, no missing values")
        return rows
    pairs = []
    for i, r in enumerate(rows):
        if isinstance(r, (tuple, list)) and len(r) == 2 and _is_text(r[0]) and _is_text(r[1]):
            pairs.append((r[0], r[1]))
        elif isinstance(r, (tuple, list)) and len(r) != 2:
            raise InvalidInputError(
                f"a text model takes single texts or (first, second) pairs; record {i} has {len(r)} fields: "
                f"{r!r:.120}")
        else:
            raise InvalidInputError(
                f"record {i} of the input to model {name!r} is not text: {r!r:.120} "
                f"(type {type(r).__name__}); texts must be str, pairs (str, str), no missing values")
    return pairs


# --------------------------------------------------------------------------------------------
# token-budget batching (shared by the transformers and ONNX text adapters)


def plan_token_batches(lengths: Sequence[int] | np.ndarray, *, max_tokens_per_batch: int,
                       batch_size: int) -> list[np.ndarray]:
    r"""Group inputs into batches of similar length under a padded-token budget.

    Inputs are sorted by length (stable); a batch grows while
    :math:`|B| \cdot \max_{i \in B} \ell_i \le` ``max_tokens_per_batch`` (the padded tokens it
    will cost) and :math:`|B| \le` ``batch_size``. An input longer than the budget gets a batch
    of its own. Returns the index arrays (into ``lengths``) of the batches, longest first, so an
    out-of-memory problem shows on the first batch.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")  # longest first
    batches: list[np.ndarray] = []
    start = 0
    n = len(order)
    while start < n:
        longest = int(lengths[order[start]])  # sorted descending: the first is the longest
        size = max(1, min(batch_size, max_tokens_per_batch // max(longest, 1)))
        batches.append(order[start:start + size])
        start += size
    return batches


def iter_token_budget_batches(
    texts: Sequence[str] | Sequence[tuple[str, str]],
    tokenizer: Any,
    *,
    max_length: int,
    batch_size: int,
    max_tokens_per_batch: int,
    input_names: Sequence[str] | None = None,
    chunk_size: int = 4096,
) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
    """Tokenise, sort by length, batch by a token budget, pad dynamically.

    Yields ``(positions, arrays)``: ``positions`` are the indices into ``texts`` of the batch's
    rows, ``arrays`` maps ``input_ids`` / ``attention_mask`` / ``token_type_ids`` (those in
    ``input_names``, default all the tokenizer returns) to int64 arrays ``(b, L)`` padded to the
    longest input of the batch (``L <= max_length``). The caller writes its scores back at
    ``positions``, which restores the input order.

    Inputs are processed in chunks of ``chunk_size`` so memory stays bounded for large ``n``;
    sorting happens within a chunk. A missing ``token_type_ids`` that is asked for is zeros.
    """
    n = len(texts)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    left = getattr(tokenizer, "padding_side", "right") == "left"
    for c0 in range(0, n, chunk_size):
        chunk = texts[c0:c0 + chunk_size]
        if chunk and isinstance(chunk[0], tuple):
            pairs: Sequence[tuple[str, str]] = chunk  # type: ignore[assignment]  # all rows are pairs
            enc = tokenizer([a for a, _ in pairs], [b for _, b in pairs], truncation=True,
                            max_length=max_length, padding=False)
        else:
            enc = tokenizer(list(chunk), truncation=True, max_length=max_length, padding=False)
        ids = enc["input_ids"]
        names = list(input_names) if input_names is not None else [
            k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        for idx in plan_token_batches(lengths, max_tokens_per_batch=max_tokens_per_batch,
                                      batch_size=batch_size):
            width = int(lengths[idx].max())
            arrays: dict[str, np.ndarray] = {}
            for key in names:
                fill = pad_id if key == "input_ids" else 0
                out = np.full((len(idx), width), fill, dtype=np.int64)
                source = enc.get(key)
                for row, i in enumerate(idx):
                    li = int(lengths[i])
                    if key == "attention_mask" and source is None:
                        values: Any = np.ones(li, dtype=np.int64)
                    elif source is None:  # token_type_ids asked for, tokenizer has none
                        continue
                    else:
                        values = source[i]
                    if left:
                        out[row, width - li:] = values
                    else:
                        out[row, :li] = values
                arrays[key] = out
            yield idx + c0, arrays


# --------------------------------------------------------------------------------------------
# adapters


def dir_size_bytes(path: str | os.PathLike[str]) -> int:
    """Total size of the regular files under ``path`` (or of ``path`` itself if it is a file)."""
    p = Path(path)
    if p.is_file():
        return p.stat().st_size
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def check_labels(labels: Any, *, name: str) -> tuple[str, ...]:
    """Labels as a tuple of distinct strings; raises :class:`ModelAdapterError` otherwise."""
    if labels is None:
        raise ModelAdapterError(f"model {name!r} has no labels; pass labels=[...] in column order")
    if isinstance(labels, str):
        raise ModelAdapterError(f"labels of model {name!r} must be a list of names, got the string "
                                f"{labels!r}")
    out = tuple(str(x) for x in labels)
    if len(out) < 2:
        raise ModelAdapterError(f"model {name!r} needs at least 2 labels, got {list(out)}")
    if len(set(out)) != len(out):
        raise ModelAdapterError(f"labels of model {name!r} are not distinct: {list(out)}")
    return out


class BaseAdapter:
    """Shared machinery: record normalisation, batching, output checks.

    Subclasses implement :meth:`_iter_scores` (or only :meth:`_score_batch` with fixed-size
    batches) and set ``output_kind`` (``"proba"``, ``"logits"`` or ``"auto"``, see
    :func:`to_probabilities`) and ``input_kind`` (``"text"`` or ``"tabular"``).

    Parameters
    ----------
    labels : sequence of str
        Class names in column order.
    name : str
        Name used in messages.
    size_bytes : int, optional
        Size on disk where known.
    batch_size : int
        Rows per model call.
    """

    output_kind: str = "auto"
    input_kind: str = "tabular"

    def __init__(self, labels: Sequence[Any], *, name: str, size_bytes: int | None = None,
                 batch_size: int = 256) -> None:
        if int(batch_size) < 1:
            raise InvalidInputError(f"Expected `batch_size` >= 1, got {batch_size}")
        self.name = str(name)
        self.labels = check_labels(labels, name=self.name)
        self.size_bytes = None if size_bytes is None else int(size_bytes)
        self.batch_size = int(batch_size)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, labels={list(self.labels)})"

    # -- to override -------------------------------------------------------------------------

    def _score_batch(self, batch: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _normalise(self, records: Any) -> Any:
        """Records -> a sliceable collection with ``len`` (list of texts/pairs, DataFrame, array)."""
        if self.input_kind == "text":
            return normalise_text_records(records, name=self.name)
        return normalise_tabular_records(records, name=self.name)

    def _iter_scores(self, inputs: Any) -> Iterator[tuple[Any, Any]]:
        """Yield ``(positions, raw scores)`` batch by batch; default: fixed-size batches in order."""
        n = len(inputs)
        for start in range(0, n, self.batch_size):
            stop = min(start + self.batch_size, n)
            batch = inputs.iloc[start:stop] if hasattr(inputs, "iloc") else inputs[start:stop]
            yield slice(start, stop), self._score_batch(batch)

    # -- public ------------------------------------------------------------------------------

    def to_probabilities(self, scores: Any, *, kind: str = "auto") -> np.ndarray:
        """:func:`to_probabilities` with this model's name and number of labels."""
        return to_probabilities(scores, kind=kind, n_labels=len(self.labels), name=self.name)

    def predict_proba(self, records: Any) -> np.ndarray:
        """``(n, k)`` float64 probabilities in :attr:`labels` order, rows summing to 1.

        Raw scores are collected batch by batch into one ``(n, width)`` float64 buffer and turned
        into probabilities once (see :func:`to_probabilities`), so the logits/probabilities
        decision is taken over the whole output and memory beyond the result stays per batch.
        """
        inputs = self._normalise(records)
        n = len(inputs)
        k = len(self.labels)
        if n == 0:
            return np.empty((0, k), dtype=np.float64)
        raw: np.ndarray | None = None
        for positions, scores in self._iter_scores(inputs):
            s = np.asarray(scores)
            if s.dtype == object or not (np.issubdtype(s.dtype, np.number) or s.dtype == bool):
                raise ModelOutputError(f"model {self.name!r} returned non-numeric output of dtype {s.dtype}")
            if s.ndim == 1:
                s = s.reshape(-1, 1)
            if s.ndim != 2:
                raise ModelOutputError(f"model {self.name!r} returned a batch of shape {s.shape}; "
                                        "expected (b, k)")
            if raw is None:
                raw = np.empty((n, s.shape[1]), dtype=np.float64)
            if s.shape[1] != raw.shape[1]:
                raise ModelOutputError(
                    f"model {self.name!r} returned {s.shape[1]} columns in one batch, {raw.shape[1]} in "
                    "another")
            raw[positions] = s
        assert raw is not None
        return self.to_probabilities(raw, kind=self.output_kind)


def normalise_tabular_records(records: Any, *, name: str = "model") -> Any:
    """Tabular records: a DataFrame stays a DataFrame; a 2-D array-like becomes a 2-D ndarray."""
    import pandas as pd

    if isinstance(records, pd.DataFrame):
        return records
    if isinstance(records, pd.Series):
        return records.to_frame()
    arr = np.asarray(records)
    if arr.ndim != 2:
        raise InvalidInputError(
            f"model {name!r} takes tabular records as a DataFrame or 2-D array, got shape {arr.shape}")
    return arr
