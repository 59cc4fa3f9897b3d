"""A real Buildbot master with local workers, in the benchmark's process, and what it did.

One scheduler per builder (each change of that builder's project starts a
build at once), as many local workers as builds of one builder may run
together, the database in memory (SQLite). The master starts and stops the
way ``buildbot-jira demo`` runs its own (:mod:`buildbot_jira.tools.demo_master`).

:class:`BuildEvents` notes when each build starts and ends, from the
master's own ``('builds', None, 'new' / 'finished')`` messages: the moment
the reporter hears of it too. (Buildbot keeps ``complete_at`` in whole
seconds, too coarse for delays of milliseconds.) :class:`Release` holds
builds at their first step until the benchmark lets them all go together.
:class:`DatabaseCalls` counts the calls through the master's database pool.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import attrs
from buildbot.plugins import schedulers, steps, util
from buildbot.process.buildstep import BuildStep
from buildbot.process.results import SUCCESS
from buildbot.worker.local import LocalWorker
from twisted.internet import defer
from twisted.logger import ILogObserver, LogLevel, formatEvent, globalLogBeginner
from zope.interface import implementer

from buildbot_jira.reporters import JiraBuildReporter
from buildbot_jira.simulator import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from buildbot_jira.tools.demo_master import start_master, stop_master

__all__ = [
    "BUILDBOT_URL",
    "BenchMaster",
    "BuildEvent",
    "BuildEvents",
    "DatabaseCalls",
    "LogWatch",
    "Release",
    "WaitForRelease",
    "jira_reporter",
    "master_steps",
    "shell_steps",
]

BUILDBOT_URL = "http://buildbot.example.com/"
REPOSITORY = "https://git.example.com/app.git"


def jira_reporter(url: str) -> JiraBuildReporter:
    """The reporter under test, with its defaults, pointed at the simulator at ``url``."""
    return JiraBuildReporter(
        name="jira",
        site="example.atlassian.net",
        client_id=DEFAULT_CLIENT_ID,
        client_secret=DEFAULT_CLIENT_SECRET,
        api_url=url,
        site_url=url,
    )


def shell_steps(count: int, command: str = "true") -> list[Any]:
    """``count`` shell steps that run ``command`` on the local worker."""
    return [
        steps.ShellCommand(name=f"step {n + 1}", command=["sh", "-c", command])
        for n in range(count)
    ]


def master_steps(count: int) -> list[Any]:
    """``count`` trivial steps that run on the master (each sets a property): no process."""
    return [
        steps.SetProperty(name=f"step {n + 1}", property=f"step_{n + 1}", value="done")
        for n in range(count)
    ]


@attrs.frozen
class BuildEvent:
    """A build that started or ended: its builder, number and the time (``time.time()``)."""

    builder: str
    number: int
    at: float


class BuildEvents:
    """The builds that started and ended, in order, and Deferreds for the next ones."""

    def __init__(self, builder_names: Mapping[int, str]) -> None:
        self._names = dict(builder_names)
        self.events: dict[str, list[BuildEvent]] = {"new": [], "finished": []}
        self._waiters: list[tuple[Callable[[], bool], defer.Deferred[None]]] = []

    def started(self, builder: str) -> list[BuildEvent]:
        """The builds of ``builder`` that started."""
        return [b for b in self.events["new"] if b.builder == builder]

    def finished(self, builder: str) -> list[BuildEvent]:
        """The builds of ``builder`` that ended."""
        return [b for b in self.events["finished"] if b.builder == builder]

    def when_started(self, builder: str, count: int) -> defer.Deferred[None]:
        """A Deferred that fires once ``count`` builds of ``builder`` have started."""
        return self._when(lambda: len(self.started(builder)) >= count)

    def when_finished(self, builder: str, count: int) -> defer.Deferred[None]:
        """A Deferred that fires once ``count`` builds of ``builder`` have ended."""
        return self._when(lambda: len(self.finished(builder)) >= count)

    def consume(self, key: tuple[str, ...], build: dict[str, Any]) -> None:
        """Note one ``('builds', id, 'new' or 'finished')`` message of the master's queue."""
        name = self._names.get(build["builderid"], str(build["builderid"]))
        self.events[key[-1]].append(
            BuildEvent(builder=name, number=build["number"], at=time.time())
        )
        self._wake()

    def _when(self, condition: Callable[[], bool]) -> defer.Deferred[None]:
        waiter: defer.Deferred[None] = defer.Deferred()
        self._waiters.append((condition, waiter))
        self._wake()
        return waiter

    def _wake(self) -> None:
        due = [w for w in self._waiters if w[0]()]
        self._waiters = [w for w in self._waiters if w not in due]
        for _, waiter in due:
            waiter.callback(None)


