"""How the devinfo reporter reads changes: in ID order, never past what it could not keep.

The reporter holds the job (a feed in memory here; the real one, on real
databases, is in ``tests/test_change_feed.py``) and queues what each change
becomes in a real outbox that sends to an in-memory Jira on a fake clock.
The job's position must never pass a change that is not safely in the
outbox: not at a gap in the change IDs (a change still being committed),
not when the outbox is full, not when its save failed, not when the change
could not be read.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

from buildbot.test.fake import fakemaster
from buildbot.test.reactor import TestReactorMixin
from twisted.internet import defer
from twisted.trial import unittest

from buildbot_jira.change_feed import GAP_GRACE, Gaps
from buildbot_jira.delivery.outbox import MemoryStore, Outbox
from buildbot_jira.delivery.store import Change
from buildbot_jira.devinfo_reporter import CLAIM_INTERVAL, JiraDevInfoReporter
from buildbot_jira.mapping.devinfo import ChangeFacts
from tests.outboxes import OutboxTestCase
from tests.support import captured_log, coroutine_test

SECRET = "s3cret-devinfo-client-secret"


def change(changeid: int) -> dict[str, Any]:
    """Change ``changeid`` as Buildbot's data API gives it, naming ``ABC-<changeid>``."""
    return {
        "changeid": changeid,
        "revision": f"{changeid:040x}",
        "branch": "main",
        "repository": "https://git.example.com/app.git",
        "codebase": "",
        "project": "app",
        "author": "Ann Example <ann@example.com>",
        "comments": f"ABC-{changeid} change {changeid}",
        "when_timestamp": 1_700_000_000 + changeid,
        "files": ["app.py"],
        "properties": {},
    }


class MemoryFeed:
    """The job as :class:`~buildbot_jira.change_feed.ChangeFeed` keeps it, in memory.

    ``changes`` are the visible changes by ID; reading one of ``unreadable`` fails.
    """

    def __init__(self, ids: Sequence[int]) -> None:
        self.changes = {changeid: change(changeid) for changeid in ids}
        self.unreadable: set[int] = set()
        self.at = 0
        self.held = False
        self.released = 0
        self.reads: list[int] = []

    async def claim(self) -> bool:
        self.held = True
        return True

    async def release(self) -> None:
        self.held = False
        self.released += 1

    async def position(self) -> int:
        return self.at

    async def advance(self, changeid: int) -> bool:
        assert changeid > self.at, (changeid, self.at)
        self.at = changeid
        return True

    async def change_ids_after(self, changeid: int, limit: int) -> list[int]:
        return sorted(i for i in self.changes if i > changeid)[:limit]

    async def read_change(self, changeid: int) -> dict[str, Any] | None:
        self.reads.append(changeid)
        if changeid in self.unreadable:
            raise ConnectionError("the database went away")
        return self.changes.get(changeid)


