"""``buildbot-jira demo``: a real Buildbot master reports to a local Jira, on this machine.

In a temporary directory the demo

1. makes a small git repository whose branches and commits name issues:
   ``feature/DEMO-1-login`` ("DEMO-1: add login", its tests pass),
   ``bugfix/DEMO-2-crash`` (a test that fails) and ``release``
   ("DEMO-3: release 1.0", deployed to staging and production);
2. starts the Jira Cloud simulator (:mod:`buildbot_jira.simulator`);
3. starts a real :class:`buildbot.master.BuildMaster` with a local worker,
   the builders that check out and test that repository, and the project's
   reporters pointed at the simulator: a :class:`JiraBuildReporter` and a
   step-level :class:`JiraDeploymentReporter`;
4. tells the master of one change per branch, waits for the three builds and
   for the reporters to deliver, and prints what Jira received per issue.

Then it keeps the simulator's issue view open until Ctrl-C, or with
``--once`` exits: 0 if Jira received every expected build and deployment.
The master and the temporary directory are gone before the command ends.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, TextIO

import attrs
from twisted.internet import defer, task
from twisted.internet.error import CannotListenError
from twisted.logger import ILogObserver, formatEvent, globalLogPublisher
from zope.interface import implementer

from buildbot_jira.simulator import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    JiraSimulator,
    RunningSimulator,
)

__all__ = [
    "BUILDBOT_URL",
    "DEMO_SITE",
    "EXPECTED",
    "STEP_PATTERN",
    "DemoFailed",
    "Expectation",
    "RepositoryChange",
    "add_arguments",
    "make_repository",
    "master_config",
    "missing",
    "run",
    "summary_lines",
]

DEMO_SITE: Final = "demo.atlassian.net"
#: Where the build links in Jira point. The demo runs no web UI, so they are
#: examples of what a real master's links look like.
BUILDBOT_URL: Final = "http://localhost:8010/"
STEP_PATTERN: Final = r"^deploy to (?P<environment>.+)$"
DEFAULT_PORT: Final = 8099
#: Seconds the builds and the deliveries may take, in all.
DEADLINE: Final = 50.0
_AUTHOR: Final = "Ada Lovelace <ada@example.com>"
# Whatever the user's git configuration says, the demo's commits are neither
# signed nor run through hooks.
_GIT_SETTINGS: Final = ("-c", "commit.gpgsign=false", "-c", "core.hooksPath=/dev/null")


class DemoFailed(Exception):
    """The demo could not go on; the message says why and what to try."""


@attrs.frozen
class Expectation:
    """A build or deployment that Jira must hold at the end of the demo."""

    issue: str
    kind: str  # "build" or "deployment"
    state: str
    environment: str | None = None

    def describe(self) -> str:
        """The expectation in words."""
        where = f" to {self.environment}" if self.environment else ""
        return f"{self.state} {self.kind}{where} on {self.issue}"


EXPECTED: Final = (
    Expectation("DEMO-1", "build", "successful"),
    Expectation("DEMO-2", "build", "failed"),
    Expectation("DEMO-3", "build", "successful"),
    Expectation("DEMO-3", "deployment", "successful", "staging"),
    Expectation("DEMO-3", "deployment", "successful", "production"),
)


@attrs.frozen
class RepositoryChange:
    """A commit at a branch tip, as the master is told of it."""

    branch: str
    revision: str
    comments: str
    files: tuple[str, ...]


# -- the repository -------------------------------------------------------------

_MAIN_FILES: Final[Mapping[str, str]] = {
    "greet.sh": '#!/bin/sh\n# The whole application: greets whoever is named.\necho "Hello, $1!"\n',
    "test.sh": (
        "#!/bin/sh\n"
        "# The test suite: each test prints one line; a failing test fails the build.\n"
        "set -e\n"
        '[ "$(sh greet.sh Ada)" = "Hello, Ada!" ]\n'
        'echo "ok - greets by name"\n'
    ),
}

#: (branch, branched from, commit message, files written or extended).
_COMMITS: Final[Sequence[tuple[str, str, str, Mapping[str, str]]]] = (
    (
        "feature/DEMO-1-login",
        "main",
        "DEMO-1: add login",
        {
            "login.sh": '#!/bin/sh\n# Lets a named user in.\n[ -n "$1" ] && echo "welcome $1"\n',
            "test.sh": '[ "$(sh login.sh ada)" = "welcome ada" ]\necho "ok - logs in"\n',
        },
    ),
    (
        "bugfix/DEMO-2-crash",
        "main",
        "DEMO-2: test the crash on a missing name",
        {
            "test.sh": (
                'if [ "$(sh greet.sh)" != "Hello, stranger!" ]; then\n'
                '    echo "not ok - greets a missing name (DEMO-2 is not fixed yet)"\n'
                "    exit 1\n"
                "fi\n"
            ),
        },
    ),
    (
        "release",
        "main",
        "DEMO-3: release 1.0",
        {
            "VERSION": "1.0\n",
            "deploy.sh": (
                "#!/bin/sh\n"
                "# Pretends to deploy the version to the environment named.\n"
                'echo "deploying version $(cat VERSION) to $1"\n'
                "sleep 1\n"
                'echo "deployed to $1"\n'
            ),
        },
    ),
)


def _git_environment(home: str) -> dict[str, str]:
    """An environment in which the user's own git settings (hooks, signing) play no part."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    name, _, email = _AUTHOR.partition(" <")
    environment.update(
        HOME=home,
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME=name,
        GIT_AUTHOR_EMAIL=email.rstrip(">"),
        GIT_COMMITTER_NAME=name,
        GIT_COMMITTER_EMAIL=email.rstrip(">"),
    )
    return environment


