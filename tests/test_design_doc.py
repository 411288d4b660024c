"""docs/DESIGN.md is true of the tree: every path its layout and flow name exists, every subpackage is named."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DESIGN = ROOT / "docs" / "DESIGN.md"
#: an entry's name, then two spaces or more, then its description
_ENTRY = re.compile(r"^(?P<indent> *)(?P<name>\S+)(?: {2,}(?P<text>.*))?$")
#: a line indented deeper than this continues the description above it (names sit at most a few columns in)
_NAME_COLUMN = 12
_FILE = re.compile(r"(?<![\w./-])([\w-]+(?:/[\w-]+)*\.(?:py|md|toml))\b")


def _block(text: str, heading: str) -> list[str]:
    """The lines of the first ``` block under ``## <heading>``."""
    section = f"\n{text}".split(f"\n## {heading}", 1)[1]
    return section.split("```", 2)[1].splitlines()[1:]


def layout_paths(text: str) -> dict[str, list[str]]:
    """Each path the layout names (relative to the repo root) -> the files its description names.

    An entry nests under the nearest less indented folder above it; a line indented deeper than
    :data:`_NAME_COLUMN` continues the description above.
    """
    entries: dict[str, list[str]] = {}
    stack: list[tuple[int, str]] = []  # (indent, path) of the enclosing folders
    last = None
    for line in _block(text, "Layout"):
        if not line.strip():
            continue
        if last is not None and len(line) - len(line.lstrip(" ")) > _NAME_COLUMN:
            entries[last].extend(_FILE.findall(line))  # a continued description
            continue
        m = _ENTRY.match(line)
        assert m is not None, f"not a layout entry (name, two spaces, description): {line!r}"
        indent, name, desc = len(m["indent"]), m["name"], m["text"] or ""
        while stack and stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1] if stack else ""
        last = f"{parent}{name}"
        entries[last] = _FILE.findall(desc)
        if name.endswith("/"):
            stack.append((indent, last))
    return entries


def missing_paths(text: str) -> list[str]:
    """The paths the layout names (folders, files, the modules a folder's description lists) that do not exist."""
    entries = layout_paths(text)
    inside = [f"{folder}{f}" for folder, files in entries.items() if folder.endswith("/") for f in files]
    return [p for p in [*entries, *inside] if not (ROOT / p).exists()]


def unnamed_subpackages(text: str) -> list[str]:
    """The library's subpackages (folders with an ``__init__.py``) that the layout does not name."""
    named = set(layout_paths(text))
    library = ROOT / "mlflow_trusteq"
    subpackages = sorted(f"{p.parent.relative_to(ROOT)}/" for p in library.rglob("__init__.py")
                         if p.parent != library and "__pycache__" not in p.parts)
    assert subpackages, "no subpackage found: is the library where the test looks?"
    return [p for p in subpackages if p not in named]


@pytest.fixture(scope="module")
def design() -> str:
    return DESIGN.read_text(encoding="utf-8")


def test_every_path_the_layout_names_exists(design):
    entries = layout_paths(design)
    assert "mlflow_trusteq/" in entries and "mlflow_trusteq/report/" in entries, sorted(entries)
    missing = missing_paths(design)
    assert not missing, f"docs/DESIGN.md's layout names paths that do not exist: {missing}"


def test_every_library_subpackage_is_named(design):
    unnamed = unnamed_subpackages(design)
    assert not unnamed, f"docs/DESIGN.md's layout does not name the subpackage(s) {unnamed}"


def test_the_flow_names_only_what_the_layout_has(design):
    """Every folder and module of the flow diagram is one of the layout's (or a file in one of its folders)."""
    entries = layout_paths(design)
    known = {Path(p).name for p in entries} | {f for files in entries.values() for f in files}
    known |= {f"{part}/" for p in entries for part in Path(p).parts[:-1]}
    known |= {f"{Path(p).name}/" for p in entries if p.endswith("/")}
    flow = "\n".join(_block(design, "The flow"))
    named = set(re.findall(r"(?<![\w./-])(\w+/)(?!\w)", flow)) | set(_FILE.findall(flow))
    assert named, "the flow diagram names no folder or module"
    unknown = sorted(named - known)
    assert not unknown, f"docs/DESIGN.md's flow names {unknown}, which its layout does not have"


def test_the_checks_fail_on_a_stale_layout():
    """The old layout (a ``cli.py``, no ``report/``) and a module that moved away are each reported."""
    stale = ("## Layout\n\n```text\nmlflow_trusteq/   the library\n  cli.py          `trusteq`\n"
             "  adapters/       model -> probabilities: _sklearn.py, _moved.py\n```\n")
    assert layout_paths(stale) == {"mlflow_trusteq/": [], "mlflow_trusteq/cli.py": [],
                                   "mlflow_trusteq/adapters/": ["_sklearn.py", "_moved.py"]}
    assert missing_paths(stale) == ["mlflow_trusteq/cli.py", "mlflow_trusteq/adapters/_moved.py"]
    assert "mlflow_trusteq/report/" in unnamed_subpackages(stale)


def test_the_readme_links_the_design_doc():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "](docs/DESIGN.md)" in readme
