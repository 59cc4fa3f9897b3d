"""The Buildbot master of ``buildbot-jira demo``: its configuration, its life, watching it.

A real :class:`buildbot.master.BuildMaster` with a local worker runs in this
process, on the command's reactor, with the project's reporters pointed at
the simulator: a :class:`~buildbot_jira.reporters.JiraBuildReporter`, a
step-level :class:`~buildbot_jira.reporters.JiraDeploymentReporter` and a
:class:`~buildbot_jira.reporters.JiraDevInfoReporter`; the release build
reports a feature flag with :class:`~buildbot_jira.steps.JiraFeatureFlag`.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from twisted.internet import defer, task
from twisted.logger import ILogObserver, formatEvent
from zope.interface import implementer

from buildbot_jira.simulator import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from buildbot_jira.tools.demo_scenario import BUILDBOT_URL, DEMO_SITE, FLAG_KEY, STEP_PATTERN

__all__ = [
    "BuildProgress",
    "Interrupted",
    "LogTail",
    "master_config",
    "start_master",
    "stop_master",
    "wait_until",
]


def master_config(*, repository: str, jira_url: str, proxy: str | None = None) -> dict[str, Any]:
    """The demo master's configuration, as a ``master.cfg`` would set ``c``.

    ``proxy``, when given, is every reporter's ``proxy`` argument.
    """
    from buildbot.plugins import schedulers, steps, util
    from buildbot.worker.local import LocalWorker

    from buildbot_jira.reporters import (
        JiraBuildReporter,
        JiraDeploymentReporter,
        JiraDevInfoReporter,
    )
    from buildbot_jira.steps import JiraFeatureFlag

    def checkout() -> Any:
        return steps.Git(
            name="checkout", repourl=repository, mode="full", method="clobber", haltOnFailure=True
        )

    def shell(name: str, *command: str, done: str | None = None) -> Any:
        # descriptionDone is what Jira shows as a deployment's description.
        return steps.ShellCommand(
            name=name, command=list(command), haltOnFailure=True, descriptionDone=done or name
        )

    jira = {
        "site": DEMO_SITE,
        "client_id": DEFAULT_CLIENT_ID,
        "client_secret": DEFAULT_CLIENT_SECRET,
        "api_url": jira_url,
        "site_url": jira_url,
        **({} if proxy is None else {"proxy": proxy}),
    }
    app = util.BuildFactory([checkout(), shell("test", "sh", "test.sh")])
    release = util.BuildFactory(
        [
            checkout(),
            shell("test", "sh", "test.sh"),
            shell("deploy to staging", "sh", "deploy.sh", "staging", done="deployed to staging"),
            shell(
                "deploy to production",
                "sh",
                "deploy.sh",
                "production",
                done="deployed to production",
            ),
            # The release turns the new checkout on for a quarter of production.
            JiraFeatureFlag(
                flag_key=FLAG_KEY,
                environment="production",
                enabled=True,
                rollout_percentage=25,
                **jira,
            ),
        ]
    )
    return {
        "title": "buildbot-jira demo",
        "buildbotURL": BUILDBOT_URL,
        "buildbotNetUsageData": None,
        "db": {"db_url": "sqlite://"},
        "protocols": {"null": {}},
        "workers": [LocalWorker("demo-worker")],
        "builders": [
            util.BuilderConfig(name="app", workernames=["demo-worker"], factory=app),
            util.BuilderConfig(name="release", workernames=["demo-worker"], factory=release),
        ],
        "schedulers": [
            schedulers.AnyBranchScheduler(
                name="branches",
                change_filter=util.ChangeFilter(branch_re=r"^(feature|bugfix)/"),
                builderNames=["app"],
            ),
            schedulers.AnyBranchScheduler(
                name="release",
                change_filter=util.ChangeFilter(branch="release"),
                builderNames=["release"],
            ),
        ],
        "services": [
            JiraBuildReporter(name="jira-builds", **jira),
            JiraDeploymentReporter(
                name="jira-deployments", builders=["release"], step_pattern=STEP_PATTERN, **jira
            ),
            JiraDevInfoReporter(name="jira-devinfo", **jira),
        ],
    }


async def start_master(basedir: str, config: dict[str, Any], reactor: Any) -> Any:
    """Start a BuildMaster in ``basedir`` with ``config``, in this process."""
    from buildbot.config.master import MasterConfig
    from buildbot.interfaces import IConfigLoader
    from buildbot.master import BuildMaster

    @implementer(IConfigLoader)
    class DictLoader:
        """Loads the configuration from a dict, as a master.cfg would set ``c``."""

        def loadConfig(self) -> MasterConfig:
            return MasterConfig.loadFromDict(config, "<buildbot-jira demo>")

    os.makedirs(basedir, exist_ok=True)
    master = BuildMaster(basedir, reactor=reactor, config_loader=DictLoader())
    # A master takes over SIGHUP, SIGUSR1 and SIGTERM as if it owned the
    # process; here the command does, and Ctrl-C or kill must stop it.
    handlers = {number: signal.getsignal(number) for number in _master_signals()}
    try:
        await master.startService()
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)
    return master


def _master_signals() -> list[int]:
    """The signals a master takes over, of those this platform has."""
    names = ("SIGHUP", "SIGUSR1", "SIGTERM")
    return [getattr(signal, name) for name in names if hasattr(signal, name)]


async def stop_master(master: Any) -> None:
    """Stop ``master`` and its database threads."""
    await master.stopService()
    pool = getattr(master.db, "pool", None)
    if pool is not None:
        await pool.stop()


@implementer(ILogObserver)
class LogTail:
    """The last log events: shown when something goes wrong, or all of them with --verbose."""

    def __init__(self, out: TextIO | None) -> None:
        self.lines: list[str] = []
        self._out = out

    def __call__(self, event: Mapping[str, Any]) -> None:
        text = formatEvent(dict(event)) or ""
        failure = event.get("log_failure")
        if failure is not None:
            text += "\n" + failure.getTraceback()
        if not text.strip():
            return  # events that carry data only
        self.lines = [*self.lines[-40:], text]
        if self._out is not None:
            self._out.write(f"  | {text}\n")
            self._out.flush()

    def errors(self) -> list[str]:
        """The lines from the first that tells of an error (Buildbot explains on the next)."""
        for index, line in enumerate(self.lines):
            if "rror" in line or "Traceback" in line:
                return self.lines[index:]
        return []


class BuildProgress:
    """Prints a line as each build starts and finishes."""

    def __init__(self, master: Any, out: TextIO) -> None:
        self._master = master
        self._out = out
        self.finished: list[dict[str, Any]] = []

    async def on_build(self, key: tuple[str, ...], build: dict[str, Any]) -> None:
        """Consume one ``('builds', id, event)`` message of the master's queue."""
        from buildbot.process.results import Results

        builder = await self._master.data.get(("builders", build["builderid"]))
        name = f"{builder['name'] if builder else '?'} #{build['number']}"
        if key[-1] == "new":
            properties = await self._master.data.get(("builds", build["buildid"], "properties"))
            branch = (properties or {}).get("branch", (None,))[0]
            self._print(f"build {name} started on {branch}")
        elif key[-1] == "finished":
            self.finished.append(build)
            result = Results[build["results"]] if build.get("results") is not None else "?"
            self._print(f"build {name} finished: {result}")

    def _print(self, text: str) -> None:
        self._out.write(f"  {text}\n")
        self._out.flush()


async def wait_until(
    condition: Callable[[], bool], *, reactor: Any, deadline: float, stopping: defer.Deferred[None]
) -> bool:
    """Wait in short steps until ``condition()`` holds; False at the deadline.

    ``deadline`` is a time of ``reactor.seconds()``. Raises
    :class:`Interrupted` as soon as ``stopping`` has fired.
    """
    while not condition():
        if stopping.called:
            raise Interrupted()
        if reactor.seconds() > deadline:
            return False
        await task.deferLater(reactor, 0.1, lambda: None)
    return True


class Interrupted(Exception):
    """Ctrl-C (or the master) stopped the reactor."""
