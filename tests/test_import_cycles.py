"""The modules import one another in one direction: no circle between any two modules of the
project, counting imports inside functions (a lazy import hides a circle, it does not break
it). The layers between the apps are the import-linter contracts in pyproject.toml."""

from __future__ import annotations

import grimp
import networkx

APPS = ("opsconsole", "storefront", "notifications", "payments", "bookings", "recovery")


def import_circles() -> list[list[str]]:
    """Every group of modules that reach one another through their imports."""
    # An import only the type checker reads never runs, so it cannot make a circle.
    graph = grimp.build_graph(*APPS, cache_dir=None, exclude_type_checking_imports=True)
    imports = networkx.DiGraph(
        (module, imported)
        for module in graph.modules
        for imported in graph.find_modules_directly_imported_by(module)
    )
    return sorted(
        sorted(group) for group in networkx.strongly_connected_components(imports) if len(group) > 1
    )


def test_no_module_imports_itself_through_another():
    assert import_circles() == []
