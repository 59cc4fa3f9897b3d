"""The demo's master: its configuration, and how the demo watches it (on a fake clock)."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import Any

from twisted.internet import defer, task
from twisted.trial import unittest

from buildbot_jira.reporters import JiraBuildReporter, JiraDeploymentReporter, JiraDevInfoReporter
from buildbot_jira.steps import JiraFeatureFlag
from buildbot_jira.tools import demo
from buildbot_jira.tools.demo_master import Interrupted, LogTail, master_config, wait_until
from buildbot_jira.tools.demo_scenario import BUILDBOT_URL, STEP_PATTERN


class WaitTests(unittest.SynchronousTestCase):
    def wait(
        self, condition: Callable[[], bool], clock: task.Clock, deadline: float
    ) -> tuple[defer.Deferred[bool], defer.Deferred[None]]:
        stopping: defer.Deferred[None] = defer.Deferred()
        waiting = defer.Deferred.fromCoroutine(
            wait_until(condition, reactor=clock, deadline=deadline, stopping=stopping)
        )
        return waiting, stopping

    def test_the_demo_gives_up_at_its_deadline(self) -> None:
        # The promise a user sees: ``demo --once`` ends within about a minute,
        # because every wait ends at DEADLINE seconds of the reactor's clock.
        self.assertLessEqual(demo.DEADLINE, 50)
        clock = task.Clock()
        waiting, _ = self.wait(lambda: False, clock, clock.seconds() + demo.DEADLINE)
        for _ in range(int(demo.DEADLINE)):
            clock.advance(1)
        self.assertNoResult(waiting)  # at the deadline itself it still waits
        clock.advance(1)
        self.assertIs(self.successResultOf(waiting), False)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_a_condition_that_holds_ends_the_wait_at_once(self) -> None:
        clock = task.Clock()
        done = [False]
        waiting, _ = self.wait(lambda: done[0], clock, 10.0)
        clock.advance(1)
        self.assertNoResult(waiting)
        done[0] = True
        clock.advance(0.1)
        self.assertIs(self.successResultOf(waiting), True)

    def test_ctrl_c_interrupts_the_wait(self) -> None:
        clock = task.Clock()
        waiting, stopping = self.wait(lambda: False, clock, 10.0)
        stopping.callback(None)
        clock.advance(0.1)
        self.failureResultOf(waiting, Interrupted)


class LogTailTests(unittest.SynchronousTestCase):
    def event(self, text: str) -> dict[str, Any]:
        return {"log_format": "{text}", "text": text}

    def test_errors_start_at_the_first_line_that_tells_of_one(self) -> None:
        tail = LogTail(None)
        for text in ("starting", "Error in master.cfg", "because of this", ""):
            tail(self.event(text))
        self.assertEqual(tail.lines, ["starting", "Error in master.cfg", "because of this"])
        self.assertEqual(tail.errors(), ["Error in master.cfg", "because of this"])

    def test_only_the_last_lines_are_kept_and_verbose_prints_each(self) -> None:
        out = io.StringIO()
        tail = LogTail(out)
        for number in range(100):
            tail(self.event(f"line {number}"))
        self.assertEqual(len(tail.lines), 41)
        self.assertEqual(tail.lines[-1], "line 99")
        self.assertEqual(tail.errors(), [])
        self.assertEqual(out.getvalue().count("  | line "), 100)


class MasterConfigTests(unittest.SynchronousTestCase):
    def test_builders_schedulers_and_reporters(self) -> None:
        # That the reporters reach the simulator is what the demo command's
        # own test proves; here, the shape of the configuration.
        config = master_config(repository="/tmp/repository", jira_url="http://127.0.0.1:1")
        self.assertEqual(config["buildbotURL"], BUILDBOT_URL)
        self.assertEqual([b.name for b in config["builders"]], ["app", "release"])
        self.assertEqual([s.name for s in config["schedulers"]], ["branches", "release"])
        builds, deployments, devinfo = config["services"]
        self.assertIsInstance(builds, JiraBuildReporter)
        self.assertIsInstance(deployments, JiraDeploymentReporter)
        self.assertIsInstance(devinfo, JiraDevInfoReporter)
        self.assertEqual(
            (builds.name, deployments.name, devinfo.name),
            ("jira-builds", "jira-deployments", "jira-devinfo"),
        )
        release = config["builders"][1].factory.steps
        step_names = [step.kwargs.get("name") for step in release]
        deployments_steps = [name for name in step_names if re.match(STEP_PATTERN, name or "")]
        self.assertEqual(deployments_steps, ["deploy to staging", "deploy to production"])
        # The release ends by reporting its feature flag.
        self.assertIs(release[-1].step_class, JiraFeatureFlag)
        self.assertEqual(release[-1].kwargs["flag_key"], "new-checkout")
