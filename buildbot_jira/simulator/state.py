"""What the simulator holds: received requests, issued tokens, stored entities, gating.

Plain data, and the one rule Jira applies when it stores an entity
(:func:`store_newer`). Nothing here knows of HTTP or of a reactor.
"""

from __future__ import annotations

import copy
import datetime
from collections.abc import Mapping
from typing import Any, Final, Literal

import attrs

__all__ = [
    "GATING_STATUSES",
    "GatingStatus",
    "IssuedToken",
    "ReceivedRequest",
    "Store",
    "StoredEntity",
    "check_gating_status",
    "store_newer",
]


@attrs.define
class ReceivedRequest:
    """One request that the simulator received (its own views aside).

    ``body`` is the parsed JSON body, if it was JSON, with any
    ``client_secret`` redacted. ``status`` is the status answered, ``None``
    while undecided or when the connection was dropped on purpose (``fault``
    is then ``"drop"``; a faulted answer has ``fault`` ``"fail"``).
    ``disconnected`` tells that the client went away before a delayed answer.
    """

    method: str
    path: str
    timestamp: float
    body: Any = None
    status: int | None = None
    fault: Literal["fail", "drop"] | None = None
    disconnected: bool = False

    def to_json(self) -> dict[str, Any]:
        """This request as a JSON object."""
        return {
            "method": self.method,
            "path": self.path,
            "timestamp": self.timestamp,
            "status": self.status,
            "fault": self.fault,
            "disconnected": self.disconnected,
            "body": self.body,
        }


@attrs.define
class IssuedToken:
    """An access token that the simulator issued (the value stays out of ``repr``)."""

    access_token: str = attrs.field(repr=False)
    client_id: str
    issued_at: float
    expires_at: float
    revoked: bool = False

    def is_valid(self, now: float) -> bool:
        """Whether the token may still be used at time ``now``."""
        return not self.revoked and now < self.expires_at

    def to_json(self) -> dict[str, Any]:
        """This token's facts as a JSON object, without the token itself."""
        return {
            "clientId": self.client_id,
            "issuedAt": self.issued_at,
            "expiresAt": self.expires_at,
            "revoked": self.revoked,
        }


@attrs.define
class StoredEntity:
    """An entity in store: its current value and every version stored, in order.

    ``history[-1]`` is ``current``. A version is appended only when its
    sequence number is greater than the stored one, so the history's numbers
    strictly increase.
    """

    key: tuple[Any, ...]
    current: dict[str, Any]
    history: list[dict[str, Any]] = attrs.field(factory=list)
    usn_field: str = "updateSequenceNumber"

    @property
    def update_sequence_number(self) -> int:
        """The sequence number of the current value."""
        return int(self.current[self.usn_field])

    def to_json(self) -> dict[str, Any]:
        """This entity as a JSON object (``key`` as a list)."""
        return {"key": list(self.key), "current": self.current, "history": self.history}


#: The gating statuses that the contract defines.
GATING_STATUSES: Final = ("allowed", "prevented", "awaiting", "invalid")


def check_gating_status(status: str) -> str:
    """``status`` if the contract defines it; ``ValueError`` naming the choices if not."""
    if status not in GATING_STATUSES:
        raise ValueError(
            f"gating status must be one of {', '.join(GATING_STATUSES)}, got {status!r}"
        )
    return status


@attrs.define
class GatingStatus:
    """The gating status of a deployment, as Jira Service Management sets it.

    ``details`` are the keys of the issues that hold the deployment.
    """

    status: str
    details: tuple[str, ...]
    updated: float

    def to_json(self, key: tuple[str, str, int], *, site_url: str) -> dict[str, Any]:
        """The contract's gating-status answer for the deployment ``key``.

        ``site_url`` prefixes the issue links (``/browse/<key>``).
        """
        pipeline_id, environment_id, sequence_number = key
        return {
            "deploymentSequenceNumber": sequence_number,
            "pipelineId": pipeline_id,
            "environmentId": environment_id,
            "gatingStatus": self.status,
            "updatedTimestamp": _timestamp(self.updated),
            "details": [
                {"type": "issue", "issueKey": issue, "issueLink": f"{site_url}/browse/{issue}"}
                for issue in self.details
            ],
        }


@attrs.define(eq=False)
class Store:
    """Everything the simulated site keeps: entities by key, gating statuses, tokens.

    A single-part key is stored as its one value (a feature flag by its ID),
    a longer one as the tuple.
    """

    builds: dict[tuple[str, int], StoredEntity] = attrs.field(factory=dict)
    deployments: dict[tuple[str, str, int], StoredEntity] = attrs.field(factory=dict)
    gating: dict[tuple[str, str, int], GatingStatus] = attrs.field(factory=dict)
    feature_flags: dict[str, StoredEntity] = attrs.field(factory=dict)
    repositories: dict[str, StoredEntity] = attrs.field(factory=dict)
    #: Commits, branches and pull requests, keyed (repositoryId, kind, id).
    devinfo_entities: dict[tuple[str, str, str], StoredEntity] = attrs.field(factory=dict)
    #: Every token issued, in order; ``tokens`` finds one by its value.
    issued_tokens: list[IssuedToken] = attrs.field(factory=list)
    tokens: dict[str, IssuedToken] = attrs.field(factory=dict, repr=False)

    def add_token(self, token: IssuedToken) -> None:
        """Keep ``token``, findable by its value."""
        self.tokens[token.access_token] = token
        self.issued_tokens.append(token)


def store_newer(
    entities: dict[Any, StoredEntity],
    key: tuple[Any, ...],
    value: Mapping[str, Any],
    usn_field: str,
) -> bool:
    """Store ``value`` under ``key`` if it is newer than what is stored (Jira's rule).

    ``usn_field`` names the sequence number that decides. Returns whether it
    was stored. An older or equal sequence number is ignored, silently: Jira
    reports such an entity as accepted all the same.
    """
    # A copy: the caller's dict must not change what is stored.
    version = copy.deepcopy(dict(value))
    stored_key = key[0] if len(key) == 1 else key
    current = entities.get(stored_key)
    if current is not None and version[usn_field] <= current.update_sequence_number:
        return False
    if current is None:
        entities[stored_key] = StoredEntity(key, version, [version], usn_field)
    else:
        current.current = version
        current.history.append(version)
    return True


def _timestamp(seconds: float) -> str:
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
