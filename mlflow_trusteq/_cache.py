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
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import threading
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["model_content_digest", "parent_scores_key", "get_parent_scores", "put_parent_scores", "clear",
           "stats", "MAX_BYTES", "CACHE_DIR_ENV"]

logger = logging.getLogger(__name__)

#: the most bytes of probabilities the in-process cache holds
MAX_BYTES = 1 << 30
#: environment variable naming a folder for an on-disk cache shared by processes
CACHE_DIR_ENV = "TRUSTEQ_CACHE_DIR"

_lock = threading.Lock()
_entries: OrderedDict[str, tuple[np.ndarray, float]] = OrderedDict()
_stats = {"hits": 0, "misses": 0, "stores": 0}


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
    from ._version import __version__

    content = model_content_digest(parent)
    if content is None:
        logger.debug("parent cache: no content digest for %s; the parent is scored", type(parent).__name__)
        return None
    try:
        kwargs = json.dumps(dict(parent_kwargs), sort_keys=True)
    except TypeError:  # e.g. a tokenizer object: its content cannot be told
        logger.debug("parent cache: parent_kwargs are not plain values; the parent is scored")
        return None
    payload = json.dumps({"parent": content, "data": data_digest, "chunk_size": chunk_size,
                          "parent_kwargs": kwargs, "version": __version__}, sort_keys=True)
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


def clear() -> None:
    """Empty the in-process cache and its counters (the on-disk folder is left alone)."""
    with _lock:
        _entries.clear()
        _stats.update(hits=0, misses=0, stores=0)


def stats() -> dict[str, int]:
    """``{"hits", "misses", "stores", "entries"}`` of the in-process cache."""
    with _lock:
        return {**_stats, "entries": len(_entries)}
