"""The parent is scored once: a cache of the parent's probabilities on one data set.

Evaluating several candidates against one parent on the same rows (separate ``compare()`` calls,
``trusteq evaluate`` runs one after the other) scores the parent once. An entry is keyed by

- the parent's *content* (:func:`model_content_digest`: the bytes of a model folder or file, the
  pickle of a scikit-learn estimator, the registered version a ``models:/`` URI resolves to),
- the digest of the rows and gold labels (:func:`~mlflow_trusteq.compare.data_digest`),
- every setting that changes the parent's numbers (``chunk_size``, ``parent_kwargs``) and the
  package version.

A model with no content digest (a callable, a torch module, a ready adapter) is never cached: it
is scored again, and the log says why. Entries live in this process (least recently used first out,
at most :data:`MAX_BYTES`), and also on disk when ``TRUSTEQ_CACHE_DIR`` names a folder, so that
separate processes on one machine share them. A hit is logged at INFO.

The Spark engine keeps the parent's probabilities where the table is: a persisted Spark DataFrame
(the input columns and the parent's probabilities) held here under :func:`parent_table_key` (the
parent's content, an order-free digest of the table, the settings that change the scores) and the
SparkSession's application id, at most :data:`MAX_TABLES` of them (the oldest is unpersisted).

The parent's **other calls** are made once too: the alignment and robustness stages query the
parent on perturbed inputs (LIME masks, SHAP coalitions, its noise floor, the attacks' candidate
texts), with the same seeds for every candidate. :func:`parent_call_memo` keeps what the parent
returned for each input (a row of feature values), keyed by the parent's content, its
``parent_kwargs`` and the package version, and :class:`MemoizedModel` answers from it, so that
the second candidate's alignment and attacks query the parent only on inputs it has not seen
(none, on the same data and settings): the parent's attributions, noise floor and attack results
are then computed from its remembered outputs. What the memo returns is what the parent returned
the first time (batching can move a transformer's last digits; the first answer is kept). At
most :data:`MAX_CALL_ROWS` inputs per parent and :data:`MAX_CALL_MEMOS` parents are held (least
recently used out). It is never used to time a model or to measure self-consistency (those must
call the model). Hits and misses are counted in :func:`stats` (``call_hits``, ``call_misses``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["model_content_digest", "parent_scores_key", "get_parent_scores", "put_parent_scores", "clear",
           "stats", "MAX_BYTES", "CACHE_DIR_ENV", "parent_table_key", "get_parent_table", "put_parent_table",
           "MAX_TABLES", "CallMemo", "MemoizedModel", "parent_call_memo", "MAX_CALL_ROWS", "MAX_CALL_MEMOS"]

logger = logging.getLogger(__name__)

#: the most bytes of probabilities the in-process cache holds
MAX_BYTES = 1 << 30
#: environment variable naming a folder for an on-disk cache shared by processes
CACHE_DIR_ENV = "TRUSTEQ_CACHE_DIR"

_lock = threading.Lock()
_entries: OrderedDict[str, tuple[np.ndarray, float]] = OrderedDict()
_stats = {"hits": 0, "misses": 0, "stores": 0, "call_hits": 0, "call_misses": 0}
#: the most Spark frames of parent probabilities held at once
MAX_TABLES = 4
#: key -> (the persisted Spark DataFrame, how to release it)
_tables: OrderedDict[str, tuple[Any, Callable[[Any], Any]]] = OrderedDict()


def _sha256_dir(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = f.relative_to(path).as_posix()
        if rel == "registered_model_meta":  # MLflow writes it there on loading
            continue
        h.update(rel.encode("utf-8") + b"\0")
        with f.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        h.update(b"\0")
    return h.hexdigest()


def _registry_digest(uri: str) -> str | None:
    """``models:/name/<version>`` or ``models:/name@alias`` -> the version it names, its source and run."""
    from mlflow import MlflowClient

    body = uri[len("models:/"):].strip("/")
    client = MlflowClient()
    if "@" in body:
        name, alias = body.split("@", 1)
        mv = client.get_model_version_by_alias(name, alias)
    else:
        name, _, version = body.rpartition("/")
        if not name or not version.isdigit():
            return None  # a stage or a "latest": not one fixed version
        mv = client.get_model_version(name, version)
    return f"registry:{mv.name}/{mv.version}:{mv.source}:{mv.run_id}:{mv.creation_timestamp}"


def model_content_digest(model: Any) -> str | None:
    """A digest of what the model *is*, or ``None`` when it cannot be told (then it is not cached).

    Parameters
    ----------
    model
        A local MLflow model folder or model file (the bytes of its files), a ``models:/`` URI
        (the registered version it resolves to: an alias is resolved first), a ``runs:/`` URI (run
        artifacts do not change once logged), or a picklable scikit-learn estimator (its pickle).
    """
    if isinstance(model, (str, os.PathLike)):
        text = os.fspath(model)
        if text.startswith("models:/"):
            try:
                return _registry_digest(text)
            except Exception as exc:  # the registry does not answer: no caching, not an error
                logger.info("parent cache: could not resolve %s (%s); not cached", text, exc)
                return None
        if text.startswith("runs:/"):
            return f"uri:{text}"
        p = Path(text)
        if p.is_dir():
            return f"dir:{_sha256_dir(p)}"
        if p.is_file():
            return f"file:{hashlib.sha256(p.read_bytes()).hexdigest()}"
        return None
    from .adapters import is_sklearn_estimator

    if is_sklearn_estimator(model):
        try:
            return f"sklearn:{hashlib.sha256(pickle.dumps(model, protocol=4)).hexdigest()}"
        except Exception:  # not picklable
            return None
    return None


def parent_scores_key(parent: Any, data_digest: str, *, chunk_size: int,
                      parent_kwargs: Mapping[str, Any]) -> str | None:
    """The cache key of the parent's probabilities on one data set, or ``None`` when not cacheable."""
    return _parent_key(parent, {"data": data_digest, "chunk_size": chunk_size}, "parent_kwargs", parent_kwargs,
                       level=logging.DEBUG, why="parent_kwargs are not plain values")


