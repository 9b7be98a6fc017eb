"""The code's layout follows the data flow, and imports point one way.

calendars → schedule → tasks → (brain, logs) → run → watch → use cases → cli, with
the shared base (runner/*.py: errors, clock, home, fsutil, ...) below everything. A
module may import its own layer or a lower one, never a higher one, and the module
graph (imports inside functions included: laziness is fine, dodging a cycle is not)
has no cycle. Imports under `if TYPE_CHECKING:` are for mypy only and not counted.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "runner"

# Lower number, lower layer. Packages by their first name under runner/; top-level
# modules not listed here are the shared base (layer 0).
LAYERS = {
    "calendars": 1,
    "schedule": 2,
    "tasks": 3,
    "brain": 4,
    "logs": 4,
    "tools": 4,
    "deliver": 4,
    "run": 5,
    "watch": 6,
    "check": 7,
    "init": 7,
    "listing": 7,
    "service": 7,
    "schema": 7,
    "cli": 8,
    "__main__": 9,
}

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
# Known to be too long, each to be split along its seam; the list only shrinks.
TOO_LONG_YET: set[str] = set()  # empty: every function fits; keep it so


def layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.get(parts[1], 0) if len(parts) > 1 else 0


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports_of(module: str, source: str, known: set[str]) -> set[str]:
    """The runner modules `module` imports (anywhere but under TYPE_CHECKING)."""
    tree = ast.parse(source)
    skip = _type_checking_lines(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", 0) in skip:
            continue
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{module}: relative import; use runner.… paths"
            base = node.module or ""
            # `from runner.tasks import files` names a module; `from x import y` a name.
            names = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            ]
        found.update(n for n in names if n in known and n != module)
    return found


def violations(sources: dict[str, str]) -> list[str]:
    """Every import against the layer rule, and every cycle, in `sources`."""
    known = set(sources)
    graph = {m: imports_of(m, text, known) for m, text in sources.items()}
    found = [
        f"{m} (layer {layer(m)}) imports {d} (layer {layer(d)})"
        for m, deps in sorted(graph.items())
        for d in sorted(deps)
        if layer(d) > layer(m)
    ]
    found += [f"import cycle: {' → '.join(c)}" for c in cycles(graph)]
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for dep in sorted(graph[node]):
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on_stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return out


def tree_sources() -> dict[str, str]:
    sources: dict[str, str] = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        module = ".".join(parts).removesuffix(".__init__")
        sources[module] = path.read_text(encoding="utf-8")
    return sources


def test_imports_follow_the_data_flow() -> None:
    assert violations(tree_sources()) == []


def test_the_rule_catches_a_wrong_import_and_a_cycle() -> None:
    """The checker itself: a schedule module importing run, and a two-module cycle."""
    sources = {
        "runner.errors": "",
        "runner.schedule.expand": "from runner.run.plan import plan_due\n",
        "runner.run.plan": "def f():\n    from runner.run.series import x\n",
        "runner.run.series": "from runner.run import plan\n",
    }
    found = violations(sources)
    assert "runner.schedule.expand (layer 2) imports runner.run.plan (layer 5)" in found
    assert "import cycle: runner.run.plan → runner.run.series" in found
    typing_only = {
        "runner.errors": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    from runner.cli.main import cli\n",
        "runner.cli.main": "",
    }
    assert violations(typing_only) == []


def test_modules_and_functions_stay_small() -> None:
    long: list[str] = []
    for module, text in tree_sources().items():
        lines = text.count("\n")
        if lines > MAX_MODULE_LINES:
            long.append(f"{module}: {lines} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                if size > MAX_FUNCTION_LINES and f"{module}.{node.name}" not in TOO_LONG_YET:
                    long.append(f"{module}.{node.name}: {size} lines")
    assert long == [], "split these along their seams"


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_every_layer_exists(name: str) -> None:
    assert (ROOT / name).is_dir() or (ROOT / f"{name}.py").is_file()
