"""Whether a test file pytest never collected may hold tests marked ``model_gate``, read without importing it.

A file that failed to import, skipped itself at module level, or was ignored (``--ignore``,
``collect_ignore``) yields no items, so its marked tests are unknown and the session cannot give a
complete verdict if it may hold any. The file is parsed, never imported (its import is what failed),
and "may" is decided generously. A file may hold marked tests when

- it names the marker: an attribute ``model_gate`` (``pytest.mark.model_gate``, ``m.model_gate``
  after ``from pytest import mark as m``, ``mg = pytest.mark.model_gate``) or the string
  ``"model_gate"`` (``item.add_marker("model_gate")``, ``getattr(pytest.mark, "model_gate")``);
- it imports a module of the project (a file under the rootdir) that names the marker, directly or
  through its own imports (``from tests.marks import gate`` where ``marks.py`` says
  ``gate = pytest.mark.model_gate``); ``pytest_plugins`` entries count as imports;
- a ``conftest.py`` in its folder or a folder above it, up to the rootdir, names the marker: its
  hooks may add the marker to any test they see.

A file that cannot be parsed counts when its text names the marker; a file that cannot be read counts.
"""
from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

MARKER_NAME = "model_gate"
CONFTEST = "conftest.py"


def may_hold_marked_tests(path: Path, rootpath: Path, scan: MarkScan | None = None) -> bool:
    """True when the test file ``path`` may hold marked tests (see the module's rules).

    ``scan`` keeps the files already parsed, so a session asking about many files parses each once.
    """
    scan = scan or MarkScan(rootpath)
    return any(scan.reaches_marker(p) for p in (*_conftests(path, rootpath), path))


def _conftests(path: Path, rootpath: Path) -> Iterator[Path]:
    """Yield the conftest.py files that apply to ``path``: its folder's and every folder's above, up to the rootdir."""
    for parent in path.parents:
        candidate = parent / CONFTEST
        if candidate != path and candidate.is_file():
            yield candidate
        if not parent.is_relative_to(rootpath) or parent == rootpath:
            return


class MarkScan:
    """Project files parsed, each once: whether it names the marker, what it imports."""

    def __init__(self, rootpath: Path) -> None:
        self.rootpath = rootpath
        self._read: dict[Path, tuple[bool, list[Path]]] = {}

    def reaches_marker(self, path: Path) -> bool:
        """True when ``path`` or a project file it imports, directly or not, names the marker."""
        todo, seen = [path], {path}
        while todo:
            names, imports = self._parse(todo.pop())
            if names:
                return True
            for module in imports:
                if module not in seen:
                    seen.add(module)
                    todo.append(module)
        return False

    def _parse(self, path: Path) -> tuple[bool, list[Path]]:
        if path not in self._read:
            self._read[path] = self._parse_once(path)
        return self._read[path]

    def _parse_once(self, path: Path) -> tuple[bool, list[Path]]:
        try:
            source = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return True, []
        try:
            tree = ast.parse(source, filename=str(path))
        except (SyntaxError, ValueError):
            return MARKER_NAME in source, []
        # the marker is named only where its name is in the text: the walk is skipped for most files
        return MARKER_NAME in source and _names_marker(tree), list(self._imported(tree, path))

    def _imported(self, tree: ast.Module, path: Path) -> Iterator[Path]:
        """Yield the project files ``tree`` imports (modules, and submodules named in ``from X import y``)."""
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom, ast.Assign)):
                continue
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield from self._find(alias.name, path, 0)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                yield from self._find(base, path, node.level)
                for alias in node.names:
                    yield from self._find(f"{base}.{alias.name}" if base else alias.name, path, node.level)
            elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytest_plugins"
                                                      for t in node.targets):
                for plugin in ast.walk(node.value):
                    if isinstance(plugin, ast.Constant) and isinstance(plugin.value, str):
                        yield from self._find(plugin.value, path, 0)

    def _find(self, module: str, importer: Path, level: int) -> Iterator[Path]:
        """Yield the file of ``module`` under the rootdir, looked for where pytest's import modes may find it."""
        if level:
            bases = [importer.parents[level - 1]] if level <= len(importer.parents) else []
        else:
            bases = [p for p in importer.parents if p.is_relative_to(self.rootpath)]
            bases.append(self.rootpath / "src")
        parts = [p for p in module.split(".") if p]
        for base in bases:
            stem = base.joinpath(*parts)
            for candidate in ((stem / "__init__.py",) if not parts else
                              (stem.with_name(stem.name + ".py"), stem / "__init__.py")):
                if candidate != importer and candidate.is_relative_to(self.rootpath) and candidate.is_file():
                    yield candidate
                    break


def _names_marker(tree: ast.Module) -> bool:
    """True when the tree holds an attribute ``model_gate`` or the string ``"model_gate"``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == MARKER_NAME:
            return True
        if isinstance(node, ast.Constant) and node.value == MARKER_NAME:
            return True
        if isinstance(node, ast.alias) and (node.name == MARKER_NAME or node.asname == MARKER_NAME):
            return True
    return False
