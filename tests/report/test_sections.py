"""The sections' views live in report/ and render the results' plain data; computation renders nothing."""

from __future__ import annotations

import ast
import dataclasses
import html
import pathlib

import mlflow_trusteq
from mlflow_trusteq._types import Estimate
from mlflow_trusteq.attack import RobustnessResult
from mlflow_trusteq.explain import AlignmentResult
from mlflow_trusteq.report import (
    alignment_fragment,
    alignment_summary,
    render_alignment_html,
    render_report_html,
    robustness_fragment,
)
from mlflow_trusteq.report._alignment import ALIGNMENT_CSS
from mlflow_trusteq.report._robustness import highlight_diff

PKG = pathlib.Path(mlflow_trusteq.__file__).parent


def _alignment_result() -> AlignmentResult:
    def example(row: int, jac: float, words: list[str], a: list[float], b: list[float]) -> dict:
        return {"row": row, "text": " ".join(words), "fields": [" ".join(words)], "features": words, "k": 2,
                "target": 1, "target_label": "pos <1>", "lime/parent": a, "lime/candidate": b, "lime/floor": a,
                "lime/metrics": {"top_k_jaccard": jac, "feature_agreement": jac, "rank_correlation": 0.5,
                                 "sign_agreement": 1.0},
                "lime/floor_metrics": {"top_k_jaccard": 0.9, "feature_agreement": 0.9, "rank_correlation": 0.9,
                                       "sign_agreement": 1.0}}

    return AlignmentResult(methods=("lime",), labels=("neg", "pos <1>"),
                           examples=(example(3, 1.0, ["a", "good", "film"], [0.1, 0.5, -0.2], [0.1, 0.4, -0.1]),
                                     example(7, 1 / 3, ["<b>bad</b>", "plot"], [-0.6, 0.1], [0.0, 0.3])),
                           settings={"top_k": 2, "random_state": 0, "noise_floor": True})


def test_alignment_view_renders_the_plain_data_worst_first_and_escaped():
    r = _alignment_result()
    frag = alignment_fragment(r)
    assert frag.startswith('<section class="trusteq-alignment">') and frag.endswith("</section>")
    assert "<body" not in frag and "<style" not in frag
    assert frag.index("row 7 ") < frag.index("row 3 ")  # worst top-k Jaccard first
    assert "LIME Jaccard@2 0.33 (floor 0.90)" in frag
    assert "&lt;b&gt;bad&lt;/b&gt;" in frag and "<b>bad</b>" not in frag and "pos &lt;1&gt;" in frag
    assert "rgba(220,38,38" in frag and "rgba(37,99,235" in frag
    assert html.escape(alignment_summary(r)) in frag and "LIME: top-2 Jaccard" in alignment_summary(r)
    page = render_alignment_html(r, max_examples=1)
    assert page.startswith("<!DOCTYPE html>") and page.count("class='ex'") == 1 and ALIGNMENT_CSS in page
    # the results' own methods are thin: the same text as the report's renderers
    assert r.html(max_examples=1) == page and r.summary() == alignment_summary(r)


def test_alignment_style_rules_are_all_scoped():
    rules = [rule.split("{", 1)[0].strip() for rule in ALIGNMENT_CSS.split("}") if "{" in rule]
    assert rules and all(sel.startswith(".trusteq-alignment ") for rule in rules for sel in rule.split(","))


def test_report_embeds_the_section_views_once_without_nested_documents(report, verdict):
    a = _alignment_result()
    rob = RobustnessResult(settings={"n_attacked": 1, "recipes": ["char"], "recipe_settings": {}}, rows=(),
                           metrics={"char/parent/after_attack_accuracy": Estimate(0.25, 0.1, 0.4, 0.95)})
    r = dataclasses.replace(report, sections={"alignment": a.to_dict(), "robustness": rob.to_dict()}, skipped={})
    text = render_report_html(r, verdict, figures={})
    assert text.count("<!DOCTYPE") == text.count("<html") == text.count("<body") == text.count("<head") == 1
    assert text.count(ALIGNMENT_CSS) == 1 and text.index(ALIGNMENT_CSS) < text.index("</head>")
    stored = AlignmentResult.from_dict(r.sections["alignment"])
    assert f'<div class="section-box" id="sec-alignment">{alignment_fragment(stored)}</div>' in text
    assert robustness_fragment(RobustnessResult.from_dict(r.sections["robustness"])) in text
    assert "<td>0.2500 [0.1000, 0.4000]</td>" in text and "<td>—</td>" in text  # a missing estimate: a dash


def test_highlight_marks_changed_words():
    a, b = highlight_diff("a good <movie>", "a fine <movie>")
    assert a == 'a <mark class="orig">good</mark> &lt;movie&gt;'
    assert b == 'a <mark class="pert">fine</mark> &lt;movie&gt;'
    assert highlight_diff("one two", "one") == ("one two", "one")  # not aligned: escaped, unmarked


def _imports(path: pathlib.Path) -> list[tuple[str, bool]]:
    """(absolute module imported, at module level?) for every import statement of a module."""
    module = ".".join(path.relative_to(PKG.parent).with_suffix("").parts)
    package = module.rsplit(".", 1)[0]
    out: list[tuple[str, bool]] = []

    def visit(node: ast.AST, at_top: bool) -> None:
        if isinstance(node, ast.Import):
            out.extend((a.name, at_top) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            name = ".".join(x for x in (base, node.module) if x)
            out.extend((name if node.module else f"{name}.{a.name}", at_top) for a in node.names)
        inside = at_top and not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, inside)

    visit(ast.parse(path.read_text()), True)
    return out


def test_computation_renders_nothing_and_never_imports_the_report_at_module_level():
    for sub in ("explain", "attack"):
        for path in sorted((PKG / sub).glob("*.py")):
            for name, at_top in _imports(path):
                assert name != "html", f"{path.name} renders HTML (imports `html`); rendering belongs in report/"
                if name.startswith("mlflow_trusteq.report"):
                    assert not at_top, f"{path.name} imports {name} at module level"


def test_no_import_cycle_inside_explain_attack_report():
    for sub in ("explain", "attack", "report"):
        graph = {}
        for path in sorted((PKG / sub).glob("*.py")):
            mod = f"mlflow_trusteq.{sub}.{path.stem}"
            graph[mod] = {n for n, _ in _imports(path) if n.startswith(f"mlflow_trusteq.{sub}.")} - {mod}

        for mod in graph:
            _assert_no_cycle(graph, mod, [])


def _assert_no_cycle(graph: dict[str, set[str]], node: str, stack: list[str]) -> None:
    assert node not in stack, f"import cycle: {' -> '.join([*stack, node])}"
    for nxt in graph.get(node, ()):
        _assert_no_cycle(graph, nxt, [*stack, node])