def make_repository(path: str) -> list[RepositoryChange]:
    """Make the demo's git repository at ``path``; the change at each branch's tip.

    Runs ``git`` and waits for it: call it before anything is served on the
    reactor.
    """
    git_command = shutil.which("git")
    if git_command is None:
        raise DemoFailed("the demo needs the git command; install git and try again")
    os.makedirs(path)
    environment = _git_environment(os.path.dirname(path))

    def git(*arguments: str) -> str:
        try:
            done = subprocess.run(  # noqa: S603 - fixed arguments, our own repository
                [git_command, *_GIT_SETTINGS, *arguments],
                cwd=path,
                env=environment,
                check=True,
                capture_output=True,
                text=True,
            )
        except subprocess.CalledProcessError as failure:
            raise DemoFailed(
                f"git {' '.join(arguments)} failed: {failure.stderr.strip()}"
            ) from None
        return done.stdout.strip()

    git("init", "--quiet", "--initial-branch=main")
    _write_files(path, _MAIN_FILES, append=False)
    git("add", "--all")
    git("commit", "--quiet", "--message", "Initial version of the greeter")
    changes = []
    for branch, base, message, files in _COMMITS:
        git("checkout", "--quiet", "-b", branch, base)
        _write_files(path, files, append=True)
        git("add", "--all")
        git("commit", "--quiet", "--message", message)
        revision = git("rev-parse", "HEAD")
        changed = git("diff-tree", "--no-commit-id", "--name-only", "-r", revision).split()
        changes.append(RepositoryChange(branch, revision, message, tuple(changed)))
    git("checkout", "--quiet", "main")
    return changes


def _write_files(root: str, files: Mapping[str, str], *, append: bool) -> None:
    for name, text in files.items():
        with open(os.path.join(root, name), "a" if append else "w", encoding="utf-8") as file:
            file.write(text)


# -- the master -----------------------------------------------------------------


