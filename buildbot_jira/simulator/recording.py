"""The requests the simulator received, in order, and who waits for them.

Client secrets are never recorded: a token request's body is kept with its
``client_secret`` replaced.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from twisted.internet import defer

from buildbot_jira.simulator.exchange import NOT_JSON, IncomingRequest, parse_json
from buildbot_jira.simulator.state import ReceivedRequest

__all__ = ["REDACTED", "RequestLog", "recorded_body"]

#: What a recorded body shows in place of a client secret.
REDACTED: Final = "<redacted>"


def recorded_body(body: bytes) -> Any:
    """``body`` as the log keeps it: parsed JSON without secrets, else ``None``."""
    parsed = parse_json(body) if body else None
    if parsed is NOT_JSON:
        return None
    if isinstance(parsed, dict) and "client_secret" in parsed:
        parsed["client_secret"] = REDACTED
    return parsed


class RequestLog:
    """Every request received, with the observers and waiters that follow them."""

    def __init__(self) -> None:
        self.requests: list[ReceivedRequest] = []
        self._waiters: list[tuple[int, defer.Deferred[None]]] = []
        self._observers: list[Callable[[ReceivedRequest], None]] = []

    def __repr__(self) -> str:
        return f"<RequestLog requests={len(self.requests)}>"

    @property
    def token_requests(self) -> int:
        """How many requests reached the token endpoint (faulted ones included)."""
        return sum(1 for r in self.requests if r.path.startswith("/oauth/"))

    @property
    def api_requests(self) -> int:
        """How many requests reached ``/jira/`` (faulted ones included)."""
        return sum(1 for r in self.requests if r.path.startswith("/jira/"))

    def record(self, incoming: IncomingRequest) -> ReceivedRequest:
        """Add ``incoming`` to the log, its answer still undecided."""
        record = ReceivedRequest(
            method=incoming.method,
            path=incoming.raw_path,
            timestamp=incoming.received_at,
            body=recorded_body(incoming.body),
        )
        self.requests.append(record)
        return record

    def decided(self, record: ReceivedRequest) -> None:
        """Tell the observers that ``record``'s answer is decided."""
        for observer in list(self._observers):
            observer(record)

    def subscribe(self, observer: Callable[[ReceivedRequest], None]) -> Callable[[], None]:
        """Call ``observer`` with each request once its answer is decided.

        Returns a function that unsubscribes it.
        """
        self._observers.append(observer)
        return lambda: self._observers.remove(observer)

    def when_received(self, count: int) -> defer.Deferred[None]:
        """A Deferred that fires once ``count`` requests in all have been received."""
        waiter: defer.Deferred[None] = defer.Deferred()
        if len(self.requests) >= count:
            waiter.callback(None)
        else:
            self._waiters.append((count, waiter))
        return waiter

    def wake_waiters(self) -> None:
        """Fire the :meth:`when_received` waiters that are due."""
        ready = [w for w in self._waiters if len(self.requests) >= w[0]]
        self._waiters = [w for w in self._waiters if len(self.requests) < w[0]]
        for _, waiter in ready:
            waiter.callback(None)
