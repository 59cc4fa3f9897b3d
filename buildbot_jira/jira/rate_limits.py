"""The pace of one Jira site's requests: our own pacing, and the waits Jira asks for.

Atlassian asks apps to pace their own requests so that rate limits are
rarely hit, and to back off when they are. :class:`RateLimits` holds, for
one site, when each endpoint (entity type and HTTP method) may next be
asked:

- **pacing**: after a bulk write (a POST), the next one to that endpoint
  waits the endpoint's current interval (``min_request_interval``), so that
  what comes meanwhile goes together; the first request after a quiet spell
  goes at once, so an idle master keeps its latency. Reads (the gate's
  gating status, ``check``) are not batched, so they are not paced, unless
  Jira widened their interval;
- **the interval widens** (doubles, up to :data:`MAX_REQUEST_INTERVAL`) when
  Jira says a budget is nearly spent (``X-RateLimit-NearLimit``) or answers
  429 for that endpoint, and eases back (halves, down to the minimum) with
  each answer that says neither, so that limits are met before they bite;
- **waits**: a 429 or 503 that says how long holds back what its
  ``RateLimit-Reason`` names: the endpoint (a burst, or no reason), the
  issues the request touched (per-issue writes), or the whole site (quota,
  cost). Nothing goes to an endpoint while one of its waits runs.

Clock times in, decisions out: no reactor, no I/O, no logging. Each call to
:meth:`RateLimits.answered` returns the :class:`Notice` of every episode
that begins or ends, so that the client logs each one once.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from buildbot_jira.jira.devinfo import DEVINFO_KINDS
from buildbot_jira.jira.rate_limit_headers import LimitScope, LimitSignal

__all__ = [
    "DEFAULT_MIN_REQUEST_INTERVAL",
    "DUE_TOLERANCE",
    "MAX_REQUEST_INTERVAL",
    "Endpoint",
    "Episode",
    "Notice",
    "RateLimits",
    "bulk_endpoint",
    "describe_notice",
    "is_due",
    "payload_issue_keys",
]

#: Seconds between two requests to one endpoint while busy (``min_request_interval``).
DEFAULT_MIN_REQUEST_INTERVAL = 1.0
#: The widest the interval grows while Jira says a limit is near.
MAX_REQUEST_INTERVAL = 60.0
#: Where a widened interval starts when pacing is off: doubling 0 stays 0.
_WIDENED_FLOOR = 1.0
_NEVER = -math.inf

#: How close to its time a request counts as due: a clock that adds a delay
#: to its time may land a hair short of the sum, and must not wait again.
DUE_TOLERANCE = 1e-6

#: An endpoint of a site: the entity type (``builds``) and the HTTP method.
Endpoint = tuple[str, str]

# The association types whose values are issue keys (builds and deployments).
_ISSUE_ASSOCIATIONS = frozenset({"issueKeys", "issueIdOrKeys"})


def is_due(time: float, now: float) -> bool:
    """Whether something that may happen from ``time`` may happen at ``now``."""
    return time <= now + DUE_TOLERANCE


def bulk_endpoint(entity: str) -> Endpoint:
    """The endpoint that takes bulk submissions of ``entity``."""
    return (entity, "POST")


def payload_issue_keys(payload: Mapping[str, Any]) -> frozenset[str]:
    """The issue keys an entity names (``issueKeys``, or issue ``associations``).

    Those of a devinfo repository are its commits', branches' and pull requests'.
    """
    keys = {str(key) for key in payload.get("issueKeys") or ()}
    for kind in DEVINFO_KINDS:
        for item in payload.get(kind) or ():
            if isinstance(item, Mapping):
                keys.update(str(key) for key in item.get("issueKeys") or ())
    for association in payload.get("associations") or ():
        if (
            isinstance(association, Mapping)
            and association.get("associationType") in _ISSUE_ASSOCIATIONS
        ):
            keys.update(str(value) for value in association.get("values") or ())
    return frozenset(keys)


class Episode(enum.Enum):
    """What an episode of rate limiting holds back (or, for NEAR_LIMIT, slows)."""

    ENDPOINT = "endpoint"
    ISSUES = "issues"
    SITE = "site"
    NEAR_LIMIT = "near limit"


@attrs.frozen
class Notice:
    """An episode of rate limiting that begins (``began``) or ends: one log line each.

    ``endpoint`` is where the answer that began or ended it came from;
    ``wait`` is the seconds Jira asked for (None when it did not say);
    ``interval`` the endpoint's pacing interval after the answer;
    ``issue_keys`` the issues a per-issue episode began with.
    """

    began: bool
    episode: Episode
    endpoint: Endpoint
    reason: str | None = None
    wait: float | None = None
    interval: float = 0.0
    issue_keys: tuple[str, ...] = ()


class RateLimits:
    """When each endpoint of one Jira site may next be asked.

    :param min_interval: seconds between two requests to one endpoint while
        busy; 0 turns pacing off (Jira's waits still hold).
    :param max_interval: the widest the interval grows while Jira says a
        limit is near.
    """

    def __init__(
        self,
        *,
        min_interval: float = DEFAULT_MIN_REQUEST_INTERVAL,
        max_interval: float = MAX_REQUEST_INTERVAL,
    ) -> None:
        if not min_interval >= 0:
            raise ValueError(f"min_interval must be at least 0, not {min_interval!r}")
        self.min_interval = min_interval
        self.max_interval = max(max_interval, min_interval)
        self._last_sent: dict[Endpoint, float] = {}
        self._interval: dict[Endpoint, float] = {}
        self._endpoint_until: dict[Endpoint, float] = {}
        self._site_until = _NEVER
        self._issue_until: dict[str, float] = {}
        self._episodes: set[tuple[Episode, Endpoint | None]] = set()

    def __repr__(self) -> str:
        return (
            f"<RateLimits min_interval={self.min_interval:g} "
            f"waiting issues={len(self._issue_until)}>"
        )

    # -- decisions --------------------------------------------------------------

    def interval(self, endpoint: Endpoint) -> float:
        """The seconds between two requests to ``endpoint`` now (widened or not)."""
        return self._interval.get(endpoint, self._base_interval(endpoint))

    def _base_interval(self, endpoint: Endpoint) -> float:
        # Pacing gathers writes into batches; a read gains nothing from waiting.
        return self.min_interval if endpoint[1] == "POST" else 0.0

    def next_time(self, endpoint: Endpoint, issue_keys: Iterable[str] = ()) -> float:
        """The earliest clock time a request to ``endpoint`` touching ``issue_keys`` may go.

        ``-inf`` when nothing holds it back: an endpoint never asked, or not
        within its interval, goes at once.
        """
        last = self._last_sent.get(endpoint)
        paced = _NEVER if last is None else last + self.interval(endpoint)
        return max(
            paced,
            self._endpoint_until.get(endpoint, _NEVER),
            self._site_until,
            self.issues_free_at(issue_keys),
        )

    def wait(self, endpoint: Endpoint, now: float, issue_keys: Iterable[str] = ()) -> float:
        """Seconds from ``now`` until a request to ``endpoint`` may go (0: it may now)."""
        time = self.next_time(endpoint, issue_keys)
        return 0.0 if is_due(time, now) else time - now

    def issues_free_at(self, issue_keys: Iterable[str]) -> float:
        """When the last of ``issue_keys`` may be written again (``-inf``: none waits)."""
        if not self._issue_until:
            return _NEVER
        return max((self._issue_until.get(key, _NEVER) for key in issue_keys), default=_NEVER)

    def holds_issues(self, now: float) -> bool:
        """Whether any issue's writes wait at ``now`` (the waits that ended are forgotten)."""
        self._forget_issue_waits(now)
        return bool(self._issue_until)

    # -- what happened ------------------------------------------------------------

    def sent(self, endpoint: Endpoint, now: float) -> None:
        """A request to ``endpoint`` goes at ``now``."""
        self._last_sent[endpoint] = now

    def answered(
        self,
        endpoint: Endpoint,
        now: float,
        signal: LimitSignal,
        issue_keys: Iterable[str] = (),
    ) -> tuple[Notice, ...]:
        """Jira answered a request to ``endpoint`` (touching ``issue_keys``) at ``now``.

        Returns the episodes that begin or end with this answer.
        """
        self._forget_issue_waits(now)
        if signal.holds:
            return self._held(endpoint, now, signal, tuple(sorted(set(issue_keys))))
        if signal.served:
            return self._served(endpoint, now, signal.near_limit)
        return ()

    def _held(
        self, endpoint: Endpoint, now: float, signal: LimitSignal, issue_keys: tuple[str, ...]
    ) -> tuple[Notice, ...]:
        scope = signal.scope
        if scope is LimitScope.ISSUES and not issue_keys:
            scope = LimitScope.ENDPOINT  # nothing more precise is known
        if scope is LimitScope.ENDPOINT and signal.limited:
            self._widen(endpoint)  # asked too often: ask less often from now on
        until = now + (signal.wait or 0.0)
        if scope is LimitScope.ENDPOINT:
            episode = Episode.ENDPOINT
            self._endpoint_until[endpoint] = max(self._endpoint_until.get(endpoint, _NEVER), until)
        elif scope is LimitScope.SITE:
            episode = Episode.SITE
            self._site_until = max(self._site_until, until)
        else:
            episode = Episode.ISSUES
            for key in issue_keys:
                self._issue_until[key] = max(self._issue_until.get(key, _NEVER), until)
        notice = Notice(
            began=True,
            episode=episode,
            endpoint=endpoint,
            reason=signal.reason,
            wait=signal.wait,
            interval=self.interval(endpoint),
            issue_keys=issue_keys if episode is Episode.ISSUES else (),
        )
        return self._begin(notice)

    def _served(self, endpoint: Endpoint, now: float, near_limit: bool) -> tuple[Notice, ...]:
        notices: list[Notice] = []
        if near_limit:
            self._widen(endpoint)
            notices += self._begin(
                Notice(
                    began=True,
                    episode=Episode.NEAR_LIMIT,
                    endpoint=endpoint,
                    interval=self.interval(endpoint),
                )
            )
        elif self._ease(endpoint):
            notices += self._end(Episode.NEAR_LIMIT, endpoint)
        if is_due(self._endpoint_until.get(endpoint, _NEVER), now):
            self._endpoint_until.pop(endpoint, None)
            notices += self._end(Episode.ENDPOINT, endpoint)
        if is_due(self._site_until, now):
            notices += self._end(Episode.SITE, endpoint, site_wide=True)
        if not self._issue_until:
            notices += self._end(Episode.ISSUES, endpoint, site_wide=True)
        return tuple(notices)

    # -- the interval -------------------------------------------------------------

    def _widen(self, endpoint: Endpoint) -> None:
        widened = max(2 * self.interval(endpoint), _WIDENED_FLOOR)
        self._interval[endpoint] = min(widened, self.max_interval)

    def _ease(self, endpoint: Endpoint) -> bool:
        """Halve a widened interval; whether it is back at the minimum."""
        interval = self._interval.get(endpoint)
        if interval is None:
            return True
        eased = interval / 2
        if eased <= self._base_interval(endpoint) or eased < _WIDENED_FLOOR:
            del self._interval[endpoint]
            return True
        self._interval[endpoint] = eased
        return False

    # -- episodes ---------------------------------------------------------------

    def _begin(self, notice: Notice) -> tuple[Notice, ...]:
        key = (notice.episode, None if _site_wide(notice.episode) else notice.endpoint)
        if key in self._episodes:
            return ()  # already under way: logged when it began
        self._episodes.add(key)
        return (notice,)

    def _end(
        self, episode: Episode, endpoint: Endpoint, *, site_wide: bool = False
    ) -> tuple[Notice, ...]:
        key = (episode, None if site_wide else endpoint)
        if key not in self._episodes:
            return ()
        self._episodes.discard(key)
        return (
            Notice(
                began=False, episode=episode, endpoint=endpoint, interval=self.interval(endpoint)
            ),
        )

    def _forget_issue_waits(self, now: float) -> None:
        if self._issue_until:
            self._issue_until = {
                key: time for key, time in self._issue_until.items() if not is_due(time, now)
            }


def _site_wide(episode: Episode) -> bool:
    return episode in (Episode.SITE, Episode.ISSUES)


def describe_notice(notice: Notice, site: str) -> str:
    """The log line of ``notice`` for the Jira site ``site``."""
    entity, method = notice.endpoint
    where = f"{method} {entity}"
    reason = notice.reason or "no RateLimit-Reason given"
    wait = "until it answers again" if notice.wait is None else f"for {notice.wait:g} s"
    if notice.episode is Episode.NEAR_LIMIT:
        if notice.began:
            return (
                f"Jira site {site!r} is near a rate limit on {where}: requests to it are "
                f"spaced {notice.interval:g} s apart until it eases"
            )
        return (
            f"Jira site {site!r} is no longer near a rate limit on {where}: requests to it "
            f"are spaced {notice.interval:g} s apart again"
        )
    if not notice.began:
        what = {
            Episode.ENDPOINT: f"{where} requests",
            Episode.SITE: "requests to any of its APIs",
            Episode.ISSUES: "writes to the issues it held back",
        }[notice.episode]
        return f"Jira site {site!r} takes {what} again"
    if notice.episode is Episode.SITE:
        return (
            f"Jira site {site!r} has spent its request budget ({reason}): no request goes to "
            f"any of its APIs {wait}"
        )
    if notice.episode is Episode.ISSUES:
        return (
            f"Jira site {site!r} limits writes to the issues {', '.join(notice.issue_keys)} "
            f"({reason}): updates that touch them wait {wait}, the others go on"
        )
    return (
        f"Jira site {site!r} limits {where} requests ({reason}): none goes to it {wait}, "
        f"then they are spaced {notice.interval:g} s apart"
    )
