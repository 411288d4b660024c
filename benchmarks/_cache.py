"""The benchmarks' model cache (``benchmarks/.cache/``, untracked): built on first use, reused only when complete."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

logger = logging.getLogger(__name__)

#: what a saved transformers model folder must hold to be reused (the weights included)
MODEL_FILES = ("config.json", "model.safetensors", "tokenizer_config.json")


def cached_dir(path: Path, build: Callable[[Path], None], *, required: Iterable[str] = MODEL_FILES) -> Path:
    """``path`` when it holds every ``required`` file; else ``build(tmp)`` into a fresh folder, renamed to ``path``.

    A half-written cache (an interrupted build, or files without weights) is never reused: it is
    rebuilt, and a build that fails leaves nothing at ``path``.
    """
    required = tuple(required)
    if all((path / name).is_file() for name in required):
        return path
    if path.exists():
        logger.warning("rebuilding the incomplete cache %s (missing %s)", path,
                       [n for n in required if not (path / n).is_file()])
    tmp = path.with_name(path.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        build(tmp)
        missing = [n for n in required if not (tmp / n).is_file()]
        if missing:
            raise RuntimeError(f"building the cache {path} wrote no {missing}")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)
    return path
