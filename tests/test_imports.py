"""Imports inside the package point one way: no module imports, directly or through others, itself."""

import ast
import importlib
import pkgutil
from pathlib import Path

import mtl_teach

PACKAGE = Path(mtl_teach.__file__).parent
MODULES = sorted(m.name for m in pkgutil.iter_modules([str(PACKAGE)]))


def package_imports(module: str) -> set[str]:
    """The mtl_teach modules `module` imports anywhere except under `if TYPE_CHECKING:` (hints only)."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    hints_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for node in ast.walk(block)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in hints_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mtl_teach"):
            parts = node.module.split(".")
            found |= {parts[1]} if len(parts) > 1 else {alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("mtl_teach.")}
    return found & set(MODULES)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A list of modules that import each other in a circle, or None."""
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for child in sorted(graph[node]):
            if state.get(child) == "open":
                return path[path.index(child) :] + [child] if child in path else [node, child]
            if child not in state and (cycle := visit(child, [*path, child])):
                return cycle
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [start])):
            return cycle
    return None


def test_the_package_has_no_import_cycle():
    graph = {module: package_imports(module) - {module} for module in MODULES if module != "__main__"}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_cycle_finder_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_leaves_import_nothing_from_the_views_or_the_loop():
    """data, models, losses, grads, aggregators: the bottom layer (data may use losses' blog-post loss)."""
    views_and_loop = {"train", "registry", "strategies", "sweep", "live", "playground", "plots", "cli", "config"}
    views_and_loop |= {"distributed", "ddp_recipes"}  # they launch processes: nothing below may need them
    for leaf in ("data", "models", "losses", "grads", "aggregators", "style", "exercises"):
        assert package_imports(leaf) & views_and_loop == set(), leaf


def test_every_module_imports_on_its_own():
    for module in set(MODULES) - {"__main__"}:  # __main__ runs the command line
        importlib.import_module(f"mtl_teach.{module}")


def test_no_module_of_the_course_loop_imports_the_distributed_modules():
    """distributed.py and ddp_recipes.py sit beside the loop: they may import below, nothing imports them."""
    launchers = {"distributed", "ddp_recipes"}
    importers = {module for module in MODULES if module != "__main__" and package_imports(module) & launchers}
    assert importers <= launchers, importers
