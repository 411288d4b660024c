"""The README's references resolve, and it documents every configuration key (issue 14)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _repo_files() -> set[str]:
    skip = {".venv", ".git", "node_modules", "tests/artifacts"}
    return {str(p.relative_to(ROOT)) for p in ROOT.rglob("*.md")
            if not any(str(p.relative_to(ROOT)).startswith(s) for s in skip)}


def test_every_linked_path_exists():
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README)
    local = [link for link in links if not re.match(r"[a-z]+://", link)]
    assert local, "the README links no file of the repo"
    missing = [link for link in local if not (ROOT / link).exists()]
    assert not missing, f"README links files that are not in the repo: {missing}"


def test_every_markdown_file_named_is_in_the_repo():
    """A name like `SPEC.md` must be a file of the repo (by path, or by name somewhere in it)."""
    names = set(re.findall(r"[\w./-]*\w\.md\b", README))
    files = _repo_files()
    by_name = {Path(f).name for f in files}
    missing = sorted(n for n in names if n not in files and Path(n).name not in by_name)
    assert not missing, f"README names markdown files the repo does not have: {missing}"


def test_anchors_point_at_headings():
    headings = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
                for h in re.findall(r"^#+ (.+)$", README, flags=re.M)}
    anchors = set(re.findall(r"\]\(#([^)]+)\)", README))
    assert anchors <= headings, f"anchors without a heading: {sorted(anchors - headings)}"


def _config_section() -> str:
    start = README.index("## Every configuration key")
    return README[start:README.index("\n## ", start + 5)]


@pytest.mark.parametrize("cls_path", ["mlflow_trusteq:TrustEqConfig", "mlflow_trusteq:AlignmentConfig",
                                      "mlflow_trusteq:RobustnessConfig"])
def test_every_config_key_is_documented(cls_path):
    import importlib

    module, name = cls_path.split(":")
    cls = getattr(importlib.import_module(module), name)
    section = _config_section()
    undocumented = [f.name for f in dataclasses.fields(cls) if f"`{f.name}`" not in section]
    assert not undocumented, f"README's 'Every configuration key' does not explain {name} key(s) {undocumented}"


def test_the_metric_definitions_name_every_registered_metric():
    from mlflow_trusteq._keys import METRIC_INFO

    text = (ROOT / "docs" / "METRICS.md").read_text(encoding="utf-8")
    missing = [m for m in METRIC_INFO if m not in text]
    assert not missing, f"docs/METRICS.md does not define {missing}"
