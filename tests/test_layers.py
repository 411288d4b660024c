"""The data goes one way (docs/DESIGN.md): no library module imports a layer above its own.

Layers, lowest first: ``metrics`` (pure numpy) < ``adapters``, ``explain``, ``attack`` (models ->
numbers) < the orchestration modules at the top level (``compare``, ``policy``, ``slices`` ...) <
``report`` (rendering) < ``integration`` (MLflow) < ``cli``. Private top-level helpers (``_keys``,
``_types``, ``_errors`` ...) are the floor every layer may use. Imports are read from the source
(module level and inside functions), so a lazy import cannot hide an upward edge.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "mlflow_trusteq"

#: the rank of each subpackage; top-level modules not named here rank as orchestration (3)
RANK = {"metrics": 1, "adapters": 2, "explain": 2, "attack": 2, "datasets": 0,
        "report": 4, "integration": 5, "cli": 6}
#: top-level modules every layer may import (types, keys, errors, config, formatting)
FLOOR = {"_types", "_keys", "_errors", "_config", "_format", "_version", "_data", "_timing"}
ORCHESTRATION = 3
#: the one kind of upward edge allowed: a result's ``html()`` convenience method handing itself to its
#: renderer in ``report/`` (a lazy import inside that method; the result stays plain data)
RENDERERS = {"report", "report._alignment", "report._robustness", "report._slices", "report._consistency"}


def _layer_of(parts: list[str]) -> tuple[str, int] | None:
    """(name, rank) of a module given as its parts below ``mlflow_trusteq``; None for the floor."""
    if not parts or parts[0] == "__init__":
        return None  # the package's public face re-exports everything lazily
    head = parts[0]
    if head in RANK:
        return head, RANK[head]
    if head in FLOOR:
        return None
    return head, ORCHESTRATION


def _imports(path: Path) -> list[tuple[int, list[str]]]:
    """(line, target parts below mlflow_trusteq) of every import of the library in ``path``."""
    rel = path.relative_to(PKG).with_suffix("").parts
    package = list(rel[:-1]) if rel[-1] != "__init__" else list(rel[:-1])
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else list(package)
                target = base + (node.module.split(".") if node.module else [])
                names = [] if node.module else [a.name for a in node.names]
            elif node.module and node.module.split(".")[0] == "mlflow_trusteq":
                target, names = node.module.split(".")[1:], []
            else:
                continue
            if names and not target:  # ``from . import compare``
                found.extend((node.lineno, [n]) for n in names)
            else:
                found.append((node.lineno, target))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "mlflow_trusteq":
                    found.append((node.lineno, alias.name.split(".")[1:]))
    return found


def _in_html_method(path: Path, line: int) -> bool:
    """Whether ``line`` of ``path`` lies inside a method called ``html`` or ``summary``."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef) and node.name in ("html", "summary"):
            if node.lineno <= line <= (node.end_lineno or node.lineno):
                return True
    return False


def _violations() -> list[str]:
    out = []
    for path in sorted(PKG.rglob("*.py")):
        here = _layer_of(list(path.relative_to(PKG).with_suffix("").parts))
        if here is None:
            continue
        for line, target in _imports(path):
            there = _layer_of(target)
            if ".".join(target) in RENDERERS and _in_html_method(path, line):
                continue
            if there is not None and there[0] != here[0] and there[1] > here[1]:
                out.append(f"{path.relative_to(PKG.parent)}:{line} ({here[0]}, layer {here[1]}) imports "
                           f"{'.'.join(target)} ({there[0]}, layer {there[1]})")
    return out


def test_no_module_imports_a_layer_above_its_own():
    assert _violations() == []


def test_the_rule_sees_an_upward_import(tmp_path, monkeypatch):
    """The check is not vacuous: an orchestration module importing integration is caught."""
    fake = tmp_path / "mlflow_trusteq"
    (fake / "integration").mkdir(parents=True)
    (fake / "integration" / "x.py").write_text("X = 1\n")
    (fake / "compare.py").write_text("def f():\n    from .integration.x import X\n    return X\n")
    (fake / "_keys.py").write_text("from .metrics import y\n")  # the floor is not judged
    monkeypatch.setattr(__import__(__name__), "PKG", fake)
    found = _violations()
    assert len(found) == 1 and "compare.py:2" in found[0] and "integration.x" in found[0]


@pytest.mark.parametrize("target, rank", [(["metrics", "pair"], 1), (["report", "html"], 4), (["compare"], 3),
                                          (["_keys"], None), (["cli"], 6)])
def test_layer_of(target, rank):
    got = _layer_of(target)
    assert (got[1] if got else None) == rank
