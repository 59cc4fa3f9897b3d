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
        key = ("r", "commits", "abc")
        simulator.devinfo_entities[key] = StoredEntity(key, {"issueKeys": ["DEMO-1"]})
        simulator.feature_flags["f"] = StoredEntity("f", {"issueKeys": ["DEMO-1"]})
        self.assertEqual(
            demo_summary.counts(simulator), "1 build, 0 deployments, 1 commit and 1 feature flag"
        )

    def test_commits_and_flags_have_a_line_each(self) -> None:
        issues = {
            "DEMO-3": {
                "commits": [{"displayId": "abc1234", "message": "DEMO-3: release 1.0\nmore"}],
                "featureFlags": [
                    {
                        "key": "new-checkout",
                        "details": [
                            {
                                "environment": {"name": "production"},
                                "status": {"enabled": True, "rollout": {"percentage": 25}},
                            },
                            {"environment": {"name": "staging"}, "status": {"enabled": False}},
                        ],
                    }
                ],
            }
        }
        self.assertEqual(
            demo_summary.summary_lines(issues),
            [
                "DEMO-3",
                f"  commit      {'abc1234':<28} DEMO-3: release 1.0",
                f"  flag        {'new-checkout':<28} {'on':<12} production at 25 %",
                f"  flag        {'new-checkout':<28} {'off':<12} staging",
            ],
        )

    def test_a_flag_counts_only_when_on_in_its_environment(self) -> None:
        simulator = JiraSimulator(known_projects=("DEMO",))
        flag = {
            "key": "new-checkout",
            "issueKeys": ["DEMO-3"],
            "details": [{"environment": {"name": "production"}, "status": {"enabled": False}}],
        }
        simulator.feature_flags["f"] = StoredEntity("f", flag)
        want = Expectation("DEMO-3", "flag", "on", "production")
        self.assertEqual(
            demo_summary.missing(simulator, [want]),
            ["feature flag new-checkout on in production on DEMO-3"],
        )
