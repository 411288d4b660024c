"""Packaging: `pip install .` builds one wheel with everything the main job needs, and nothing it may not ship."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    """The wheel built from a copy of the source (what `pip install .` builds), without network."""
    src = tmp_path_factory.mktemp("src")
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "tests", "build")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "mlflow_trusteq", src / "mlflow_trusteq", ignore=ignore)
    shutil.copytree(ROOT / "plugins" / "trusteq_gate", src / "plugins" / "trusteq_gate", ignore=ignore)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out),
                    str(src)], check=True, capture_output=True, timeout=300)
    (whl,) = out.glob("mlflow_trusteq-*.whl")
    return zipfile.ZipFile(whl)


def test_one_pep621_pyproject_and_one_version_source():
    assert not (ROOT / "setup.cfg").exists()
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["dynamic"] == ["version"]
    assert meta["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "mlflow_trusteq._version.__version__"}
    # no other file of the main distribution spells the version
    hits = [p for p in (ROOT / "mlflow_trusteq").rglob("*.py")
            if re.search(r"^__version__\s*=", p.read_text(), re.M) and p.name != "_version.py"]
    assert hits == []
    # the gate plugin: its own pyproject, its version from its package
    gate = tomllib.loads((ROOT / "plugins" / "trusteq_gate" / "pyproject.toml").read_text())
    assert "version" not in gate["project"] and gate["project"]["dynamic"] == ["version"]


def test_no_requirement_that_no_index_has_and_lime_only_for_tests():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = meta["dependencies"] + [r for name, reqs in meta["optional-dependencies"].items() if name != "test"
                                      for r in reqs]
    assert not any(r.startswith(("trusteq-gate", "lime")) for r in runtime), runtime
    assert any(r.startswith("lime") for r in meta["optional-dependencies"]["test"])


def test_only_named_third_party_warnings_are_ignored():
    filters = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["filterwarnings"]
    for f in filters:
        action, category, *module = f.split(":")
        assert action != "ignore" or (module and module[0] and not module[0].startswith("mlflow_trusteq")), f


def test_ci_runs_exactly_the_readme_test_command():
    lines = [ln.strip() for ln in (ROOT / ".ci" / "run").read_text().splitlines()
             if ln.strip() and not ln.lstrip().startswith("#") and not ln.startswith(("set ", "cd ", "export "))]
    assert lines == ["bash tests/run.sh"]
    assert "bash tests/run.sh" in (ROOT / "README.md").read_text()
    # the system packages are set up by the test command itself, not by CI around it
    run_sh = (ROOT / "tests" / "run.sh").read_text()
    assert "bash .ci/system-deps.sh" in run_sh and "ruff check" in run_sh and "mypy" in run_sh
    assert run_sh.index("ruff check") < run_sh.index("mypy") < run_sh.index("pytest")
    deps = (ROOT / ".ci" / "system-deps.sh").read_text()
    assert all(p in deps for p in ("chromium", "wordnet-base", "openjdk-17-jre-headless"))
    assert "pyproject.toml" in (ROOT / ".ci" / "setup-env.sh").read_text()


@pytest.mark.slow
def test_the_wheel_ships_the_gate_and_the_lexicon_but_not_mrpc(wheel):
    names = wheel.namelist()
    assert "trusteq_gate/signing.py" in names and "trusteq_gate/app.py" in names
    assert "mlflow_trusteq/attack/_lexicon/wordnet-3.0.txt.xz" in names
    assert any(n.endswith("licenses/mlflow_trusteq/attack/_lexicon/LICENSE-WordNet-3.0.txt") for n in names)
    assert "mlflow_trusteq/datasets/sst2/dev.tsv" in names
    assert not [n for n in names if "mrpc" in n.lower() or "MSR-SSLA" in n]
    assert not [n for n in names if n.startswith(("tests/", "plugins/", "scripts/", "benchmarks/"))]
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    text = wheel.read(entry_points).decode()
    assert "trusteq-gate = trusteq_gate.app:create_app" in text
    assert "trusteq = mlflow_trusteq.integration.evaluator:TrustEqEvaluator" in text
    (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
    requires = [ln for ln in wheel.read(metadata).decode().splitlines() if ln.startswith("Requires-Dist:")]
    assert not [r for r in requires if "trusteq-gate" in r]


def test_system_deps_says_what_is_missing_and_how_when_it_cannot_install(tmp_path):
    # a PATH without apt-get and without java: the script cannot install, so it must say what and how
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "id", "echo", "cat"):
        if shutil.which(tool):
            (bin_dir / tool).symlink_to(shutil.which(tool))
    env = {"PATH": str(bin_dir), "TRUSTEQ_WORDNET_DIR": str(tmp_path), "TRUSTEQ_CHROMIUM": "/bin/sh"}
    out = subprocess.run([str(bin_dir / "bash"), str(ROOT / ".ci" / "system-deps.sh")], capture_output=True,
                         text=True, env=env, timeout=60)
    assert out.returncode == 0
    assert "missing system packages: openjdk-17-jre-headless" in out.stderr
    assert "no apt-get here" in out.stderr and "CI=true" in out.stderr
