"""Where outboxes keep their rows: the master's database, memory; writes of what changed."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from twisted.internet import defer
from twisted.trial import unittest

from buildbot_jira.delivery.database import OUTBOX_TABLE, DatabaseStore, outbox_table
from buildbot_jira.delivery.interrupted import MASTER_RESTARTED, interrupted_update
from buildbot_jira.delivery.outbox import Outbox
from buildbot_jira.delivery.store import (
    OPEN,
    PENDING,
    Change,
    ChangeWriter,
    Loaded,
    MemoryStore,
    Saved,
    state_name,
)
from buildbot_jira.delivery.testing import FakeJira
from tests.outboxes import DatabaseTestCase, FirstWriteFails, gone, pending, update
from tests.support import coroutine_test

#: An outbox as buildbot-jira 0.1.0 left it in the state table: one build
#: that started and one that finished, for master 1.
SAVED_BY_0_1_0 = """[
  {"entity": "builds", "key": "buildbot.example.com:8010/app#7",
   "payload": {"schemaVersion": "1.0", "pipelineId": "buildbot.example.com:8010/app",
               "buildNumber": 7, "updateSequenceNumber": 1764288000123,
               "displayName": "app #7", "url": "http://buildbot.example.com:8010/#/builders/1/builds/7",
               "state": "in_progress", "lastUpdated": "2026-11-28T00:00:00.123Z",
               "issueKeys": ["PROJ-7"]},
   "sequence": 1764288000123, "final": false, "context": "app #7"},
  {"entity": "builds", "key": "buildbot.example.com:8010/app#6",
   "payload": {"schemaVersion": "1.0", "pipelineId": "buildbot.example.com:8010/app",
               "buildNumber": 6, "updateSequenceNumber": 1764287990000,
               "displayName": "app #6", "url": "http://buildbot.example.com:8010/#/builders/1/builds/6",
               "state": "failed", "lastUpdated": "2026-11-27T23:59:50.000Z",
               "issueKeys": ["PROJ-6"]},
   "sequence": 1764287990000, "final": true, "context": "app #6"}
]"""


class MemoryStoreTests(unittest.TestCase):
    @coroutine_test
    async def test_rows_are_kept_through_json_and_loaded_as_copies(self) -> None:
        store = MemoryStore()
        await store.write([pending(1, 100), pending(2, 200)])
        await store.write([pending(1, 101), gone(2)])
        self.assertEqual([u["sequence"] for u in store.saved], [101])
        loaded = await store.load()
        self.assertEqual([row.update for row in loaded.saved], [update(1, 101)])
        self.assertEqual(store.writes, 2)

    @coroutine_test
    async def test_unreadable_rows_are_counted_and_dropped(self) -> None:
        store = MemoryStore()
        store.saved = [{"key": "no entity"}, update(1, 100).to_json()]
        loaded = await store.load()
        self.assertEqual((len(loaded.saved), loaded.unreadable), (1, 1))
        self.assertEqual(len(store.saved), 1)


class SlowStore(MemoryStore):
    """A store whose writes end when the test says so."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[Change]] = []
        self.waiting: list[defer.Deferred[None]] = []

    async def write(self, changes: Sequence[Change]) -> None:
        self.batches.append(list(changes))
        done: defer.Deferred[None] = defer.Deferred()
        self.waiting.append(done)
        await done
        await super().write(changes)

    def finish(self) -> None:
        self.waiting.pop(0).callback(None)


