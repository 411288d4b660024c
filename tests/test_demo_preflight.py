"""The main job checks every stage's dependencies up front and stops, with the install command, before fine-tuning."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "sst2_trust_demo.py"

# makes `import onnxruntime` fail as it does where the package is not installed
_NO_ONNXRUNTIME = '''
import importlib.abc, sys

class _Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "onnxruntime" or name.startswith("onnxruntime."):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None

sys.meta_path.insert(0, _Absent())
'''


def _demo(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("TRUSTEQ_WORDNET_DIR", "WNSEARCHDIR", "WNHOME")}
    environ.update(env, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return subprocess.run([sys.executable, str(DEMO), "--workdir", str(tmp_path / "work"), *args],
                          capture_output=True, text=True, env=environ, timeout=300)


@pytest.mark.slow
def test_the_check_passes_where_everything_is_installed(tmp_path):
    out = _demo(tmp_path, "--check")
    assert out.returncode == 0, out.stderr
    assert "every stage's dependencies are installed" in out.stderr


@pytest.mark.slow
def test_a_missing_package_stops_the_job_before_fine_tuning(tmp_path):
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(_NO_ONNXRUNTIME)
    out = _demo(tmp_path, PYTHONPATH=str(tmp_path / "site"))
    assert out.returncode == 2, out.stderr
    assert "onnxruntime (int8 quantization and the ONNX candidates) is missing" in out.stderr
    assert "pip install 'onnxruntime>=1.17'" in out.stderr
    assert "fine-tune" not in out.stderr and not (tmp_path / "work" / "models").exists()


@pytest.mark.slow
def test_a_missing_word_list_stops_the_job_before_fine_tuning(tmp_path):
    out = _demo(tmp_path, TRUSTEQ_WORDNET_DIR=str(tmp_path / "no-wordnet"))
    assert out.returncode == 2, out.stderr
    assert "word-level attack's lexicon" in out.stderr and "apt-get install" in out.stderr
    assert not (tmp_path / "work" / "models").exists()
    # without the attack the word list is not needed
    assert _demo(tmp_path, "--check", "--attack-examples", "0",
                 TRUSTEQ_WORDNET_DIR=str(tmp_path / "no-wordnet")).returncode == 0
