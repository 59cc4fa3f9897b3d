"""An in-memory Jira for tests of code that delivers through an outbox.

:class:`FakeJira` is a :class:`~buildbot_jira.delivery.outbox.DeliveryClient`
with no network: it records every submission, keeps what Jira would keep,
answers after a delay on a clock of the test's choosing (a
:class:`twisted.internet.task.Clock`), and fails on demand with the errors
that the real client raises. ``buildbot_jira.simulator`` is the stand-in to
use where the wire itself is under test.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from twisted.internet import task
from twisted.internet.interfaces import IReactorTime

from buildbot_jira.delivery.ledger import entity_key
from buildbot_jira.jira.client import SubmitResult
from buildbot_jira.jira.model import EntityType

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

    ``submissions`` lists every call, failed ones too; ``stored`` holds, per
    entity type and key, the versions Jira took, in order: like Jira, it
    ignores an update whose ``updateSequenceNumber`` is not greater than
    the stored one. ``failing``, while set, is raised by every submission
    (an outage); :meth:`fail_next` queues errors for the next ones.
    """

    def __init__(
        self,
        *,
        clock: IReactorTime,
        delay: float = 0.0,
        site: str = "example.atlassian.net",
    ) -> None:
        self.site = site
        self.delay = delay
        self.submissions: list[Submission] = []
        self.stored: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
        self.failing: Exception | None = None
        self._clock = clock
        self._faults: list[Exception] = []
        self._answers: list[SubmitResult] = []

    def fail_next(self, *errors: Exception) -> None:
        """Raise ``errors``, one per submission, before anything else."""
        self._faults.extend(errors)

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
        self.submissions.append(Submission(entity, tuple(payloads), self._clock.seconds()))
        if self._faults:
            raise self._faults.pop(0)
        if self.failing is not None:
            raise self.failing
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
