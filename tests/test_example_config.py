"""master.cfg.example is a complete configuration that Buildbot loads."""

from __future__ import annotations

import os
import shutil

from buildbot.config.master import FileLoader
from twisted.trial import unittest

from buildbot_jira.options import ReporterOptions
from buildbot_jira.reporters import JiraBuildReporter, JiraDeploymentReporter

EXAMPLE = os.path.join(os.path.dirname(__file__), os.pardir, "master.cfg.example")


def options(service: JiraBuildReporter | JiraDeploymentReporter) -> ReporterOptions:
    """The options that the service's arguments give, as its reconfigService parses them."""
    arguments = service.getConfigDict()
    return service.parse_options(*arguments["args"], **arguments["kwargs"])


class ExampleConfigTests(unittest.TestCase):
    def load(self) -> object:
        basedir = os.path.abspath(self.mktemp())
        os.makedirs(os.path.join(basedir, "secrets"))
        shutil.copy(EXAMPLE, os.path.join(basedir, "master.cfg"))
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
        self.patch(os, "environ", {**os.environ, "JIRA_SIMULATOR": "http://127.0.0.1:8099"})
        services = self.load().services  # type: ignore[attr-defined]
        self.assertEqual(options(services["jira-builds"]).site.api_url, "http://127.0.0.1:8099")
