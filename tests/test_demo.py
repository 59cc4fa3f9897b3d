"""``buildbot-jira demo``: the whole command as a user runs it, and its options."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import unittest

from buildbot_jira.tools import demo, demo_master, demo_repository, demo_scenario, demo_summary
from buildbot_jira.tools.cli import build_parser, run_demo


def command() -> list[str]:
    """The installed ``buildbot-jira`` script, or the module when it is not installed."""
    script = os.path.join(os.path.dirname(sys.executable), "buildbot-jira")
    return [script] if os.path.exists(script) else [sys.executable, "-m", "buildbot_jira.tools.cli"]


class DemoCommandTests(unittest.TestCase):
    def test_demo_once_reports_builds_and_deployments(self) -> None:
        # Nothing is served in this process: a blocking child is fine here.
        # How long the demo may take is its own DEADLINE, on the reactor's
        # clock (tests/test_demo_master.py); the timeout only stops a hang.
        done = subprocess.run(
            [*command(), "demo", "--once", "--port", "0"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        output = done.stdout + done.stderr
        self.assertEqual(done.returncode, 0, output)
        self.assertIn(
            "What Jira received (3 builds, 2 deployments, 3 commits and 1 feature flag):", output
        )
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
        commits = re.findall(r"^\s+commit\s+([0-9a-f]{7,})\s+(DEMO-\d)", summary, re.MULTILINE)
        self.assertEqual(sorted(key for _, key in commits), ["DEMO-1", "DEMO-2", "DEMO-3"], output)
        self.assertRegex(summary, r"flag\s+new-checkout\s+on\s+production at 25 %")
        self.assertIn("Every expected build, deployment, commit and flag was accepted.", output)
        # The links lead to a master that is gone, and the demo says so.
        self.assertIn(demo.link_note(), output)
        self.assertIn("which served no web UI and has stopped", demo.link_note())
        self.assertIn("(the check asks for the secret)", output)
        self.assertNotIn("$JIRA_CLIENT_SECRET", output)
        # Progress lines came while it worked, and it cleaned up after itself.
        self.assertIn("build app #2 finished: failure", output)
        workdir = re.search(r"working in (\S+)", output)
        assert workdir is not None
        self.assertFalse(os.path.exists(workdir.group(1)))


class DemoOptionsTests(unittest.TestCase):
    def test_options_and_their_defaults(self) -> None:
        args = build_parser().parse_args(["demo"])
        self.assertIs(args.command, run_demo)
        self.assertEqual((args.once, args.port, args.verbose), (False, 8099, False))
        args = build_parser().parse_args(["demo", "--once", "--port", "0", "--verbose"])
        self.assertEqual((args.once, args.port, args.verbose), (True, 0, True))

    def test_parts_stay_importable_from_the_command_module(self) -> None:
        self.assertIs(demo.make_repository, demo_repository.make_repository)
        self.assertIs(demo.missing, demo_summary.missing)
        self.assertIs(demo.summary_lines, demo_summary.summary_lines)
        self.assertIs(demo.master_config, demo_master.master_config)
        self.assertIs(demo.EXPECTED, demo_scenario.EXPECTED)
        self.assertIs(demo.DemoFailed, demo_scenario.DemoFailed)
        for name in demo.__all__:
            self.assertTrue(hasattr(demo, name), name)
