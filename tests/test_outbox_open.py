"""The outbox on a fake clock: open entities, rows written as they change, dry runs, outage logs."""

from __future__ import annotations

import attrs
from twisted.internet import defer

from buildbot_jira.delivery.interrupted import MASTER_RESTARTED, interrupted_update
from buildbot_jira.delivery.ledger import Update
from buildbot_jira.delivery.outbox import MemoryStore, Outbox
from buildbot_jira.delivery.store import Loaded
from tests.outboxes import KEY, OutboxTestCase, unavailable, update
from tests.support import captured_log


class OpenEntityTests(OutboxTestCase):
    def test_a_build_sent_in_progress_stays_open_until_its_final_state_is_delivered(self) -> None:
        outbox = self.make()
        outbox.put(update(1, 100, state="in_progress"))
        self.drain(outbox)
        self.assertEqual(list(outbox.open), [("builds", KEY.format(1))])
        self.assertEqual([u["sequence"] for u in self.store.open], [100])
        self.assertEqual(self.store.saved, [])
        outbox.put(update(1, 101))
        self.drain(outbox)
        self.assertEqual((dict(outbox.open), self.store.open), ({}, []))

    def test_a_build_whose_final_state_is_not_reported_is_closed(self) -> None:
        outbox = self.make()
        outbox.put(update(1, 100, state="in_progress"))
        self.drain(outbox)
        outbox.close("builds", KEY.format(1))
        self.drain(outbox)
        self.assertEqual((dict(outbox.open), self.store.open), ({}, []))

    def test_each_change_writes_its_own_rows_not_the_whole_outbox(self) -> None:
        outbox = self.make()
        self.jira.failing = unavailable()
        with captured_log():
            for number in range(500):
                outbox.put(update(number, 1000 + number))
            self.clock.advance(0)
            writes = self.store.writes
            outbox.put(update(500, 2000))
            self.clock.advance(0)
        self.assertEqual(self.store.writes, writes + 1)
        self.assertEqual(len(self.store.saved), 501)

    def test_a_restarted_master_ends_the_builds_its_earlier_run_left_open(self) -> None:
        store = StartingStore()
        first = self.make(store=store)
        first.put(update(1, 100, state="in_progress"))
        self.drain(first)
        self.stop(first, self.clock)

        def interrupt(last: Update, reason: str) -> Update:
            return interrupted_update(
                last, state="cancelled", reason=reason, sequence=200, last_updated="now"
            )

        store.starting = True
        second = Outbox(client=self.jira, store=store, clock=self.clock, interrupt=interrupt)
        self.successResultOf(defer.Deferred.fromCoroutine(second.start()))
        self.addCleanup(self.stop, second, self.clock)
        self.drain(second)
        (payload,) = self.jira.submissions[-1].payloads
        self.assertEqual(
            (payload["state"], payload["description"], payload["updateSequenceNumber"]),
            ("cancelled", MASTER_RESTARTED, 200),
        )
        self.assertEqual(self.states(), {1: ["in_progress", "cancelled"]})
        self.assertEqual((store.saved, store.open), ([], []))


class StartingStore(MemoryStore):
    """A store whose master, once ``starting``, says its earlier run is over."""

    starting = False

    async def load(self) -> Loaded:
        loaded = await super().load()
        return attrs.evolve(loaded, earlier_run_over=self.starting)


class DryRunTests(OutboxTestCase):
    def test_a_dry_run_never_says_it_sent(self) -> None:
        outbox = self.make()
        outbox.dry_run = True
        with captured_log() as lines:
            outbox.put(update(1, 100))
            self.drain(outbox)
        texts = [line for line in lines if line.startswith("jira: ")]
        self.assertTrue(any("dry run, not sent: builds" in line for line in texts), texts)
        self.assertFalse(any(" sent 1 builds" in line for line in lines), texts)
        self.assertEqual(self.jira.submissions, [])


class OutageLogTests(OutboxTestCase):
    def test_an_outage_is_logged_at_its_start_in_summaries_and_at_its_end(self) -> None:
        outbox = self.make()
        outbox.configure(initial_backoff=5, max_backoff=20, grace=10)
        self.jira.failing = unavailable()
        with captured_log() as lines:
            outbox.put(update(1, 100))
            outbox.put(update(2, 100))
            self.clock.advance(0)
            while self.clock.seconds() < 20 * 60:
                self.clock.advance(20)
            self.jira.failing = None
            self.drain(outbox)
        mine = [line for line in lines if line.startswith("jira: ")]
        self.assertTrue(all(line.startswith("jira: ") for line in mine))
        held = [line for line in mine if "held and retried" in line]
        self.assertEqual(len(held), 1)
        summaries = [line for line in mine if "still holding" in line]
        # About 60 retries in 20 minutes, summed up after 1, 2, 4, 8 and 16 minutes.
        self.assertEqual(len(summaries), 5, summaries)
        self.assertTrue(summaries[0].startswith("jira: still holding 2 updates for Jira: "))
        self.assertIn("is unavailable after 1 attempts: HTTP 503, for 60 s", summaries[0])
        self.assertTrue(summaries[-1].endswith("for 16 min"), summaries[-1])
        self.assertEqual(len([line for line in mine if "Jira answers again" in line]), 1)
        self.assertGreater(len(self.jira.submissions), 50)
