"""The modules import one another in one direction: no circle between any two modules of the
project, counting imports inside functions (a lazy import hides a circle, it does not break
it). The layers between the apps are the import-linter contracts in pyproject.toml."""

from __future__ import annotations

import grimp

APPS = ("opsconsole", "notifications", "payments", "bookings", "recovery")


def import_circles() -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan's algorithm)."""
    # An import only the type checker reads never runs, so it cannot make a circle.
    graph = grimp.build_graph(*APPS, cache_dir=None, exclude_type_checking_imports=True)
    modules = sorted(m for m in graph.modules if not m.split(".")[-1].startswith("test"))
    index: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(module: str) -> None:
        # Iterative depth-first search: the import graph is deep enough for recursion limits.
        work = [(module, iter(sorted(graph.find_modules_directly_imported_by(module))))]
        index[module] = lowlink[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = lowlink[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append(
                        (child, iter(sorted(graph.find_modules_directly_imported_by(child))))
                    )
                    break
                if child in on_stack:
                    lowlink[node] = min(lowlink[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    lowlink[parent] = min(lowlink[parent], lowlink[node])
                if lowlink[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        circles.append(sorted(group))

    for module in modules:
        if module not in index:
            visit(module)
    return circles


def test_no_module_imports_itself_through_another():
    assert import_circles() == []
