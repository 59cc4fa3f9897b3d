"""An in-memory Jira for tests of code that delivers through an outbox.

:class:`FakeJira` is a :class:`~buildbot_jira.delivery.outbox.DeliveryClient`
with no network: it records every submission, keeps what Jira would keep,
answers after a delay on a clock of the test's choosing (a
:class:`twisted.internet.task.Clock`), fails on demand with the errors
that the real client raises, answers with Jira's rate limits on demand
(:meth:`FakeJira.rate_limit_next`, :meth:`FakeJira.near_limit_next`) and
records every request sent while the site's limits held it back.
``buildbot_jira.simulator`` is the stand-in to use where the wire itself is
under test.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from twisted.internet import task
from twisted.internet.interfaces import IReactorTime

from buildbot_jira.delivery.ledger import entity_key
from buildbot_jira.jira.client import SubmitResult
from buildbot_jira.jira.errors import JiraRateLimitedError
from buildbot_jira.jira.model import EntityType
from buildbot_jira.jira.rate_limit_headers import LimitSignal
from buildbot_jira.jira.rate_limits import RateLimits, bulk_endpoint, payload_issue_keys

__all__ = ["FakeJira", "Submission"]


@attrs.frozen
class Submission:
    """One call of :meth:`FakeJira.submit`: what was sent, and when (on the clock)."""

    entity: EntityType
    payloads: tuple[Mapping[str, Any], ...]
    time: float


def payload_key(entity: str, payload: Mapping[str, Any]) -> str:
    """The key that Jira stores ``payload`` of ``entity`` under."""
    if entity == "deployments":
        return entity_key(
            entity,
            {
                "pipelineId": payload["pipeline"]["id"],
                "environmentId": payload["environment"]["id"],
                "deploymentSequenceNumber": payload["deploymentSequenceNumber"],
            },
        )
    return entity_key(entity, payload if entity == "builds" else payload.get("id"))


class FakeJira:
    """A Jira site in memory, answering ``submit`` as Jira's bulk APIs do.

    :param clock: times the answers (the test's :class:`~twisted.internet.task.Clock`).
    :param delay: seconds each answer waits on ``clock``; ``0`` answers at once.
    :param site: the site name the outbox shows in its ``repr``.
    :param min_request_interval: the pacing of :attr:`limits` (0, the default:
        none, so that a test sees each request when it is made).

    ``submissions`` lists every call, failed ones too; ``stored`` holds, per
    entity type and key, the versions Jira took, in order: like Jira, it
    ignores an update whose ``updateSequenceNumber`` is not greater than
    the stored one. ``failing``, while set, is raised by every submission
    (an outage); :meth:`fail_next` queues errors for the next ones.
    ``limits`` are the site's rate limits, kept as the real client keeps
    them; ``too_early`` lists each submission made while they held it back
    (a caller that keeps to the limits leaves it empty).
    """

    def __init__(
        self,
        *,
        clock: IReactorTime,
        delay: float = 0.0,
        site: str = "example.atlassian.net",
        min_request_interval: float = 0.0,
    ) -> None:
        self.site = site
        self.limits = RateLimits(min_interval=min_request_interval)
        self.too_early: list[Submission] = []
        self.delay = delay
        self.submissions: list[Submission] = []
        self.stored: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
        self.failing: Exception | None = None
        self._clock = clock
        self._faults: list[Exception] = []
        self._answers: list[SubmitResult] = []
        self._signals: list[LimitSignal] = []

    def fail_next(self, *errors: Exception) -> None:
        """Raise ``errors``, one per submission, before anything else."""
        self._faults.extend(errors)

    def rate_limit_next(
        self, count: int = 1, *, retry_after: float | None, reason: str | None = None
    ) -> None:
        """Answer the next ``count`` submissions that do not fail with 429.

        ``reason`` is the ``RateLimit-Reason`` (``jira-burst-based``...), and
        ``retry_after`` the wait asked for; the limits learn both, as the
        client's do, and :class:`JiraRateLimitedError` is raised.
        """
        self._signals.extend(
            [LimitSignal(limited=True, wait=retry_after, reason=reason, served=False)] * count
        )

    def near_limit_next(self, count: int = 1) -> None:
        """Answer the next ``count`` submissions with ``X-RateLimit-NearLimit: true``."""
        self._signals.extend([LimitSignal(near_limit=True)] * count)

    def answer_next(self, *results: SubmitResult) -> None:
        """Answer the next submissions that do not fail with ``results``, one each."""
        self._answers.extend(results)

    def states(self, entity: str = "builds") -> dict[str, list[str]]:
        """The ``state`` of every version Jira took, per key of ``entity``."""
        return {
            key: [version["state"] for version in versions]
            for (kind, key), versions in self.stored.items()
            if kind == entity
        }

    async def submit(
        self, entity: EntityType, payloads: Sequence[Mapping[str, Any]], /
    ) -> SubmitResult:
        """Take ``payloads`` and answer after the delay, or raise the next fault or ``failing``."""
        submission = Submission(entity, tuple(payloads), self._clock.seconds())
        self.submissions.append(submission)
        endpoint = bulk_endpoint(entity)
        issue_keys = frozenset().union(*(payload_issue_keys(p) for p in payloads))
        if self.limits.wait(endpoint, submission.time, issue_keys) > 0:
            self.too_early.append(submission)
        self.limits.sent(endpoint, submission.time)
        if self._faults:
            raise self._faults.pop(0)
        if self.failing is not None:
            raise self.failing
        signal = self._signals.pop(0) if self._signals else LimitSignal()
        self.limits.answered(endpoint, self._clock.seconds(), signal, issue_keys)
        if signal.limited:
            raise JiraRateLimitedError(
                f"Jira site {self.site!r} rate-limited POST {entity} (HTTP 429, {signal.reason})",
                reason=signal.reason,
                retry_after=signal.wait,
            )
        # Jira takes the data when the request arrives; only the answer waits
        # (a client that gives up meanwhile may still have had it stored).
        for payload in payloads:
            self._store(entity, payload)
        if self.delay > 0:
            # Cancellable: an outbox that gives up on the answer cancels the wait.
            await task.deferLater(self._clock, self.delay, lambda: None)
        if self._answers:
            return self._answers.pop(0)
        return SubmitResult(entity=entity, accepted=tuple(payload_key(entity, p) for p in payloads))

    def _store(self, entity: str, payload: Mapping[str, Any]) -> None:
        versions = self.stored.setdefault((entity, payload_key(entity, payload)), [])
        sequence = payload.get("updateSequenceNumber", 0)
        if versions and sequence <= versions[-1].get("updateSequenceNumber", 0):
            return
        versions.append(payload)
