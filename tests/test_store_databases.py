"""The outbox's rows on SQLite, PostgreSQL and MariaDB: 10,000 pending, a restart, a race to adopt.

Each database is a private server of ``tests/cluster/databases.py`` (skipped
with how to get it when it is not installed), reached through Buildbot's own
connection pool with the real reactor, so that two survivors' claims run in
two database connections at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from buildbot.test import fakedb
from buildbot.test.fake import fakemaster
from twisted.internet import defer, reactor
from twisted.trial import unittest

from buildbot_jira.delivery.database import DatabaseStore
from buildbot_jira.delivery.outbox import Outbox
from buildbot_jira.delivery.testing import FakeJira
from tests.cluster.databases import DatabaseKind, DatabaseServer, start_database_server
from tests.outboxes import unavailable, update
from tests.support import coroutine_test, until

#: How many updates wait while Jira is down.
PENDING = 10_000

if TYPE_CHECKING:
    _OnADatabase = unittest.TestCase
else:
    _OnADatabase = object


class TenThousandPending(_OnADatabase):
    """The checks, run once per kind of database by the classes below."""

    database_kind: ClassVar[DatabaseKind]
    database: ClassVar[DatabaseServer]
    timeout = 240

    @classmethod
    def setUpClass(cls) -> None:
        cls.database = start_database_server(cls.database_kind)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.database.stop()

    async def make_master(self) -> Any:
        name = f"outbox_{self.database_kind}_{self._testMethodName[-20:]}".lower()
        master = await fakemaster.make_master(
            self, wantDb=True, wantRealReactor=True, db_url=self.database.create(name)
        )
        await master.db.insert_test_data(
            [fakedb.Master(id=i, name=f"vm:/srv/{i}", active=1) for i in (1, 2, 3)]
        )
        self.objectid = await master.db.state.getObjectId("jira", "buildbot_jira.JiraBuildReporter")
        self.master = master
        return master

    def outbox(self, masterid: int, jira: FakeJira) -> Outbox:
        store = DatabaseStore(master=self.master, objectid=self.objectid, masterid=masterid)
        return Outbox(client=jira, store=store, clock=reactor)

    @coroutine_test
    async def test_10000_pending_are_saved_reloaded_adopted_by_one_and_delivered(self) -> None:
        await self.make_master()
        down = FakeJira(clock=reactor)
        down.failing = unavailable()
        first = self.outbox(1, down)
        await first.start()
        for number in range(PENDING):
            first.put(update(number, 10_000 + number))
        await first.stop()

        # Master 1 starts again: everything it saved is there, in order.
        again = self.outbox(1, down)
        await again.start()
        self.assertEqual(len(again), PENDING)
        numbers = [u.payload["buildNumber"] for u in again.pending.values()]
        self.assertEqual(numbers, list(range(PENDING)))
        await again.stop()

        # Master 1 dies; two survivors race for its rows, each on a connection of its own.
        await self.master.db.masters.setMasterState(masterid=1, active=False)
        jiras = [FakeJira(clock=reactor), FakeJira(clock=reactor)]
        survivors = [self.outbox(2, jiras[0]), self.outbox(3, jiras[1])]
        for survivor in survivors:
            await survivor.start()
        counts = await defer.gatherResults(
            [defer.Deferred.fromCoroutine(s.adopt()) for s in survivors]
        )
        self.assertEqual(sorted(counts), [0, PENDING])
        winner, idle = (0, 1) if counts[0] else (1, 0)
        await until(lambda: not len(survivors[winner]), seconds=180, what="10,000 delivered")
        for survivor in survivors:
            await survivor.stop()
        self.assertEqual(jiras[idle].submissions, [])
        delivered = [p["buildNumber"] for s in jiras[winner].submissions for p in s.payloads]
        self.assertEqual(delivered, list(range(PENDING)))
        empty = self.outbox(2, jiras[winner])
        await empty.start()
        self.assertEqual(len(empty), 0)
        await empty.stop()


class SQLiteTests(TenThousandPending, unittest.TestCase):
    database_kind = "sqlite"


class PostgreSQLTests(TenThousandPending, unittest.TestCase):
    database_kind = "postgresql"


class MariaDBTests(TenThousandPending, unittest.TestCase):
    database_kind = "mariadb"
