"""How the package's modules depend on each other, read from their source.

No module imports, even indirectly, one that imports it back; the issue
view renders values and reads nothing of the simulator; the plugin never
imports the simulator or the tools; and the simulator's modules stay small.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

import buildbot_jira

PACKAGE = Path(buildbot_jira.__file__).resolve().parent
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported(name: str, path: Path) -> Iterator[str]:
    """The modules of the package that ``name`` imports, at any level of its code."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            # ``from package import module`` depends on that module itself.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        else:
            continue
        yield from (t for t in targets if t in MODULES)


GRAPH: dict[str, set[str]] = {
    name: set(imported(name, path)) - {name} for name, path in MODULES.items()
}


def find_cycle(graph: Mapping[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a path that ends where it starts, if there is one."""
    done: set[str] = set()
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        if node in stack:
            return [*stack[stack.index(node) :], node]
        if node in done:
            return None
        stack.append(node)
        for target in sorted(graph[node]):
            cycle = visit(target)
            if cycle:
                return cycle
        stack.pop()
        done.add(node)
        return None

    for start in sorted(graph):
        cycle = visit(start)
        if cycle:
            return cycle
    return None


def test_the_graph_is_read_from_the_source() -> None:
    # The check below proves nothing if the imports were not found.
    assert "buildbot_jira.simulator.api" in GRAPH["buildbot_jira.simulator.core"]
    assert "buildbot_jira.simulator.links" in GRAPH["buildbot_jira.simulator.core"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_module_of_the_package_is_part_of_an_import_cycle() -> None:
    assert find_cycle(GRAPH) is None


def test_the_issue_view_only_renders() -> None:
    # The view and its parts import, of the simulator, only one another; of the
    # plugin, only the pure model.
    parts = {name for name in GRAPH if name.startswith("buildbot_jira.simulator.issue_view")}
    assert {
        "buildbot_jira.simulator.issue_view_assets",
        "buildbot_jira.simulator.issue_view_devinfo",
        "buildbot_jira.simulator.issue_view_flags",
        "buildbot_jira.simulator.issue_view_html",
    } < parts
    allowed = parts | {"buildbot_jira.jira.model"}
    outside = {
        name: sorted(t for t in GRAPH[name] if t.startswith("buildbot_jira.") and t not in allowed)
        for name in sorted(parts)
    }
    assert {name: targets for name, targets in outside.items() if targets} == {}


def test_the_plugin_never_imports_the_simulator_or_the_tools() -> None:
    apart = ("buildbot_jira.simulator", "buildbot_jira.tools")
    plugin = [name for name in GRAPH if not name.startswith(apart)]
    assert "buildbot_jira.reporters" in plugin
    offenders = {
        name: sorted(t for t in GRAPH[name] if t.startswith(apart))
        for name in plugin
        if any(t.startswith(apart) for t in GRAPH[name])
    }
    assert offenders == {}


def test_the_simulators_modules_stay_small() -> None:
    sizes = {
        name: len(path.read_text("utf-8").splitlines())
        for name, path in MODULES.items()
        if name.startswith("buildbot_jira.simulator")
    }
    assert len(sizes) > 10
    assert {name: size for name, size in sizes.items() if size > MAX_LINES} == {}