class Release:
    """Holds every :class:`WaitForRelease` step until :meth:`open`: builds released together."""

    def __init__(self) -> None:
        self.is_open = False
        self._waiting: list[defer.Deferred[None]] = []

    def wait(self) -> defer.Deferred[None]:
        """A Deferred that fires once the release is open (at once if it is)."""
        if self.is_open:
            return defer.succeed(None)
        waiter: defer.Deferred[None] = defer.Deferred()
        self._waiting.append(waiter)
        return waiter

    def open(self) -> None:
        """Let every waiting step, and every later one, go."""
        self.is_open = True
        waiting, self._waiting = self._waiting, []
        for waiter in waiting:
            waiter.callback(None)


class WaitForRelease(BuildStep):
    """A step, run on the master, that waits for its :class:`Release`: no process per build."""

    def __init__(self, release: Release, **kwargs: Any) -> None:
        self.release = release
        super().__init__(**{"name": "wait for release", **kwargs})

    async def run(self) -> int:
        """Wait, then succeed."""
        await self.release.wait()
        return SUCCESS


class DatabaseCalls:
    """Counts the calls through a master's database pool (``do`` and ``do_with_engine``).

    ``do_with_transaction`` goes through ``do``, so each call counts once.
    """

    def __init__(self, pool: Any) -> None:
        self.calls = 0
        for name in ("do", "do_with_engine"):
            setattr(pool, name, self._counted(getattr(pool, name)))

    def _counted(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return method(*args, **kwargs)

        return counted


@implementer(ILogObserver)
class LogWatch:
    """Keeps the master's errors (and, when ``verbose``, prints every log line)."""

    def __init__(self, *, verbose: bool) -> None:
        self.errors: list[str] = []
        self._verbose = verbose

    def __call__(self, event: Mapping[str, Any]) -> None:
        failure = event.get("log_failure")
        level = event.get("log_level")
        if self._verbose:
            print(f"  | {formatEvent(dict(event))}", flush=True)
        if failure is not None or level in (LogLevel.error, LogLevel.critical):
            text = formatEvent(dict(event)) or ""
            if failure is not None:
                text += "\n" + failure.getTraceback()
            self.errors.append(text)

    @classmethod
    def install(cls, *, verbose: bool) -> LogWatch:
        """Start Twisted's logging to a new watch (once per process)."""
        watch = cls(verbose=verbose)
        globalLogBeginner.beginLoggingTo([watch], redirectStandardIO=False)
        return watch


@attrs.define
class BenchMaster:
    """A running master: ``builds`` notes its builds' starts and ends; ``database`` counts calls."""

    master: Any
    builds: BuildEvents
    database: DatabaseCalls
    _basedir: str = attrs.field(repr=False, alias="basedir")
    _revisions: Iterator[int] = attrs.field(repr=False, factory=lambda: itertools.count(1))

    @classmethod
    async def start(
        cls,
        reactor: Any,
        *,
        builders: Mapping[str, Sequence[Any]],
        services: Sequence[Any] = (),
        workers: int = 1,
    ) -> BenchMaster:
        """Start a master with one builder (name -> steps) per entry of ``builders``.

        A worker runs one build of a builder at a time: ``workers`` local
        workers let that many builds of one builder run together.
        """
        names = [f"local{n}" for n in range(1, workers + 1)]
        config: dict[str, Any] = {
            "title": "buildbot-jira benchmark",
            "buildbotURL": BUILDBOT_URL,
            "buildbotNetUsageData": None,
            "db": {"db_url": "sqlite://"},
            "protocols": {"null": {}},
            "workers": [LocalWorker(name) for name in names],
            "builders": [
                util.BuilderConfig(
                    name=name,
                    workernames=names,
                    factory=util.BuildFactory(list(build_steps)),
                    collapseRequests=False,
                )
                for name, build_steps in builders.items()
            ],
            # A change of project <builder> starts a build of that builder at once.
            "schedulers": [
                schedulers.AnyBranchScheduler(
                    name=name,
                    builderNames=[name],
                    treeStableTimer=None,
                    change_filter=util.ChangeFilter(project=name),
                )
                for name in builders
            ],
            "services": list(services),
        }
        basedir = tempfile.mkdtemp(prefix="buildbot-jira-bench-")
        master = await start_master(basedir, config, reactor)
        found = await master.data.get(("builders",))
        builds = BuildEvents({b["builderid"]: b["name"] for b in found})
        for event in ("new", "finished"):
            await master.mq.startConsuming(builds.consume, ("builds", None, event))
        return cls(
            master=master, builds=builds, database=DatabaseCalls(master.db.pool), basedir=basedir
        )

    async def add_change(self, *, builder: str, branch: str, comments: str) -> None:
        """Tell the master of a change on ``branch``, which starts a build of ``builder``."""
        revision = f"{next(self._revisions):040x}"
        await self.master.data.updates.addChange(
            author="dev <dev@example.com>",
            branch=branch,
            revision=revision,
            comments=comments,
            repository=REPOSITORY,
            project=builder,
            files=["app.py"],
        )

    async def stop(self) -> None:
        """Stop the master and remove its directory."""
        try:
            await stop_master(self.master)
        finally:
            shutil.rmtree(self._basedir, ignore_errors=True)
