"""Imports point one way (DESIGN.md): the core never reaches up into the trace or the views,
views never reach into the CLI, and each heavy framework has exactly one home.

The contract is read from the syntax tree of every module, so a docstring or comment that
mentions a package is not an import, and a lazy import inside a function is told apart from
one at module level.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import qwen3vl_inspect

PACKAGE = "qwen3vl_inspect"
ROOT = Path(qwen3vl_inspect.__file__).parent
HEAVY = ("transformers", "textual", "ipywidgets", "onnx", "onnxruntime", "onnxscript")


@dataclass(frozen=True)
class Import:
    module: str  # where the import is written, e.g. "qwen3vl_inspect.tui.controller"
    target: str  # what it imports, absolute, e.g. "qwen3vl_inspect.tracing"
    lazy: bool  # inside a function body: runs only when that function does
    type_only: bool  # under `if TYPE_CHECKING:`: never runs


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


class _ImportCollector(ast.NodeVisitor):
    def __init__(self, module: str, is_package: bool) -> None:
        self.module, self.is_package = module, is_package
        self.function_depth, self.type_checking_depth = 0, 0
        self.found: list[Import] = []

    def _add(self, target: str) -> None:
        self.found.append(Import(self.module, target, self.function_depth > 0, self.type_checking_depth > 0))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = _absolute(self.module, self.is_package, node)
        self._add(base)
        for alias in node.names:  # `from qwen3vl_inspect import tracing` imports a module too
            self._add(f"{base}.{alias.name}")

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.function_depth += 1
        self.generic_visit(node)
        self.function_depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = _function

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        is_type_checking = (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
        if not is_type_checking:
            self.generic_visit(node)
            return
        self.type_checking_depth += 1
        for child in node.body:
            self.visit(child)
        self.type_checking_depth -= 1
        for child in node.orelse:
            self.visit(child)


def _all_imports() -> list[Import]:
    found: list[Import] = []
    for path in sorted(ROOT.rglob("*.py")):
        collector = _ImportCollector(_module_name(path), path.name == "__init__.py")
        collector.visit(ast.parse(path.read_text(), filename=str(path)))
        found += collector.found
    return found


IMPORTS = _all_imports()


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _ours(*names: str) -> tuple[str, ...]:
    return tuple(f"{PACKAGE}.{name}" for name in names)


def _offenders(sources: tuple[str, ...], targets: tuple[str, ...], *, count_lazy: bool = True,
               count_type_only: bool = False) -> list[str]:
    return sorted({f"{i.module} imports {i.target}" for i in IMPORTS
                   if _within(i.module, sources) and _within(i.target, targets)
                   and (count_lazy or not i.lazy) and (count_type_only or not i.type_only)})


CORE = _ours("model", "inputs", "probe", "config", "errors", "formatting")
TRACE_AND_ABOVE = _ours("tracing", "stage", "attention_maps", "attention_store",
                        "stage_overlays", "session", "commands", "cli", "tui", "notebook", "render",
                        "export", "fusion", "teaching", "breakpoints", "comparison")
VIEWS = _ours("tui", "notebook", "render")


def test_the_collector_sees_imports():
    """A guard on the guard: a broken walk would make every contract below pass vacuously."""
    assert len(IMPORTS) > 300
    assert any(i.module == f"{PACKAGE}.tui.controller" and i.target.startswith(f"{PACKAGE}.tracing") for i in IMPORTS)
    assert any(i.lazy for i in IMPORTS) and any(i.type_only for i in IMPORTS)


def test_core_packages_do_not_import_the_trace_or_any_view():
    """model/, inputs/, probe/ and the small shared modules work without the layers built on them."""
    assert _offenders(CORE, TRACE_AND_ABOVE, count_type_only=True) == []


def test_views_never_import_the_command_line():
    """The TUI, notebooks and renderers reach shared set-up through session.py, not commands/."""
    assert _offenders(VIEWS, _ours("commands", "cli")) == []


def test_render_does_not_import_notebook_or_tui_types():
    assert _offenders(_ours("render"), _ours("notebook", "tui"), count_type_only=True) == []


@pytest.mark.parametrize("framework, home", [("textual", "tui"), ("ipywidgets", "notebook")])
def test_each_ui_framework_has_one_home(framework, home):
    assert _offenders((PACKAGE,), (framework,)) == [
        o for o in _offenders((PACKAGE,), (framework,)) if o.startswith(f"{PACKAGE}.{home}")]


def test_transformers_and_onnx_are_only_imported_lazily():
    """They are heavy and optional at run time: imported inside the functions that need them."""
    eager = _offenders((PACKAGE,), ("transformers", "onnx", "onnxruntime", "onnxscript"), count_lazy=False)
    assert eager == []


def test_import_does_not_pull_heavy_frameworks():
    """The end-to-end check of the contracts above, in a fresh interpreter."""
    code = (
        "import sys, qwen3vl_inspect\n"
        f"loaded = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"import qwen3vl_inspect loaded: {result.stdout.strip()}"
