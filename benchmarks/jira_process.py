"""The Jira Cloud simulator in a process of its own, as the benchmarks' stand-in for Jira.

Jira runs on other machines: in the benchmark's process it would spend the
master's CPU on validating payloads and charge it to the reporter. So the
benchmarks start ``buildbot-jira simulate`` (the public command, with its
``--delay`` and ``--rate-limit`` options) and read what it received from
``GET /_simulator/state``.

The child process imports the same ``buildbot_jira`` as the benchmark (it
runs in the directory that holds that package, which ``python -m`` puts
first on the path), so measuring another checkout with ``PYTHONPATH``
measures its simulator too, unless another checkout is named for it.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import treq
from twisted.internet import defer, error, protocol, task
from twisted.python.failure import Failure

import buildbot_jira

__all__ = [
    "JiraProcess",
    "ReceivedRequest",
    "SimulatorUnavailable",
    "start_jira",
    "stored_at",
]

_LISTENING = re.compile(rb"listening on (http://[^\s]+)")


class SimulatorUnavailable(Exception):
    """The simulator did not start: an option it does not know, or a crash."""


@attrs.frozen
class ReceivedRequest:
    """One request as the simulator recorded it (a time of ``time.time()``)."""

    method: str
    path: str
    timestamp: float
    status: int | None
    body: Any

    @property
    def is_bulk_post(self) -> bool:
        """Whether this is a bulk POST of one of the DevOps APIs."""
        return (
            self.method == "POST" and self.path.startswith("/jira/") and self.path.endswith("/bulk")
        )

    def builds(self) -> list[dict[str, Any]]:
        """The builds this request carried."""
        if not isinstance(self.body, dict):
            return []
        return [b for b in self.body.get("builds", ()) if isinstance(b, dict)]


def stored_at(requests: Sequence[ReceivedRequest], builder: str) -> dict[int, float]:
    """Per build number of ``builder``: when Jira first accepted a final state of it.

    The simulator stores an update when its request arrives (a delayed
    answer waits, not the storing), so this is when the build reached Jira.
    """
    times: dict[int, float] = {}
    for request in requests:
        if not request.is_bulk_post or request.status != 202:
            continue
        for build in request.builds():
            if build.get("state") != "in_progress" and str(build["pipelineId"]).endswith(
                "/" + builder
            ):
                times.setdefault(int(build["buildNumber"]), request.timestamp)
    return times


class _SimulatorProtocol(protocol.ProcessProtocol):
    """Waits for the banner's URL, keeps the error output, and tells when the process ends."""

    def __init__(self) -> None:
        self.url: defer.Deferred[str] = defer.Deferred()
        self.has_ended = False
        self._ended: list[defer.Deferred[None]] = []
        self._out = b""
        self._err = b""

    def outReceived(self, data: bytes) -> None:
        if self.url.called:
            return
        self._out += data
        match = _LISTENING.search(self._out)
        if match:
            self.url.callback(match.group(1).decode())

    def errReceived(self, data: bytes) -> None:
        self._err = (self._err + data)[-4000:]

    def processEnded(self, reason: Failure) -> None:
        if not self.url.called:
            text = self._err.decode(errors="replace").strip() or str(reason.value)
            self.url.errback(SimulatorUnavailable(text))
        self.has_ended = True
        waiting, self._ended = self._ended, []
        for waiter in waiting:
            waiter.callback(None)

    def when_ended(self) -> defer.Deferred[None]:
        """A Deferred that fires once the process has ended (at once if it has)."""
        if self.has_ended:
            return defer.succeed(None)
        waiter: defer.Deferred[None] = defer.Deferred()
        self._ended.append(waiter)
        return waiter


@attrs.define
class JiraProcess:
    """A running ``buildbot-jira simulate``: ``url`` is both its API and its site URL."""

    url: str
    _protocol: _SimulatorProtocol = attrs.field(repr=False, alias="protocol")
    _transport: Any = attrs.field(repr=False, alias="transport")
    _stop_trigger: Callable[[], None] = attrs.field(repr=False, alias="stop_trigger")

    async def requests(self) -> list[ReceivedRequest]:
        """Every request the simulator received so far, in order."""
        response = await treq.get(f"{self.url}/_simulator/state", persistent=False)
        state = await treq.json_content(response)
        return [
            ReceivedRequest(
                method=r["method"],
                path=r["path"],
                timestamp=float(r["timestamp"]),
                status=r["status"],
                body=r["body"],
            )
            for r in state["requests"]
        ]

    async def until_stored(
        self, reactor: Any, builder: str, count: int, *, timeout: float
    ) -> list[ReceivedRequest]:
        """The requests received, once Jira holds ``count`` builds of ``builder`` in a final state.

        After ``timeout`` seconds it gives up waiting: the caller sees what did arrive.
        """
        deadline = time.monotonic() + timeout
        while True:
            requests = await self.requests()
            if len(stored_at(requests, builder)) >= count or time.monotonic() > deadline:
                return requests
            await task.deferLater(reactor, 0.2, lambda: None)

    async def stop(self) -> None:
        """Stop the simulator and wait until its process has ended."""
        self._stop_trigger()
        await _terminate(self._protocol, self._transport)


async def start_jira(
    reactor: Any,
    *,
    delay: float = 0.0,
    rate_limit: int | None = None,
    checkout: str | None = None,
) -> JiraProcess:
    """Start the simulator on a free loopback port, answering after ``delay`` seconds.

    ``rate_limit`` turns on its burst limit (requests per second per
    endpoint and method). ``checkout`` is the directory whose
    ``buildbot_jira`` runs the simulator (default: the one this process
    imported), so that an older reporter can meet a newer simulator. Raises
    :class:`SimulatorUnavailable` when the simulator does not start (one
    without a burst limiter refuses ``--rate-limit``).
    """
    arguments: Sequence[str] = ["simulate", "--port", "0", "--quiet", "--delay", format(delay, "g")]
    if rate_limit is not None:
        arguments = [*arguments, "--rate-limit", str(rate_limit)]
    simulator = _SimulatorProtocol()
    executable = sys.executable
    transport = reactor.spawnProcess(
        simulator,
        executable,
        [executable, "-u", "-m", "buildbot_jira.tools.cli", *arguments],
        env=dict(os.environ),
        path=checkout or str(Path(buildbot_jira.__file__).resolve().parents[1]),
    )
    # Should the benchmark stop early (Ctrl-C, an error), the simulator goes with it.
    trigger = reactor.addSystemEventTrigger("before", "shutdown", _terminate, simulator, transport)
    url = await simulator.url
    return JiraProcess(
        url=url,
        protocol=simulator,
        transport=transport,
        stop_trigger=lambda: reactor.removeSystemEventTrigger(trigger),
    )


def _terminate(simulator: _SimulatorProtocol, transport: Any) -> defer.Deferred[None]:
    """Ask the simulator's process to stop; fires once it has ended."""
    with contextlib.suppress(error.ProcessExitedAlready):
        transport.signalProcess("TERM")
    return simulator.when_ended()