class ChangeWriterTests(unittest.TestCase):
    def writer(self, store: MemoryStore, rows: dict[Any, Saved]) -> ChangeWriter:
        return ChangeWriter(store=store, current=rows.get, name="jira")

    def test_flushes_during_a_write_share_one_more_write_after_it(self) -> None:
        store = SlowStore()
        rows = {pending(1, 100).slot: Saved(PENDING, update(1, 100))}
        writer = self.writer(store, rows)
        writer.changed(update(1, 100).slot)
        first = defer.Deferred.fromCoroutine(writer.flush())
        rows[update(2, 100).slot] = Saved(PENDING, update(2, 100))
        writer.changed(update(2, 100).slot)
        second = defer.Deferred.fromCoroutine(writer.flush())
        third = defer.Deferred.fromCoroutine(writer.flush())
        self.assertEqual(len(store.batches), 1)  # never two writes at once
        store.finish()
        self.successResultOf(first)
        # The first write began before the others were asked for: they wait for one more.
        self.assertNoResult(second)
        self.assertNoResult(third)
        self.assertEqual([c.slot for c in store.batches[1]], [update(2, 100).slot])
        store.finish()
        self.successResultOf(second)
        self.successResultOf(third)
        self.assertEqual(len(store.batches), 2)

    def test_a_slot_changed_many_times_between_writes_is_one_row(self) -> None:
        store = MemoryStore()
        rows: dict[Any, Saved] = {}
        writer = self.writer(store, rows)
        for sequence in range(100, 110):
            rows[update(1, 1).slot] = Saved(PENDING, update(1, sequence))
            writer.changed(update(1, 1).slot)
        self.successResultOf(defer.Deferred.fromCoroutine(writer.flush()))
        self.assertEqual((store.writes, [u["sequence"] for u in store.saved]), (1, [109]))
        # Nothing changed since: a flush costs no write.
        self.successResultOf(defer.Deferred.fromCoroutine(writer.flush()))
        self.assertEqual(store.writes, 1)

    def test_a_failed_write_is_logged_and_its_slots_are_written_next_time(self) -> None:
        store = FirstWriteFails()
        rows = {update(1, 1).slot: Saved(PENDING, update(1, 100))}
        writer = self.writer(store, rows)
        writer.changed(update(1, 1).slot)
        self.successResultOf(defer.Deferred.fromCoroutine(writer.flush()))
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)
        self.assertEqual((store.saved, len(writer)), ([], 1))
        self.successResultOf(defer.Deferred.fromCoroutine(writer.flush()))
        self.assertEqual([u["sequence"] for u in store.saved], [100])


