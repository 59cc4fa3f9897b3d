"""``buildbot-jira demo``: a real Buildbot master reports to a local Jira, on this machine.

In a temporary directory the demo

1. makes a small git repository whose branches and commits name issues:
   ``feature/DEMO-1-login`` ("DEMO-1: add login", its tests pass),
   ``bugfix/DEMO-2-crash`` (a test that fails) and ``release``
   ("DEMO-3: release 1.0", deployed to staging and production);
2. starts the Jira Cloud simulator (:mod:`buildbot_jira.simulator`);
3. starts a real :class:`buildbot.master.BuildMaster` with a local worker,
   the builders that check out and test that repository, and the project's
   reporters pointed at the simulator: a :class:`JiraBuildReporter`, a
   step-level :class:`JiraDeploymentReporter` and a :class:`JiraDevInfoReporter`,
   and a :class:`JiraFeatureFlag` step in the release build;
4. tells the master of one change per branch, waits for the three builds and
   for the reporters to deliver, and prints what Jira received per issue.

Then it keeps the simulator's issue view open until Ctrl-C, or with
``--once`` exits: 0 if Jira received every expected build, deployment,
commit and feature flag. The master and the temporary directory are gone
before the command ends.

This module runs the command; the scenario, the repository, the master and
the summary each have a module of their own (``demo_*``), whose public
names are importable from here too.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from typing import Any, Final, TextIO

from twisted.internet import defer, task
from twisted.internet.error import CannotListenError
from twisted.logger import globalLogPublisher

from buildbot_jira.simulator import JiraSimulator, RunningSimulator
from buildbot_jira.tools.demo_master import (
    BuildProgress,
    Interrupted,
    LogTail,
    master_config,
    start_master,
    stop_master,
    wait_until,
)
from buildbot_jira.tools.demo_repository import make_repository
from buildbot_jira.tools.demo_scenario import (
    AUTHOR,
    BUILDBOT_URL,
    DEMO_SITE,
    EXPECTED,
    STEP_PATTERN,
    DemoFailed,
    Expectation,
    RepositoryChange,
)
from buildbot_jira.tools.demo_summary import counts, missing, summary_lines
from buildbot_jira.tools.runner import INTERRUPTED

__all__ = [
    "BUILDBOT_URL",
    "DEADLINE",
    "DEFAULT_PORT",
    "DEMO_SITE",
    "EXPECTED",
    "STEP_PATTERN",
    "DemoFailed",
    "Expectation",
    "RepositoryChange",
    "add_arguments",
    "link_note",
    "make_repository",
    "master_config",
    "missing",
    "run",
    "summary_lines",
]

DEFAULT_PORT: Final = 8099
#: Seconds the builds and the deliveries may take, in all.
DEADLINE: Final = 50.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``demo`` options to ``parser``."""
    parser.add_argument(
        "--once",
        action="store_true",
        help="exit after the summary instead of keeping the issue view open",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help="port of the simulator and its issue view (%(default)s; any free port if taken)",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="show the Buildbot master's log as it runs"
    )
    parser.add_argument(
        "--proxy",
        metavar="URL",
        help="send the reporters' requests through this HTTP proxy (http://[user:password@]host:port)",
    )


async def _listen(simulator: JiraSimulator, reactor: Any, port: int) -> RunningSimulator:
    """Listen on ``port``, or on any free port if it is taken."""
    try:
        return await simulator.listen(reactor, port=port)
    except CannotListenError:
        return await simulator.listen(reactor, port=0)


def _say(out: TextIO, text: str = "") -> None:
    """Print one line now, not when the buffer fills: the demo narrates as it goes."""
    out.write(text + "\n")
    out.flush()


async def run(args: argparse.Namespace, *, out: TextIO, reactor: Any) -> int:
    """Run the demo; returns the exit code."""
    started = reactor.seconds()
    stopping: defer.Deferred[None] = defer.Deferred()
    cleaned: defer.Deferred[None] = defer.Deferred()

    def on_shutdown() -> defer.Deferred[None]:
        # Ctrl-C: let the work below notice, and hold the reactor until it has cleaned up.
        if not stopping.called:
            stopping.callback(None)
        return cleaned

    trigger = reactor.addSystemEventTrigger("before", "shutdown", on_shutdown)
    log = LogTail(sys.stderr if args.verbose else None)
    globalLogPublisher.addObserver(log)
    workdir = tempfile.mkdtemp(prefix="buildbot-jira-demo-")
    running: RunningSimulator | None = None
    try:
        _check_worker_installed()
        _say(out, f"buildbot-jira demo, working in {workdir}")
        repository = os.path.join(workdir, "repository")
        changes = make_repository(repository)
        _say(out, f"  git repository with branches {', '.join(c.branch for c in changes)}")
        running = await _listen(JiraSimulator(known_projects=("DEMO",)), reactor, args.port)
        _say(out, f"  Jira Cloud simulator at {running.url}/ (site {DEMO_SITE})")
        await _demo(
            out, reactor, workdir, repository, changes, running, stopping, log, proxy=args.proxy
        )
        ok = not missing(running.simulator)
        _say(out, f"Done in {reactor.seconds() - started:.0f} s; the master has stopped.")
        if not args.once:
            _say(out, f"Issue view: {running.url}/  (open it in a browser; Ctrl-C to stop)")
            await stopping
        return 0 if ok else 1
    except Interrupted:
        _say(out, "\nInterrupted.")
        return INTERRUPTED
    except DemoFailed as failure:
        _say(out, f"buildbot-jira demo: {failure}")
        for line in log.errors()[-10:]:
            _say(out, f"  | {line}")
        return 1
    finally:
        globalLogPublisher.removeObserver(log)
        if running is not None:
            await running.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        if not stopping.called:
            reactor.removeSystemEventTrigger(trigger)
        cleaned.callback(None)


