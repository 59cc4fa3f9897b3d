"""Shared test helpers: a simulator on loopback and a client wired to it."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from twisted.internet import defer, reactor, task
from twisted.logger import formatEvent, globalLogPublisher

from buildbot_jira.jira.auth import ClientCredentials, TokenCache
from buildbot_jira.jira.client import JiraCloud, RetryPolicy
from buildbot_jira.jira.http import HttpTransport
from buildbot_jira.simulator import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    JiraSimulator,
    RunningSimulator,
)

SECRET = DEFAULT_CLIENT_SECRET


def build_payload(number: int = 1, *, keys: tuple[str, ...] = ("PROJ-1",), **extra: Any) -> dict:
    """A valid BuildData dict."""
    payload = {
        "schemaVersion": "1.0",
        "pipelineId": "ci.example.com/app",
        "buildNumber": number,
        "updateSequenceNumber": 1000 + number,
        "displayName": f"app #{number}",
        "url": f"https://ci.example.com/#/builders/1/builds/{number}",
        "state": "successful",
        "lastUpdated": datetime.datetime(2026, 11, 28, tzinfo=datetime.timezone.utc)
        .isoformat()
        .replace("+00:00", "Z"),
        "issueKeys": list(keys),
    }
    payload.update(extra)
    return payload


async def start_simulator(test: Any, **kwargs: Any) -> RunningSimulator:
    """A simulator on a free loopback port, stopped when ``test`` ends."""
    simulator = JiraSimulator(**kwargs)
    running = await simulator.listen()
    test.addCleanup(lambda: defer.Deferred.fromCoroutine(running.stop()))
    return running


def make_client(
    test: Any,
    running: RunningSimulator,
    *,
    clock: task.Clock | None = None,
    transport_clock: task.Clock | None = None,
    secret: str = SECRET,
    client_id: str = DEFAULT_CLIENT_ID,
    retry: RetryPolicy | None = None,
    margin: float = 60.0,
    timeout: float = 30.0,
    site: str = "example.atlassian.net",
) -> JiraCloud:
    """A JiraCloud client of the simulator; its connections close when ``test`` ends.

    ``clock`` times the waits between retries and token expiry;
    ``transport_clock`` the request timeouts (the real reactor by default).
    """
    transport = HttpTransport(reactor=reactor, clock=transport_clock)
    test.addCleanup(lambda: defer.Deferred.fromCoroutine(transport.close()))
    cache = TokenCache(
        credentials=ClientCredentials(client_id=client_id, client_secret=secret),
        transport=transport,
        clock=clock,
        api_url=running.url,
        margin=margin,
        timeout=timeout,
        site=site,
    )
    return JiraCloud(
        site=site,
        token_cache=cache,
        transport=transport,
        api_url=running.url,
        site_url=running.url,
        timeout=timeout,
        retry=retry or RetryPolicy(),
        clock=clock,
        uniform=lambda: 0.0,
    )


async def real_turn() -> None:
    """Let the real reactor do its network I/O for a moment."""
    await task.deferLater(reactor, 0.002, lambda: None)


async def settle(d: defer.Deferred[Any], clock: task.Clock, *, limit: int = 5000) -> Any:
    """Drive ``d`` to its end: real I/O turns, and the fake clock jumped to each wait."""
    for _ in range(limit):
        if d.called:
            return await d
        calls = clock.getDelayedCalls()
        if calls:
            clock.advance(min(c.getTime() for c in calls) - clock.seconds())
        await real_turn()
    raise AssertionError("the operation did not finish")


async def wait_for_delayed_call(clock: task.Clock, *, limit: int = 5000) -> float:
    """Wait (in real reactor turns) until ``clock`` has a delayed call; its delay."""
    for _ in range(limit):
        calls = clock.getDelayedCalls()
        if calls:
            return min(c.getTime() for c in calls) - clock.seconds()
        await real_turn()
    raise AssertionError("nothing was scheduled on the clock")


@contextmanager
def captured_log() -> Iterator[list[str]]:
    """Every log event's text (and failure text) while the block runs."""
    lines: list[str] = []

    def observe(event: dict[str, Any]) -> None:
        lines.append(formatEvent(event) or "")
        failure = event.get("log_failure")
        if failure is not None:
            lines.append(failure.getTraceback())
        lines.append(repr(event))

    globalLogPublisher.addObserver(observe)
    try:
        yield lines
    finally:
        globalLogPublisher.removeObserver(observe)


def coroutine_test(method: Any) -> Any:
    """Let a trial test method be ``async def``."""

    def run(self: Any) -> defer.Deferred[Any]:
        return defer.Deferred.fromCoroutine(method(self))

    run.__name__ = method.__name__
    run.__doc__ = method.__doc__
    return run
