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

import copy
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .._errors import InvalidInputError, ModelAdapterError, ModelOutputError
from ._plan import BatchPlan

logger = logging.getLogger(__name__)

__all__ = [
    "ProbaModel",
    "BaseAdapter",
    "to_probabilities",
    "softmax",
    "sum_tolerance",
    "storage_epsilon",
    "normalise_text_records",
    "iter_token_budget_batches",
    "plan_token_batches",
    "dir_size_bytes",
    "TextBatchingMixin",
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


def storage_epsilon(scores: np.ndarray) -> float:
    """Machine epsilon of the precision the scores were computed in (``np.finfo(...).eps``).

    The dtype's own for ``float16``; for ``float32`` (or ``float64``) scores whose every value is
    exactly representable in a coarser format the coarser one: ``bfloat16`` (the low 16 bits of
    each float32 are zero: ``eps = 2**-7``) or ``float16`` (``eps = 2**-10``), since a torch model
    in half precision is usually cast up before it reaches us.
    """
    s = np.asarray(scores)
    if s.dtype == np.float16:
        return float(np.finfo(np.float16).eps)
    if s.dtype not in (np.float32, np.float64) or s.size == 0:
        return float(np.finfo(np.float64).eps) if s.dtype != np.float32 else float(np.finfo(np.float32).eps)
    f32 = s.astype(np.float32)
    if s.dtype == np.float64 and not np.array_equal(f32.astype(np.float64), s):
        return float(np.finfo(np.float64).eps)
    if not np.any(f32.view(np.uint32) & np.uint32(0xFFFF)):
        return 2.0 ** -7  # bfloat16
    with np.errstate(over="ignore"):
        if np.array_equal(f32.astype(np.float16).astype(np.float32), f32):
            return float(np.finfo(np.float16).eps)
    return float(np.finfo(s.dtype).eps)


def sum_tolerance(scores: np.ndarray, n_classes: int) -> float:
    r"""How far from 1 a row of probabilities may sum, given the precision it was stored in.

    .. math:: \mathrm{tol} = \max(10^{-4},\ k\,\varepsilon)

    with :math:`\varepsilon` from :func:`storage_epsilon`: each of the ``k`` entries carries a
    rounding error of up to :math:`\varepsilon/2` relative, plus the model's own low-precision
    soft-max. float32/float64: 1e-4; float16, k = 2: 0.00195; bfloat16, k = 2: 0.0156.
    """
    return max(SUM_TOLERANCE, n_classes * storage_epsilon(scores))


def _looks_like_proba(p: np.ndarray, tol: float = SUM_TOLERANCE) -> bool:
    return bool(np.all(p >= -tol) and np.all(p <= 1.0 + tol)
                and np.all(np.abs(p.sum(axis=1) - 1.0) <= tol))


def to_probabilities(scores: Any, *, kind: str = "auto", n_labels: int | None = None,
                     name: str = "model") -> np.ndarray:
    r"""Turn raw model output into an ``(n, k)`` float64 probability matrix.

    Parameters
    ----------
    scores : array-like, shape (n,), (n, 1) or (n, k)
        What the model returned.
    kind : {"auto", "proba", "logits"}
        ``"proba"``: the scores are probabilities (checked: in [0, 1] and rows sum to 1 within
        the tolerance of their precision, :func:`sum_tolerance`; then clipped to [0, 1] and
        renormalised exactly). ``"logits"``: soft-maxed. ``"auto"``: see *The rule* below; the
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
    **The rule** (``kind="auto"``, ``k >= 2`` columns), with ``tol = max(1e-4, k eps)`` and
    ``eps`` the machine epsilon of the precision the scores carry (:func:`storage_epsilon`:
    float16 ``2**-10``, bfloat16 ``2**-7`` also when cast up to float32, else float32/64):

    1. every value in ``[-tol, 1 + tol]`` and every row sums to 1 within ``tol``:
       **probabilities**, clipped to [0, 1] and renormalised (never soft-maxed: the soft-max of
       probabilities flattens them, e.g. a float16 model's mean confidence from 0.82 to 0.51);
    2. some value below ``-tol`` or above ``1 + tol``: **logits**, soft-maxed;
    3. every value in [0, 1] but some row does not sum to 1 within ``tol``: **ambiguous**
       (probabilities that do not add up, or logits that happen to lie in [0, 1]): a
       :class:`ModelOutputError` that gives both readings; pass ``kind="proba"`` or
       ``kind="logits"`` (``output_kind`` of the adapters).

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
    raw, s = _score_matrix(scores, name)
    if s.shape[1] == 1:
        return _binary_from_one_column(s, kind, n_labels, name)
    if n_labels is not None and s.shape[1] != n_labels:
        raise ModelOutputError(
            f"model {name!r} returned {s.shape[1]} score columns but has {n_labels} labels")
    if kind == "logits":
        return softmax(s)
    tol = sum_tolerance(raw, s.shape[1])
    if _looks_like_proba(s, tol):
        p = np.clip(s, 0.0, 1.0)
        return p / p.sum(axis=1, keepdims=True)
    if kind == "proba":
        raise _not_probabilities(s, tol, name)
    if np.all(s >= 0.0) and np.all(s <= 1.0):
        raise _ambiguous(s, tol, name)
    return softmax(s)


def _score_matrix(scores: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The output as given (its dtype tells its precision) and as a finite float64 ``(n, k)`` matrix."""
    raw = np.asarray(scores)
    if raw.dtype == object or not np.issubdtype(raw.dtype, np.number):
        raise ModelOutputError(f"model {name!r} returned non-numeric output of dtype {raw.dtype}")
    s = raw.astype(np.float64, copy=False)
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
    return raw, s


def _binary_from_one_column(s: np.ndarray, kind: str, n_labels: int | None, name: str) -> np.ndarray:
    """A single score column as the positive class's probability (or logit): the columns ``(1 - p, p)``."""
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


def _not_probabilities(s: np.ndarray, tol: float, name: str) -> ModelOutputError:
    """``kind="proba"`` but some row is not a probability vector: the error, naming the first such row."""
    sums = s.sum(axis=1)
    bad_rows = (np.abs(sums - 1.0) > tol) | (s < -tol).any(axis=1) | (s > 1.0 + tol).any(axis=1)
    worst = int(np.argmax(bad_rows))
    return ModelOutputError(
        f"model {name!r}: kind='proba' but row {worst} = {s[worst].tolist()} (sum {sums[worst]:.6g}) "
        f"is not a probability vector (tolerance {tol:.3g})")


def _ambiguous(s: np.ndarray, tol: float, name: str) -> ModelOutputError:
    """Scores in [0, 1] whose rows do not sum to 1: the error that gives both readings (rule 3)."""
    sums = s.sum(axis=1)
    worst = int(np.argmax(np.abs(sums - 1.0)))
    soft = softmax(s)
    return ModelOutputError(
        f"model {name!r} returned scores in [0, 1] whose rows do not all sum to 1 (row {worst} sums to "
        f"{sums[worst]:.6g}, tolerance {tol:.3g} for its precision): read as probabilities (renormalised) "
        f"its mean confidence would be {float(np.mean(s.max(axis=1) / sums)):.4g}, read as logits "
        f"(soft-maxed) {float(np.mean(soft.max(axis=1))):.4g}. Say which it is: kind='proba' or "
        "kind='logits' (the adapters' output_kind)")


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
                       batch_size: int, sort: str = "length") -> list[np.ndarray]:
    r"""Group inputs into batches under a padded-token budget.

    With ``sort="length"`` (the default) inputs are sorted by length (stable), longest first; with
    ``sort="none"`` they stay in data order (as a server's dynamic batcher sees them). A batch grows
    while :math:`|B| \cdot \max_{i \in B} \ell_i \le` ``max_tokens_per_batch`` (the padded tokens
    it will cost) and :math:`|B| \le` ``batch_size``. An input longer than the budget gets a batch
    of its own. Returns the index arrays (into ``lengths``) of the batches; length-sorted batches
    come longest first, so an out-of-memory problem shows on the first batch.
    """
    if sort not in ("length", "none"):
        raise InvalidInputError(f'Expected `sort` in ("length", "none"), got {sort!r}')
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-lengths, kind="stable") if sort == "length" else np.arange(len(lengths))
    batches: list[np.ndarray] = []
    start = 0
    n = len(order)
    while start < n:
        size, longest = 1, max(int(lengths[order[start]]), 1)
        while start + size < n and size < batch_size:
            longest = max(longest, int(lengths[order[start + size]]))
            if (size + 1) * longest > max_tokens_per_batch:
                break
            size += 1
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
    padding_side: str | None = None,
    sort: str = "length",
) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
    """Tokenise, sort by length, batch by a token budget, pad dynamically.

    Yields ``(positions, arrays)``: ``positions`` are the indices into ``texts`` of the batch's
    rows, ``arrays`` maps ``input_ids`` / ``attention_mask`` / ``token_type_ids`` (those in
    ``input_names``, default all the tokenizer returns) to int64 arrays ``(b, L)`` padded to the
    longest input of the batch (``L <= max_length``). The caller writes its scores back at
    ``positions``, which restores the input order.

    Inputs are processed in chunks of ``chunk_size`` so memory stays bounded for large ``n``;
    sorting happens within a chunk. A missing ``token_type_ids`` that is asked for is zeros.
    ``padding_side`` (``"right"``/``"left"``, default: the tokenizer's) and ``sort`` (``"length"``
    or ``"none"``, see :func:`plan_token_batches`) come from the model's batch plan.
    """
    n = len(texts)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    left = (padding_side or getattr(tokenizer, "padding_side", "right")) == "left"
    for c0 in range(0, n, chunk_size):
        enc = _tokenize(texts[c0:c0 + chunk_size], tokenizer, max_length)
        ids = enc["input_ids"]
        names = list(input_names) if input_names is not None else [
            k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        for idx in plan_token_batches(lengths, max_tokens_per_batch=max_tokens_per_batch,
                                      batch_size=batch_size, sort=sort):
            arrays = {key: _padded(enc.get(key), key, idx, lengths, pad_id if key == "input_ids" else 0, left)
                      for key in names}
            yield idx + c0, arrays


def _tokenize(chunk: Sequence[str] | Sequence[tuple[str, str]], tokenizer: Any, max_length: int) -> Any:
    """The tokenizer's (unpadded, truncated) encoding of single texts or text pairs."""
    if chunk and isinstance(chunk[0], tuple):
        pairs: Sequence[tuple[str, str]] = chunk  # type: ignore[assignment]  # all rows are pairs
        return tokenizer([a for a, _ in pairs], [b for _, b in pairs], truncation=True,
                         max_length=max_length, padding=False)
    return tokenizer(list(chunk), truncation=True, max_length=max_length, padding=False)


def _padded(source: Any, key: str, idx: np.ndarray, lengths: np.ndarray, fill: int, left: bool) -> np.ndarray:
    """One input of a batch as an int64 ``(b, L)`` array, padded with ``fill`` to its longest row (``left``: before).

    A missing ``attention_mask`` is ones over each row's tokens; a missing ``token_type_ids`` stays ``fill`` (zeros).
    """
    width = int(lengths[idx].max())
    out = np.full((len(idx), width), fill, dtype=np.int64)
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
    return out


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
    #: the :class:`~mlflow_trusteq.adapters.BatchPlan` fields this adapter takes
    plan_fields: tuple[str, ...] = ("batch_size",)

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

    # -- batch plan and settings --------------------------------------------------------------

    def with_batch_plan(self, plan: BatchPlan | Mapping[str, Any] | None) -> BaseAdapter:
        """A copy of this adapter (sharing the model) that scores under ``plan``; ``self`` is unchanged.

        Raises
        ------
        InvalidInputError
            The plan sets a field this model cannot take (``padding_side``, ``max_length``, ``sort``
            or ``max_tokens_per_batch`` for a model without a tokenizer), or a bad value.
        """
        given = BatchPlan.from_value(plan).given()
        unfit = [k for k in given if k not in self.plan_fields]
        if unfit:
            raise InvalidInputError(
                f"model {self.name!r} ({type(self).__name__}) cannot take the batch plan's {unfit}: those apply "
                f"to text models with a tokenizer; this one takes {list(self.plan_fields)}")
        clone = copy.copy(self)
        for key, value in given.items():
            setattr(clone, key, value)
        return clone

    def batch_plan(self) -> BatchPlan:
        """The plan this adapter scores under, every field it takes filled in."""
        return BatchPlan(**{k: getattr(self, k) for k in self.plan_fields})

    def scoring_settings(self) -> dict[str, Any]:
        """Every setting of this adapter that changes its numbers (the batch plan, the runtime's options)."""
        return {"adapter": type(self).__name__, "batch_plan": self.batch_plan().given()}

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


class TextBatchingMixin:
    """The batch plan of a text adapter (tokenizer, token budget, padding side, sorting), shared.

    The adapter sets ``tokenizer``, ``max_length``, ``batch_size``, ``max_tokens_per_batch`` and
    ``input_names``; ``padding_side`` (``None``: the tokenizer's) and ``sort`` come from the plan.
    """

    plan_fields: tuple[str, ...] = ("batch_size", "padding_side", "max_length", "sort", "max_tokens_per_batch")
    tokenizer: Any
    max_length: int
    batch_size: int
    max_tokens_per_batch: int
    input_names: tuple[str, ...]
    padding_side: str | None = None
    sort: str = "length"

    def _token_batches(self, inputs: Any) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
        """:func:`iter_token_budget_batches` under this adapter's plan."""
        return iter_token_budget_batches(
            inputs, self.tokenizer, max_length=self.max_length, batch_size=self.batch_size,
            max_tokens_per_batch=self.max_tokens_per_batch, input_names=self.input_names,
            padding_side=self.padding_side, sort=self.sort)

    def batch_plan(self) -> BatchPlan:
        """The plan this adapter scores under (the padding side resolved from the tokenizer)."""
        side = self.padding_side or getattr(self.tokenizer, "padding_side", "right")
        return BatchPlan(batch_size=self.batch_size, padding_side=side, max_length=self.max_length,
                         sort=self.sort, max_tokens_per_batch=self.max_tokens_per_batch)

    def tokenizer_settings(self) -> dict[str, Any]:
        """How texts become tokens: the tokenizer, truncation (``longest_first`` up to ``max_length``)."""
        tok = self.tokenizer
        return {"tokenizer": type(tok).__name__, "tokenizer_name": getattr(tok, "name_or_path", None),
                "truncation": "longest_first", "max_length": self.max_length,
                "model_max_length": _int_or_none(getattr(tok, "model_max_length", None)),
                "input_names": list(self.input_names)}


def _int_or_none(x: Any) -> int | None:
    """An int that fits JSON (transformers' "no limit" is a huge int: ``None``)."""
    return int(x) if isinstance(x, int) and 0 < x < 2**31 else None


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
