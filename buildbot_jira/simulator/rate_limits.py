"""The words of Jira Cloud's rate limiting: its reasons, its headers, and how a wait is told.

A 429 names the limit that was hit in ``RateLimit-Reason`` and tells how
long to wait in ``Retry-After`` (seconds, or an HTTP date) or only in
``X-RateLimit-Reset`` (an ISO 8601 moment). Answers within a budget carry
``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and, when less than a fifth
of the budget is left, ``X-RateLimit-NearLimit: true``. Pure values and
formatting: the burst limiter (:mod:`~buildbot_jira.simulator.burst`) and
the faults (:mod:`~buildbot_jira.simulator.faults`) both speak them.
"""

from __future__ import annotations

import datetime
import email.utils
import math
from typing import Final, Literal, TypeAlias

__all__ = [
    "LIMIT",
    "NEAR_LIMIT",
    "RATE_LIMIT_REASONS",
    "REASON",
    "REMAINING",
    "RESET",
    "RETRY_AFTER",
    "RETRY_AFTER_FORMS",
    "RateLimitReason",
    "RetryAfterForm",
    "check_reason",
    "check_retry_after_form",
    "http_date",
    "is_near_limit",
    "iso_moment",
    "wait_headers",
    "whole_seconds",
]

RETRY_AFTER: Final = "Retry-After"
REASON: Final = "RateLimit-Reason"
RESET: Final = "X-RateLimit-Reset"
LIMIT: Final = "X-RateLimit-Limit"
REMAINING: Final = "X-RateLimit-Remaining"
NEAR_LIMIT: Final = "X-RateLimit-NearLimit"

RateLimitReason: TypeAlias = Literal[
    "jira-burst-based", "jira-per-issue-on-write", "jira-quota-based", "jira-cost-based"
]

#: Every ``RateLimit-Reason`` Jira Cloud gives: one endpoint's burst limit,
#: writes to one issue, and the site's whole budget (quota, cost).
RATE_LIMIT_REASONS: Final[tuple[RateLimitReason, ...]] = (
    "jira-burst-based",
    "jira-per-issue-on-write",
    "jira-quota-based",
    "jira-cost-based",
)

RetryAfterForm: TypeAlias = Literal["seconds", "http-date", "reset"]

#: How a wait is told: ``Retry-After`` in seconds, ``Retry-After`` as an HTTP
#: date, or ``X-RateLimit-Reset`` alone (an ISO 8601 moment).
RETRY_AFTER_FORMS: Final[tuple[RetryAfterForm, ...]] = ("seconds", "http-date", "reset")

# Below this share of its budget left, an answer says it is near the limit.
_NEAR_LIMIT_SHARE: Final = 0.2


def check_reason(reason: str | None) -> None:
    """Raise ``ValueError`` unless ``reason`` is ``None`` or a reason Jira gives."""
    if reason is not None and reason not in RATE_LIMIT_REASONS:
        raise ValueError(
            f"unknown rate-limit reason {reason!r}: use {', '.join(RATE_LIMIT_REASONS)}"
        )


def check_retry_after_form(form: str, retry_after: float | None) -> None:
    """Raise ``ValueError`` for an unknown ``form``, or a dated one without a wait to date."""
    if form not in RETRY_AFTER_FORMS:
        raise ValueError(f"unknown Retry-After form {form!r}: use {', '.join(RETRY_AFTER_FORMS)}")
    if form != "seconds" and retry_after is None:
        raise ValueError(f"a Retry-After form of {form!r} needs a retry_after to tell")


def whole_seconds(seconds: float) -> int:
    """``seconds`` rounded up to a whole number, at least 1: a wait a client can honour.

    Rounding first keeps float noise (``1.1 - 0.1``) from adding a second.
    """
    return max(1, math.ceil(round(seconds, 6)))


def _utc(moment: float) -> datetime.datetime:
    # Rounded up: a client that waits until the moment told is never early.
    return datetime.datetime.fromtimestamp(math.ceil(round(moment, 6)), tz=datetime.timezone.utc)


def http_date(moment: float) -> str:
    """``moment`` (seconds since the epoch) as an HTTP date, rounded up to the second."""
    return email.utils.format_datetime(_utc(moment), usegmt=True)


def iso_moment(moment: float) -> str:
    """``moment`` (seconds since the epoch) in ISO 8601, UTC, rounded up to the second."""
    return _utc(moment).isoformat().replace("+00:00", "Z")


def wait_headers(wait: float, *, now: float, form: RetryAfterForm) -> dict[str, str]:
    """The headers that tell a client to wait ``wait`` seconds from ``now``, in ``form``."""
    if form == "seconds":
        return {RETRY_AFTER: format(wait, "g")}
    if form == "http-date":
        return {RETRY_AFTER: http_date(now + wait)}
    return {RESET: iso_moment(now + wait)}


def is_near_limit(remaining: int, limit: int) -> bool:
    """Whether ``remaining`` of a budget of ``limit`` is less than a fifth of it."""
    return remaining < limit * _NEAR_LIMIT_SHARE
