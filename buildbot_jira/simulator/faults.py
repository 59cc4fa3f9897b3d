"""Fault injection: failing, dropped and slow answers, the ways Jira Cloud lets clients down.

A :class:`FaultPlan` holds the faults asked for. For each recorded request
the simulator asks :meth:`FaultPlan.take` whether a fault answers it; a
faulted request is not processed at all.
"""

from __future__ import annotations

from typing import Any, Final, Literal, TypeAlias

import attrs

from buildbot_jira.simulator.exchange import Answer, IncomingRequest, error_messages

__all__ = ["FAULT_SCOPES", "Fault", "FaultPlan", "FaultScope", "RecurringFault"]

FaultScope: TypeAlias = Literal["api", "token", "any"]

#: ``api``: ``/jira/`` calls; ``token``: the token endpoint; ``any``: every request.
FAULT_SCOPES: Final[tuple[FaultScope, ...]] = ("api", "token", "any")

# Which scope a request falls within, by the first segment of its path.
_SCOPE_OF_SEGMENT: Final[dict[str, FaultScope]] = {"jira": "api", "oauth": "token"}


def _check_scope(scope: str) -> None:
    if scope not in FAULT_SCOPES:
        raise ValueError(f"scope must be 'api', 'token' or 'any', got {scope!r}")


@attrs.define
class Fault:
    """A fault for the next ``remaining`` requests within ``scope``.

    ``kind`` ``"fail"`` answers ``status`` (with ``Retry-After`` if
    ``retry_after`` is set, and ``body`` if given); ``"drop"`` cuts the
    connection without an answer.
    """

    kind: Literal["fail", "drop"]
    remaining: int
    scope: FaultScope
    status: int = 0
    retry_after: float | None = None
    body: Any = None

    def answer(self) -> Answer:
        """The answer of a ``"fail"`` fault."""
        headers = {}
        if self.retry_after is not None:
            headers["Retry-After"] = format(self.retry_after, "g")
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
    """Every ``every``-th request within ``scope`` fails with ``status``."""

    every: int
    scope: FaultScope
    status: int
    retry_after: float | None = None
    seen: int = 0

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
    ) -> None:
        """Answer the next ``count`` requests within ``scope`` with ``status``."""
        self._add(Fault("fail", count, scope, status=status, retry_after=retry_after, body=body))

    def fail_every(
        self,
        every: int,
        status: int,
        *,
        retry_after: float | None = None,
        scope: FaultScope = "api",
    ) -> None:
        """Answer every ``every``-th request within ``scope`` with ``status``, until cleared."""
        if every < 1:
            raise ValueError(f"every must be at least 1, got {every}")
        _check_scope(scope)
        self.recurring = RecurringFault(every, scope, status, retry_after)

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
        scope = _SCOPE_OF_SEGMENT.get(incoming.first_segment)
        for fault in self.pending:
            if fault.scope == "any" or fault.scope == scope:
                fault.remaining -= 1
                if fault.remaining == 0:
                    self.pending.remove(fault)
                return fault
        recurring = self.recurring
        if recurring is not None and recurring.scope in ("any", scope):
            recurring.seen += 1
            if recurring.seen % recurring.every == 0:
                return Fault(
                    "fail",
                    1,
                    recurring.scope,
                    status=recurring.status,
                    retry_after=recurring.retry_after,
                )
        return None

    def to_json(self) -> dict[str, Any]:
        """The delay and the faults to come, as ``/_simulator/state`` shows them."""
        return {
            "delay": self.delay,
            "pendingFaults": [fault.to_json() for fault in self.pending],
            "recurringFault": None if self.recurring is None else self.recurring.to_json(),
        }
