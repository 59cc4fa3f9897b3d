"""What an outbox needs of a Jira client: the seam where tests put an in-memory Jira."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from buildbot_jira.jira.client import JiraCloud, SubmitResult
from buildbot_jira.jira.model import EntityType
from buildbot_jira.jira.rate_limits import RateLimits

__all__ = ["DeliveryClient", "DevinfoDelivery"]


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


class DevinfoDelivery:
    """The site's client as a devinfo outbox sends through it, with ``preventTransitions``."""

    def __init__(self, client: JiraCloud, *, prevent_transitions: bool) -> None:
        self.client = client
        self.prevent_transitions = prevent_transitions

    def __repr__(self) -> str:
        return f"<DevinfoDelivery {self.client!r} prevent_transitions={self.prevent_transitions}>"

    @property
    def site(self) -> str:
        """The Jira site's host name."""
        return self.client.site

    @property
    def limits(self) -> RateLimits:
        """The site's pacing and rate limits."""
        return self.client.limits

    async def submit(
        self, entity: EntityType, payloads: Sequence[Mapping[str, Any]], /
    ) -> SubmitResult:
        """Send repositories; Jira acts on smart commits unless told not to."""
        if entity != "devinfo":
            raise ValueError(f"a devinfo outbox sends devinfo only, not {entity!r}")
        return await self.client.submit_development_information(
            payloads, prevent_transitions=True if self.prevent_transitions else None
        )
