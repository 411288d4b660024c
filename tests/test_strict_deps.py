"""The strict-dependency hook: in CI a skip for a missing dependency fails the run; other skips stay skips."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

CASES = '''
import pytest

def test_importorskip():
    pytest.importorskip("no_such_module_trusteq")

@pytest.mark.skipif(True, reason="headless chromium is not installed")
def test_system_package():
    pass

def test_not_applicable():
    pytest.skip("textattack installed: the adapter is exercised elsewhere")

def test_passes():
    pass
'''


def _run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_cases.py").write_text(CASES)
    environ = {k: v for k, v in os.environ.items() if k not in ("CI", "TRUSTEQ_STRICT_DEPS")}
    environ.update(env, PYTHONPATH=str(TESTS))
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", "-p", "_strict_deps",
                           "--rootdir", str(tmp_path), "-c", os.devnull, str(tmp_path)],
                          capture_output=True, text=True, env=environ, timeout=120)


@pytest.mark.parametrize("env", [{"CI": "true"}, {"TRUSTEQ_STRICT_DEPS": "1"}])
def test_strict_mode_fails_skips_for_missing_dependencies(tmp_path, env):
    out = _run(tmp_path, **env)
    assert out.returncode == 1, out.stdout
    # a skip in the call phase becomes a failure, one in setup (a skipif mark) an error: both fail the run
    assert "1 failed, 1 passed, 1 skipped, 1 error" in out.stdout, out.stdout
    assert "FAILED " in out.stdout and "::test_importorskip" in out.stdout
    assert "ERROR " in out.stdout and "::test_system_package" in out.stdout
    assert "skipped for a missing dependency" in out.stdout


@pytest.mark.parametrize("env", [{}, {"CI": "false"}, {"TRUSTEQ_STRICT_DEPS": "0"}])
def test_without_ci_skips_stay_skips(tmp_path, env):
    out = _run(tmp_path, **env)
    assert out.returncode == 0, out.stdout
    assert "1 passed, 3 skipped" in out.stdout, out.stdout