def master_config(*, repository: str, jira_url: str) -> dict[str, Any]:
    """The demo master's configuration, as a ``master.cfg`` would set ``c``."""
    from buildbot.plugins import schedulers, steps, util
    from buildbot.worker.local import LocalWorker

    from buildbot_jira.reporters import JiraBuildReporter, JiraDeploymentReporter

    def checkout() -> Any:
        return steps.Git(
            name="checkout", repourl=repository, mode="full", method="clobber", haltOnFailure=True
        )

    def shell(name: str, *command: str, done: str | None = None) -> Any:
        # descriptionDone is what Jira shows as a deployment's description.
        return steps.ShellCommand(
            name=name, command=list(command), haltOnFailure=True, descriptionDone=done or name
        )

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
        ]
    )
    jira = {
        "site": DEMO_SITE,
        "client_id": DEFAULT_CLIENT_ID,
        "client_secret": DEFAULT_CLIENT_SECRET,
        "api_url": jira_url,
        "site_url": jira_url,
    }
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
    names = ("SIGHUP", "SIGUSR1", "SIGTERM")
    return [getattr(signal, name) for name in names if hasattr(signal, name)]


async def stop_master(master: Any) -> None:
    """Stop ``master`` and its database threads."""
    await master.stopService()
    pool = getattr(master.db, "pool", None)
    if pool is not None:
        await pool.stop()


# -- watching -------------------------------------------------------------------


@implementer(ILogObserver)
class _LogTail:
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


class _Progress:
    """Prints a line as each build starts and finishes."""

    def __init__(self, master: Any, out: TextIO) -> None:
        self._master = master
        self._out = out
        self.finished: list[dict[str, Any]] = []

    async def on_build(self, key: tuple[str, ...], build: dict[str, Any]) -> None:
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


async def _until(
    condition: Callable[[], bool], *, reactor: Any, deadline: float, stopping: defer.Deferred[None]
) -> bool:
    """Wait in short steps until ``condition()`` holds; False at the deadline."""
    while not condition():
        if stopping.called:
            raise _Interrupted()
        if reactor.seconds() > deadline:
            return False
        await task.deferLater(reactor, 0.1, lambda: None)
    return True


class _Interrupted(Exception):
    """Ctrl-C (or the master) stopped the reactor."""


# -- what Jira received ---------------------------------------------------------


def missing(simulator: JiraSimulator, expected: Iterable[Expectation] = EXPECTED) -> list[str]:
    """The expected builds and deployments that the simulator does not hold, in words."""
    issues = simulator.issues()
    absent = []
    for want in expected:
        sections = issues.get(want.issue, {})
        if want.kind == "build":
            found = any(b.get("state") == want.state for b in sections.get("builds", ()))
        else:
            found = any(
                d.get("state") == want.state
                and d.get("environment", {}).get("id") == want.environment
                for d in sections.get("deployments", ())
            )
        if not found:
            absent.append(want.describe())
    return absent


def summary_lines(issues: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]]) -> list[str]:
    """What Jira holds per issue, one line per build and deployment."""
    lines = []
    for issue, sections in issues.items():
        lines.append(issue)
        for build in sections.get("builds", ()):
            branch = next(
                (
                    ref["ref"]["name"]
                    for ref in build.get("references", ())
                    if isinstance(ref.get("ref"), dict)
                ),
                "",
            )
            lines.append(
                f"  build       {build['displayName']:<28} {build['state']:<12} {branch}".rstrip()
            )
        for deployment in sections.get("deployments", ()):
            environment = deployment["environment"]
            lines.append(
                f"  deployment  {deployment['displayName']:<28} {deployment['state']:<12} "
                f"{environment['displayName']} ({environment['type']})"
            )
    return lines


def _counts(simulator: JiraSimulator) -> str:
    builds, deployments = len(simulator.builds), len(simulator.deployments)
    return (
        f"{builds} build{'s' if builds != 1 else ''} and "
        f"{deployments} deployment{'s' if deployments != 1 else ''}"
    )


# -- the command ----------------------------------------------------------------


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


async def _listen(simulator: JiraSimulator, reactor: Any, port: int) -> RunningSimulator:
    try:
        return await simulator.listen(reactor, port=port)
    except CannotListenError:
        return await simulator.listen(reactor, port=0)


def _say(out: TextIO, text: str = "") -> None:
    out.write(text + "\n")
    out.flush()


