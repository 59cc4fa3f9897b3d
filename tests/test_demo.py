"""``buildbot-jira demo``: the whole command as a user runs it, and its parts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
import unittest

from buildbot_jira.simulator import JiraSimulator, StoredEntity
from buildbot_jira.tools import demo


def command() -> list[str]:
    """The installed ``buildbot-jira`` script, or the module when it is not installed."""
    script = os.path.join(os.path.dirname(sys.executable), "buildbot-jira")
    return [script] if os.path.exists(script) else [sys.executable, "-m", "buildbot_jira.tools.cli"]


class DemoCommandTests(unittest.TestCase):
    def test_demo_once_reports_builds_and_deployments(self) -> None:
        started = time.monotonic()
        # Nothing is served in this process: a blocking child is fine here.
        done = subprocess.run(
            [*command(), "demo", "--once", "--port", "0"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        elapsed = time.monotonic() - started
        output = done.stdout + done.stderr
        self.assertEqual(done.returncode, 0, output)
        self.assertLess(elapsed, 60, output)
        self.assertIn("What Jira received (3 builds and 2 deployments):", output)
        summary = output.split("What Jira received")[1]
        builds = re.findall(r"^\s+build\s+(\S+ #\d+)\s+(\w+)", summary, re.MULTILINE)
        deployments = re.findall(
            r"^\s+deployment\s+.+?\s(successful|failed)\s+(\w+) \((\w+)\)$", summary, re.MULTILINE
        )
        self.assertGreaterEqual(len(builds), 2, output)
        self.assertGreaterEqual(len(deployments), 2, output)
        self.assertEqual(
            {state for _, state in builds}, {"successful", "failed"}, "one passes, one fails"
        )
        self.assertIn(("successful", "staging", "staging"), deployments)
        self.assertIn(("successful", "production", "production"), deployments)
        self.assertIn("Every expected build and deployment was accepted.", output)
        # Progress lines came while it worked, and it cleaned up after itself.
        self.assertIn("build app #2 finished: failure", output)
        workdir = re.search(r"working in (\S+)", output)
        assert workdir is not None
        self.assertFalse(os.path.exists(workdir.group(1)))


class DemoPartsTests(unittest.TestCase):
    def test_repository_branches_and_commits_name_the_issues(self) -> None:
        with tempfile.TemporaryDirectory() as root:
            changes = demo.make_repository(os.path.join(root, "repository"))
        self.assertEqual(
            [(c.branch, c.comments) for c in changes],
            [
                ("feature/DEMO-1-login", "DEMO-1: add login"),
                ("bugfix/DEMO-2-crash", "DEMO-2: test the crash on a missing name"),
                ("release", "DEMO-3: release 1.0"),
            ],
        )
        for change in changes:
            self.assertRegex(change.revision, r"^[0-9a-f]{40}$")
            self.assertTrue(change.files)

    def test_missing_names_what_jira_does_not_hold(self) -> None:
        simulator = JiraSimulator(known_projects=("DEMO",))
        build = {"issueKeys": ["DEMO-1"], "state": "successful", "updateSequenceNumber": 1}
        simulator.builds[("p", 1)] = StoredEntity(("p", 1), build)
        absent = demo.missing(simulator)
        self.assertNotIn("successful build on DEMO-1", absent)
        self.assertIn("failed build on DEMO-2", absent)
        self.assertIn("successful deployment to production on DEMO-3", absent)
        self.assertEqual(len(absent), len(demo.EXPECTED) - 1)
