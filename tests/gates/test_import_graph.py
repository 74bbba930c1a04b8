"""The gates package has no import cycle, counting every import a module can make at run time.

The graph is read from the source (ast): top-level imports, imports inside functions (a deferred
import only hides a cycle until the function runs), and ``import_module`` calls whose target is
an f-string whose prefix, joined with a string of the same file, names a module
(``f"gates.checks.{name}"`` with ``BUILTIN = ("data", ...)`` imports ``gates.checks.data``), or a
module name written whole as a string in a file that calls ``import_module``. ``if TYPE_CHECKING:`` blocks are skipped. A
module importing its own package (``gates.checks.data`` -> ``gates.checks``) is no edge: Python
imports every parent package before the module anyway, so that edge cannot order anything.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import gates

ROOT = Path(gates.__file__).parent


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _owner(name: str, modules: Mapping[str, Path]) -> str | None:
    """Return the module ``name`` imports: itself, or the package that holds the attribute ``name``."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(module: str, path: Path, modules: Mapping[str, Path]) -> set[str]:
    """Return the gates modules ``module`` may import when any of its code runs."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str | None] = set()
    dynamic = False
    strings: set[str] = set()
    prefixes: set[str] = set()

    def visit(node: ast.AST) -> None:
        nonlocal dynamic
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for stmt in child.orelse:
                    visit(stmt)
                continue
            if isinstance(child, ast.Import):
                out.update(_owner(a.name, modules) for a in child.names if a.name.startswith("gates"))
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = package.split(".")
                    base = ".".join(parts[:len(parts) - child.level + 1] + ([base] if base else []))
                if base == "gates" or base.startswith("gates."):
                    for a in child.names:
                        full = f"{base}.{a.name}"
                        out.add(full if full in modules else _owner(base, modules))
            elif isinstance(child, ast.Call) and getattr(child.func, "id", getattr(child.func, "attr", "")) == "import_module":
                dynamic = True
                arg = child.args[0] if child.args else None
                if isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant):
                    prefixes.add(str(arg.values[0].value))
            elif isinstance(child, ast.Constant) and isinstance(child.value, str):
                strings.add(child.value)
            visit(child)

    visit(tree)
    if dynamic:
        out.update(s for s in strings if s in modules)
        out.update(p + s for p in prefixes for s in strings if p + s in modules)
    return {m for m in out if m is not None and m != module and not module.startswith(f"{m}.")}


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {m: _imports(m, p, modules) for m, p in modules.items()}


def find_cycle(graph: Mapping[str, set[str]]) -> list[str] | None:
    """Return one cycle of ``graph`` as a path ``[a, b, ..., a]``, or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(graph):
        if start in state:
            continue
        path = [start]
        stack = [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph.get(nxt, ()))))
    return None


def test_the_walker_sees_deferred_and_dynamic_imports() -> None:
    graph = import_graph()
    assert "gates.checks.robustness" in graph["gates.checks"]  # import_module(f"gates.checks.{name}"), BUILTIN
    assert "gates.checks.regression_partitioned" not in graph["gates.checks"]  # not a gate module
    assert "gates.checks.regression_partitioned" in graph["gates.engine.runner"]  # a module named in a string
    assert "gates.checks" in graph["gates.config"]  # imported inside policy_schema()
    assert "gates.context" not in graph["gates.checks"]  # under TYPE_CHECKING only
    assert "gates.checks" not in graph["gates.checks.data"]  # its own package
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a"}}) is None


def test_no_import_cycle_among_gates_modules() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_loading_a_table_or_a_model_does_not_import_the_config_or_the_gates() -> None:
    """The layers below config (loading, context) stand alone in a fresh interpreter."""
    code = ("import sys, gates.loading, gates.context; "
            "print(sorted(m for m in ('gates.config', 'gates.checks') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT.parent)
    assert out.stdout.strip() == "[]"
