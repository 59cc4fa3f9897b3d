"""A Buildbot cluster for tests: masters that share one database and one WAMP router.

A test takes a database from a :mod:`~tests.cluster.databases` server and
a router from :mod:`~tests.cluster.router` (both usually started once per
test class), starts a simulator, and then::

    cluster = Cluster(db_url=db_url, mq=router.mq_config(), jira_url=simulator.url)
    self.addCleanup(cluster.stop)
    cluster.add("a")
    cluster.add("b")
    await cluster.start()

Every master has the builder ``app`` (whichever master claims a request
runs it) and two of its own, ``app-<label>`` and ``side-<label>`` (which runs
beside it when the master's ``max_builds`` allows); ``master.force(builder, ...)``
forces a build through that master's REST API, whichever master runs it.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import attrs
from twisted.internet import defer

from tests.cluster.basedirs import MasterSettings, write_basedir
from tests.cluster.masters import MasterFailed, MasterProcess
from tests.cluster.processes import free_port


@attrs.frozen
class BuildRecord:
    """A build as Buildbot's database has it: which builder, which master, how it ended."""

    builder: str
    number: int
    master: str
    complete: bool
    results: int | None


@attrs.define(eq=False)
class Cluster:
    """Masters on one database and one router, in base directories under ``directory``."""

    db_url: str
    mq: dict[str, str]
    jira_url: str
    #: The labels of the masters the cluster may have.
    labels: tuple[str, ...] = ("a", "b")
    #: Settings every master gets unless :meth:`add` says otherwise (see MasterSettings).
    defaults: dict[str, Any] = attrs.field(factory=dict)
    directory: Path = attrs.field(
        factory=lambda: Path(tempfile.mkdtemp(prefix="buildbot-jira-cluster-"))
    )
    masters: dict[str, MasterProcess] = attrs.field(factory=dict)

    def settings(self, label: str, **overrides: Any) -> MasterSettings:
        """The settings of master ``label``: named ``vm:/srv/<label>`` unless said otherwise."""
        chosen: dict[str, Any] = {
            "label": label,
            "name": f"vm:/srv/{label}",
            "labels": self.labels,
            "db_url": self.db_url,
            "mq": self.mq,
            "www_port": free_port(),
            "jira_url": self.jira_url,
            **self.defaults,
            **overrides,
        }
        return MasterSettings(**chosen)

    def add(self, label: str, **overrides: Any) -> MasterProcess:
        """Write the base directory of master ``label`` (not started yet)."""
        if label in self.masters:
            raise ValueError(f"the cluster already has a master {label!r}")
        settings = self.settings(label, **overrides)
        basedir = self.directory / label
        write_basedir(basedir, settings)
        master = MasterProcess(settings=settings, basedir=basedir)
        self.masters[label] = master
        return master

    def __getitem__(self, label: str) -> MasterProcess:
        return self.masters[label]

    async def start(self, *labels: str) -> None:
        """Upgrade the shared database's schema, then start these masters (all by default)."""
        chosen = [self.masters[label] for label in labels or self.masters]
        # The schema is the database's, not a master's: one upgrade serves them all.
        await chosen[0].upgrade_database()
        for master in chosen:
            master.start()
        waits = [defer.Deferred.fromCoroutine(master.wait_running()) for master in chosen]
        try:
            await defer.gatherResults(waits, consumeErrors=True)
        except defer.FirstError as first:
            # The first master that failed says why; the others' waits end here.
            for wait in waits:
                wait.cancel()
            first.subFailure.raiseException()

    def running(self) -> MasterProcess:
        """A master that is running, to ask about the whole cluster."""
        for master in self.masters.values():
            if master.running:
                return master
        raise MasterFailed("no master of the cluster is running")

    async def builds(self) -> list[BuildRecord]:
        """Every build of the cluster, as the shared database has them."""
        master = self.running()
        builders = {b["builderid"]: b["name"] for b in await master.get("builders")}
        masters = {m["masterid"]: m["name"] for m in await master.get("masters")}
        return [
            BuildRecord(
                builder=builders[build["builderid"]],
                number=build["number"],
                master=masters[build["masterid"]],
                complete=build["complete"],
                results=build["results"],
            )
            for build in await master.get("builds")
        ]

    def stop(self) -> None:
        """Stop every master that still runs, then remove the base directories."""
        for master in self.masters.values():
            master.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
