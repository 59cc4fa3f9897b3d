"""Fault injection: failing, dropped and slow answers, the ways Jira Cloud lets clients down.

A :class:`FaultPlan` holds the faults asked for. For each recorded request
the simulator asks :meth:`FaultPlan.take` whether a fault answers it; a
faulted request is not processed at all.

A failed answer can play any of Jira's rate limits: a 429 with the
``RateLimit-Reason`` asked for, its wait told as ``Retry-After`` seconds,
as an HTTP date, or only as ``X-RateLimit-Reset``
(:mod:`~buildbot_jira.simulator.rate_limits`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal, TypeAlias

import attrs

from buildbot_jira.simulator.exchange import Answer, IncomingRequest, error_messages
from buildbot_jira.simulator.rate_limits import (
    REASON,
    RateLimitReason,
    RetryAfterForm,
    check_reason,
    check_retry_after_form,
    wait_headers,
)

__all__ = ["FAULT_SCOPES", "Fault", "FaultPlan", "FaultScope", "RecurringFault", "within"]

FaultScope: TypeAlias = Literal["api", "token", "any"]

#: ``api``: ``/jira/`` calls; ``token``: the token endpoint; ``any``: every request.
FAULT_SCOPES: Final[tuple[FaultScope, ...]] = ("api", "token", "any")

# Which scope a request falls within, by the first segment of its path.
_SCOPE_OF_SEGMENT: Final[dict[str, FaultScope]] = {"jira": "api", "oauth": "token"}


def _check_scope(scope: str) -> None:
    if scope not in FAULT_SCOPES:
        raise ValueError(f"scope must be 'api', 'token' or 'any', got {scope!r}")


def within(scope: FaultScope, incoming: IncomingRequest) -> bool:
    """Whether ``incoming`` falls within ``scope``."""
    return scope == "any" or _SCOPE_OF_SEGMENT.get(incoming.first_segment) == scope


def _copied_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    # A copy: the caller's mapping must not change a fault already planned.
    return dict(headers or {})


@attrs.define
class Fault:
    """A fault for the next ``remaining`` requests within ``scope``.

    ``kind`` ``"fail"`` answers ``status`` (with ``Retry-After`` if
    ``retry_after`` is set, told as ``retry_after_form`` says; with
    ``RateLimit-Reason`` if ``reason`` is set; with ``headers``; and with
    ``body`` if given); ``"drop"`` cuts the connection without an answer.
    """

    kind: Literal["fail", "drop"]
    remaining: int
    scope: FaultScope
    status: int = 0
    retry_after: float | None = None
    body: Any = None
    reason: RateLimitReason | None = None
    retry_after_form: RetryAfterForm = "seconds"
    headers: Mapping[str, str] = attrs.field(factory=dict, converter=_copied_headers)

    def answer(self, *, now: float = 0.0) -> Answer:
        """The answer of a ``"fail"`` fault given at ``now`` (dates in it count from then)."""
        headers = {}
        if self.retry_after is not None:
            headers.update(wait_headers(self.retry_after, now=now, form=self.retry_after_form))
        if self.reason is not None:
            headers[REASON] = self.reason
        headers.update(self.headers)
        body = self.body
        if body is None:
            body = error_messages(f"Simulated failure: HTTP {self.status}")
        return Answer(self.status, body, headers)

    def to_json(self) -> dict[str, Any]:
        """This fault as ``/_simulator/state`` lists it."""
        return {
            "kind": self.kind,
            "remaining": self.remaining,
            "scope": self.scope,
            "status": self.status,
        }


@attrs.define
class RecurringFault:
    """Every ``every``-th request within ``scope`` fails with ``status``.

    The other fields are those of the :class:`Fault` that answers it.
    """

    every: int
    scope: FaultScope
    status: int
    retry_after: float | None = None
    seen: int = 0
    reason: RateLimitReason | None = None
    retry_after_form: RetryAfterForm = "seconds"
    headers: Mapping[str, str] = attrs.field(factory=dict, converter=_copied_headers)

    def fault(self) -> Fault:
        """The fault that answers one of the requests it fails."""
        return Fault(
            "fail",
            1,
            self.scope,
            status=self.status,
            retry_after=self.retry_after,
            reason=self.reason,
            retry_after_form=self.retry_after_form,
            headers=self.headers,
        )

    def to_json(self) -> dict[str, Any]:
        """This fault as ``/_simulator/state`` shows it."""
        return {"every": self.every, "scope": self.scope, "status": self.status}


class FaultPlan:
    """The faults still to come, the recurring one, and the delay of every answer."""

    def __init__(self) -> None:
        self._delay = 0.0
        self.pending: list[Fault] = []
        self.recurring: RecurringFault | None = None

    def __repr__(self) -> str:
        return (
            f"<FaultPlan delay={self.delay!r} pending={len(self.pending)} "
            f"recurring={self.recurring!r}>"
        )

    @property
    def delay(self) -> float:
        """Seconds to wait before each answer (the simulator's own views aside)."""
        return self._delay

    @delay.setter
    def delay(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"a delay cannot be negative, got {seconds}")
        self._delay = seconds

    def fail_next(
        self,
        count: int,
        status: int,
        *,
        retry_after: float | None = None,
        body: Any = None,
        scope: FaultScope = "api",
        reason: RateLimitReason | None = None,
        retry_after_form: RetryAfterForm = "seconds",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next ``count`` requests within ``scope`` with ``status``.

        Raises ``ValueError`` for an unknown ``reason`` or ``retry_after_form``,
        or a dated form without ``retry_after``.
        """
        check_reason(reason)
        check_retry_after_form(retry_after_form, retry_after)
        self._add(
            Fault(
                "fail",
                count,
                scope,
                status=status,
                retry_after=retry_after,
                body=body,
                reason=reason,
                retry_after_form=retry_after_form,
                headers=headers,
            )
        )

    def fail_every(
        self,
        every: int,
        status: int,
        *,
        retry_after: float | None = None,
        scope: FaultScope = "api",
        reason: RateLimitReason | None = None,
        retry_after_form: RetryAfterForm = "seconds",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer every ``every``-th request within ``scope`` with ``status``, until cleared.

        ``reason``, ``retry_after_form`` and ``headers`` are as for :meth:`fail_next`.
        """
        if every < 1:
            raise ValueError(f"every must be at least 1, got {every}")
        _check_scope(scope)
        check_reason(reason)
        check_retry_after_form(retry_after_form, retry_after)
        self.recurring = RecurringFault(
            every,
            scope,
            status,
            retry_after,
            reason=reason,
            retry_after_form=retry_after_form,
            headers=headers,
        )

    def drop_next(self, count: int, scope: FaultScope = "api") -> None:
        """Cut the connection of the next ``count`` requests within ``scope``."""
        self._add(Fault("drop", count, scope))

    def _add(self, fault: Fault) -> None:
        if fault.remaining < 1:
            raise ValueError(f"count must be at least 1, got {fault.remaining}")
        _check_scope(fault.scope)
        self.pending.append(fault)

    def clear(self) -> None:
        """Forget every fault not yet applied, the recurring one, and the delay."""
        self.pending.clear()
        self.recurring = None
        self._delay = 0.0

    def take(self, incoming: IncomingRequest) -> Fault | None:
        """The fault that answers ``incoming``, if any; it is used up.

        Faults asked for one by one come first, in the order they were asked
        for; the recurring fault counts only the requests they leave.
        """
        for fault in self.pending:
            if within(fault.scope, incoming):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self.pending.remove(fault)
                return fault
        recurring = self.recurring
        if recurring is not None and within(recurring.scope, incoming):
            recurring.seen += 1
            if recurring.seen % recurring.every == 0:
                return recurring.fault()
        return None

    def to_json(self) -> dict[str, Any]:
        """The delay and the faults to come, as ``/_simulator/state`` shows them."""
        return {
            "delay": self.delay,
            "pendingFaults": [fault.to_json() for fault in self.pending],
            "recurringFault": None if self.recurring is None else self.recurring.to_json(),
        }
