"""Child processes of the test run (servers, masters) that are never left behind.

Each process writes its output to a file, so that a test that fails can
quote it. On Linux a child is also told to die with the test run
(``PR_SET_PDEATHSIG``): a test runner that is itself killed leaves no
database server or master running.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import attrs

#: How much of a process's output a failure message quotes.
OUTPUT_TAIL = 4000

#: prctl(2)'s option that sends a signal to a process when its parent dies.
_PR_SET_PDEATHSIG = 1

# Looked up once here: between fork and exec the child may only call it, since
# loading a library there could wait forever on a lock another thread held.
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: SIGKILL it when the test run dies."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on at the moment."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def port_answers(port: int) -> bool:
    """Whether something accepts connections on ``port`` on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def tail(path: Path, size: int = OUTPUT_TAIL) -> str:
    """The last ``size`` characters of the text file ``path`` ('' if there is none)."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return text[-size:]


@attrs.define(eq=False)
class ChildProcess:
    """A process started by the test run, with its output in ``output_path``."""

    name: str
    popen: subprocess.Popen[bytes]
    output_path: Path

    @classmethod
    def start(
        cls,
        name: str,
        argv: Sequence[str | os.PathLike[str]],
        *,
        output_path: Path,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        user: str | None = None,
    ) -> ChildProcess:
        """Start ``argv`` (as ``user``, when given), its output going to ``output_path``."""
        with output_path.open("ab") as output:
            popen = subprocess.Popen(
                [os.fspath(arg) for arg in argv],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=None if env is None else dict(env),
                user=user,
                preexec_fn=_die_with_parent,
            )
        return cls(name=name, popen=popen, output_path=output_path)

    @property
    def pid(self) -> int:
        """The process ID."""
        return self.popen.pid

    @property
    def running(self) -> bool:
        """Whether the process has not exited yet."""
        return self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        """The exit status (negative: killed by that signal), or None while running."""
        return self.popen.poll()

    def output(self) -> str:
        """The end of what the process wrote."""
        return tail(self.output_path)

    def kill(self) -> None:
        """SIGKILL: the process dies at once, with no chance to clean up."""
        if self.running:
            self.popen.kill()
        self.popen.wait()

    def stop(self, *, timeout: float = 10.0, sig: int = signal.SIGTERM) -> None:
        """Ask the process to stop with ``sig``; kill it if it has not within ``timeout``."""
        if self.running:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
        self.popen.wait()

    def describe(self) -> str:
        """The process's name, status and last output, for a failure message."""
        status = "running" if self.running else f"exited with {self.returncode}"
        return f"{self.name} ({status}); its output ends with:\n{self.output()}"


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    what: str,
    user: str | None = None,
    cwd: Path | None = None,
    timeout: float = 120.0,
) -> str:
    """Run a setup command to its end; its output. Fails with that output if it fails."""
    done = subprocess.run(
        [os.fspath(arg) for arg in argv],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        user=user,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{what} failed with status {done.returncode}:\n"
            f"{(done.stdout + done.stderr)[-OUTPUT_TAIL:]}"
        )
    return done.stdout


def wait_for_server(
    process: ChildProcess,
    ready: Callable[[], bool],
    *,
    timeout: float,
    what: str,
) -> None:
    """Block until ``ready()`` holds; kill ``process`` and fail with its output if it does not.

    For servers started before a test's reactor runs (a test class's
    setup), so the wait polls the wall clock; a test that waits while the
    reactor runs uses ``tests.support.until`` instead.
    """
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            if not process.running:
                raise RuntimeError(f"{what} did not start: {process.describe()}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{what} was not ready after {timeout:g} s: {process.describe()}"
                )
            time.sleep(0.05)
    except BaseException:
        process.kill()
        raise
