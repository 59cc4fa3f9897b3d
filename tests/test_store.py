"""Where outboxes keep their updates: the master's database, memory, one save at a time."""

from __future__ import annotations

import json
from typing import Any

from buildbot.test.fake import fakemaster
from buildbot.test.reactor import TestReactorMixin
from twisted.internet import defer
from twisted.trial import unittest

from buildbot_jira.delivery.outbox import Outbox
from buildbot_jira.delivery.store import MemoryStore, SnapshotSaver, StateStore, state_name
from buildbot_jira.delivery.testing import FakeJira

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
    def test_what_is_saved_is_loaded_as_a_copy(self) -> None:
        store = MemoryStore()
        updates = [{"key": "a", "payload": {"n": 1}}]
        self.successResultOf(defer.Deferred.fromCoroutine(store.save(updates)))
        updates[0]["payload"]["n"] = 2
        loaded = self.successResultOf(defer.Deferred.fromCoroutine(store.load()))
        self.assertEqual(loaded, [{"key": "a", "payload": {"n": 1}}])
        loaded.clear()
        self.assertEqual(store.saved, [{"key": "a", "payload": {"n": 1}}])
        self.assertEqual(store.saves, 1)


class StateStoreTests(TestReactorMixin, unittest.TestCase):
    async def master_and_object(self) -> tuple[Any, int]:
        self.setup_test_reactor()
        master = await fakemaster.make_master(self, wantDb=True)
        objectid = await master.db.state.getObjectId("jira", "buildbot_jira.JiraBuildReporter")
        return master, objectid

    @defer.inlineCallbacks
    def test_each_master_saves_under_its_own_name(self) -> Any:
        master, objectid = yield defer.Deferred.fromCoroutine(self.master_and_object())
        store = StateStore(master=master, objectid=objectid, masterid=7)
        yield defer.Deferred.fromCoroutine(store.save([{"key": "a"}]))
        saved = yield master.db.state.getState(objectid, "pending@7")
        self.assertEqual(saved, [{"key": "a"}])
        self.assertEqual(state_name(7), "pending@7")
        self.assertEqual(repr(store), f"<StateStore objectid={objectid} name='pending@7'>")

    @defer.inlineCallbacks
    def test_an_entry_that_is_not_a_list_loads_as_nothing(self) -> Any:
        master, objectid = yield defer.Deferred.fromCoroutine(self.master_and_object())
        yield master.db.state.setState(objectid, "pending@1", {"not": "a list"})
        store = StateStore(master=master, objectid=objectid, masterid=1)
        self.assertEqual((yield defer.Deferred.fromCoroutine(store.load())), [])

    @defer.inlineCallbacks
    def test_an_outbox_saved_by_0_1_0_is_loaded_and_delivered(self) -> Any:
        master, objectid = yield defer.Deferred.fromCoroutine(self.master_and_object())
        yield master.db.state.setState(objectid, "pending@1", json.loads(SAVED_BY_0_1_0))
        jira = FakeJira(clock=self.reactor)
        outbox = Outbox(
            client=jira,
            store=StateStore(master=master, objectid=objectid, masterid=1),
            clock=self.reactor,
        )
        yield defer.Deferred.fromCoroutine(outbox.start())
        self.assertEqual(len(outbox), 2)
        self.reactor.advance(0)
        yield defer.Deferred.fromCoroutine(outbox.stop())
        (submission,) = jira.submissions
        self.assertEqual(submission.entity, "builds")
        self.assertEqual(
            [(p["buildNumber"], p["state"]) for p in submission.payloads],
            [(7, "in_progress"), (6, "failed")],
        )
        self.assertEqual(
            submission.payloads, tuple(u["payload"] for u in json.loads(SAVED_BY_0_1_0))
        )
        self.assertEqual((yield master.db.state.getState(objectid, "pending@1")), [])


class SlowStore:
    """A store whose saves end when the test says so."""

    def __init__(self) -> None:
        self.writes: list[list[dict[str, Any]]] = []
        self.waiting: list[defer.Deferred[None]] = []

    async def load(self) -> list[dict[str, Any]]:
        return []

    async def save(self, updates: list[dict[str, Any]]) -> None:
        self.writes.append(updates)
        done: defer.Deferred[None] = defer.Deferred()
        self.waiting.append(done)
        await done

    def finish(self) -> None:
        self.waiting.pop(0).callback(None)


class SnapshotSaverTests(unittest.TestCase):
    def test_saves_during_a_save_share_one_more_save_after_it(self) -> None:
        store = SlowStore()
        state = ["first"]
        saver = SnapshotSaver(store=store, snapshot=lambda: [{"v": v} for v in state], name="jira")
        first = defer.Deferred.fromCoroutine(saver.save())
        state.append("second")
        second = defer.Deferred.fromCoroutine(saver.save())
        third = defer.Deferred.fromCoroutine(saver.save())
        self.assertEqual(len(store.writes), 1)  # never two saves at once
        store.finish()
        self.successResultOf(first)
        # The first save began before the others were asked for: they wait for one more.
        self.assertNoResult(second)
        self.assertNoResult(third)
        self.assertEqual(store.writes[1], [{"v": "first"}, {"v": "second"}])
        store.finish()
        self.successResultOf(second)
        self.successResultOf(third)
        self.assertEqual(len(store.writes), 2)

    def test_a_failed_save_is_logged_and_counts_as_done(self) -> None:
        class BrokenStore(MemoryStore):
            async def save(self, updates: list[dict[str, Any]]) -> None:
                raise OSError("disk full")

        saver = SnapshotSaver(store=BrokenStore(), snapshot=list, name="jira")
        self.successResultOf(defer.Deferred.fromCoroutine(saver.save()))
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)
