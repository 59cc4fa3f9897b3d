"""What goes in each bulk request: its entity list, its other fields, its halves (pure).

:class:`~buildbot_jira.jira.client.JiraCloud` sends what :func:`request_batches`
makes of a submission, one request per batch, and what :func:`request_halves`
makes of a batch that Jira finds too large (413).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from buildbot_jira.jira.devinfo import devinfo_requests, split_in_two

__all__ = ["MAX_ENTITIES_PER_REQUEST", "bulk_fields", "request_batches", "request_halves"]

#: The contract allows 1 to 100 builds, deployments or feature flags per request
#: (and 100 repositories per devinfo request).
MAX_ENTITIES_PER_REQUEST: Final = 100


def bulk_fields(
    properties: Mapping[str, str] | None,
    provider_metadata: Mapping[str, str] | None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The fields of a request body beside its entity list (empty ones left out)."""
    fields = dict(extra or {})
    if properties:
        fields["properties"] = dict(properties)
    if provider_metadata:
        fields["providerMetadata"] = dict(provider_metadata)
    return fields


def request_batches(entity: str, items: Sequence[Mapping[str, Any]]) -> list[list[dict[str, Any]]]:
    """The entity lists of the requests that carry ``items`` of ``entity``.

    Development information is merged and split by
    :func:`~buildbot_jira.jira.devinfo.devinfo_requests`; anything else goes
    in slices of :data:`MAX_ENTITIES_PER_REQUEST`, in order.
    """
    if entity == "devinfo":
        return devinfo_requests(items)
    return [
        [dict(item) for item in items[start : start + MAX_ENTITIES_PER_REQUEST]]
        for start in range(0, len(items), MAX_ENTITIES_PER_REQUEST)
    ]


def request_halves(
    entity: str, batch: Sequence[Mapping[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
    """``batch`` in two smaller requests' worth, or None when it holds a single entity.

    A devinfo batch of one repository has its entities split
    (:func:`~buildbot_jira.jira.devinfo.split_in_two`).
    """
    if entity == "devinfo":
        return split_in_two(batch)
    if len(batch) < 2:
        return None
    middle = len(batch) // 2
    return [dict(i) for i in batch[:middle]], [dict(i) for i in batch[middle:]]
