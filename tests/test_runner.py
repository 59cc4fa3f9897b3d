"""Running a command's coroutine on the global reactor: its exit status, crashes included."""

from __future__ import annotations

import subprocess
import sys
import unittest

from buildbot_jira.tools.runner import INTERRUPTED

# The global reactor runs once per process: each case gets a fresh one.
PROGRAM = """
import sys
from twisted.internet import task
from buildbot_jira.tools.runner import run_on_reactor

async def succeed(reactor):
    await task.deferLater(reactor, 0, lambda: None)
    return 3

async def crash(reactor):
    raise RuntimeError("it broke")

sys.exit(run_on_reactor({name}))
"""


def run(name: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PROGRAM.format(name=name)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


class RunOnReactorTests(unittest.TestCase):
    def test_the_coroutines_result_is_the_exit_status(self) -> None:
        done = run("succeed")
        self.assertEqual(done.returncode, 3, done.stderr)

    def test_a_crash_shows_its_traceback_and_gives_1(self) -> None:
        done = run("crash")
        self.assertEqual(done.returncode, 1)
        self.assertIn("Traceback", done.stderr)
        self.assertIn("RuntimeError: it broke", done.stderr)

    def test_ctrl_c_is_reported_as_shells_do(self) -> None:
        self.assertEqual(INTERRUPTED, 128 + 2)
