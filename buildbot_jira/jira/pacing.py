"""The Jira client's side of rate limiting: waiting its turn, and reading the answers.

A :class:`Pacer` drives one site's :class:`~buildbot_jira.jira.rate_limits.RateLimits`
on a clock: it waits until an endpoint may be asked, claims the turn when
the request goes, feeds every answer's headers back, and logs each episode
of rate limiting once, when it begins and when it ends.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from twisted.internet import task
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from buildbot_jira.jira.errors import JiraRateLimitedError
from buildbot_jira.jira.http import HttpResponse
from buildbot_jira.jira.rate_limit_headers import LimitScope, LimitSignal, read_limit_signal
from buildbot_jira.jira.rate_limits import Endpoint, RateLimits, describe_notice
from buildbot_jira.jira.users import ClientUsers

__all__ = ["Pacer"]

log = Logger()


class Pacer:
    """Waits, claims and observes requests to one Jira site's endpoints.

    :param site: the site's host name, for log lines and errors.
    :param limits: the site's rate limits.
    :param clock: times the waits; its ``seconds()`` are the limits' times.
    :param users: whose requests these are: the names each log line begins with.
    """

    def __init__(
        self,
        *,
        site: str,
        limits: RateLimits,
        clock: IReactorTime,
        users: ClientUsers | None = None,
    ) -> None:
        self.site = site
        self.limits = limits
        self.users = users if users is not None else ClientUsers()
        self._clock = clock

    def __repr__(self) -> str:
        return f"<Pacer site={self.site!r} {self.limits!r}>"

    async def wait_turn(self, endpoint: Endpoint, issue_keys: Iterable[str] = ()) -> None:
        """Wait until a request to ``endpoint`` touching ``issue_keys`` may go."""
        keys = tuple(issue_keys)
        while (delay := self.limits.wait(endpoint, self._clock.seconds(), keys)) > 0:
            # Cancellable: a caller that gives up stops waiting.
            await task.deferLater(self._clock, delay, lambda: None)

    async def take_turn(
        self,
        endpoint: Endpoint | None,
        issue_keys: Iterable[str],
        token: Callable[[], Awaitable[str]] | None,
    ) -> str:
        """Wait until ``endpoint`` may be asked, then take a ``token``: the request goes now.

        Returns the access token ("" without ``token``); a request to no
        endpoint of the DevOps APIs (``endpoint`` None) does not wait.
        """
        keys = tuple(issue_keys)
        while True:
            if endpoint is not None:
                await self.wait_turn(endpoint, keys)
            taken = "" if token is None else await token()
            # Another request may have taken the turn while the token came.
            if endpoint is None or self.claim(endpoint, keys):
                return taken

    def claim(self, endpoint: Endpoint, issue_keys: Iterable[str] = ()) -> bool:
        """Take the turn of ``endpoint`` if it may be asked now; whether it was taken."""
        now = self._clock.seconds()
        if self.limits.wait(endpoint, now, issue_keys) > 0:
            return False
        self.limits.sent(endpoint, now)
        return True

    def observe(
        self, endpoint: Endpoint | None, issue_keys: Iterable[str], response: HttpResponse
    ) -> LimitSignal:
        """What ``response`` says of the rate limits; fed back for an ``endpoint``."""
        now = self._clock.seconds()
        signal = read_limit_signal(response.status, response.header, now=now)
        if endpoint is not None:
            for notice in self.limits.answered(endpoint, now, signal, issue_keys):
                # Not "message": Twisted's legacy log bridge claims that key.
                emit = log.warn if notice.began else log.info
                emit(
                    "{users}: {episode}",
                    users=self.users,
                    episode=describe_notice(notice, self.site),
                )
        return signal

    def hand_back(
        self,
        method: str,
        endpoint: Endpoint | None,
        signal: LimitSignal,
        issue_keys: Iterable[str],
        *,
        longest: float,
    ) -> None:
        """Raise :class:`JiraRateLimitedError` for a 429 better handed back than waited out.

        A per-issue limit holds only the batch's issues: the caller can send
        the others meanwhile. A wait longer than ``longest`` would keep the
        request, and whatever waits behind it, hanging.
        """
        per_issue = signal.scope is LimitScope.ISSUES and any(True for _ in issue_keys)
        if per_issue or (signal.wait is not None and signal.wait > longest):
            raise self.rate_limited(method, endpoint, signal, 1)

    def rate_limited(
        self, method: str, endpoint: Endpoint | None, signal: LimitSignal, attempts: int
    ) -> JiraRateLimitedError:
        """The error for a 429 that the client does not wait out."""
        where = method if endpoint is None else f"{method} {endpoint[0]}"
        wait = "" if signal.wait is None else f"; Jira asks to wait {signal.wait:g} s"
        return JiraRateLimitedError(
            f"Jira site {self.site!r} rate-limited {where} (HTTP 429, "
            f"{signal.reason or 'no RateLimit-Reason'}) after {attempts} attempts{wait}",
            reason=signal.reason,
            retry_after=signal.wait,
        )