async def _demo(
    out: TextIO,
    reactor: Any,
    workdir: str,
    repository: str,
    changes: Sequence[RepositoryChange],
    running: RunningSimulator,
    stopping: defer.Deferred[None],
    log: LogTail,
    *,
    proxy: str | None = None,
) -> None:
    """Run the master until Jira has the builds, then print the summary.

    The master is stopped when this returns, whichever way.
    """
    simulator = running.simulator
    master = await start_master(
        os.path.join(workdir, "master"),
        master_config(repository=repository, jira_url=running.url, proxy=proxy),
        reactor,
    )
    try:
        # A master that fails to start stops the reactor: give that a moment to show.
        await task.deferLater(reactor, 0.1, lambda: None)
        if stopping.called:
            if log.errors() or any("Halting master" in line for line in log.lines):
                raise DemoFailed("the Buildbot master did not start; its log says why:")
            raise Interrupted()
        _say(out, "  Buildbot master started: builders app and release, a local worker,")
        _say(out, "  JiraBuildReporter, JiraDeploymentReporter (step_pattern 'deploy to ...'),")
        _say(out, "  JiraDevInfoReporter, and a JiraFeatureFlag step in the release")
        await _build_and_deliver(master, repository, changes, simulator, reactor, out, stopping)
    finally:
        await stop_master(master)
    _say(out)
    _say(out, f"What Jira received ({counts(simulator)}):")
    for line in summary_lines(simulator.issues()):
        _say(out, f"  {line}")
    absent = missing(simulator)
    _say(out)
    if absent:
        _say(out, "Missing: " + "; ".join(absent) + ". Run with --verbose to see the master's log.")
    else:
        _say(out, "Every expected build, deployment, commit and flag was accepted.")
        _say(out, link_note())
        _say(out, "Next, prove your own site's credentials (the check asks for the secret):")
        _say(out, "  buildbot-jira check --site YOURS.atlassian.net --client-id ID --issue KEY")


async def _build_and_deliver(
    master: Any,
    repository: str,
    changes: Sequence[RepositoryChange],
    simulator: JiraSimulator,
    reactor: Any,
    out: TextIO,
    stopping: defer.Deferred[None],
) -> None:
    """Tell the master of the changes, wait for the builds, then for Jira to have them all."""
    progress = BuildProgress(master, out)
    consumer = await master.mq.startConsuming(
        lambda key, build: defer.Deferred.fromCoroutine(progress.on_build(key, build)),
        ("builds", None, None),
    )
    try:
        for change in changes:
            await master.data.updates.addChange(
                author=AUTHOR,
                committer=AUTHOR,
                files=list(change.files),
                comments=change.comments,
                revision=change.revision,
                branch=change.branch,
                repository=repository,
                project="demo",
                src="git",
                when_timestamp=int(reactor.seconds()),
            )
            _say(out, f"  pushed {change.branch} {change.revision[:7]} {change.comments!r}")
        deadline = reactor.seconds() + DEADLINE
        built = await wait_until(
            lambda: len(progress.finished) >= len(changes),
            reactor=reactor,
            deadline=deadline,
            stopping=stopping,
        )
        if not built:
            raise DemoFailed(f"the builds did not finish within {DEADLINE:g} s")
        _say(out, "  waiting for the reporters to deliver to Jira ...")
        reporters = [s for s in master.config.services.values() if hasattr(s, "outbox")]
        await wait_until(
            lambda: not missing(simulator) and all(not len(r.outbox or ()) for r in reporters),
            reactor=reactor,
            deadline=deadline,
            stopping=stopping,
        )
    finally:
        consumer.stopConsuming()


def link_note() -> str:
    """Where the build links in Jira lead, said plainly: the demo's master is gone."""
    return (
        f"Their links point at the demo master ({BUILDBOT_URL}), which served no web UI "
        "and has stopped: a real master's links open each build's page."
    )


def _check_worker_installed() -> None:
    """Fail early, with the fix, when buildbot-worker is missing."""
    if importlib.util.find_spec("buildbot_worker") is None:
        raise DemoFailed(
            "the demo runs a local Buildbot worker, which needs the buildbot-worker package: "
            "pip install buildbot-worker"
        )
