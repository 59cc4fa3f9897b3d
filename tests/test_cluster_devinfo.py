"""Development information from a real cluster: every change sent once, by one master.

Two masters are processes of their own (``tests/cluster/``) on one PostgreSQL
database and one crossbar router, each with a ``JiraDevInfoReporter``;
changes come in through either master's ``/change_hook/base``. Every master
receives every change event: the reporters' job in the database decides
which one sends. A killed holder's job and outbox go to the survivor.
"""

from __future__ import annotations

import collections
from typing import Any

import sqlalchemy as sa

from buildbot_jira.change_feed import JOBS_TABLE
from tests.cluster.polling import until_answered
from tests.cluster.testcase import ClusterTestCase
from tests.support import coroutine_test, until
from tests.test_cluster_adoption import FAST_EXPIRY, database

DEVINFO = {"devinfo": {"min_backoff": 0.5, "max_backoff": 2}}


def revision(number: int) -> str:
    return f"{number:040x}"


class ClusterDevinfoTests(ClusterTestCase):
    database_kind = "postgresql"

    def accepted_commits(self) -> list[str]:
        """The ID of every commit in a request the simulator accepted, in order."""
        return [
            commit["id"]
            for request in self.sim.simulator.requests
            if request.status == 202 and isinstance(request.body, dict)
            for repository in request.body.get("repositories", [])
            for commit in repository.get("commits", [])
        ]

    def holder(self, db_url: str) -> str | None:
        """The name of the master that holds the reporter's job."""
        query = sa.text(f"SELECT m.name FROM {JOBS_TABLE} j JOIN masters m ON m.id = j.masterid")
        with database(db_url) as engine, engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else str(row.name)

    def position(self, db_url: str) -> int:
        with database(db_url) as engine, engine.connect() as conn:
            value = conn.execute(sa.text(f"SELECT position FROM {JOBS_TABLE}")).scalar()
        return int(value or 0)

    async def send(self, master: Any, numbers: range) -> None:
        for number in numbers:
            await master.send_change(
                revision=revision(number),
                comments=f"ABC-{number}: change {number}",
                branch="feature/ABC-1-login",
            )

    @coroutine_test
    async def test_changes_through_either_master_are_each_sent_once(self) -> None:
        await self.start_simulator()
        cluster = self.make_cluster(**DEVINFO)
        cluster.add("a")
        cluster.add("b")
        await cluster.start()
        await self.send(cluster["a"], range(1, 6))
        await self.send(cluster["b"], range(6, 11))
        expected = {revision(n) for n in range(1, 11)}
        await until(lambda: expected <= set(self.accepted_commits()), seconds=60, what="10 commits")
        await self.wait_quiet()
        counts = collections.Counter(self.accepted_commits())
        self.assertEqual(set(counts), expected)
        self.assertEqual(set(counts.values()), {1}, counts)
        # One master held the job; the other sent nothing at all.
        self.assertIn(self.holder(cluster.db_url), {"vm:/srv/a", "vm:/srv/b"})

    @coroutine_test
    async def test_a_killed_holders_changes_arrive_once_through_the_survivor(self) -> None:
        await self.start_simulator()
        cluster = self.make_cluster(**FAST_EXPIRY, **DEVINFO)
        cluster.add("a")
        cluster.add("b")
        await cluster.start()
        # The job is claimed at start; the holder is the master to kill.
        name = await until_answered(
            lambda: _answer(self.holder(cluster.db_url)), seconds=30, what="a holder"
        )
        holder = cluster["a" if name == "vm:/srv/a" else "b"]
        survivor = cluster["b" if holder is cluster["a"] else "a"]
        # Jira is down while three changes come: the holder keeps them in its outbox.
        self.sim.simulator.fail_next(10_000, 503)
        await self.send(survivor, range(1, 4))
        await until_answered(
            lambda: _answer(self.position(cluster.db_url) >= 3), seconds=30, what="queued"
        )
        holder.kill()
        self.sim.simulator.clear_faults()
        # The survivor takes the job and the dead master's outbox, then a new change.
        await until_answered(
            lambda: _answer(self.holder(cluster.db_url) == survivor.settings.name),
            seconds=60,
            what="the survivor holding the job",
        )
        await self.send(survivor, range(4, 6))
        expected = {revision(n) for n in range(1, 6)}
        await until(lambda: expected <= set(self.accepted_commits()), seconds=60, what="5 commits")
        await self.wait_quiet()
        counts = collections.Counter(self.accepted_commits())
        self.assertEqual(set(counts), expected)
        self.assertEqual(set(counts.values()), {1}, counts)


async def _answer(value: Any) -> Any:
    return value
