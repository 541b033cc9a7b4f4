"""No import cycles inside facefill: the module-level import graph (read from the source with
``ast``; imports inside functions, which run late, are left out) has no cycle. The layers run one
way: cli -> pipeline -> train / models / losses / data, never back."""

from __future__ import annotations

import ast
from pathlib import Path

import facefill

ROOT = Path(facefill.__file__).parent


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports that run when the module is imported: module body, and inside top-level ``if``,
    ``try`` and ``with`` blocks (not functions or classes' methods; ``if TYPE_CHECKING`` skipped)."""
    found, todo = [], list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, ast.If):
            if "TYPE_CHECKING" not in ast.unparse(node.test):
                todo += node.body + node.orelse
        elif isinstance(node, (ast.Try, ast.With)):
            todo += node.body + getattr(node, "orelse", []) + getattr(node, "finalbody", [])
            todo += [n for h in getattr(node, "handlers", []) for n in h.body]
        elif isinstance(node, ast.ClassDef):
            todo += [n for n in node.body if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    return found


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """``{module: modules of facefill it imports at module level}``. ``from pkg import name`` counts
    as importing ``pkg.name`` when that is a module, else ``pkg``; importing ``a.b.c`` also runs
    ``a`` and ``a.b`` (their ``__init__``), which count too."""
    modules = {_module_name(p, root): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in _top_level_imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                bases = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                bases = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for target in bases:
                parts = target.split(".")
                targets |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)} & set(modules)
        targets.discard(name)
        # a package's __init__ importing its own submodules is how packages work, not a cycle
        graph[name] = {t for t in targets if not (t.startswith(name + ".") and path.name == "__init__.py")}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(cycles)


def test_the_cycle_finder_finds_a_cycle_and_only_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert find_cycles(graph) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_module_level_imports_only(tmp_path):
    pkg = tmp_path / "facefill"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "x.py").write_text("from facefill.sub import y\n")
    (pkg / "sub" / "y.py").write_text("from . import x\n\ndef late():\n    from facefill import z\n")
    (pkg / "z.py").write_text("try:\n    import facefill.sub.y\nexcept ImportError:\n    pass\n")
    graph = import_graph(pkg)
    assert graph["facefill.sub.x"] == {"facefill", "facefill.sub", "facefill.sub.y"}
    assert graph["facefill.sub.y"] == {"facefill", "facefill.sub", "facefill.sub.x"}  # not late()'s import
    assert "facefill.sub.y" in graph["facefill.z"]
    assert find_cycles(graph) == [["facefill.sub.x", "facefill.sub.y"]]


def test_no_import_cycles_in_facefill():
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles (module-level imports):\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_training_layers_point_one_way():
    """pipeline.train imports train.loop; nothing under facefill.train imports the pipeline or the
    CLI, even inside functions (the compatibility hook that did, loop.__getattr__, is gone)."""
    graph = import_graph()
    assert "facefill.train.loop" in graph["facefill.pipeline.train"]
    for path in (ROOT / "train").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith(("facefill.pipeline", "facefill.cli")), (path.name, node.module)
