"""A real Buildbot master as a process of its own: started, waited for, killed.

Each master runs ``twistd --nodaemon -y buildbot.tac`` from this virtual
environment, so that a test can stop it cleanly (SIGTERM) or kill it
(SIGKILL) as a crash would. Its ``twistd.log`` is quoted when it fails to
start. Tests drive it through Buildbot's REST API on its www port: forcing
builds (``POST /api/v2/forceschedulers/force``) and reading what it knows.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path
from typing import Any

import attrs
import treq

from tests.cluster.basedirs import MasterSettings, write_basedir
from tests.cluster.polling import until_answered
from tests.cluster.processes import ChildProcess, port_answers, tail

#: The virtual environment's bin directory: its twistd and buildbot commands.
BIN = Path(sys.executable).parent

#: Seconds a master may take to start (Buildbot, the plugin, the www and the worker).
START_SECONDS = 90.0

#: Seconds a REST request to a master may take.
REQUEST_SECONDS = 30.0

_request_ids = itertools.count(1)


class MasterFailed(AssertionError):
    """A master did not do what a test needed; the message quotes its log."""


@attrs.define(eq=False)
class MasterProcess:
    """One master of the cluster, in ``basedir``: not running until :meth:`start`."""

    settings: MasterSettings
    basedir: Path
    process: ChildProcess | None = None
    #: Where in ``twistd.log`` the latest start's lines begin.
    _log_start: int = attrs.field(default=0, init=False)

    @property
    def label(self) -> str:
        """The master's short name (``a``, ``b``)."""
        return self.settings.label

    @property
    def url(self) -> str:
        """The base URL of the master's www (the REST API is under ``api/v2/``)."""
        return f"http://127.0.0.1:{self.settings.www_port}/"

    @property
    def running(self) -> bool:
        """Whether the master's process is alive."""
        return self.process is not None and self.process.running

    def log(self) -> str:
        """The end of the master's ``twistd.log``."""
        return tail(self.basedir / "twistd.log")

    def describe(self) -> str:
        """The master's name and the end of its log, for a failure message."""
        return (
            f"master {self.settings.name!r} ({self.basedir}); twistd.log ends with:\n{self.log()}"
        )

    def rewrite(self, settings: MasterSettings) -> None:
        """Give the (stopped) master new settings, e.g. another name, for its next start."""
        if self.running:
            raise MasterFailed(f"{self.settings.name!r} is running: stop it before rewriting it")
        self.settings = settings
        write_basedir(self.basedir, settings)

    def rename(self, name: str) -> None:
        """Give the (stopped) master another name for its next start, as a moved master has."""
        self.rewrite(attrs.evolve(self.settings, name=name))

    async def upgrade_database(self) -> None:
        """``buildbot upgrade-master``: create or upgrade the schema of the master's database."""
        upgrade = ChildProcess.start(
            f"buildbot upgrade-master ({self.label})",
            [BIN / "buildbot", "upgrade-master", "--quiet", self.basedir],
            output_path=self.basedir / "upgrade-master.log",
            cwd=self.basedir,
        )

        async def done() -> bool:
            return not upgrade.running

        try:
            await until_answered(done, seconds=START_SECONDS, what="upgrade-master")
        finally:
            upgrade.kill()
        if upgrade.returncode != 0:
            raise MasterFailed(f"upgrade-master failed: {upgrade.describe()}")

    def start(self) -> None:
        """Start the master's process; :meth:`wait_running` waits until it works."""
        if self.running:
            raise MasterFailed(f"{self.settings.name!r} is already running")
        log = self.basedir / "twistd.log"
        self._log_start = log.stat().st_size if log.exists() else 0
        # No pidfile: a master that was killed must start again at once.
        argv: list[str | Path] = [BIN / "twistd", "--nodaemon", "--no_save", "--pidfile="]
        argv += ["-y", "buildbot.tac"]
        self.process = ChildProcess.start(
            f"master {self.label}",
            argv,
            output_path=self.basedir / "process.log",
            cwd=self.basedir,
        )

    async def wait_running(self) -> None:
        """Wait until the master runs: it said so in its log, and its www answers."""
        marker = b"BuildMaster is running"

        async def up() -> bool:
            if not self.running:
                raise MasterFailed(f"the master exited: {self.describe()}")
            try:
                with (self.basedir / "twistd.log").open("rb") as log:
                    log.seek(self._log_start)
                    started = marker in log.read()
            except FileNotFoundError:  # twistd has not opened it yet
                return False
            return started and port_answers(self.settings.www_port)

        try:
            await until_answered(up, seconds=START_SECONDS, what=f"master {self.label} to run")
        except MasterFailed:
            raise
        except AssertionError as failure:
            raise MasterFailed(f"{failure}: {self.describe()}") from None

    def kill(self) -> None:
        """SIGKILL the master: it dies as in a crash, telling nobody."""
        if self.process is not None:
            self.process.kill()

    def stop(self, *, timeout: float = 15.0) -> None:
        """Stop the master cleanly (SIGTERM), killing it after ``timeout`` seconds."""
        if self.process is not None:
            self.process.stop(timeout=timeout)

    async def get(self, path: str, **query: str | int) -> list[dict[str, Any]]:
        """``GET /api/v2/<path>``: the entities it answers."""
        response = await treq.get(
            f"{self.url}api/v2/{path}",
            params={key: str(value) for key, value in query.items()},
            timeout=REQUEST_SECONDS,
            persistent=False,
        )
        body = await response.json()
        if response.code != 200:
            raise MasterFailed(f"GET {path} answered {response.code}: {body}")
        entities: list[dict[str, Any]] = body[path.split("/")[-1]]
        return entities

    async def force(
        self,
        builder: str,
        *,
        branch: str = "main",
        seconds: float = 0,
        repository: str = "https://git.example.com/app.git",
        revision: str = "0123456789abcdef0123456789abcdef01234567",
    ) -> int:
        """Force a build of ``builder`` that takes ``seconds``; its buildset ID."""
        request = {
            "jsonrpc": "2.0",
            "id": next(_request_ids),
            "method": "force",
            "params": {
                "builderNames": [builder],
                "branch": branch,
                "repository": repository,
                "revision": revision,
                "project": "app",
                "seconds": f"{seconds:g}",
            },
        }
        response = await treq.post(
            f"{self.url}api/v2/forceschedulers/force",
            json=request,
            timeout=REQUEST_SECONDS,
            persistent=False,
        )
        body = await response.json()
        if response.code != 200 or "error" in body:
            raise MasterFailed(f"forcing a build of {builder} failed ({response.code}): {body}")
        buildset_id: int = body["result"][0]
        return buildset_id

    async def send_change(
        self,
        *,
        revision: str,
        comments: str,
        branch: str = "main",
        repository: str = "https://git.example.com/app.git",
        files: tuple[str, ...] = ("app.py",),
    ) -> None:
        """Post a change to the master's ``/change_hook/base``, as a repository's hook would."""
        response = await treq.post(
            f"{self.url}change_hook/base",
            data={
                "revision": revision,
                "comments": comments,
                "branch": branch,
                "repository": repository,
                "author": "Ada Lovelace <ada@example.com>",
                "project": "app",
                "files": json.dumps(list(files)),
            },
            timeout=REQUEST_SECONDS,
            persistent=False,
        )
        body = await response.text()
        if response.code != 200:
            raise MasterFailed(f"posting a change answered {response.code}: {body}")
