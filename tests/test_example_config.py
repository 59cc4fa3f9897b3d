"""master.cfg.example is a complete configuration that Buildbot loads."""

from __future__ import annotations

import os

from buildbot.config.master import FileLoader
from twisted.trial import unittest

from buildbot_jira.options import ReporterOptions
from buildbot_jira.reporters import JiraBuildReporter, JiraDeploymentReporter

EXAMPLE = os.path.join(os.path.dirname(__file__), os.pardir, "master.cfg.example")


def options(service: JiraBuildReporter | JiraDeploymentReporter) -> ReporterOptions:
    """The options that the service's arguments give, as its reconfigService parses them."""
    arguments = service.getConfigDict()
    return service.parse_options(*arguments["args"], **arguments["kwargs"])


def example_text(**settings: str) -> str:
    """The example, with the settings at its top given new values (Python literals)."""
    with open(EXAMPLE, encoding="utf-8") as file:
        text = file.read()
    for name, value in settings.items():
        lines = [line for line in text.splitlines() if line.startswith(f"{name} = ")]
        assert len(lines) == 1, f"the example sets {name} once at its top"
        text = text.replace(lines[0], f"{name} = {value}")
    return text


class ExampleConfigTests(unittest.TestCase):
    def load(self, **settings: str) -> object:
        basedir = os.path.abspath(self.mktemp())
        os.makedirs(os.path.join(basedir, "secrets"))
        with open(os.path.join(basedir, "master.cfg"), "w", encoding="utf-8") as file:
            file.write(example_text(**settings))
        return FileLoader(basedir, "master.cfg").loadConfig()

    def test_example_loads_with_both_reporters(self) -> None:
        config = self.load()
        services = config.services  # type: ignore[attr-defined]
        self.assertIsInstance(services["jira-builds"], JiraBuildReporter)
        deployments = services["jira-deployments"]
        self.assertIsInstance(deployments, JiraDeploymentReporter)
        self.assertEqual(options(deployments).builders, ("deploy",))
        self.assertEqual(
            sorted(b.name for b in config.builders),  # type: ignore[attr-defined]
            ["deploy", "shop"],
        )

    def test_example_can_point_at_the_simulator(self) -> None:
        services = self.load(JIRA_SIMULATOR='"http://127.0.0.1:8099"').services  # type: ignore[attr-defined]
        self.assertEqual(options(services["jira-builds"]).site.api_url, "http://127.0.0.1:8099")

    def test_example_reads_no_environment_variable(self) -> None:
        # The master's environment reaches every build of its LocalWorker:
        # nothing the example needs may be exported to it.
        self.patch(os, "environ", {**os.environ, "JIRA_SIMULATOR": "http://127.0.0.1:8099"})
        services = self.load().services  # type: ignore[attr-defined]
        self.assertEqual(options(services["jira-builds"]).site.api_url, "https://api.atlassian.com")
        with open(EXAMPLE, encoding="utf-8") as file:
            text = file.read()
        self.assertNotIn("os.environ", text)
        self.assertNotIn("getenv", text)
        self.assertIn("START THE MASTER FROM A CLEAN ENVIRONMENT", text)

    def test_example_names_the_secrets_files_it_reads(self) -> None:
        with open(EXAMPLE, encoding="utf-8") as file:
            text = file.read()
        for name in ("jira-client-id", "jira-client-secret"):
            self.assertIn(f"secrets/{name}", text)
            self.assertIn(f'util.Secret("{name}")', text)
        self.assertIn("--client-secret-file secrets/jira-client-secret", text)
        self.assertIn("(sim-client-id, sim-client-secret)", text)
