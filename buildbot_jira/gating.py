"""Waiting for Jira's gating decision on a deployment: the deployment gate's pure part.

:func:`wait_for_gate` asks something that answers gating status (a
:class:`~buildbot_jira.jira.client.JiraCloud`, or a fake in tests) at an
interval until Jira decides or the time is up, on a clock it is given: it
needs no master, no build and no real time. The texts the gate shows
(:func:`describe_status`, :func:`describe_poll`, :func:`timeout_advice`)
are made here too, from the same values.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Literal, Protocol, TypeVar, cast

import attrs
from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from buildbot_jira.jira.errors import JiraError
from buildbot_jira.jira.results import GatingStatus
from buildbot_jira.jira.retry import RetryPolicy

__all__ = [
    "FINAL_STATUSES",
    "GATE_RETRY",
    "DeploymentKey",
    "GateOutcome",
    "GatePoll",
    "GatingSource",
    "blocking_issue_keys",
    "describe_poll",
    "describe_status",
    "timeout_advice",
    "wait_for_gate",
]

T = TypeVar("T")

#: The gating statuses that end the wait.
FINAL_STATUSES = frozenset({"allowed", "prevented", "invalid"})

#: The gate asks once per poll: the polls are its retries, and a ``Retry-After``
#: from Jira stretches the wait until the next poll instead of a wait inside the client.
GATE_RETRY = RetryPolicy(max_attempts=1)

Decision = Literal["allowed", "prevented", "invalid", "timeout"]


class GatingSource(Protocol):
    """What :func:`wait_for_gate` asks: :class:`~buildbot_jira.jira.client.JiraCloud` is one."""

    async def get_gating_status(
        self, pipeline_id: str, environment_id: str, sequence_number: int
    ) -> GatingStatus | None:
        """Jira's gating status of a deployment, or None while Jira has none."""
        ...


@attrs.frozen
class DeploymentKey:
    """Which deployment a gate waits for."""

    pipeline_id: str
    environment_id: str
    sequence_number: int

    def __str__(self) -> str:
        return (
            f"deployment {self.sequence_number} of pipeline {self.pipeline_id!r} "
            f"to environment {self.environment_id!r}"
        )


@attrs.frozen
class GatePoll:
    """One question to Jira and its answer, as the gate reports it while waiting.

    ``status`` is None when Jira had no gating data yet (404) or could not be
    asked (``problem`` says why). ``next_poll_in`` is None when there is no
    next poll: Jira decided, or the time is up before the next one.
    """

    number: int
    elapsed: float
    status: GatingStatus | None
    problem: str | None = None
    next_poll_in: float | None = None


@attrs.frozen
class GateOutcome:
    """How the wait ended.

    ``decision`` is Jira's final status, or ``timeout``. ``last_status`` is
    the last gating status Jira gave (None: it never had any).
    """

    decision: Decision
    last_status: GatingStatus | None
    polls: int
    elapsed: float
    last_problem: str | None = None

    @property
    def blocking_issues(self) -> tuple[str, ...]:
        """The keys of the issues that the last status named."""
        return blocking_issue_keys(self.last_status)


def blocking_issue_keys(status: GatingStatus | None) -> tuple[str, ...]:
    """The issue keys in a gating status's details, in order."""
    if status is None:
        return ()
    keys = (detail.get("issueKey") for detail in status.details)
    return tuple(key for key in keys if isinstance(key, str) and key)


class _TimeUp(Exception):
    """The gate's time ran out while Jira was being asked."""


async def _within(clock: IReactorTime, seconds: float, work: Coroutine[Any, Any, T]) -> T:
    """``work``'s result, or :class:`_TimeUp` once ``seconds`` have passed."""
    running = _cancellable(defer.Deferred.fromCoroutine(work))
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        running.cancel()

    timer = clock.callLater(max(seconds, 0.0), expire)
    try:
        return await running
    except defer.CancelledError:
        if expired:
            raise _TimeUp() from None
        raise
    finally:
        if timer.active():
            timer.cancel()


def _cancellable(work: defer.Deferred[T]) -> defer.Deferred[T]:
    """``work``, whose cancellation always ends in ``CancelledError``.

    Cancelling a request that is waiting for its answer can surface as a
    connection failure (which the client reports as Jira being unavailable);
    the wait must see a cancellation as what it is.
    """
    cancelled = False

    def cancel(_: defer.Deferred[T]) -> None:
        nonlocal cancelled
        cancelled = True
        work.cancel()

    outer: defer.Deferred[T] = defer.Deferred(canceller=cancel)

    def forward(result: Any) -> None:
        if cancelled:
            return  # whatever the cancelled work turned into is dropped
        if isinstance(result, Failure):
            outer.errback(result)
        else:
            outer.callback(result)

    work.addBoth(forward)
    return outer


def _shielded(work: Awaitable[None] | None) -> defer.Deferred[None]:
    """Wait for ``work`` without letting a cancellation of the wait cancel ``work``.

    A log line or URL already on its way to the database is finished even
    when the step is interrupted meanwhile.
    """
    if work is None:
        return defer.succeed(None)
    pending = work

    async def finish() -> None:
        await pending

    inner = defer.Deferred.fromCoroutine(finish())
    outer: defer.Deferred[None] = defer.Deferred()
    inner.chainDeferred(outer)
    return outer