def _parent_key(parent: Any, fields: Mapping[str, Any], plain_name: str, plain: Mapping[str, Any], *,
                level: int, why: str) -> str | None:
    """sha256 of the parent's content, ``fields``, ``plain`` (as JSON, under ``plain_name``) and this version.

    ``None`` (logged at ``level``; ``why`` says what was not plain) when the parent has no content
    digest or ``plain`` holds values JSON cannot write (e.g. a tokenizer object: its content cannot be told).
    """
    from ._version import __version__

    content = model_content_digest(parent)
    if content is None:
        logger.log(level, "parent cache: no content digest for %s; the parent is scored", type(parent).__name__)
        return None
    try:
        recorded = json.dumps(dict(plain), sort_keys=True)
    except TypeError:
        logger.log(level, "parent cache: %s; the parent is scored", why)
        return None
    payload = json.dumps({"parent": content, **fields, plain_name: recorded, "version": __version__}, sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _disk_path(key: str) -> Path | None:
    folder = os.environ.get(CACHE_DIR_ENV)
    return Path(folder) / f"parent-{key}.npz" if folder else None


def get_parent_scores(key: str) -> tuple[np.ndarray, float] | None:
    """``(probabilities, seconds the parent took)`` for ``key``, or ``None``; a hit is logged."""
    with _lock:
        hit = _entries.get(key)
        if hit is not None:
            _entries.move_to_end(key)
    if hit is None:
        path = _disk_path(key)
        if path is not None and path.is_file():
            with np.load(path) as z:
                hit = (z["proba"], float(z["seconds"]))
            _store(key, *hit)
    with _lock:
        _stats["hits" if hit is not None else "misses"] += 1
    if hit is not None:
        logger.info("parent cache hit (%s...): the parent's probabilities on these %d rows are reused, "
                    "not scored again", key[:12], hit[0].shape[0])
        proba = hit[0].view()
        proba.flags.writeable = False
        return proba, hit[1]
    return None


def _store(key: str, proba: np.ndarray, seconds: float) -> None:
    proba = np.array(proba, dtype=np.float64, copy=True)
    with _lock:
        _entries[key] = (proba, seconds)
        _entries.move_to_end(key)
        while sum(p.nbytes for p, _ in _entries.values()) > MAX_BYTES and len(_entries) > 1:
            _entries.popitem(last=False)


def put_parent_scores(key: str, proba: np.ndarray, seconds: float) -> None:
    """Keep the parent's probabilities (and its seconds) under ``key``, in process and on disk if set."""
    _store(key, proba, seconds)
    with _lock:
        _stats["stores"] += 1
    path = _disk_path(key)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, proba=np.asarray(proba, dtype=np.float64), seconds=np.float64(seconds))
        os.replace(tmp, path)


def parent_table_key(parent: Any, table_digest: str, *, settings: Mapping[str, Any]) -> str | None:
    """The key of the parent's probabilities on one Spark table, or ``None`` when not cacheable.

    ``table_digest`` names the rows' content (order-free); ``settings`` are plain values: every
    setting that can change the parent's probabilities or the cached frame's rows.
    """
    return _parent_key(parent, {"table": table_digest}, "settings", settings, level=logging.INFO,
                       why="settings that are not plain values")


def get_parent_table(key: str) -> Any | None:
    """The Spark frame of the parent's probabilities stored under ``key``, or ``None``; a hit is logged."""
    with _lock:
        hit = _tables.get(key)
        if hit is not None:
            _tables.move_to_end(key)
        _stats["hits" if hit is not None else "misses"] += 1
    if hit is None:
        return None
    logger.info("parent cache hit (%s...): the parent's probabilities on this Spark table are reused, not scored "
                "again", key[:12])
    return hit[0]