class DatabaseStoreTests(DatabaseTestCase):
    @coroutine_test
    async def test_each_change_is_one_row_of_this_master_and_reporter(self) -> None:
        await self.make_master()
        store = self.store(1)
        await store.load()
        await store.write([pending(1, 100), pending(2, 200)])
        await store.write([pending(1, 101), Change(update(2, 1).slot, Saved(OPEN, update(2, 200)))])
        self.assertEqual(
            await self.rows(),
            [(self.objectid, 1, PENDING, 101), (self.objectid, 1, OPEN, 200)],
        )
        await store.write([gone(1), gone(2)])
        self.assertEqual(await self.rows(), [])
        self.assertEqual(repr(store), f"<DatabaseStore objectid={self.objectid} masterid=1>")

    @coroutine_test
    async def test_masters_and_reporters_sharing_a_database_keep_their_own_rows(self) -> None:
        await self.make_master()
        other_reporter = await self.master.db.state.getObjectId(
            "jira-deploy", "buildbot_jira.JiraDeploymentReporter"
        )
        first, second, third = self.store(1), self.store(2), self.store(1, other_reporter)
        for store, number in ((first, 1), (second, 2), (third, 3)):
            await store.load()
            await store.write([pending(number, 100)])
        await second.write([gone(2)])  # master 2 delivered its update
        reloaded = [await self.store(1).load(), await self.store(2).load()]
        self.assertEqual([len(r.saved) for r in reloaded], [1, 0])
        self.assertEqual(reloaded[0].saved[0].update, update(1, 100))

    @coroutine_test
    async def test_the_table_is_created_once_and_survives_a_second_store(self) -> None:
        await self.make_master()
        await self.store(1).load()
        await self.store(2).load()  # create_all(checkfirst=True) finds it

        def tables(conn: Any) -> list[str]:
            return list(sa.inspect(conn).get_table_names())

        self.assertIn(OUTBOX_TABLE, await self.master.db.pool.do(tables))

    @coroutine_test
    async def test_an_outbox_saved_by_0_1_0_is_loaded_and_delivered(self) -> None:
        master = await self.make_master(active={})
        objectid = self.objectid
        await master.db.state.setState(objectid, "pending@1", json.loads(SAVED_BY_0_1_0))
        jira = FakeJira(clock=self.reactor)
        outbox = Outbox(
            client=jira,
            store=DatabaseStore(master=master, objectid=objectid, masterid=1),
            clock=self.reactor,
        )
        await outbox.start()
        self.assertEqual(len(outbox), 2)
        # Read into rows, in their order; the state entry is emptied.
        self.assertEqual([seq for *_, seq in await self.rows()], [1764288000123, 1764287990000])
        self.assertEqual((await master.db.state.getState(objectid, state_name(1))), [])
        self.reactor.advance(0)
        await outbox.stop()
        (submission,) = jira.submissions
        self.assertEqual(submission.entity, "builds")
        self.assertEqual(
            [(p["buildNumber"], p["state"]) for p in submission.payloads],
            [(7, "in_progress"), (6, "failed")],
        )
        self.assertEqual(
            submission.payloads, tuple(u["payload"] for u in json.loads(SAVED_BY_0_1_0))
        )
        self.assertEqual((await master.db.state.getState(objectid, "pending@1")), [])
        # #6 is delivered; #7 was sent in progress, and stays open until it ends.
        self.assertEqual(
            [(kind, seq) for *_, kind, seq in await self.rows()], [(OPEN, 1764288000123)]
        )

    @coroutine_test
    async def test_an_import_cut_short_leaves_one_row_per_slot(self) -> None:
        master = await self.make_master()
        await master.db.state.setState(self.objectid, "pending@1", [update(1, 100).to_json()])
        store = self.store(1)
        await store.write([pending(1, 101)])  # a row written before the import
        loaded = await self.store(1).load()
        self.assertEqual([row.update.sequence for row in loaded.saved], [101])
        self.assertEqual([seq for *_, seq in await self.rows()], [101])

    @coroutine_test
    async def test_a_starting_master_says_its_earlier_run_is_over(self) -> None:
        await self.make_master(active={1: 0, 2: 1})
        self.assertEqual((await self.store(1).load()).earlier_run_over, True)
        self.assertEqual((await self.store(2).load()).earlier_run_over, False)

    @coroutine_test
    async def test_a_starting_outbox_ends_the_builds_its_earlier_run_left_in_progress(self) -> None:
        await self.make_master(active={1: 0})
        store = self.store(1)
        await store.load()
        await store.write(
            [
                Change(update(1, 1).slot, Saved(OPEN, update(1, 100, state="in_progress"))),
                pending(2, 200, state="in_progress"),
                pending(3, 300),
            ]
        )
        jira = FakeJira(clock=self.reactor)

        def interrupt(last: Any, reason: str) -> Any:
            return interrupted_update(
                last, state="cancelled", reason=reason, sequence=1000, last_updated="x"
            )

        outbox = Outbox(client=jira, store=self.store(1), clock=self.reactor, interrupt=interrupt)
        await outbox.start()
        self.reactor.advance(0)
        await outbox.stop()
        self.assertEqual(
            jira.states(),
            {
                "ci.example.com/app#1": ["cancelled"],
                "ci.example.com/app#2": ["cancelled"],
                "ci.example.com/app#3": ["successful"],
            },
        )
        descriptions = {
            p["description"]
            for s in jira.submissions
            for p in s.payloads
            if p["state"] == "cancelled"
        }
        self.assertEqual(descriptions, {MASTER_RESTARTED})
        self.assertEqual(await self.rows(), [])

    @coroutine_test
    async def test_a_row_adopted_away_meanwhile_is_written_again_under_this_master(self) -> None:
        await self.make_master(active={1: 1, 2: 1})
        store = self.store(1)
        await store.load()
        await store.write([pending(1, 100)])

        def take(conn: Any) -> None:
            with conn.begin():
                conn.execute(outbox_table.update().values(masterid=2))

        await self.master.db.pool.do(take)
        await store.write([pending(1, 101)])
        self.assertEqual([(m, seq) for _o, m, _k, seq in await self.rows()], [(2, 100), (1, 101)])


class LoadedTests(unittest.TestCase):
    def test_defaults_say_nothing_was_left(self) -> None:
        self.assertEqual(Loaded(), Loaded(saved=(), unreadable=0, earlier_run_over=False))