@attrs.frozen
class _Answer:
    """What one question to Jira brought: a status, or why there is none."""

    status: GatingStatus | None = None
    problem: str | None = None
    retry_after: float | None = None

    @property
    def decided(self) -> bool:
        return self.status is not None and self.status.status in FINAL_STATUSES


async def _ask(
    client: GatingSource, deployment: DeploymentKey, *, clock: IReactorTime, seconds: float
) -> _Answer:
    """Ask Jira once, within ``seconds``; an unreachable Jira is an answer too."""
    try:
        status = await _within(
            clock,
            seconds,
            client.get_gating_status(
                deployment.pipeline_id, deployment.environment_id, deployment.sequence_number
            ),
        )
    except JiraError as problem:
        if not problem.retryable:
            raise  # only a person can fix it: asking again would not help
        return _Answer(problem=str(problem), retry_after=problem.retry_after)
    return _Answer(status=status)


async def wait_for_gate(
    client: GatingSource,
    deployment: DeploymentKey,
    *,
    clock: IReactorTime,
    interval: float,
    timeout: float,
    on_poll: Callable[[GatePoll], Awaitable[None] | None] | None = None,
) -> GateOutcome:
    """Ask Jira every ``interval`` seconds until it decides, or ``timeout`` passes.

    No gating data yet (404) and an error that may pass by itself (a
    :class:`~buildbot_jira.jira.errors.JiraError` that is ``retryable``: Jira
    unreachable or unavailable) are asked again at the next poll; a
    ``Retry-After`` longer than ``interval`` pushes that poll back. A question
    still unanswered when the time is up is abandoned. Any other error of the
    client (refused credentials, missing permission, unknown site) is raised.
    ``on_poll`` hears of every poll (it may return an awaitable). Cancelling
    the wait stops it at once.
    """
    started = clock.seconds()
    deadline = started + timeout
    last_status: GatingStatus | None = None
    answer = _Answer()
    number = 0

    def outcome(decision: Decision) -> GateOutcome:
        elapsed = clock.seconds() - started
        return GateOutcome(decision, last_status, number, elapsed, answer.problem)

    while True:
        number += 1
        try:
            answer = await _ask(client, deployment, clock=clock, seconds=deadline - clock.seconds())
        except _TimeUp:
            return outcome("timeout")
        last_status = answer.status or last_status
        pause = max(interval, answer.retry_after or 0.0)
        if on_poll is not None:
            last_poll = answer.decided or pause >= deadline - clock.seconds()
            poll = GatePoll(
                number=number,
                elapsed=clock.seconds() - started,
                status=answer.status,
                problem=answer.problem,
                next_poll_in=None if last_poll else pause,
            )
            await _shielded(on_poll(poll))
        if answer.status is not None and answer.decided:
            return outcome(cast(Decision, answer.status.status))
        remaining = deadline - clock.seconds()
        if pause >= remaining:
            await task.deferLater(clock, max(remaining, 0.0), lambda: None)
            return outcome("timeout")
        await task.deferLater(clock, pause, lambda: None)


# -- what the gate shows ----------------------------------------------------------


def describe_status(status: GatingStatus | None) -> str:
    """A gating status in a few words, for the step's state string."""
    if status is None:
        return "no gating status yet"
    keys = blocking_issue_keys(status)
    return f"{status.status} by {', '.join(keys)}" if keys else status.status


def describe_poll(poll: GatePoll) -> str:
    """One line of the gate's ``jira gating`` log."""
    if poll.problem is not None:
        what = f"Jira could not be asked: {poll.problem}"
    elif poll.status is None:
        what = "no gating status yet (Jira has no gating data for this deployment)"
    else:
        what = f"gating status {poll.status.status}"
        for detail in poll.status.details:
            what += f"\n    held by {detail.get('issueKey', '?')}: {detail.get('issueLink', '')}"
    after = f"; asking again in {poll.next_poll_in:g} s" if poll.next_poll_in is not None else ""
    return f"[{poll.elapsed:.0f} s] poll {poll.number}: {what}{after}"


def timeout_advice(outcome: GateOutcome, deployment: DeploymentKey, timeout: float) -> str:
    """Why ``timeout`` seconds passed without a decision, as far as the last answers tell."""
    text = f"No decision from Jira within {timeout:g} s ({outcome.polls} polls). "
    if outcome.last_problem is not None:
        return text + f"Jira could not be asked at the last poll: {outcome.last_problem}"
    if outcome.last_status is None:
        return text + (
            f"Jira never had gating data for {deployment}. Check that a "
            "JiraDeploymentReporter with enable_gating=True reports this builder to "
            f"environment {deployment.environment_id!r} with the same pipeline_id, that the "
            "build names a Jira issue (Jira keeps no deployment without one), and that "
            "the environment is set up for change management in Jira Service Management."
        )
    return text + f"Its last answer was: {describe_status(outcome.last_status)}."
