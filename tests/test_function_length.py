"""No function in the library or the gate plugin is longer than 60 lines of code (#11).

Docstrings do not count: a function may explain itself at length, but its body stays a short
sequence of named steps. A new long function fails this test with its place and its length.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TREES = [ROOT / "mlflow_trusteq", ROOT / "plugins" / "trusteq_gate" / "trusteq_gate"]
MAX_LINES = 60


def code_lines(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines from the ``def`` to the end, less the docstring's lines."""
    total = (fn.end_lineno or fn.lineno) - fn.lineno + 1
    body = fn.body
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
            and isinstance(body[0].value.value, str):
        total -= (body[0].end_lineno or body[0].lineno) - body[0].lineno + 1
    return total


def long_functions(trees: list[Path] = TREES, limit: int = MAX_LINES) -> list[str]:
    out = []
    for tree in trees:
        for path in sorted(tree.rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and code_lines(node) > limit:
                    out.append(f"{path.relative_to(tree.parent)}:{node.lineno} {node.name} ({code_lines(node)} lines)")
    return out


def test_no_function_over_60_lines_of_code():
    assert long_functions() == []


def test_the_rule_counts_code_not_docstrings(tmp_path):
    doc = '    """' + "\n".join(["x"] * 80) + '"""\n'
    (tmp_path / "a.py").write_text("def documented():\n" + doc + "    return 1\n"
                                   + "def long():\n" + "".join(f"    x{i} = {i}\n" for i in range(61)))
    assert [r.split(" ")[1] for r in long_functions([tmp_path])] == ["long"]
