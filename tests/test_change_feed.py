"""The devinfo reporter's job on SQLite, PostgreSQL and MariaDB: one holder, a position, takeover.

Each database is a private server of ``tests/cluster/databases.py`` (skipped
with how to get it when it is not installed), reached through Buildbot's own
connection pool with the real reactor, so that two masters' claims run in
two database connections at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import sqlalchemy as sa
from buildbot.test import fakedb
from buildbot.test.fake import fakemaster
from twisted.internet import defer, reactor, task
from twisted.trial import unittest

from buildbot_jira.change_feed import ChangeFeed, Gaps, jobs_table
from buildbot_jira.mapping.devinfo import ChangeFacts
from tests.cluster.databases import DatabaseKind, DatabaseServer, start_database_server
from tests.support import coroutine_test

if TYPE_CHECKING:
    _OnADatabase = unittest.TestCase
else:
    _OnADatabase = object


class _MasterView:
    """One master of a cluster as a feed sees it: the shared database, its own ID."""

    def __init__(self, master: Any, masterid: int) -> None:
        self.db = master.db
        self.data = master.data
        self.masterid = masterid


class JobTests(_OnADatabase):
    """The checks, run once per kind of database by the classes below."""

    database_kind: ClassVar[DatabaseKind]
    database: ClassVar[DatabaseServer]
    timeout = 120

    @classmethod
    def setUpClass(cls) -> None:
        cls.database = start_database_server(cls.database_kind)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.database.stop()

    async def make_master(self, changes: int = 3) -> Any:
        name = f"jobs_{self.database_kind}_{self._testMethodName[-20:]}".lower()
        self.url = self.database.create(name)
        master = await fakemaster.make_master(
            self,
            wantDb=True,
            wantData=True,
            wantRealReactor=True,
            db_url=self.url,
        )
        rows: list[Any] = [fakedb.Master(id=i, name=f"vm:/srv/{i}", active=1) for i in (1, 2, 3)]
        rows += [fakedb.SourceStamp(id=1, revision="r", branch="b")]
        rows += [
            fakedb.Change(changeid=n, revision=f"{n:040x}", sourcestampid=1, comments=f"ABC-{n}")
            for n in range(1, changes + 1)
        ]
        await master.db.insert_test_data(rows)
        self.master = master
        self.objectid = await master.db.state.getObjectId(
            "jira-devinfo", "buildbot_jira.JiraDevInfoReporter"
        )
        return master

    def feed(self, masterid: int) -> ChangeFeed:
        return ChangeFeed(master=_MasterView(self.master, masterid), objectid=self.objectid)

    async def add_changes(self, first: int, last: int) -> None:
        await self.master.db.insert_test_data(
            [
                fakedb.Change(changeid=n, revision=f"{n:040x}", sourcestampid=1)
                for n in range(first, last + 1)
            ]
        )

    async def set_active(self, masterid: int, active: bool) -> None:
        def update(conn: Any) -> None:
            masters = self.master.db.model.masters
            with conn.begin():
                conn.execute(
                    masters.update().where(masters.c.id == masterid).values(active=int(active))
                )

        await self.master.db.pool.do(update)

    @coroutine_test
    async def test_the_first_holder_starts_at_the_newest_change(self) -> None:
        await self.make_master(changes=3)
        feed = self.feed(1)
        self.assertTrue(await feed.claim())
        self.assertEqual(await feed.position(), 3)
        await self.add_changes(4, 8)
        self.assertEqual(await feed.change_ids_after(3, 3), [4, 5, 6])
        self.assertTrue(await feed.advance(6))
        self.assertEqual(await feed.position(), 6)
        self.assertEqual(await feed.change_ids_after(6, 100), [7, 8])
        # A position never goes back.
        self.assertTrue(await feed.advance(5))
        self.assertEqual(await feed.position(), 6)

    @coroutine_test
    async def test_changes_made_while_the_holder_starts_are_not_skipped(self) -> None:
        await self.make_master(changes=3)
        await self.set_active(1, False)
        feed = self.feed(1)
        await feed.note_start()
        await self.add_changes(4, 5)
        await self.set_active(1, True)
        self.assertTrue(await feed.claim())
        self.assertEqual(await feed.position(), 3)

    @coroutine_test
    async def test_a_change_is_read_with_its_files_and_properties_in_one_call(self) -> None:
        await self.make_master(changes=2)
        await self.master.db.insert_test_data(
            [
                fakedb.ChangeFile(changeid=2, filename="app.py"),
                fakedb.ChangeFile(changeid=2, filename="README"),
                fakedb.ChangeProperty(
                    changeid=2,
                    property_name="event.type",
                    property_value='["change-merged", "Change"]',
                ),
            ]
        )
        calls = []
        do = self.master.db.pool.do

        def counted(*args: Any, **kwargs: Any) -> Any:
            calls.append(args[0])
            return do(*args, **kwargs)

        self.master.db.pool.do = counted
        change = await self.feed(1).read_change(2)
        self.master.db.pool.do = do
        self.assertEqual(len(calls), 1)
        assert change is not None
        facts = ChangeFacts.from_change(change)
        self.assertEqual((facts.changeid, facts.comments), (2, "ABC-2"))
        self.assertEqual(sorted(facts.files), ["README", "app.py"])
        self.assertEqual(facts.properties["event.type"], "change-merged")
        self.assertIsNone(await self.feed(1).read_change(99))

    @coroutine_test
    async def test_the_first_master_to_start_sets_where_the_job_starts(self) -> None:
        await self.make_master(changes=3)
        await self.set_active(1, False)
        first = self.feed(1)
        await first.note_start()  # its master is still starting
        await self.add_changes(4, 5)
        second = self.feed(2)
        await second.note_start()
        # The second master is active first and takes the job: from change 3 on.
        self.assertTrue(await second.claim())
        self.assertEqual(await second.position(), 3)
        self.assertEqual(await second.change_ids_after(3, 100), [4, 5])

    @coroutine_test
    async def test_one_of_two_masters_that_race_for_the_job_gets_it(self) -> None:
        await self.make_master()
        feeds = [self.feed(1), self.feed(2)]
        held = await defer.gatherResults([defer.Deferred.fromCoroutine(f.claim()) for f in feeds])
        self.assertEqual(sorted(held), [False, True])
        holder, other = (feeds[0], feeds[1]) if held[0] else (feeds[1], feeds[0])
        # The holder keeps it; the other cannot take it while the holder is active.
        self.assertTrue(await holder.claim())
        self.assertFalse(await other.claim())
        self.assertFalse(await other.advance(3))

    @coroutine_test
    async def test_a_dead_holders_job_goes_on_from_where_it_stood(self) -> None:
        await self.make_master(changes=2)
        first, second, third = self.feed(1), self.feed(2), self.feed(3)
        self.assertTrue(await first.claim())
        await self.add_changes(3, 5)
        self.assertTrue(await first.advance(4))
        await self.set_active(1, False)
        held = await defer.gatherResults(
            [defer.Deferred.fromCoroutine(f.claim()) for f in (second, third)]
        )
        self.assertEqual(sorted(held), [False, True])
        successor = second if held[0] else third
        self.assertEqual(await successor.position(), 4)
        self.assertEqual(await successor.change_ids_after(4, 100), [5])
        # The old holder comes back: it has lost the job, and cannot move it.
        await self.set_active(1, True)
        self.assertFalse(await first.advance(5))
        self.assertFalse(first.held)
        self.assertFalse(await first.claim())

    @coroutine_test
    async def test_a_master_takes_the_job_only_once_it_is_active(self) -> None:
        await self.make_master()
        # Buildbot marks a master active only after its services have started.
        await self.set_active(1, False)
        starting, other = self.feed(1), self.feed(2)
        self.assertFalse(await starting.claim())
        self.assertTrue(await other.claim())
        await self.set_active(1, True)
        self.assertFalse(await starting.claim())

    @coroutine_test
    async def test_a_holder_that_stops_cleanly_gives_the_job_up_at_once(self) -> None:
        await self.make_master()
        first, second = self.feed(1), self.feed(2)
        self.assertTrue(await first.claim())
        await first.release()
        self.assertTrue(await second.claim())
        self.assertFalse(await first.claim())

    @coroutine_test
    async def test_a_holder_whose_master_row_is_gone_loses_the_job(self) -> None:
        await self.make_master()
        first, second = self.feed(1), self.feed(2)
        self.assertTrue(await first.claim())

        def forget(conn: Any) -> None:
            masters = self.master.db.model.masters
            with conn.begin():
                conn.execute(sa.delete(masters).where(masters.c.id == 1))

        await self.master.db.pool.do(forget)
        self.assertTrue(await second.claim())


class ConcurrentWriterTests(JobTests):
    """Checks that need two writers at once: a database server, not SQLite."""

    def other_connection(self) -> tuple[Any, Any]:
        """A connection of another master to the database, and its open transaction."""
        # Buildbot's own URL arguments (max_idle, storage_engine) are no driver's.
        engine = sa.create_engine(sa.engine.make_url(self.url).set(query={}))
        self.addCleanup(engine.dispose)
        other = engine.connect()
        self.addCleanup(other.close)
        return other, other.begin()

    @coroutine_test
    async def test_a_claim_that_waits_for_a_concurrent_one_does_not_take_the_job_too(
        self,
    ) -> None:
        await self.make_master(changes=2)
        self.assertTrue(await self.feed(1).claim())
        await self.set_active(1, False)  # its holder is gone: masters 2 and 3 race for it
        other, transaction = self.other_connection()
        # Master 2 has taken the row and not committed yet: master 3's claim waits on it.
        other.execute(
            jobs_table.update().where(jobs_table.c.objectid == self.objectid).values(masterid=2)
        )
        claiming = defer.Deferred.fromCoroutine(self.feed(3).claim())
        await task.deferLater(reactor, 0.5, lambda: None)
        transaction.commit()
        self.assertFalse(await claiming, "master 2 holds the job; master 3 must not take it")
        self.assertTrue(await self.feed(2).claim())

    @coroutine_test
    async def test_a_change_that_commits_after_a_later_one_is_waited_for(self) -> None:
        await self.make_master(changes=3)
        feed = self.feed(1)
        self.assertTrue(await feed.claim())
        # Another master's change source has inserted change 4 and not committed yet.
        other, transaction = self.other_connection()
        other.execute(
            self.master.db.model.changes.insert().values(
                changeid=4,
                author="ann",
                comments="ABC-4",
                revision="4" * 40,
                when_timestamp=0,
                repository="",
                codebase="",
                project="",
                sourcestampid=1,
            )
        )
        await self.add_changes(5, 5)
        gaps = Gaps(grace=10)
        ids = await feed.change_ids_after(3, 100)
        self.assertEqual(ids, [5], "the uncommitted change is not visible yet")
        self.assertEqual(gaps.usable(3, ids, now=0), ([], 10), "so the read stops before 5")
        transaction.commit()
        ids = await feed.change_ids_after(3, 100)
        self.assertEqual(gaps.usable(3, ids, now=1), ([4, 5], None))


class SQLiteJobTests(JobTests, unittest.TestCase):
    database_kind = "sqlite"


class PostgreSQLJobTests(ConcurrentWriterTests, unittest.TestCase):
    database_kind = "postgresql"


class MariaDBJobTests(ConcurrentWriterTests, unittest.TestCase):
    database_kind = "mariadb"
