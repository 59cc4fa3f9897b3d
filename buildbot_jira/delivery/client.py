"""What an outbox needs of a Jira client: the seam where tests put an in-memory Jira."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from buildbot_jira.jira.client import SubmitResult
from buildbot_jira.jira.model import EntityType
from buildbot_jira.jira.rate_limits import RateLimits

__all__ = ["DeliveryClient"]


class DeliveryClient(Protocol):
    """What an outbox needs of a Jira client (:class:`~buildbot_jira.jira.client.JiraCloud`)."""

    @property
    def site(self) -> str:
        """The Jira site's host name, for log lines."""

    @property
    def limits(self) -> RateLimits:
        """The site's pacing and rate limits, which the client keeps to and learns."""

    async def submit(
        self, entity: EntityType, payloads: Sequence[Mapping[str, Any]], /
    ) -> SubmitResult:
        """Send ``payloads`` of ``entity``; raise a :class:`JiraError` if Jira did not take them."""
