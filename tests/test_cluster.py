"""The cluster harness: real masters on PostgreSQL, MariaDB or SQLite, over crossbar.

Each master is a process of its own (``tests/cluster/``) reporting to a
simulator in this process; these tests prove the harness itself: Buildbot's
schema on each database, and two masters sharing builds through the router.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from buildbot.process.results import RETRY, SUCCESS
from twisted.internet import reactor

from buildbot_jira.simulator.contract import entity_schema, validation_errors
from tests.cluster.polling import until_answered
from tests.cluster.testcase import ClusterTestCase
from tests.masters import BUILDBOT_URL
from tests.support import coroutine_test, until

PIPELINE = BUILDBOT_URL.split("//", 1)[1].rstrip("/")


# The checks of one database, run by one test class per kind of database (as
# a TestCase of its own it would run too, on the default database).
if TYPE_CHECKING:
    _OneDatabase = ClusterTestCase
else:
    _OneDatabase = object


class OneMasterOnADatabase(_OneDatabase):
    """Buildbot's schema upgrades on the database, and a master runs and reports on it."""

    uses_router = False

    @coroutine_test
    async def test_schema_upgrades_and_a_master_reports_a_build(self) -> None:
        await self.start_simulator()
        cluster = self.make_cluster(labels=("a",))
        master = cluster.add("a")
        await cluster.start()
        await master.force("app-a", branch="feature/PROJ-1-schema")
        await until(
            lambda: self.states_by_build().get((f"{PIPELINE}/app-a", 1), [])[-1:] == ["successful"],
            seconds=60,
            what="the build's final state in Jira",
        )
        (build,) = await cluster.builds()
        self.assertEqual(
            (build.builder, build.master, build.results), ("app-a", "vm:/srv/a", SUCCESS)
        )
        (record,) = await master.get("masters")
        self.assertEqual((record["name"], record["active"]), ("vm:/srv/a", True))


class SQLiteSchemaTests(OneMasterOnADatabase, ClusterTestCase):
    database_kind = "sqlite"


class PostgreSQLSchemaTests(OneMasterOnADatabase, ClusterTestCase):
    database_kind = "postgresql"


class MariaDBSchemaTests(OneMasterOnADatabase, ClusterTestCase):
    database_kind = "mariadb"


class TwoMastersTests(ClusterTestCase):
    """Two masters on one PostgreSQL database and one crossbar router."""

    database_kind = "postgresql"

    @coroutine_test
    async def test_builds_spread_over_both_masters_are_each_reported_exactly_once(self) -> None:
        await self.start_simulator()
        cluster = self.make_cluster()
        a, b = cluster.add("a"), cluster.add("b")
        await cluster.start()
        # Each build is forced through one master and runs on the other (its
        # builder is that master's alone): the request reaches it only through
        # the shared database and the router.
        expected = {}
        for number in range(10):
            via, runs_on = (a, b) if number % 2 else (b, a)
            builder = f"app-{runs_on.label}"
            await via.force(builder, branch=f"feature/PROJ-{number + 1}-work", seconds=2)
            expected[(f"{PIPELINE}/{builder}", number // 2 + 1)] = runs_on.settings.name
        await until(
            lambda: sum(s[-1:] == ["successful"] for s in self.states_by_build().values()) >= 10,
            seconds=90,
            what="10 final states in Jira",
        )
        await self.wait_quiet()

        self.assertEqual(
            self.states_by_build(), {build: ["in_progress", "successful"] for build in expected}
        )
        builds = await cluster.builds()
        self.assertEqual(
            {(f"{PIPELINE}/{b.builder}", b.number): b.master for b in builds}, expected
        )
        self.assertEqual({(b.complete, b.results) for b in builds}, {(True, SUCCESS)})
        for payload in self.accepted_builds():
            self.assertEqual(validation_errors(entity_schema("builds"), payload), [])

    @coroutine_test
    async def test_a_killed_master_is_expired_by_the_other_after_the_lowered_expiry(self) -> None:
        await self.start_simulator()
        cluster = self.make_cluster(expire_seconds=5, heartbeat_seconds=1)
        a, b = cluster.add("a"), cluster.add("b")
        await cluster.start()
        await b.force("app-a", branch="feature/PROJ-1-long", seconds=300)
        await until(
            lambda: self.states_by_build().get((f"{PIPELINE}/app-a", 1)) == ["in_progress"],
            seconds=60,
            what="the build on master a in progress in Jira",
        )
        a.kill()
        killed = reactor.seconds()

        async def a_is_expired() -> bool:
            active = {m["name"]: m["active"] for m in await b.get("masters")}
            builds = await cluster.builds()
            return active == {"vm:/srv/a": False, "vm:/srv/b": True} and builds[0].complete

        # b's housekeeping marks a inactive, then finishes a's builds.
        await until_answered(a_is_expired, seconds=30, what="master a taken for dead")
        # Five seconds without a heartbeat, found at one of b's heartbeats.
        self.assertLess(reactor.seconds() - killed, 15)
        (build,) = await cluster.builds()
        self.assertEqual((build.master, build.results), ("vm:/srv/a", RETRY))
