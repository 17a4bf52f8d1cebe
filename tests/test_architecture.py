"""The import graph has no cycles: between apps, and between any two modules.

``lint-imports`` (run by ``make test``, contracts in pyproject.toml) checks the layers; a layers
contract says nothing about two modules of one layer importing each other, so this builds the
whole graph (imports inside functions included) and looks for strongly connected components.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

import grimp
import pytest

PACKAGES = ("core", "policies", "approvals", "reviewers", "evaluation", "config")


def import_cycles(graph: grimp.ImportGraph, modules: Iterable[str]) -> list[list[str]]:
    """Every group of modules that import each other, directly or around a circle (Tarjan)."""
    modules = sorted(modules)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in modules:
        if module not in index:
            visit(module)
    return cycles


def test_no_two_modules_import_each_other_even_around_a_circle():
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)

    assert import_cycles(graph, graph.modules) == []


def test_the_cycle_check_finds_a_circle_of_three_modules(tmp_path, monkeypatch):
    package = tmp_path / "circular"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from . import b\n")
    (package / "b.py").write_text("def f():\n    from .c import g  # inside a function counts too\n")
    (package / "c.py").write_text("import circular.a\n")
    (package / "d.py").write_text("from . import a\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    graph = grimp.build_graph("circular", cache_dir=None)

    assert import_cycles(graph, graph.modules) == [["circular.a", "circular.b", "circular.c"]]
    sys.modules.pop("circular", None)


@pytest.mark.parametrize("layer, above", [("core", "policies"), ("policies", "approvals"), ("approvals", "reviewers")])
def test_a_lower_layer_imports_nothing_above_it(layer, above):
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)

    assert graph.find_illegal_dependencies_for_layers(layers=(above, layer), containers=set()) == set()