class DrainTests(OutboxTestCase):
    def start(self, ids: Sequence[int], **outbox: Any) -> tuple[JiraDevInfoReporter, MemoryFeed]:
        """A reporter that holds the job of changes ``ids``, with a started outbox."""
        box = self.make(**outbox)
        feed = MemoryFeed(ids)
        reporter = JiraDevInfoReporter(
            name="jira-devinfo",
            site="example.atlassian.net",
            client_id="client",
            client_secret=SECRET,
        )
        reporter.options = JiraDevInfoReporter.parse_options(
            "example.atlassian.net", "client", SECRET
        )
        master = SimpleNamespace(
            reactor=self.clock, config=SimpleNamespace(buildbotURL="http://ci.example.com/")
        )
        reporter.parent = SimpleNamespace(master=master)  # type: ignore[assignment]
        reporter.outbox = box
        reporter._feed = feed  # type: ignore[assignment]
        reporter._changes = object()  # following changes, as after start_delivery
        self.addCleanup(setattr, reporter, "_changes", None)
        return reporter, feed

    def drain(self, reporter: JiraDevInfoReporter) -> None:  # type: ignore[override]
        """Read the changes now, as a new change's event does."""
        reporter.drain_soon()
        self.assertTrue(reporter.idle, "a read of changes waits on the fake clock")

    def sent(self) -> list[str]:
        """The commit messages that Jira was sent, in order."""
        return [
            commit["message"]
            for submission in self.jira.submissions
            for repository in submission.payloads
            for commit in repository.get("commits", ())
        ]

    def messages(self, ids: Sequence[int]) -> list[str]:
        return [f"ABC-{n} change {n}" for n in ids]

    def test_changes_go_in_order_and_the_job_moves_past_them(self) -> None:
        reporter, feed = self.start([1, 2, 3])
        self.drain(reporter)
        self.clock.advance(0)
        self.assertEqual(feed.at, 3)
        self.assertEqual(self.sent(), self.messages([1, 2, 3]))

    def test_a_gap_in_the_ids_stops_the_read_until_the_change_commits(self) -> None:
        reporter, feed = self.start([1, 2, 4, 5])
        self.drain(reporter)
        self.clock.advance(0)
        self.assertEqual(feed.at, 2, "the job stops before the missing change 3")
        self.assertEqual(self.sent(), self.messages([1, 2]))
        # Change 3 commits before the grace ends: the retry sends it, then the rest.
        self.clock.advance(GAP_GRACE / 2)
        feed.changes[3] = change(3)
        self.clock.advance(GAP_GRACE / 2)
        self.assertEqual(feed.at, 5)
        self.assertEqual(self.sent(), self.messages([1, 2, 3, 4, 5]))

    def test_a_gap_that_stays_open_for_the_grace_is_passed_over(self) -> None:
        reporter, feed = self.start([1, 2, 4])
        self.drain(reporter)
        self.clock.advance(GAP_GRACE - 0.5)
        self.drain(reporter)  # a new change's event, before the grace ends
        self.assertEqual(feed.at, 2)
        self.clock.advance(0.5)  # the retry that the gap scheduled
        self.assertEqual(feed.at, 4)
        self.assertEqual(self.sent(), self.messages([1, 2, 4]))

    def test_a_full_outbox_holds_changes_back_instead_of_dropping_them(self) -> None:
        # Jira answers after 5 s; an outbox of 30 has room for 10 changes of 3 updates.
        reporter, feed = self.start(range(1, 41), cap=30, delay=5.0)
        self.drain(reporter)
        self.assertLessEqual(len(reporter.outbox or ()), 30)
        self.assertLess(feed.at, 40, "changes wait while the outbox is full")
        for _ in range(20):  # the poll's reads, while Jira takes what waits
            self.clock.advance(CLAIM_INTERVAL)
            self.drain(reporter)
        self.clock.advance(60)
        self.assertEqual(feed.at, 40)
        assert reporter.outbox is not None
        self.assertEqual(reporter.outbox.dropped, 0)
        self.assertEqual(sorted(self.sent()), sorted(self.messages(range(1, 41))))

    def test_the_job_does_not_move_past_updates_that_the_outbox_dropped(self) -> None:
        reporter, feed = self.start([1, 2, 3, 4], delay=5.0)
        outbox = reporter.outbox
        assert outbox is not None
        original = reporter.report_change

        async def then_shrink(facts: ChangeFacts) -> int:
            count = await original(facts)
            outbox.cap = 1  # shrunk under the read: the next change's update is dropped
            return count

        reporter.report_change = then_shrink  # type: ignore[method-assign]
        with captured_log() as lines:
            self.drain(reporter)
        self.assertGreater(outbox.dropped, 0)
        self.assertEqual(feed.at, 0)
        self.assertTrue(any("could not keep changes 1 to 4" in line for line in lines), lines)
        reporter.report_change = original  # type: ignore[method-assign]
        outbox.cap = 30
        self.clock.advance(5)
        self.drain(reporter)  # the next read makes the dropped updates again
        self.clock.advance(10)
        self.assertEqual(feed.at, 4)
        self.assertEqual(sorted(self.sent()), self.messages([1, 2, 3, 4]), "each once")

    def test_a_failed_save_keeps_the_job_where_it_stood(self) -> None:
        class FailsOnce(MemoryStore):
            async def write(self, changes: Sequence[Change]) -> None:
                if not self.writes:
                    self.writes += 1
                    raise OSError("disk full")
                await super().write(changes)

        store = FailsOnce()
        reporter, feed = self.start([1, 2], store=store, delay=1.0)
        with captured_log():
            self.drain(reporter)
        self.assertEqual(feed.at, 0, "unsaved work must not move the job")
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)
        self.drain(reporter)  # the next read saves what waits, then moves on
        self.assertEqual(feed.at, 2)
        self.clock.advance(5)
        self.assertEqual(self.sent(), self.messages([1, 2]), "each commit once")

    def test_a_change_that_cannot_be_read_stops_the_read_and_is_read_again(self) -> None:
        reporter, feed = self.start([1, 2, 3, 4, 5])
        feed.unreadable = {3}
        with captured_log() as lines:
            self.drain(reporter)
        self.assertEqual(feed.at, 2)
        self.assertTrue(any("could not read change 3" in line for line in lines), lines)
        self.assertEqual(len(self.flushLoggedErrors(ConnectionError)), 1)
        feed.unreadable = set()
        self.drain(reporter)
        self.clock.advance(0)
        self.assertEqual(feed.at, 5)
        self.assertEqual(self.sent(), self.messages([1, 2, 3, 4, 5]))

    def test_a_change_that_cannot_be_mapped_is_logged_and_passed_over(self) -> None:
        reporter, feed = self.start([1, 2, 3])
        feed.changes[2]["changeid"] = "not a number"
        with captured_log() as lines:
            self.drain(reporter)
        self.clock.advance(0)
        self.assertEqual(feed.at, 3)
        self.assertEqual(self.sent(), self.messages([1, 3]))
        self.assertTrue(any("could not report change 2" in line for line in lines), lines)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)
        self.assertFalse(any(SECRET in line for line in lines))

    def test_an_idle_reporter_gives_the_job_up(self) -> None:
        reporter, feed = self.start([1, 2])
        feed.held = True
        reporter.idle_reason = "jira-devinfo: the secret 'jira' cannot be rendered"
        self.drain(reporter)
        self.assertEqual((feed.held, feed.released, feed.at, feed.reads), (False, 1, 0, []))


