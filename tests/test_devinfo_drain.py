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

from buildbot.test import fakedb
from buildbot.test.fake import fakemaster
from buildbot.test.reactor import TestReactorMixin
from twisted.internet import defer
from twisted.trial import unittest

from buildbot_jira.change_feed import GAP_GRACE, ChangeFeed, Gaps
from buildbot_jira.credentials import UnrenderedCredential
from buildbot_jira.delivery.outbox import MemoryStore, Outbox
from buildbot_jira.devinfo_reporter import CLAIM_INTERVAL, JiraDevInfoReporter
from buildbot_jira.mapping.devinfo import ChangeFacts
from buildbot_jira.reporter_base import JiraReporterBase
from tests.outboxes import FirstWriteFails, OutboxTestCase
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
        self.release_fails = False
        self.reads: list[int] = []
        self.while_claiming: Any = None  # called during a claim

    async def claim(self) -> bool:
        if self.while_claiming is not None:
            self.while_claiming()
        self.held = True
        return True

    async def release(self, *, force: bool = False) -> None:
        if not (self.held or force):
            return
        if self.release_fails:
            raise ConnectionError("the database went away")
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
        # Change 3 commits before the grace ends: the next read sends it, then the rest.
        self.clock.advance(GAP_GRACE / 2)
        feed.changes[3] = change(3)
        self.drain(reporter)  # the new change's event
        self.clock.advance(0)
        self.assertEqual(feed.at, 5)
        self.assertEqual(self.sent(), self.messages([1, 2, 3, 4, 5]))
        self.clock.advance(GAP_GRACE)  # the retry finds nothing more to do
        self.assertEqual(self.sent(), self.messages([1, 2, 3, 4, 5]))

    def test_the_retry_of_a_gap_reads_again_without_any_event(self) -> None:
        reporter, feed = self.start([1, 3])
        self.drain(reporter)
        self.assertEqual(feed.at, 1)
        feed.changes[2] = change(2)
        self.clock.advance(GAP_GRACE)
        self.assertEqual(feed.at, 3)
        self.assertEqual(self.sent(), self.messages([1, 2, 3]))

    def test_no_retry_is_scheduled_once_the_reporter_stops_following(self) -> None:
        reporter, _ = self.start([1, 3])
        reporter._changes = None
        reporter._read_again_in(5.0)
        self.assertIsNone(reporter._retry)

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
        store = FirstWriteFails()
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

    def test_an_idle_reporter_gives_the_job_up_once(self) -> None:
        reporter, feed = self.start([1, 2])
        feed.held = True
        reporter.idle_reason = "jira-devinfo: the secret 'jira' cannot be rendered"
        self.drain(reporter)
        self.assertEqual((feed.held, feed.released, feed.at, feed.reads), (False, 1, 0, []))
        self.drain(reporter)
        self.assertEqual(feed.released, 1, "once given up, not again at every change")

    def test_a_reporter_that_goes_idle_during_a_claim_gives_the_job_straight_back(self) -> None:
        reporter, feed = self.start([1, 2])

        def reconfigured() -> None:
            reporter.idle_reason = "jira-devinfo: the secret 'jira' cannot be rendered"

        feed.while_claiming = reconfigured
        self.drain(reporter)
        self.assertEqual((feed.held, feed.released, feed.reads), (False, 1, []))

    @coroutine_test
    async def test_a_reporter_no_longer_idle_reads_the_changes_at_once(self) -> None:
        reporter, feed = self.start([1, 2])
        reporter.idle_reason = "jira-devinfo: the secret 'jira' cannot be rendered"

        async def configured(base: Any, options: Any) -> None:
            base.idle_reason = None  # what the base class does once the secret renders

        self.patch(JiraReporterBase, "apply_options", configured)
        await reporter.apply_options(reporter.options)  # type: ignore[arg-type]
        self.assertEqual(feed.at, 2, "no wait for the next poll")

    def test_an_idle_reporter_gives_up_a_job_it_held_before_a_restart(self) -> None:
        # After a restart this master does not know that the job still names it.
        reporter, feed = self.start([1, 2])
        reporter.idle_reason = "jira-devinfo: the secret 'jira' cannot be rendered"
        feed.release_fails = True
        with captured_log() as lines:
            self.drain(reporter)
        self.assertTrue(any("could not give up its job" in line for line in lines), lines)
        self.assertEqual(len(self.flushLoggedErrors(ConnectionError)), 1)
        feed.release_fails = False
        self.drain(reporter)  # tried again at the next change
        self.assertEqual((feed.released, feed.reads), (1, []))


