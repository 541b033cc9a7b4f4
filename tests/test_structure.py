"""The code's own promises (issue 25): short functions, each choice list defined once."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "facefill"
MAX_LINES = 60


def _long_functions() -> list[str]:
    """Functions whose body (docstring included, the signature not) runs over MAX_LINES lines.
    The signature is left out because a Typer command's signature is its table of options."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.body[0].lineno + 1
                if lines > MAX_LINES:
                    found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} ({lines} lines)")
    return found


def test_no_function_body_over_60_lines():
    assert _long_functions() == []


def test_the_rule_sees_a_long_function(tmp_path, monkeypatch):
    """The check above can fail: a 61-line body is found."""
    pkg = tmp_path / "facefill"
    pkg.mkdir()
    (pkg / "m.py").write_text("def f(\n    a=1,\n):\n" + "    x = 1\n" * 61)
    import sys

    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", pkg)
    assert _long_functions() == ["facefill/m.py:1 f (61 lines)"]


@pytest.mark.parametrize("cli_module, cli_name, core_module, core_name", [
    ("facefill.cli.hallucinate", "METHODS", "facefill.pipeline.hallucinate", "METHODS"),
    ("facefill.cli.hallucinate", "METHODS", "facefill.options", "METHODS"),
    ("facefill.cli.align", "LANDMARKS", "facefill.pipeline.mask", "LANDMARKS"),
    ("facefill.cli.align", "FACES", "facefill.pipeline.align", "FACES"),
    ("facefill.cli.replace_bg", "SEGMENTERS", "facefill.options", "SEGMENTERS"),
    ("facefill.cli.evaluate", "METRICS", "facefill.pipeline.evaluate", "METRICS"),
])
def test_cli_and_pipeline_share_one_choice_list(cli_module, cli_name, core_module, core_name):
    import importlib

    assert getattr(importlib.import_module(cli_module), cli_name) is getattr(importlib.import_module(core_module), core_name)


def test_choice_lists_match_what_the_code_implements():
    from facefill.align.landmarks import BACKENDS
    from facefill.baselines import METHODS as BASELINES
    from facefill.config import HALLUCINATE_METHODS
    from facefill.options import LANDMARKS, METHODS, SEGMENTERS
    from facefill.segment import SEGMENTERS as SEGMENT_NAMES

    assert tuple(BACKENDS) == LANDMARKS.names
    assert METHODS.names == HALLUCINATE_METHODS
    assert set(BASELINES) <= set(METHODS.names)
    assert tuple(SEGMENT_NAMES) == SEGMENTERS.names


def _method_name_comparisons(root: Path = PACKAGE) -> list[str]:
    """``opts.method == "donor"``, ``method != "model"``, ``method in ("model", "donor")``...: a
    method chosen by its name, anywhere in facefill but the registry of ways to fill context."""
    from facefill.config import HALLUCINATE_METHODS

    def names(node) -> bool:
        if isinstance(node, ast.Constant):
            return node.value in HALLUCINATE_METHODS
        return isinstance(node, (ast.Tuple, ast.List, ast.Set)) and any(names(e) for e in node.elts)

    found = []
    for path in sorted(root.rglob("*.py")):
        if path.relative_to(root).as_posix() == "fill/registry.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            operands = [node.left, *node.comparators] if isinstance(node, ast.Compare) else []
            if any(names(n) for n in operands) and any("method" in ast.unparse(n) for n in operands if not names(n)):
                found.append(f"{path.relative_to(root.parent)}:{node.lineno} {ast.unparse(node)}")
    return found


def test_no_method_is_chosen_by_its_name_outside_the_registry():
    """Issue 32: the pipeline, the CLI and the options never compare a method's name; what a
    method needs, takes and does is the registry's (facefill/fill/registry.py)."""
    assert _method_name_comparisons() == []


def test_the_method_rule_sees_a_comparison(tmp_path):
    pkg = tmp_path / "facefill"
    pkg.mkdir()
    (pkg / "m.py").write_text("def f(opts):\n    return opts.method == 'donor' or opts.method in ('mean',)\n")
    assert len(_method_name_comparisons(pkg)) == 2


def test_hallucinate_pipeline_stays_short():
    """Issue 32: the job holds names, the run record, the chunk's fill and the writes; input kinds,
    masks, sidecars, sheets and the methods live elsewhere."""
    assert len((PACKAGE / "pipeline" / "hallucinate.py").read_text().splitlines()) < 250
