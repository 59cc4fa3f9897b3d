"""What the demo reports at the end: what Jira holds, and what it lacks."""

from __future__ import annotations

import unittest

from buildbot_jira.simulator import JiraSimulator, StoredEntity
from buildbot_jira.tools import demo_summary
from buildbot_jira.tools.demo_scenario import EXPECTED, Expectation


class MissingTests(unittest.TestCase):
    def test_missing_names_what_jira_does_not_hold(self) -> None:
        simulator = JiraSimulator(known_projects=("DEMO",))
        build = {"issueKeys": ["DEMO-1"], "state": "successful", "updateSequenceNumber": 1}
        simulator.builds[("p", 1)] = StoredEntity(("p", 1), build)
        absent = demo_summary.missing(simulator)
        self.assertNotIn("successful build on DEMO-1", absent)
        self.assertIn("failed build on DEMO-2", absent)
        self.assertIn("successful deployment to production on DEMO-3", absent)
        self.assertEqual(len(absent), len(EXPECTED) - 1)

    def test_a_deployment_counts_only_in_its_environment(self) -> None:
        simulator = JiraSimulator(known_projects=("DEMO",))
        deployment = {
            "associations": [{"associationType": "issueIdOrKeys", "values": ["DEMO-3"]}],
            "state": "successful",
            "environment": {"id": "staging", "displayName": "staging", "type": "staging"},
            "updateSequenceNumber": 1,
        }
        simulator.deployments[("p", "staging", 1)] = StoredEntity(("p", "staging", 1), deployment)
        expected = (
            Expectation("DEMO-3", "deployment", "successful", "staging"),
            Expectation("DEMO-3", "deployment", "successful", "production"),
        )
        self.assertEqual(
            demo_summary.missing(simulator, expected),
            ["successful deployment to production on DEMO-3"],
        )


class SummaryTests(unittest.TestCase):
    def test_one_line_per_build_and_deployment_under_its_issue(self) -> None:
        issues = {
            "DEMO-1": {
                "builds": [
                    {
                        "displayName": "app #1",
                        "state": "successful",
                        "references": [{"commit": {"id": "abc"}}, {"ref": {"name": "feature/x"}}],
                    },
                    {"displayName": "app #2", "state": "failed"},
                ],
                "deployments": [
                    {
                        "displayName": "release #1 to production",
                        "state": "successful",
                        "environment": {"displayName": "prod", "type": "production"},
                    }
                ],
            }
        }
        self.assertEqual(
            demo_summary.summary_lines(issues),
            [
                "DEMO-1",
                f"  build       {'app #1':<28} {'successful':<12} feature/x",
                f"  build       {'app #2':<28} failed",
                f"  deployment  {'release #1 to production':<28} {'successful':<12} "
                "prod (production)",
            ],
        )

    def test_counts_are_in_words(self) -> None:
        simulator = JiraSimulator(known_projects=("DEMO",))
        self.assertEqual(demo_summary.counts(simulator), "0 builds and 0 deployments")
        simulator.builds[("p", 1)] = StoredEntity(("p", 1), {"issueKeys": ["DEMO-1"]})
        self.assertEqual(demo_summary.counts(simulator), "1 build and 0 deployments")