class GapTests(unittest.TestCase):
    def test_ids_that_follow_each_other_are_all_usable(self) -> None:
        self.assertEqual(Gaps().usable(4, [5, 6, 7], now=0), ([5, 6, 7], None))

    def test_a_gap_is_waited_for_from_when_it_was_first_seen(self) -> None:
        gaps = Gaps(grace=10)
        self.assertEqual(gaps.usable(4, [5, 7], now=100), ([5], 10))
        self.assertEqual(gaps.usable(5, [7, 8], now=104), ([], 6))
        self.assertEqual(gaps.usable(5, [7, 8], now=110), ([7, 8], None))

    def test_gaps_seen_together_are_passed_over_together(self) -> None:
        # As a database that leaves a gap after every change makes them.
        gaps = Gaps(grace=10)
        self.assertEqual(gaps.usable(0, [2, 4, 6], now=0), ([], 10))
        self.assertEqual(gaps.usable(0, [2, 4, 6, 8], now=10), ([2, 4, 6], 10))
        self.assertEqual(gaps.usable(6, [8], now=20), ([8], None))

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
        self.assertIsNotNone(reporter._masters)
        reporter.running = True  # as a started service is; the stop gives everything up
        await reporter.stopService()
        self.assertIsNone(reporter._changes)

    async def reporter_on(self, master: Any) -> JiraDevInfoReporter:
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
        return reporter

    @coroutine_test
    async def test_one_attempt_to_follow_at_a_time_and_the_stop_waits_for_it(self) -> None:
        master = await fakemaster.make_master(self, wantDb=True, wantData=True, wantMq=True)
        reporter = await self.reporter_on(master)
        working = master.db.state.getObjectId
        slow: defer.Deferred[None] = defer.Deferred()
        calls: list[str] = []

        async def hanging(*args: Any) -> int:
            calls.append("getObjectId")
            if len(calls) == 1:
                raise ConnectionError("the database is not up yet")
            await slow  # the database answers, but only after minutes
            objectid: int = await working(*args)
            return objectid

        master.db.state.getObjectId = hanging
        with captured_log():
            await reporter.start_delivery()
        self.flushLoggedErrors(ConnectionError)
        self.reactor.advance(CLAIM_INTERVAL)  # the poll tries again: the database hangs
        self.reactor.advance(5 * CLAIM_INTERVAL)  # no second attempt beside the first
        self.assertEqual(len(calls), 2)
        reporter.running = True
        stopping = reporter.stopService()
        self.assertFalse(stopping.called, "the stop waits for the attempt under way")
        slow.callback(None)
        await stopping
        # What the attempt set up once the database answered, the stop took down.
        self.assertIsNone(reporter._changes)
        self.assertIsNone(reporter._masters)
        self.assertEqual(len(calls), 2)

    async def restarted_holder(self) -> tuple[JiraDevInfoReporter, ChangeFeed]:
        """A reporter whose master held the job in its earlier run; another master's feed."""
        master = await fakemaster.make_master(self, wantDb=True, wantData=True, wantMq=True)
        await master.db.insert_test_data(
            [
                fakedb.Master(id=master.masterid, name="this", active=1),
                fakedb.Master(id=2, name="other", active=1),
            ]
        )
        reporter = await self.reporter_on(master)
        objectid = await master.db.state.getObjectId(
            "jira-devinfo", "buildbot_jira.JiraDevInfoReporter"
        )
        self.assertTrue(await ChangeFeed(master=master, objectid=objectid).claim())
        other = ChangeFeed(master=SimpleNamespace(db=master.db, masterid=2), objectid=objectid)
        return reporter, other

    @coroutine_test
    async def test_a_reporter_idle_from_its_start_leaves_the_job_to_others(self) -> None:
        reporter, other = await self.restarted_holder()
        self.assertFalse(await other.claim())
        problem = UnrenderedCredential("client_secret", "util.Secret('jira')", "not found")
        with captured_log():
            await reporter.stay_idle(reporter.options, problem)  # type: ignore[arg-type]
        self.assertTrue(await other.claim(), "the other master takes the job at once")

    @coroutine_test
    async def test_an_idle_reporter_that_could_not_give_the_job_up_tries_again(self) -> None:
        reporter, other = await self.restarted_holder()
        working = ChangeFeed.release
        failures = [ConnectionError("the database went away")]

        async def release_once_broken(feed: ChangeFeed, *, force: bool = False) -> None:
            if failures:
                raise failures.pop()
            await working(feed, force=force)

        self.patch(ChangeFeed, "release", release_once_broken)
        problem = UnrenderedCredential("client_secret", "util.Secret('jira')", "not found")
        with captured_log() as lines:
            await reporter.stay_idle(reporter.options, problem)  # type: ignore[arg-type]
        self.assertTrue(any("could not give up its job" in line for line in lines), lines)
        self.assertEqual(len(self.flushLoggedErrors(ConnectionError)), 1)
        self.assertFalse(await other.claim())
        self.reactor.advance(CLAIM_INTERVAL)
        self.assertTrue(await other.claim(), "given up at the second attempt")