def put_parent_table(key: str, frame: Any, release: Callable[[Any], Any]) -> None:
    """Hold ``frame`` (persisted) under ``key``; past :data:`MAX_TABLES` the oldest is released."""
    evicted = []
    with _lock:
        _tables[key] = (frame, release)
        _tables.move_to_end(key)
        _stats["stores"] += 1
        while len(_tables) > MAX_TABLES:
            evicted.append(_tables.popitem(last=False)[1])
    for old, free in evicted:
        _release(old, free)


def _release(frame: Any, release: Callable[[Any], Any]) -> None:
    try:
        release(frame)
    except Exception:  # its session may be gone: nothing is held any more
        logger.debug("parent cache: could not release a Spark frame", exc_info=True)


def clear() -> None:
    """Empty the in-process cache (the Spark frames are released) and its counters (not the disk folder)."""
    with _lock:
        _entries.clear()
        tables = list(_tables.values())
        _tables.clear()
        _memos.clear()
        _stats.update(hits=0, misses=0, stores=0, call_hits=0, call_misses=0)
    for frame, release in tables:
        _release(frame, release)


def stats() -> dict[str, int]:
    """The in-process cache's counters: ``hits``, ``misses``, ``stores``, ``entries``, ``tables`` (Spark
    frames) of the parent's probabilities, and ``call_hits`` / ``call_misses`` (inputs) and ``memos`` of the
    parent's other calls."""
    with _lock:
        return {**_stats, "entries": len(_entries), "tables": len(_tables), "memos": len(_memos)}


# ----------------------------------------------------------------------------- the parent's other calls
#: the most inputs remembered per parent
MAX_CALL_ROWS = 500_000
#: the most parents whose calls are remembered
MAX_CALL_MEMOS = 4


class CallMemo:
    """What one model returned per input: ``(columns, row values) -> probability row`` (LRU, bounded)."""

    def __init__(self, max_rows: int = MAX_CALL_ROWS) -> None:
        self.max_rows = max_rows
        self._rows: OrderedDict[Any, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._rows)

    def lookup(self, keys: list[Any]) -> list[np.ndarray | None]:
        with self._lock:
            found = [self._rows.get(k) for k in keys]
            for k, v in zip(keys, found):
                if v is not None:
                    self._rows.move_to_end(k)
        return found

    def store(self, keys: list[Any], proba: np.ndarray) -> None:
        with self._lock:
            for k, p in zip(keys, proba):
                self._rows[k] = p
                self._rows.move_to_end(k)
            while len(self._rows) > self.max_rows:
                self._rows.popitem(last=False)

    def count(self, hits: int, misses: int) -> None:
        with self._lock:
            self.hits += hits
            self.misses += misses
        with _lock:
            _stats["call_hits"] += hits
            _stats["call_misses"] += misses


_memos: OrderedDict[str, CallMemo] = OrderedDict()


def parent_call_memo(parent: Any, *, parent_kwargs: Mapping[str, Any]) -> CallMemo | None:
    """The memo of ``parent``'s calls shared by every evaluation of it in this process, or ``None``.

    ``None`` (the parent is queried as usual) when the parent has no content digest or its
    ``parent_kwargs`` are not plain values.
    """
    key = _parent_key(parent, {"calls": "predict_proba"}, "parent_kwargs", parent_kwargs, level=logging.DEBUG,
                      why="parent_kwargs are not plain values")
    if key is None:
        return None
    with _lock:
        memo = _memos.get(key)
        if memo is None:
            memo = _memos[key] = CallMemo()
        _memos.move_to_end(key)
        while len(_memos) > MAX_CALL_MEMOS:
            _memos.popitem(last=False)
    return memo


class MemoizedModel:
    """``model`` (a ProbaModel) whose ``predict_proba`` answers the inputs ``memo`` has seen from it.

    Only the unseen rows of a frame reach the model (in one call, in their order); every other
    attribute reads and writes through to the model (``labels``, ``name``, ``max_tokens_per_batch``...).
    """

    def __init__(self, model: Any, memo: CallMemo) -> None:
        object.__setattr__(self, "_model", model)
        object.__setattr__(self, "_memo", memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(object.__getattribute__(self, "_model"), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._model, name, value)

    def predict_proba(self, frame: Any) -> np.ndarray:
        n = len(frame)
        if n == 0:
            return np.asarray(self._model.predict_proba(frame))
        columns = tuple(str(c) for c in frame.columns)
        keys = [(columns, row) for row in frame.itertuples(index=False, name=None)]
        found = self._memo.lookup(keys)
        todo = [i for i, v in enumerate(found) if v is None]
        if todo:
            fresh = np.asarray(self._model.predict_proba(frame.iloc[todo] if len(todo) < n else frame))
            if fresh.ndim != 2 or fresh.shape[0] != len(todo):
                return fresh  # a malformed answer: the caller's own check reports it
            self._memo.store([keys[i] for i in todo], fresh)
            for i, p in zip(todo, fresh):
                found[i] = p
        self._memo.count(n - len(todo), len(todo))
        return np.stack([np.asarray(v) for v in found])
