"""The package's floor plan, read from the source: module-level imports never run in a circle
(between folders, nor between modules), and Ray is imported only where a search meets it."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "poptune"

# Where a search meets Ray (docs/design.md): a new module here must be a deliberate choice.
RAY_MODULES = {
    "poptune.analysis.results",  # the reader of Tune's results
    "poptune.cluster._probe_child",
    "poptune.cluster.session",  # joining a cluster, or starting a private Ray
    "poptune.compat.ray_compat",  # Ray's private names: Ray core's, and the version check
    "poptune.compat.ray_tune_compat",  # and Ray Tune's
    "poptune.estimate.clock",  # the estimate's search clock, a Tune callback
    "poptune.driver.finished",
    "poptune.driver.progress",
    "poptune.driver.resources",
    "poptune.driver.resume",
    "poptune.driver.runner",
    "poptune.driver.scheduling",
    "poptune.driver.searcher",
    "poptune.driver.tensorboard",
    "poptune.driver.trial_logs",  # Tune's JSON and CSV loggers, kept on a restart
    "poptune.driver.tune_config",  # the trainable, searcher and scheduler Tune runs
    "poptune.driver.tuner",
    "poptune.tracking.callback",  # the MLflow trial callback
    "poptune.trainables.trainable",  # the trainable
}


def _modules() -> dict[str, ast.Module]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = ast.parse(path.read_text(), str(path))
    return found


def _imported(nodes) -> set[str]:
    """Every module name the import statements among ``nodes`` name (``from a import b`` names
    ``a`` and ``a.b``: b may be a module)."""
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` (its nodes in order), or None."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        for target in sorted(graph.get(node, ())):
            if found := visit(target, [*path, node]):
                return found
        done.add(node)
        return None

    return next((c for node in sorted(graph) if (c := visit(node, []))), None)


def _module_level_graph(modules: dict[str, ast.Module]) -> dict[str, set[str]]:
    # Module level only: an import inside a function runs when it is called, after every module
    # has loaded (the lazy top-level names, `poptune.search(...)`); one under TYPE_CHECKING never.
    return {
        name: {t for t in _imported(tree.body) if t in modules and t != name}
        for name, tree in modules.items()
    }


def _folder(module: str) -> str:
    """The room a module is in: its sub-package of poptune, or itself at the top."""
    return ".".join(module.split(".")[:2])


def test_module_level_imports_run_in_no_circle_between_modules_or_folders():
    modules = _modules()
    graph = _module_level_graph(modules)
    assert _cycle(graph) is None, _cycle(graph)
    folders: dict[str, set[str]] = {}
    for source, targets in graph.items():
        if source == "poptune":
            continue  # the package's own __init__ re-exports, lazily, from the rooms below
        for target in targets - {"poptune"}:
            if _folder(source) != _folder(target):
                folders.setdefault(_folder(source), set()).add(_folder(target))
    assert _cycle(folders) is None, f"folders import each other: {' -> '.join(_cycle(folders))}"


def test_the_cycle_finder_finds_a_circle_and_only_a_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _folder("poptune.cluster.capacity") == "poptune.cluster"
    assert _folder("poptune.errors") == "poptune.errors"


def test_ray_is_imported_only_where_a_search_meets_it():
    importing = {
        name
        for name, tree in _modules().items()
        if any(n == "ray" or n.startswith("ray.") for n in _imported(ast.walk(tree)))
    }
    assert importing == RAY_MODULES


# The orchestrators docs/design.md names: each reads as the steps of its command, in order, and
# may be longer than a function that does one thing.
ORCHESTRATORS = {
    "poptune.driver.runner.run_search": "`runner.run_search` (the orchestrator",
    "poptune.analysis.analyze.analyze": "`analyze` (the one orchestrator",
}
MOST_LINES_A_MODULE = 250
MOST_LINES_A_FUNCTION = 60


def test_every_folder_says_its_one_concept():
    silent = [
        name
        for name, tree in _modules().items()
        if (PACKAGE.parent / name.replace(".", "/") / "__init__.py").exists()
        and not ast.get_docstring(tree)
    ]
    assert silent == []


def test_modules_and_functions_stay_short_but_the_named_orchestrators():
    long_modules, long_functions = [], []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        if (count := text.count("\n")) > MOST_LINES_A_MODULE:
            long_modules.append(f"{path.relative_to(PACKAGE)}: {count} lines")
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MOST_LINES_A_FUNCTION and f"{module}.{node.name}" not in ORCHESTRATORS:
                    long_functions.append(f"{module}.{node.name}: {lines} lines")
    assert long_modules == [] and long_functions == []
    design = (PACKAGE.parent / "docs" / "design.md").read_text()
    assert [named for named in ORCHESTRATORS.values() if named not in design] == []
