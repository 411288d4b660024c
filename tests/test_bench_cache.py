"""Benchmarks run from a fresh clone: their model cache is untracked, and a half-cache is rebuilt, never loaded."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("bench_cache", ROOT / "benchmarks" / "_cache.py")
bench_cache = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_cache)

FILES = ("config.json", "model.safetensors")


def _builder(calls: list[Path], fail: bool = False):
    def build(out: Path) -> None:
        calls.append(out)
        (out / "config.json").write_text("{}")
        if fail:
            raise OSError("disk full")
        (out / "model.safetensors").write_bytes(b"weights")
    return build


def test_a_half_cache_is_rebuilt_and_a_complete_one_reused(tmp_path):
    cache = tmp_path / "minilm-sst2"
    cache.mkdir()
    (cache / "config.json").write_text('{"old": true}')      # config and tokenizer, no weights
    calls: list[Path] = []
    assert bench_cache.cached_dir(cache, _builder(calls), required=FILES) == cache
    assert len(calls) == 1 and (cache / "model.safetensors").read_bytes() == b"weights"
    assert (cache / "config.json").read_text() == "{}"
    bench_cache.cached_dir(cache, _builder(calls), required=FILES)
    assert len(calls) == 1                                     # reused
    assert sorted(p.name for p in tmp_path.iterdir()) == ["minilm-sst2"]


def test_a_failed_build_leaves_nothing_behind(tmp_path):
    cache = tmp_path / "minilm-sst2"
    with pytest.raises(OSError, match="disk full"):
        bench_cache.cached_dir(cache, _builder([], fail=True), required=FILES)
    assert list(tmp_path.iterdir()) == []


def test_a_build_without_its_files_is_an_error(tmp_path):
    with pytest.raises(RuntimeError, match="model.safetensors"):
        bench_cache.cached_dir(tmp_path / "c", lambda out: None, required=FILES)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git checkout")
def test_nothing_under_the_benchmark_cache_is_tracked():
    tracked = subprocess.run(["git", "ls-files", "--", "benchmarks/.cache"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    present = [p for p in tracked if (ROOT / p).exists()]   # a deletion not yet committed is not a tracked file here
    assert present == []
    ignored = subprocess.run(["git", "check-ignore", "-q", "benchmarks/.cache/x/model.safetensors"], cwd=ROOT)
    assert ignored.returncode == 0
