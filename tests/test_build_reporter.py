"""RunningBuilds: the build reporter's memory of running builds, on a fake clock."""

from __future__ import annotations

from twisted.internet import task
from twisted.trial import unittest

from buildbot_jira.build_reporter import RunningBuilds
from buildbot_jira.jira.model import TestInfo
from buildbot_jira.mapping.builds import BuildSnapshot


def running(buildid: int = 10, *, passed: int | None = None) -> BuildSnapshot:
    """A running build; ``passed`` tests (none failed) when given."""
    return BuildSnapshot(
        buildid=buildid,
        number=7,
        builderid=2,
        builder_name="app",
        masterid=1,
        url="http://ci.example.com/#/builders/2/builds/7",
        state_string="building",
        results=None,
        complete=False,
        test_counts=None if passed is None else TestInfo(passed=passed, failed=0),
    )


class RunningBuildsTests(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = task.Clock()
        self.builds = RunningBuilds(self.clock)
        self.updates: list[int] = []

    def schedule(self, snapshot: BuildSnapshot, interval: float = 5.0) -> None:
        self.builds.schedule(snapshot, interval, lambda: self.updates.append(snapshot.buildid))

    def test_new_counts_are_sent_once_the_interval_has_passed(self) -> None:
        self.builds.sent(10, None)
        self.clock.advance(2)
        self.schedule(running(passed=3))
        self.schedule(running(passed=4))  # one update waits already: no second one
        self.clock.advance(2.9)
        self.assertEqual(self.updates, [])
        self.clock.advance(0.1)
        self.assertEqual(self.updates, [10])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_nothing_is_scheduled_for_unsent_builds_or_unchanged_counts(self) -> None:
        self.schedule(running(passed=3))  # never sent: it names no issue
        self.builds.sent(10, TestInfo(passed=3, failed=0))
        self.schedule(running(passed=3))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_a_finished_build_cancels_its_update_and_takes_no_more(self) -> None:
        self.builds.sent(10, None)
        self.schedule(running(passed=3))
        self.builds.finish(10)
        self.assertTrue(self.builds.finished(10))
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.schedule(running(passed=4))
        self.clock.advance(60)
        self.assertEqual(self.updates, [])

    def test_cancel_all_stops_every_pending_update(self) -> None:
        for buildid in (10, 11):
            self.builds.sent(buildid, None)
            self.schedule(running(buildid, passed=1))
        self.builds.cancel_all()
        self.clock.advance(60)
        self.assertEqual(self.updates, [])