class GapTests(unittest.TestCase):
    def test_ids_that_follow_each_other_are_all_usable(self) -> None:
        self.assertEqual(Gaps().usable(4, [5, 6, 7], now=0), ([5, 6, 7], None))

    def test_a_gap_is_waited_for_from_when_it_was_first_seen(self) -> None:
        gaps = Gaps(grace=10)
        self.assertEqual(gaps.usable(4, [5, 7], now=100), ([5], 10))
        self.assertEqual(gaps.usable(5, [7, 8], now=104), ([], 6))
        self.assertEqual(gaps.usable(5, [7, 8], now=110), ([7, 8], None))

    def test_a_filled_gap_is_forgotten_and_a_later_one_waits_its_own_grace(self) -> None:
        gaps = Gaps(grace=10)
        self.assertEqual(gaps.usable(0, [2], now=0), ([], 10))
        self.assertEqual(gaps.usable(0, [1, 2, 4], now=5), ([1, 2], 10))
        self.assertEqual(gaps.usable(2, [4], now=12), ([], 3))
        self.assertEqual(gaps.usable(2, [4], now=15), ([4], None))


class StartTests(TestReactorMixin, unittest.TestCase):
    def setUp(self) -> None:
        self.setup_test_reactor()

    @coroutine_test
    async def test_a_database_that_fails_at_start_is_logged_and_tried_again(self) -> None:
        master = await fakemaster.make_master(self, wantDb=True, wantData=True, wantMq=True)
        reporter = JiraDevInfoReporter(
            name="jira-devinfo", site="example.atlassian.net", client_id="c", client_secret=SECRET
        )
        reporter.parent = SimpleNamespace(master=master)  # type: ignore[assignment]
        reporter.options = JiraDevInfoReporter.parse_options("example.atlassian.net", "c", SECRET)
        reporter.outbox = Outbox(
            client=SimpleNamespace(site="example.atlassian.net"),  # type: ignore[arg-type]
            store=MemoryStore(),
            clock=self.reactor,
            name="jira-devinfo",
        )
        working = master.db.state.getObjectId
        calls: list[str] = []

        def broken(*args: Any) -> defer.Deferred[int]:
            calls.append("getObjectId")
            if len(calls) == 1:
                return defer.fail(ConnectionError("the database is not up yet"))
            result: defer.Deferred[int] = working(*args)
            return result

        master.db.state.getObjectId = broken
        with captured_log() as lines:
            await reporter.start_delivery()
        self.assertIsNone(reporter._changes, "not following changes yet")
        self.assertTrue(any("could not start following changes" in line for line in lines))
        self.assertEqual(len(self.flushLoggedErrors(ConnectionError)), 1)
        self.reactor.advance(CLAIM_INTERVAL)
        self.assertEqual(len(calls), 2)
        self.assertIsNotNone(reporter._changes, "the poll tried again and follows changes")
        self.assertIsNotNone(reporter._claims)
        reporter.running = True  # as a started service is; the stop gives everything up
        await reporter.stopService()
        self.assertIsNone(reporter._changes)
