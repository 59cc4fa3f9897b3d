"""The pure core (``mapping/`` and ``jira/model.py``) imports nothing that does I/O.

Checked two ways: statically, by following every import of those modules
through the package (parents included, as Python imports them), and by
importing them in a fresh interpreter and looking at what got loaded.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import unittest
from pathlib import Path

import buildbot_jira

PACKAGE_ROOT = Path(buildbot_jira.__file__).parent
CORE = sorted(
    ["buildbot_jira.jira.model", "buildbot_jira.jira.devinfo", "buildbot_jira.jira.batches"]
    + [f"buildbot_jira.mapping.{path.stem}" for path in (PACKAGE_ROOT / "mapping").glob("*.py")]
)
#: Modules of the plugin that talk to the reactor or the network.
FORBIDDEN_OWN = (
    "buildbot_jira.events",
    "buildbot_jira.jira.client",
    "buildbot_jira.jira.http",
    "buildbot_jira.jira.auth",
    "buildbot_jira.delivery",
    "buildbot_jira.reporters",
    "buildbot_jira.steps",
    "buildbot_jira.connection",
    "buildbot_jira.simulator",
    "buildbot_jira.tools",
)
#: Libraries that bring a reactor, a network or processes with them.
FORBIDDEN_EXTERNAL = (
    "twisted",
    "treq",
    "zope",
    "asyncio",
    "socket",
    "ssl",
    "subprocess",
    "threading",
    "http",
    "urllib.request",
)
#: Buildbot itself pulls in Twisted; only its table of result names is pure.
ALLOWED_BUILDBOT = ("buildbot.process.results",)


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def source_of(module: str) -> Path:
    relative = Path(*module.split("."))
    candidate = PACKAGE_ROOT.parent / relative.with_suffix(".py")
    return candidate if candidate.exists() else PACKAGE_ROOT.parent / relative / "__init__.py"


def imports_of(module: str) -> set[str]:
    """Every module that ``module`` imports, at any depth of its code."""
    path = source_of(module)
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                name = f"{base}.{alias.name}"
                if not within(base, ("buildbot_jira",)):
                    # A module or a name of one: either way, what is imported.
                    found.add(name)
                elif source_of(name).exists():
                    found.add(name)  # ``from package import module``
                else:
                    found.add(base)
    return found


def with_parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:end]) for end in range(1, len(parts) + 1)]


def reachable(roots: list[str]) -> tuple[set[str], set[str]]:
    """The plugin's modules that ``roots`` load, and the other modules they import."""
    own: set[str] = set()
    external: set[str] = set()
    pending = [parent for root in roots for parent in with_parents(root)]
    while pending:
        module = pending.pop()
        if module in own:
            continue
        own.add(module)
        for imported in imports_of(module):
            if within(imported, ("buildbot_jira",)):
                pending.extend(with_parents(imported))
            else:
                external.add(imported)
    return own, external


class PureCoreTests(unittest.TestCase):
    def test_the_core_modules_are_found(self) -> None:
        self.assertIn("buildbot_jira.mapping.keys", CORE)
        self.assertIn("buildbot_jira.mapping.builds", CORE)
        self.assertIn("buildbot_jira.mapping.deployments", CORE)
        self.assertIn("buildbot_jira.jira.model", CORE)

    def test_the_checker_sees_imports_of_every_kind(self) -> None:
        # The walk must see what it is meant to forbid, or it proves nothing.
        own, external = reachable(["buildbot_jira.jira.client"])
        self.assertTrue(any(within(name, ("twisted",)) for name in external), external)
        self.assertIn("buildbot_jira.jira.auth", own)  # through ``from ... import``
        self.assertIn("buildbot_jira.jira", own)  # the parent package runs first

    def test_core_imports_no_io_statically(self) -> None:
        own, external = reachable(CORE)
        self.assertEqual(
            sorted(name for name in own if within(name, FORBIDDEN_OWN)), [], "plugin modules"
        )
        self.assertEqual(
            sorted(name for name in external if within(name, FORBIDDEN_EXTERNAL)), [], "libraries"
        )
        buildbot = {name for name in external if within(name, ("buildbot",))}
        self.assertLessEqual(buildbot, set(ALLOWED_BUILDBOT))

    def test_core_loads_no_io_when_imported(self) -> None:
        program = (
            "import importlib, json, sys\n"
            f"for name in {CORE!r}:\n"
            "    importlib.import_module(name)\n"
            "print(json.dumps(sorted(sys.modules)))\n"
        )
        # A fresh interpreter: this one has loaded Twisted for other tests.
        done = subprocess.run(
            [sys.executable, "-c", program], capture_output=True, text=True, check=True
        )
        loaded = json.loads(done.stdout)
        self.assertEqual([name for name in loaded if within(name, ("twisted", "treq"))], [])
        self.assertEqual([name for name in loaded if within(name, FORBIDDEN_OWN)], [])
        self.assertIn("buildbot_jira.mapping.keys", loaded)
