"""A test case that runs a real cluster: database server and router per class, masters per test.

A subclass names its database (``database_kind``) and whether its masters
share a WAMP router (``uses_router``); both servers start once for the
class and are stopped after it, and each test gets a fresh database, its own
simulator and its own masters, stopped when it ends. A component that is
not installed skips the class with how to get it.
"""

from __future__ import annotations

import itertools
import re
from typing import Any, ClassVar

from twisted.internet import reactor
from twisted.trial import unittest

from buildbot_jira.simulator import ReceivedRequest, RunningSimulator
from tests.cluster.databases import DatabaseKind, DatabaseServer, start_database_server
from tests.cluster.harness import Cluster
from tests.cluster.router import CrossbarRouter
from tests.support import start_simulator, until

SIMPLE_MQ = {"type": "simple"}

#: Numbers the databases of a test run: test names alone may share a prefix.
_databases = itertools.count(1)


class ClusterTestCase(unittest.TestCase):
    """Masters as processes of their own, on a private database (and router)."""

    #: The database the masters share.
    database_kind: ClassVar[DatabaseKind] = "postgresql"
    #: Whether the masters talk through a crossbar router (else: one master, simple mq).
    uses_router: ClassVar[bool] = True

    database: ClassVar[DatabaseServer]
    router: ClassVar[CrossbarRouter | None]

    timeout = 240

    @classmethod
    def setUpClass(cls) -> None:
        cls.database = start_database_server(cls.database_kind)
        try:
            cls.router = CrossbarRouter.start() if cls.uses_router else None
        except BaseException:
            cls.database.stop()
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        try:
            if cls.router is not None:
                cls.router.stop()
        finally:
            cls.database.stop()

    async def start_simulator(self, **options: Any) -> RunningSimulator:
        """A simulator on loopback, stopped at the end of the test; ``self.sim``."""
        self.sim = await start_simulator(self, **options)
        self._last_request = reactor.seconds()

        def heard(_: ReceivedRequest) -> None:
            self._last_request = reactor.seconds()

        self.addCleanup(self.sim.simulator.subscribe(heard))
        return self.sim

    def make_cluster(self, labels: tuple[str, ...] = ("a", "b"), **defaults: Any) -> Cluster:
        """A cluster of masters ``labels`` on a fresh database, reporting to ``self.sim``.

        ``defaults`` are settings every master gets (see ``MasterSettings``).
        Its masters are stopped when the test ends.
        """
        test_name = re.sub(r"[^a-z0-9]+", "_", self.id().rsplit(".", 1)[-1].lower())
        cluster = Cluster(
            db_url=self.database.create(f"t{next(_databases)}_{test_name}"[:60]),
            mq=self.router.mq_config() if self.router is not None else SIMPLE_MQ,
            jira_url=self.sim.url,
            labels=labels,
            defaults=defaults,
        )
        # Cleanups run last first: the masters stop before the simulator does.
        self.addCleanup(cluster.stop)
        return cluster

    def accepted_builds(self) -> list[dict[str, Any]]:
        """Every build payload of a request the simulator accepted, in order."""
        return [
            build
            for request in self.sim.simulator.requests
            if request.path.endswith("/bulk")
            and request.status is not None
            and 200 <= request.status < 300
            and isinstance(request.body, dict)
            for build in request.body.get("builds", [])
        ]

    def states_by_build(self) -> dict[tuple[str, int], list[str]]:
        """Each build's accepted states, in the order the simulator received them."""
        states: dict[tuple[str, int], list[str]] = {}
        for build in self.accepted_builds():
            key = (build["pipelineId"], build["buildNumber"])
            states.setdefault(key, []).append(build["state"])
        return states

    async def wait_quiet(self, seconds: float = 2.0, *, within: float = 60.0) -> None:
        """Wait until the simulator has heard nothing for ``seconds``: nothing more is coming."""
        await until(
            lambda: reactor.seconds() - self._last_request >= seconds,
            seconds=within,
            what=f"{seconds:g} s without a request to the simulator",
        )