async def run(args: argparse.Namespace, *, out: TextIO, reactor: Any) -> int:
    """Run the demo; returns the exit code."""
    started = time.monotonic()
    stopping: defer.Deferred[None] = defer.Deferred()
    cleaned: defer.Deferred[None] = defer.Deferred()

    def on_shutdown() -> defer.Deferred[None]:
        # Ctrl-C: let the work below notice, and hold the reactor until it has cleaned up.
        if not stopping.called:
            stopping.callback(None)
        return cleaned

    trigger = reactor.addSystemEventTrigger("before", "shutdown", on_shutdown)
    log = _LogTail(sys.stderr if args.verbose else None)
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
        await _demo(out, reactor, workdir, repository, changes, running, stopping, log)
        ok = not missing(running.simulator)
        _say(out, f"Done in {time.monotonic() - started:.0f} s; the master has stopped.")
        if not args.once:
            _say(out, f"Issue view: {running.url}/  (open it in a browser; Ctrl-C to stop)")
            await stopping
        return 0 if ok else 1
    except _Interrupted:
        _say(out, "\nInterrupted.")
        return 130  # as shells report Ctrl-C
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
    log: _LogTail,
) -> None:
    """Run the master until Jira has the builds, then print the summary.

    The master is stopped when this returns, whichever way.
    """
    simulator = running.simulator
    master = await start_master(
        os.path.join(workdir, "master"),
        master_config(repository=repository, jira_url=running.url),
        reactor,
    )
    try:
        # A master that fails to start stops the reactor: give that a moment to show.
        await task.deferLater(reactor, 0.1, lambda: None)
        if stopping.called:
            if log.errors() or any("Halting master" in line for line in log.lines):
                raise DemoFailed("the Buildbot master did not start; its log says why:")
            raise _Interrupted()
        _say(out, "  Buildbot master started: builders app and release, a local worker,")
        _say(out, "  JiraBuildReporter and JiraDeploymentReporter (step_pattern 'deploy to ...')")
        await _build_and_deliver(master, repository, changes, simulator, reactor, out, stopping)
    finally:
        await stop_master(master)
    _say(out)
    _say(out, f"What Jira received ({_counts(simulator)}):")
    for line in summary_lines(simulator.issues()):
        _say(out, f"  {line}")
    absent = missing(simulator)
    _say(out)
    if absent:
        _say(out, "Missing: " + "; ".join(absent) + ". Run with --verbose to see the master's log.")
    else:
        _say(out, "Every expected build and deployment was accepted.")
        _say(out, "Next, with your own site (the secret in $JIRA_CLIENT_SECRET):")
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
    progress = _Progress(master, out)
    consumer = await master.mq.startConsuming(
        lambda key, build: defer.Deferred.fromCoroutine(progress.on_build(key, build)),
        ("builds", None, None),
    )
    try:
        for change in changes:
            await master.data.updates.addChange(
                author=_AUTHOR,
                committer=_AUTHOR,
                files=list(change.files),
                comments=change.comments,
                revision=change.revision,
                branch=change.branch,
                repository=repository,
                project="demo",
                src="git",
                when_timestamp=int(time.time()),
            )
            _say(out, f"  pushed {change.branch} {change.revision[:7]} {change.comments!r}")
        deadline = reactor.seconds() + DEADLINE
        built = await _until(
            lambda: len(progress.finished) >= len(changes),
            reactor=reactor,
            deadline=deadline,
            stopping=stopping,
        )
        if not built:
            raise DemoFailed(f"the builds did not finish within {DEADLINE:g} s")
        _say(out, "  waiting for the reporters to deliver to Jira ...")
        reporters = [s for s in master.config.services.values() if hasattr(s, "outbox")]
        await _until(
            lambda: not missing(simulator) and all(not len(r.outbox or ()) for r in reporters),
            reactor=reactor,
            deadline=deadline,
            stopping=stopping,
        )
    finally:
        consumer.stopConsuming()


def _check_worker_installed() -> None:
    if importlib.util.find_spec("buildbot_worker") is None:
        raise DemoFailed(
            "the demo runs a local Buildbot worker, which needs the buildbot-worker package: "
            "pip install buildbot-worker"
        )
