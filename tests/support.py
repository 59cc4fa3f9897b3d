"""Shared test helpers: Jira clients of the simulator, in memory or on loopback.

Two ways to reach the simulator:

- in memory (:func:`memory_client`): the simulator's resource is served
  through ``treq.testing.RequestTraversalAgent`` and everything (request
  timeouts, retry waits, token expiry, the simulator's delays) runs on one
  ``task.Clock``. No socket, no reactor: :func:`drive` moves the bytes and
  jumps the clock to each next delayed call, so a test runs in microseconds
  and the same way every time;
- on loopback (:func:`start_simulator`, :func:`make_client`): a real TCP
  server and client, for the few tests about the network itself and for the
  integration tests that run a real master. These wait with :func:`until`,
  the one helper that polls the real reactor.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast
from weakref import WeakKeyDictionary

from treq.testing import RequestTraversalAgent
from twisted.internet import defer, reactor, task
from twisted.logger import ILogObserver, formatEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgent, IBodyProducer, IResponse
from twisted.web.resource import IResource
from zope.interface import implementer

from buildbot_jira.jira.auth import DEFAULT_API_URL, ClientCredentials, TokenCache
from buildbot_jira.jira.client import JiraCloud, RetryPolicy
from buildbot_jira.jira.http import HttpTransport
from buildbot_jira.simulator import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    JiraSimulator,
    RunningSimulator,
)

SECRET = DEFAULT_CLIENT_SECRET

T = TypeVar("T")


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


def jira_client(
    test: Any,
    transport: HttpTransport,
    *,
    api_url: str,
    site_url: str | None,
    clock: task.Clock | None = None,
    cloud_id: str | None = None,
    secret: str = SECRET,
    client_id: str = DEFAULT_CLIENT_ID,
    retry: RetryPolicy | None = None,
    margin: float = 60.0,
    timeout: float = 30.0,
    site: str = "example.atlassian.net",
) -> JiraCloud:
    """A JiraCloud client over ``transport``, which is closed when ``test`` ends.

    ``clock`` times the waits between retries and token expiry (the
    transport's clock by default); the jitter of the waits is always zero.
    A ``cloud_id`` spares the lookup.
    """
    test.addCleanup(lambda: defer.Deferred.fromCoroutine(transport.close()))
    cache = TokenCache(
        credentials=ClientCredentials(client_id=client_id, client_secret=secret),
        transport=transport,
        clock=clock,
        api_url=api_url,
        margin=margin,
        timeout=timeout,
        site=site,
    )
    return JiraCloud(
        site=site,
        token_cache=cache,
        transport=transport,
        cloud_id=cloud_id,
        api_url=api_url,
        site_url=site_url,
        timeout=timeout,
        retry=retry or RetryPolicy(),
        clock=clock,
        uniform=lambda: 0.0,
    )


# -- in memory -----------------------------------------------------------------


@implementer(IAgent)
class MemoryAgent:
    """An ``IAgent`` that serves a resource in memory and moves bytes only when flushed.

    ``RequestTraversalAgent`` alone answers a request within the call that
    sends it, when the resource answers at once; here a request leaves only
    at the next :meth:`flush`, as on a real network where nothing arrives
    before the reactor turns, so that callers who start requests together
    really overlap.
    """

    def __init__(self, resource: IResource) -> None:
        self._agent = RequestTraversalAgent(resource)
        self._queued: list[Callable[[], None]] = []

    def request(
        self,
        method: bytes,
        uri: bytes,
        headers: Headers | None = None,
        bodyProducer: IBodyProducer | None = None,
    ) -> defer.Deferred[IResponse]:
        """Queue a request; it is sent at the next :meth:`flush`."""
        sent: list[defer.Deferred[IResponse]] = []

        def send() -> None:
            response = self._agent.request(method, uri, headers, bodyProducer)
            sent.append(response)
            response.chainDeferred(answer)

        def cancel(_: defer.Deferred[IResponse]) -> None:
            if sent:
                sent[0].cancel()
            else:
                self._queued.remove(send)

        answer: defer.Deferred[IResponse] = defer.Deferred(cancel)
        self._queued.append(send)
        return answer

    def flush(self) -> None:
        """Send the queued requests and move every byte written, until all is still."""
        while True:
            queued, self._queued = self._queued, []
            for send in queued:
                send()
            self._agent.flush()
            if not self._queued:
                return


#: The in-memory agents whose time is each clock.
_agents: WeakKeyDictionary[task.Clock, list[MemoryAgent]] = WeakKeyDictionary()


def memory_agent(resource: IResource, clock: task.Clock) -> MemoryAgent:
    """An agent that serves ``resource`` in memory, flushed by :func:`drive` on ``clock``."""
    agent = MemoryAgent(resource)
    _agents.setdefault(clock, []).append(agent)
    return agent


def memory_client(
    test: Any,
    simulator: JiraSimulator,
    *,
    clock: task.Clock,
    api_url: str = DEFAULT_API_URL,
    site_url: str | None = None,
    **options: Any,
) -> JiraCloud:
    """A JiraCloud client of ``simulator`` in memory, all of it timed by ``clock``.

    The URLs are the real ones by default (the OAuth gateway, and
    ``https://<site>`` for the cloud ID): in memory they reach the simulator
    whatever they name. Give the simulator the same ``clock``
    (``JiraSimulator(clock=clock)``) for its delays and token lifetimes to
    move with :func:`drive`. ``options`` are those of :func:`jira_client`.
    """
    transport = HttpTransport(clock=clock, agent=memory_agent(simulator.resource(), clock))
    return jira_client(test, transport, api_url=api_url, site_url=site_url, clock=clock, **options)


def flush(clock: task.Clock) -> None:
    """Move every byte of the in-memory connections timed by ``clock``."""
    for agent in list(_agents.get(clock, ())):
        agent.flush()


def drive_until(clock: task.Clock, done: Callable[[], object], *, limit: int = 10_000) -> None:
    """Move bytes and jump ``clock`` to each next delayed call until ``done()`` is true.

    Fails at once when nothing is under way and nothing is scheduled, since
    then ``done()`` can never become true.
    """
    for _ in range(limit):
        flush(clock)
        if done():
            return
        if not _advance_to_next_call(clock):
            raise AssertionError("nothing is under way and nothing is scheduled")
    raise AssertionError(f"not done after {limit} waits")


def drive(clock: task.Clock, work: Coroutine[Any, Any, T] | defer.Deferred[T]) -> T:
    """Run ``work`` on ``clock`` (see :func:`drive_until`): its result, or its exception."""
    done = work if isinstance(work, defer.Deferred) else defer.Deferred.fromCoroutine(work)
    outcome: list[Any] = []
    done.addBoth(outcome.append)
    drive_until(clock, lambda: outcome)
    if isinstance(outcome[0], Failure):
        outcome[0].raiseException()
    result: T = outcome[0]
    return result


def _advance_to_next_call(clock: task.Clock) -> bool:
    """Run ``clock``'s next delayed call (and any due with it); whether there was one."""
    calls = clock.getDelayedCalls()
    if not calls:
        return False
    clock.advance(max(0.0, min(c.getTime() for c in calls) - clock.seconds()))
    return True


def next_delay(clock: task.Clock) -> float:
    """Move the bytes under way, then the seconds until ``clock``'s next delayed call."""
    flush(clock)
    calls = clock.getDelayedCalls()
    if not calls:
        raise AssertionError("nothing was scheduled on the clock")
    return min(c.getTime() for c in calls) - clock.seconds()


# -- on loopback ---------------------------------------------------------------


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
    **options: Any,
) -> JiraCloud:
    """A JiraCloud client of the simulator on loopback.

    ``clock`` times the waits between retries and token expiry;
    ``transport_clock`` the request timeouts (the real reactor by default).
    ``options`` are those of :func:`jira_client`.
    """
    transport = HttpTransport(reactor=reactor, clock=transport_clock)
    return jira_client(
        test, transport, api_url=running.url, site_url=running.url, clock=clock, **options
    )


#: Seconds of each real reactor turn while polling.
TURN = 0.002


async def real_turn() -> None:
    """Let the real reactor do its network I/O for a moment."""
    await task.deferLater(reactor, TURN, lambda: None)


async def until(
    condition: Callable[[], T],
    *,
    seconds: float = 15.0,
    each_turn: Callable[[], object] | None = None,
    what: str = "the condition",
) -> T:
    """Turn the real reactor until ``condition()`` is true; its value.

    The one helper that polls: for tests that must wait on real I/O (a
    master and its worker, a simulator on loopback). ``each_turn`` runs
    before every turn, to move a fake clock along with the real I/O.
    """
    deadline = reactor.seconds() + seconds
    while True:
        value = condition()
        if value:
            return value
        if reactor.seconds() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {seconds:g} s")
        if each_turn is not None:
            each_turn()
        await real_turn()


def _jump(clock: task.Clock) -> None:
    flush(clock)
    _advance_to_next_call(clock)


async def settle(d: defer.Deferred[T], clock: task.Clock, *, seconds: float = 10.0) -> T:
    """Drive ``d`` to its end: real I/O turns, and the fake clock jumped to each wait."""
    await until(
        lambda: d.called,
        seconds=seconds,
        each_turn=lambda: _jump(clock),
        what="the operation to finish",
    )
    return await d


async def wait_for_delayed_call(clock: task.Clock, *, seconds: float = 10.0) -> float:
    """Wait (in real reactor turns) until ``clock`` has a delayed call; its delay."""
    call_times = await until(
        lambda: [c.getTime() for c in clock.getDelayedCalls()],
        seconds=seconds,
        each_turn=lambda: flush(clock),
        what="a delayed call",
    )
    return min(call_times) - clock.seconds()


# -- any test ------------------------------------------------------------------


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

    observer = cast(ILogObserver, observe)
    globalLogPublisher.addObserver(observer)
    try:
        yield lines
    finally:
        globalLogPublisher.removeObserver(observer)


def coroutine_test(method: Any) -> Any:
    """Let a trial test method be ``async def``."""

    def run(self: Any) -> defer.Deferred[Any]:
        return defer.Deferred.fromCoroutine(method(self))

    run.__name__ = method.__name__
    run.__doc__ = method.__doc__
    return run
