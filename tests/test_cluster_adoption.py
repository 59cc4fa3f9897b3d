"""A real cluster loses a master: nothing lost, nothing left in progress, nothing sent twice.

Masters are processes of their own (``tests/cluster/``) on one PostgreSQL
database and one crossbar router, reporting to a simulator in this process.
Buildbot takes a master for dead once it has been silent for
``buildbot.data.masters.EXPIRE_MINUTES`` (10 minutes); these masters lower it
to 5 seconds, with a heartbeat every second (``expire_seconds`` and
``heartbeat_seconds`` of ``tests/cluster/basedirs.py``, set in each master's
``buildbot.tac`` before it starts), so that a killed master is expired
within seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from buildbot.process.results import RETRY, SUCCESS

from buildbot_jira.delivery.database import OUTBOX_TABLE
from buildbot_jira.delivery.interrupted import MASTER_LOST
from buildbot_jira.simulator.contract import entity_schema, validation_errors
from tests.cluster.harness import Cluster
from tests.cluster.masters import MasterProcess
from tests.cluster.polling import until_answered
from tests.cluster.testcase import ClusterTestCase
from tests.masters import BUILDBOT_URL
from tests.support import coroutine_test, until

PIPELINE = BUILDBOT_URL.split("//", 1)[1].rstrip("/")

#: Masters expire after 5 s without a heartbeat, and beat every second.
FAST_EXPIRY = {"expire_seconds": 5, "heartbeat_seconds": 1}
#: The reporters retry soon after Jira comes back.
REPORTER = {"reporter": {"min_backoff": 0.5, "max_backoff": 2}}


@contextmanager
def database(url: str) -> Iterator[sa.engine.Engine]:
    """An engine on the cluster's database, to see what the outboxes hold."""
    engine = sa.create_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def final_rows(engine: sa.engine.Engine, master: str) -> int:
    """How many final states wait in the outbox rows of master ``master``."""
    query = sa.text(
        f"SELECT o.data FROM {OUTBOX_TABLE} o JOIN masters m ON m.id = o.masterid "
        "WHERE m.name = :name AND o.kind = 'pending'"
    )
    with engine.connect() as conn:
        return sum('"final": true' in row.data for row in conn.execute(query, {"name": master}))


class MasterLossTests(ClusterTestCase):
    database_kind = "postgresql"

    def jira_down(self) -> None:
        self.sim.simulator.fail_next(1_000_000, 503)

    def jira_up(self) -> None:
        self.sim.simulator.clear_faults()

    async def finals_saved(self, cluster: Cluster, master: MasterProcess, count: int) -> None:
        """Wait until ``count`` final states wait in ``master``'s rows."""
        with database(cluster.db_url) as engine:

            async def saved() -> bool:
                return final_rows(engine, master.settings.name) >= count

            try:
                await until_answered(saved, seconds=60, what=f"{count} final states saved")
            except AssertionError as failure:
                builds = await cluster.builds()
                raise AssertionError(
                    f"{failure}; {final_rows(engine, master.settings.name)} saved; builds: "
                    f"{builds}; {master.describe()}"
                ) from None

    def final_states(self) -> dict[tuple[str, int], list[str]]:
        """Each build's accepted final states, in the order they arrived (duplicates too)."""
        return {
            build: [state for state in states if state != "in_progress"]
            for build, states in self.states_by_build().items()
        }

    def assert_valid_payloads(self) -> None:
        for payload in self.accepted_builds():
            self.assertEqual(validation_errors(entity_schema("builds"), payload), [])

    @coroutine_test
    async def test_a_killed_masters_builds_reach_jira_through_one_survivor(self) -> None:
        await self.start_simulator()
        cluster = self.make_cluster(labels=("a", "b", "c"), **FAST_EXPIRY, **REPORTER)
        # a's worker runs two builds at once: a long one, and quick ones beside it.
        a, b, c = cluster.add("a", max_builds=2), cluster.add("b"), cluster.add("c")
        await cluster.start()
        long_build = (f"{PIPELINE}/app-a", 1)
        await b.force("app-a", branch="feature/PROJ-100-long", seconds=600)
        await until(
            lambda: self.states_by_build().get(long_build) == ["in_progress"],
            seconds=60,
            what="the long build in progress in Jira",
        )
        # Jira goes down; five builds finish on a meanwhile; a is killed with
        # their final states saved and not sent, and never comes back.
        self.jira_down()
        for number in range(5):
            await b.force("side-a", branch=f"feature/PROJ-{number + 1}-quick")
        await self.finals_saved(cluster, a, 5)
        a.kill()
        self.jira_up()

        quick = [(f"{PIPELINE}/side-a", number) for number in range(1, 6)]
        await until(
            lambda: all(self.final_states().get(build) for build in [*quick, long_build]),
            seconds=90,
            what="every final state in Jira",
        )
        await self.wait_quiet()
        finals = self.final_states()
        # Each exactly once: two survivors never both send a dead master's updates.
        self.assertEqual(
            {build: finals[build] for build in quick}, {q: ["successful"] for q in quick}
        )
        self.assertEqual(finals[long_build], ["cancelled"])
        self.assertEqual(self.states_by_build()[long_build], ["in_progress", "cancelled"])
        (ended,) = [
            p
            for p in self.accepted_builds()
            if (p["pipelineId"], p["buildNumber"]) == long_build and p["state"] == "cancelled"
        ]
        self.assertEqual(ended["description"], MASTER_LOST)
        # Buildbot's housekeeping finished the long build with RETRY, for the dead master.
        records = {(r.builder, r.number): r for r in await cluster.builds()}
        self.assertEqual(
            (records[("app-a", 1)].master, records[("app-a", 1)].results), ("vm:/srv/a", RETRY)
        )
        # One survivor adopted a's outbox, once; the other found nothing to adopt.
        adopted = [line for m in (b, c) for line in m.log().splitlines() if "jira: adopted" in line]
        self.assertEqual(len(adopted), 1, adopted)
        self.assertIn(
            "jira: adopted 6 updates of master vm:/srv/a (1 of builds it left unfinished)",
            adopted[0],
        )
        self.assert_valid_payloads()

    @coroutine_test
    async def test_a_master_restarted_under_a_new_name_delivers_its_predecessors_outbox(
        self,
    ) -> None:
        await self.start_simulator()
        cluster = self.make_cluster(labels=("a",), **FAST_EXPIRY, **REPORTER)
        a = cluster.add("a")
        await cluster.start()
        self.jira_down()
        for number in range(3):
            await a.force("app-a", branch=f"feature/PROJ-{number + 1}-moved")
        await self.finals_saved(cluster, a, 3)
        a.kill()
        self.jira_up()
        # The same base directory, on another host: Buildbot sees a new master.
        a.rename("vm2:/srv/a")
        a.start()
        await a.wait_running()
        builds = [(f"{PIPELINE}/app-a", number) for number in range(1, 4)]
        await until(
            lambda: all(self.final_states().get(build) for build in builds),
            seconds=90,
            what="the predecessor's final states in Jira",
        )
        await self.wait_quiet()
        self.assertEqual(
            {build: self.final_states()[build] for build in builds},
            {build: ["successful"] for build in builds},
        )
        active = {m["name"]: m["active"] for m in await a.get("masters")}
        self.assertEqual(active, {"vm:/srv/a": False, "vm2:/srv/a": True})
        self.assertIn("jira: adopted 3 updates of master vm:/srv/a", a.log())
        self.assertEqual(
            {(r.number, r.results) for r in await cluster.builds()},
            {(n, SUCCESS) for n in (1, 2, 3)},
        )
        self.assert_valid_payloads()
