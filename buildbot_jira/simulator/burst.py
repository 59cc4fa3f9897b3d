"""Jira Cloud's burst limit as the simulator enforces it, and the near-limit switch.

Jira counts each endpoint and HTTP method of a site on its own
(``POST /jira/builds/0.1/cloud/<cloudId>/bulk`` is one endpoint, the GET of
a single build another, whichever build it names). With a
:class:`BurstLimit` of N, an endpoint serves N requests in any one-second
window of the simulator's clock; the next answers 429 with ``Retry-After``
(whole seconds until the window frees, at least 1), ``RateLimit-Reason:
jira-burst-based`` and ``X-RateLimit-Reset``, and so does every request to
that endpoint until the wait is over. A refused request is not served, so it
does not count against the window. Served answers tell the budget left in
``X-RateLimit-Limit`` and ``X-RateLimit-Remaining``, and add
``X-RateLimit-NearLimit: true`` once less than a fifth of it is left.

:class:`BurstWindows` is the pure bookkeeping; :class:`RateLimits` puts it
and the near-limit switch around the answers of the APIs.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, Final

import attrs

from buildbot_jira.simulator.exchange import Answer, IncomingRequest, error_answer
from buildbot_jira.simulator.faults import FAULT_SCOPES, FaultScope, within
from buildbot_jira.simulator.rate_limits import (
    LIMIT,
    NEAR_LIMIT,
    REASON,
    REMAINING,
    RESET,
    RETRY_AFTER,
    is_near_limit,
    iso_moment,
    whole_seconds,
)

__all__ = ["WINDOW", "BurstLimit", "BurstVerdict", "BurstWindows", "RateLimits"]

#: The span, in seconds, in which a burst limit counts requests.
WINDOW: Final = 1.0

# Float noise must not keep a request that is exactly one window old in it.
_EPSILON: Final = 1e-9


def _at_least_one(instance: Any, attribute: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None and value < 1:
        raise ValueError(f"{attribute.name} must be at least 1, got {value}")


@attrs.frozen
class BurstLimit:
    """At most ``requests_per_second`` requests to one endpoint in any one second.

    ``retry_after`` (whole seconds) replaces the wait that a 429 tells,
    otherwise the time until the window frees. ``scope`` says which
    endpoints it limits: ``"api"`` the DevOps APIs under ``/jira/``,
    ``"token"`` the OAuth token endpoint, ``"any"`` those and ``tenant_info``.
    """

    requests_per_second: int = attrs.field(validator=_at_least_one)
    retry_after: int | None = attrs.field(default=None, validator=_at_least_one)
    scope: FaultScope = attrs.field(default="api", validator=attrs.validators.in_(FAULT_SCOPES))

    def to_json(self) -> dict[str, Any]:
        """This limit as ``/_simulator/state`` shows it."""
        return {
            "requestsPerSecond": self.requests_per_second,
            "retryAfter": self.retry_after,
            "scope": self.scope,
        }


@attrs.frozen
class BurstVerdict:
    """What the limit decides for one request.

    A served request leaves ``remaining`` requests of the window's budget;
    a refused one (``served`` false) may be sent again from ``retry_at`` on.
    """

    served: bool
    remaining: int
    retry_at: float | None = None


class BurstWindows:
    """Per endpoint, when the requests of the last second were served and when a wait ends."""

    def __init__(self, limit: BurstLimit) -> None:
        self.limit = limit
        self._served: dict[str, deque[float]] = {}
        self._waits: dict[str, float] = {}

    def __repr__(self) -> str:
        return f"<BurstWindows {self.limit!r} endpoints={len(self._served)}>"

    def judge(self, endpoint: str, now: float) -> BurstVerdict:
        """Serve or refuse a request to ``endpoint`` at ``now``; a served one is counted."""
        wait_ends = self._waits.get(endpoint)
        if wait_ends is not None:
            if now < wait_ends:
                return BurstVerdict(served=False, remaining=0, retry_at=wait_ends)
            del self._waits[endpoint]
        served = self._served.setdefault(endpoint, deque())
        while served and served[0] <= now - WINDOW + _EPSILON:
            served.popleft()
        budget = self.limit.requests_per_second
        if len(served) < budget:
            served.append(now)
            return BurstVerdict(served=True, remaining=budget - len(served))
        wait = self.limit.retry_after or whole_seconds(served[0] + WINDOW - now)
        self._waits[endpoint] = now + wait
        return BurstVerdict(served=False, remaining=0, retry_at=now + wait)


class RateLimits:
    """The site's burst limit (``None``: none) and the near-limit switch.

    ``near_limit`` adds ``X-RateLimit-NearLimit: true`` to every successful
    API answer, so that a client's reaction can be rehearsed without a
    limit to run into.
    """

    def __init__(self, rate_limit: BurstLimit | None = None) -> None:
        self._windows = None if rate_limit is None else BurstWindows(rate_limit)
        self.near_limit = False

    def __repr__(self) -> str:
        return f"<RateLimits rate_limit={self.rate_limit!r} near_limit={self.near_limit!r}>"

    @property
    def rate_limit(self) -> BurstLimit | None:
        """The burst limit of every endpoint within its scope, if there is one."""
        return None if self._windows is None else self._windows.limit

    @rate_limit.setter
    def rate_limit(self, limit: BurstLimit | None) -> None:
        # A new limit starts with empty windows and no endpoint waiting.
        self._windows = None if limit is None else BurstWindows(limit)

    def serve(
        self,
        incoming: IncomingRequest,
        serve: Callable[[], Answer],
        *,
        endpoint: str | None,
        entity: str | None = None,
    ) -> Answer:
        """``serve()``'s answer to ``incoming``, or the 429 of a burst limit reached.

        ``endpoint`` names the endpoint as Jira counts it (``None``: no
        route matches, and nothing is limited); ``entity`` gives the error
        body the shape of that API.
        """
        headers: dict[str, str] = {}
        windows = self._windows
        if windows is not None and endpoint is not None and within(windows.limit.scope, incoming):
            now = incoming.received_at
            verdict = windows.judge(endpoint, now)
            budget = windows.limit.requests_per_second
            if not verdict.served:
                assert verdict.retry_at is not None
                return _refusal(endpoint, budget, verdict.retry_at, now=now, entity=entity)
            headers = {LIMIT: str(budget), REMAINING: str(verdict.remaining)}
            if is_near_limit(verdict.remaining, budget):
                headers[NEAR_LIMIT] = "true"
        answer = serve()
        if self.near_limit and within("api", incoming) and 200 <= answer.status < 300:
            headers[NEAR_LIMIT] = "true"
        return answer.with_headers(headers)

    def to_json(self) -> dict[str, Any]:
        """The limits as ``/_simulator/state`` shows them."""
        burst = self.rate_limit
        return {
            "burstLimit": None if burst is None else burst.to_json(),
            "nearLimit": self.near_limit,
        }


def _refusal(
    endpoint: str, budget: int, retry_at: float, *, now: float, entity: str | None
) -> Answer:
    """The 429 of a burst limit reached, telling the wait in all of Jira's ways."""
    wait = whole_seconds(retry_at - now)
    answer = error_answer(
        429,
        f"Rate limit exceeded: at most {budget} requests per second to {endpoint}; "
        f"retry after {wait} s",
        entity=entity,
    )
    return answer.with_headers(
        {
            RETRY_AFTER: str(wait),
            REASON: "jira-burst-based",
            RESET: iso_moment(retry_at),
            LIMIT: str(budget),
            REMAINING: "0",
        }
    )
