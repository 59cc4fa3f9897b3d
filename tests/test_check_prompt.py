"""``buildbot-jira check`` at a terminal: it asks for the secret, and the terminal does not echo it.

The command runs in a process of its own whose standard input is a
pseudo-terminal, as when a person types at it, and in a session of its own,
so that it cannot reach the terminal of whoever runs the tests.
"""

from __future__ import annotations

import os
import pty
import sys

from twisted.internet import defer, error, protocol, reactor
from twisted.python.failure import Failure

from buildbot_jira.simulator import DEFAULT_CLIENT_ID
from tests.support import SECRET, coroutine_test, start_simulator
from tests.test_check import CheckTestCase

#: Runs the command in a new session: without a controlling terminal, it
#: must work with the pseudo-terminal on its standard input alone.
_IN_NEW_SESSION = (
    "import os, runpy, sys; os.setsid(); sys.argv[0] = 'buildbot-jira'; "
    "runpy.run_module('buildbot_jira.tools.cli', run_name='__main__')"
)
PROMPT = f"Client secret for client ID {DEFAULT_CLIENT_ID!r} (input hidden): "


class _Typist(protocol.ProcessProtocol):
    """Types ``text`` at the terminal once the command has asked for it."""

    def __init__(self, terminal: int, text: str) -> None:
        self.terminal = terminal
        self.text = text
        self.output = b""
        self.typed = False
        self.ended: defer.Deferred[int] = defer.Deferred()

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        self.output += data
        if not self.typed and PROMPT.encode() in self.output:
            self.typed = True
            os.write(self.terminal, self.text.encode())

    def processEnded(self, reason: Failure) -> None:
        value = reason.value
        code = value.exitCode if isinstance(value, error.ProcessTerminated) else 0
        self.ended.callback(code if code is not None else -1)


class PromptTests(CheckTestCase):
    @coroutine_test
    async def test_the_secret_typed_at_the_prompt_is_used_and_never_shown(self) -> None:
        self.running = await start_simulator(self)
        terminal, command_side = pty.openpty()
        self.addCleanup(os.close, terminal)
        environment = {k: v for k, v in os.environ.items() if k != "JIRA_CLIENT_SECRET"}
        typist = _Typist(terminal, SECRET + "\n")
        reactor.spawnProcess(
            typist,
            sys.executable,
            [sys.executable, "-c", _IN_NEW_SESSION, *self.arguments("--issue", "PROJ-7")],
            env=environment,
            childFDs={0: command_side, 1: "r", 2: "r"},
        )
        os.close(command_side)  # the child has its own copy
        code = await typist.ended
        output = typist.output.decode()
        self.assertTrue(typist.typed, output)
        self.assertEqual(code, 0, output)
        self.assertIn("(secret from the prompt)", output)
        self.assertIn("test build for PROJ-7 ... accepted", output)
        self.assertNotIn(SECRET, output)
        # What the terminal showed back: the secret was typed without echo.
        os.set_blocking(terminal, False)
        try:
            shown = os.read(terminal, 65536)
        except (BlockingIOError, OSError):
            shown = b""
        self.assertNotIn(SECRET.encode(), shown)
