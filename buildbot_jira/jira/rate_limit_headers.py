"""What one of Jira's answers says about its rate limits, read from the headers.

Jira Cloud tells three limits apart by ``RateLimit-Reason`` on a 429: the
burst limit of one endpoint and method (``jira-burst-based``), the limit on
writes to one issue (``jira-per-issue-on-write``) and the site's quota or
cost budget (``jira-quota-based``, ``jira-cost-based``). How long to wait is
``Retry-After`` (seconds, or an HTTP date), else ``X-RateLimit-Reset`` (an
ISO 8601 time); ``X-RateLimit-NearLimit: true`` on a served request says
that less than a fifth of a budget is left. :func:`read_limit_signal` turns
those headers into a :class:`LimitSignal`: pure, with the clock's time handed
in (``clock.seconds()`` is epoch seconds on the real reactor).
"""

from __future__ import annotations

import datetime
import email.utils
import enum
import math
from collections.abc import Callable

import attrs

__all__ = [
    "BURST_REASON",
    "MAX_WAIT",
    "PER_ISSUE_REASON",
    "SITE_WIDE_REASONS",
    "LimitScope",
    "LimitSignal",
    "parse_rate_limit_reset",
    "parse_retry_after",
    "read_limit_signal",
]

#: One endpoint and method of one site is asked too often: slow that one down.
BURST_REASON = "jira-burst-based"
#: One issue is written too often: space out the writes that touch it.
PER_ISSUE_REASON = "jira-per-issue-on-write"
#: The site's whole budget is spent: every endpoint of the site waits.
SITE_WIDE_REASONS = frozenset({"jira-quota-based", "jira-cost-based"})

#: The longest wait honoured (seconds): a budget resets within the hour, and a
#: bogus far-future date must not silence a site for days.
MAX_WAIT = 3600.0


class LimitScope(enum.Enum):
    """What a rate limit holds back."""

    ENDPOINT = "endpoint"
    ISSUES = "issues"
    SITE = "site"


@attrs.frozen
class LimitSignal:
    """What one answer says about Jira's rate limits.

    ``limited`` is true for a 429; ``wait`` is the seconds (from the answer)
    before the next request may go, when the answer (a 429 or a 503) says;
    ``reason`` is ``RateLimit-Reason`` as sent; ``served`` says that Jira
    handled the request (any answer below 500 but 429); ``near_limit`` is
    ``X-RateLimit-NearLimit: true`` on a served answer.
    """

    limited: bool = False
    wait: float | None = None
    reason: str | None = None
    served: bool = True
    near_limit: bool = False

    @property
    def scope(self) -> LimitScope:
        """What the limit holds back: the endpoint unless the reason says otherwise."""
        if self.reason == PER_ISSUE_REASON:
            return LimitScope.ISSUES
        if self.reason in SITE_WIDE_REASONS:
            return LimitScope.SITE
        return LimitScope.ENDPOINT

    @property
    def holds(self) -> bool:
        """Whether the answer asks for a pause: a 429, or a 503 that says how long."""
        return self.limited or self.wait is not None


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header, if valid.

    The delay-seconds form always; the HTTP-date form only with ``now`` (the
    clock's epoch seconds) to measure it from. A date in the past is 0.
    """
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        if now is None:
            return None
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        return _until(when, now)
    return seconds if 0 <= seconds < math.inf else None


def parse_rate_limit_reset(value: str | None, *, now: float) -> float | None:
    """Seconds until an ``X-RateLimit-Reset`` time (``2026-03-02T10:15Z`` or fuller), if valid.

    A time without a zone is UTC; one in the past is 0.
    """
    if not value:
        return None
    try:
        when = datetime.datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return _until(when, now)


def read_limit_signal(
    status: int, header: Callable[[str], str | None], *, now: float
) -> LimitSignal:
    """What an answer of ``status`` with headers ``header(name)`` says, at clock time ``now``.

    ``X-RateLimit-Reset`` is the wait only when ``Retry-After`` is absent;
    the wait is at most :data:`MAX_WAIT`.
    """
    wait: float | None = None
    if status in (429, 503):
        wait = parse_retry_after(header("Retry-After"), now=now)
        if wait is None:
            wait = parse_rate_limit_reset(header("X-RateLimit-Reset"), now=now)
    reason = (header("RateLimit-Reason") or "").strip() or None
    near = (header("X-RateLimit-NearLimit") or "").strip().lower() == "true"
    return LimitSignal(
        limited=status == 429,
        wait=None if wait is None else min(wait, MAX_WAIT),
        reason=reason if status == 429 else None,
        served=status != 429 and status < 500,
        near_limit=near and status < 400,
    )


def _until(when: datetime.datetime, now: float) -> float | None:
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    try:
        seconds = when.timestamp() - now
    except (OverflowError, OSError, ValueError):
        return None
    return max(0.0, seconds) if math.isfinite(seconds) else None
