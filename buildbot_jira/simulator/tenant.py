"""The Jira site that the simulator plays, and the gateway's rules for it.

A :class:`Tenant` is settings, not state: which OAuth clients exist, which
projects have issues, what each client may touch, how long tokens live and
how big a request may be, and what change management decides of a gated
deployment at first. Tests change them on a running simulator, so
assignments are converted and checked as ``__init__`` arguments are.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Final

import attrs

from buildbot_jira.simulator.contract import ENTITY_TYPES
from buildbot_jira.simulator.state import check_gating_status

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_CLOUD_ID",
    "DEFAULT_PROJECTS",
    "Tenant",
    "permission_sets",
    "project_keys",
]

DEFAULT_CLIENT_ID: Final = "sim-client-id"
DEFAULT_CLIENT_SECRET: Final = "sim-client-secret"  # noqa: S105 - a published test credential
DEFAULT_CLOUD_ID: Final = "00000000-0000-4000-8000-00000000c10d"
DEFAULT_PROJECTS: Final = ("PROJ", "DEMO", "ABC")


def project_keys(projects: Collection[str] | None) -> frozenset[str] | None:
    """Project keys as the site compares them (upper case); ``None``: every project."""
    return None if projects is None else frozenset(p.upper() for p in projects)


def permission_sets(
    permissions: Mapping[str, Collection[str]] | None,
) -> dict[str, frozenset[str]] | None:
    """Per client ID, the entity types it may use; ``None``: all, for every client.

    Raises ``ValueError`` for a name that is not an entity type.
    """
    if permissions is None:
        return None
    sets = {client: frozenset(kinds) for client, kinds in permissions.items()}
    unknown = set().union(*sets.values()) - set(ENTITY_TYPES)
    if unknown:
        raise ValueError(
            f"unknown entity types {sorted(unknown)} in permissions: use {', '.join(ENTITY_TYPES)}"
        )
    return sets


def _clients(clients: Mapping[str, str]) -> dict[str, str]:
    # A copy: the caller's mapping must not change the site's clients.
    return dict(clients)


@attrs.define
class Tenant:
    """One Jira Cloud site behind the OAuth 2.0 gateway.

    ``clients`` maps client IDs to secrets. ``known_projects`` lists the
    project keys whose issues exist (``None``: every project exists).
    ``permissions`` maps a client ID to the entity types (``builds``,
    ``deployments``, ``devinfo``, ``featureflags``) it may use; a client
    missing from it may use none (``None``: every client may use all).
    ``max_body_bytes`` makes bigger bulk requests answer 413.
    ``default_gating_status`` is what Jira Service Management decides, at first, for
    each deployment that asks to be gated (``awaiting`` until told otherwise),
    and ``default_gating_details`` the keys of the issues it names as holding it.
    """

    clients: dict[str, str] = attrs.field(
        factory=lambda: {DEFAULT_CLIENT_ID: DEFAULT_CLIENT_SECRET}, converter=_clients, repr=False
    )
    cloud_id: str = DEFAULT_CLOUD_ID
    known_projects: frozenset[str] | None = attrs.field(
        default=frozenset(DEFAULT_PROJECTS), converter=project_keys
    )
    token_lifetime: int = 3600
    permissions: dict[str, frozenset[str]] | None = attrs.field(
        default=None, converter=permission_sets
    )
    max_body_bytes: int | None = None
    default_gating_status: str = attrs.field(default="awaiting", converter=check_gating_status)
    default_gating_details: tuple[str, ...] = attrs.field(default=(), converter=tuple)

    def is_known_issue(self, issue_key: str) -> bool:
        """Whether ``issue_key`` names an issue that exists on this site.

        A numeric issue ID is taken as existing: there is no way to tell.
        """
        if self.known_projects is None or issue_key.isdigit():
            return True
        project, _, _ = issue_key.rpartition("-")
        return project.upper() in self.known_projects

    def may_use(self, client_id: str, entity: str) -> bool:
        """Whether ``client_id``'s credentials carry the permission for ``entity`` data."""
        if self.permissions is None:
            return True
        return entity in self.permissions.get(client_id, frozenset())

    def granted(self, client_id: str) -> list[str]:
        """The entity types ``client_id`` may use, in the contract's order."""
        return [entity for entity in ENTITY_TYPES if self.may_use(client_id, entity)]
