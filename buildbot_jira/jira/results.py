"""What Jira answers, as value classes: submission results, gating status, error texts.

Jira's answers are read here and nowhere else. A bulk POST answers 202 even
when it rejects some entities, so :class:`SubmitResult` keeps what was
accepted, what was rejected (with Jira's messages) and which issue keys Jira
does not know; :class:`GatingStatus` is the answer to a gating-status
question; :func:`request_error` turns an answer that refuses a request into
the :class:`~buildbot_jira.jira.errors.JiraRequestError` that says what to
check, quoting Jira's own texts.
The parsing is lenient: an answer of an unexpected shape yields an empty
value, never an exception, since Jira has already acted on the request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
from twisted.logger import Logger

from buildbot_jira.jira.errors import JiraPermissionError, JiraRequestError
from buildbot_jira.jira.model import EntityType
from buildbot_jira.jira.users import UNNAMED

__all__ = ["GatingStatus", "Rejection", "SubmitResult", "error_messages", "request_error"]

log = Logger()

#: What a 403 says the credentials lack, per entity type.
_PERMISSION_HINT: Mapping[EntityType, str] = {
    "builds": "builds (write:build:jira-software)",
    "deployments": "deployments (write:deployment:jira-software)",
    "devinfo": "development information (write:dev-info:jira)",
    "featureflags": "feature flags (write:feature-flag:jira)",
}


@attrs.frozen
class Rejection:
    """An entity that Jira did not accept, with Jira's messages."""

    key: Any
    errors: tuple[str, ...]


@attrs.frozen
class SubmitResult:
    """What Jira said of a bulk submission (merged over all the requests sent).

    ``accepted`` holds the keys Jira accepted (for builds ``{"pipelineId",
    "buildNumber"}``, for deployments ``{"pipelineId", "environmentId",
    "deploymentSequenceNumber"}``, for feature flags the flag IDs, for devinfo
    ``{"repository": id, ...entity ids}``).
    """

    entity: EntityType
    accepted: tuple[Any, ...] = ()
    rejected: tuple[Rejection, ...] = ()
    unknown_issue_keys: tuple[str, ...] = ()
    unknown_associations: tuple[Any, ...] = ()

    def merge(self, other: SubmitResult) -> SubmitResult:
        """This result and ``other`` together (for a batch sent in parts)."""
        return SubmitResult(
            entity=self.entity,
            accepted=self.accepted + other.accepted,
            rejected=self.rejected + other.rejected,
            unknown_issue_keys=_unique(self.unknown_issue_keys + other.unknown_issue_keys),
            unknown_associations=self.unknown_associations + other.unknown_associations,
        )

    @classmethod
    def from_response(
        cls, entity: EntityType, data: object, *, source: str = UNNAMED
    ) -> SubmitResult:
        """Parse the body of a 202 answer to a bulk POST of ``entity``.

        A body of an unexpected shape gives an empty result: Jira took the
        request, and what it says of it is only reported, in a line that
        begins with ``source`` (the names of whoever sent it).
        """
        try:
            return cls._parse(entity, data)
        except (TypeError, AttributeError, ValueError):
            log.warn(
                "{source}: Jira answered a {entity} submission with an unexpected body",
                source=source,
                entity=entity,
            )
            return cls(entity=entity)

    @classmethod
    def _parse(cls, entity: EntityType, data: object) -> SubmitResult:
        if not isinstance(data, dict):
            return cls(entity=entity)
        unknown_keys = tuple(str(key) for key in data.get("unknownIssueKeys") or ())
        if entity == "devinfo":
            return cls(
                entity=entity,
                accepted=tuple(
                    {"repository": repo, **ids}
                    for repo, ids in (data.get("acceptedDevinfoEntities") or {}).items()
                ),
                rejected=tuple(
                    Rejection(key={"repository": repo}, errors=_devinfo_messages(errors))
                    for repo, errors in (data.get("failedDevinfoEntities") or {}).items()
                ),
                unknown_issue_keys=unknown_keys,
            )
        if entity == "featureflags":
            return cls(
                entity=entity,
                accepted=tuple(data.get("acceptedFeatureFlags") or ()),
                rejected=tuple(
                    Rejection(key=flag, errors=_messages(errors))
                    for flag, errors in (data.get("failedFeatureFlags") or {}).items()
                ),
                unknown_issue_keys=unknown_keys,
            )
        plural = "Builds" if entity == "builds" else "Deployments"
        return cls(
            entity=entity,
            accepted=tuple(data.get(f"accepted{plural}") or ()),
            rejected=tuple(
                Rejection(key=item.get("key"), errors=_messages(item.get("errors")))
                for item in data.get(f"rejected{plural}") or ()
                if isinstance(item, dict)
            ),
            unknown_issue_keys=unknown_keys,
            unknown_associations=tuple(data.get("unknownAssociations") or ()),
        )


@attrs.frozen
class GatingStatus:
    """Jira's gating decision for one deployment.

    ``status`` is one of ``allowed``, ``prevented``, ``awaiting``, ``invalid``;
    ``details`` lists the issues that hold the deployment (``issueKey``,
    ``issueLink``).
    """

    status: str
    details: tuple[Mapping[str, Any], ...] = ()
    updated: str | None = None

    @classmethod
    def from_response(cls, data: object) -> GatingStatus:
        """Parse a gating-status answer; one of an unexpected shape is ``invalid``."""
        if not isinstance(data, dict) or not isinstance(data.get("gatingStatus"), str):
            return cls(status="invalid")
        details = tuple(d for d in data.get("details") or () if isinstance(d, dict))
        return cls(
            status=data["gatingStatus"], details=details, updated=data.get("updatedTimestamp")
        )


def error_messages(data: object) -> tuple[str, ...]:
    """Jira's own texts in the parsed body of an error answer, if any.

    Jira words them as ``[{"message": ...}]`` (a malformed bulk request),
    ``{"errorMessages": [...]}`` or ``{"message": ...}``.
    """
    if isinstance(data, list):
        return _messages(data)
    if isinstance(data, dict):
        if isinstance(data.get("errorMessages"), list):
            return tuple(str(m) for m in data["errorMessages"])
        if isinstance(data.get("message"), str):
            return (data["message"],)
    return ()


def request_error(
    status: int, data: object, *, what: str, entity: EntityType, location: str | None = None
) -> JiraRequestError:
    """The error for an answer of ``status`` that refuses a request to ``entity``'s API.

    ``data`` is the parsed body (None when it is not JSON), ``what`` names
    the request (method, entity, site) and ``location`` is the
    ``Location`` header of a redirect.
    """
    messages = error_messages(data)
    quoted = f": {'; '.join(messages)}" if messages else ""
    if status == 403:
        return JiraPermissionError(
            f"{what} was refused (HTTP 403{quoted}). The OAuth credentials lack the "
            f"permission to write {_PERMISSION_HINT[entity]}; a Jira admin can grant it "
            "under Settings > Apps > OAuth credentials",
            status=status,
            messages=messages,
        )
    if 300 <= status < 400:
        return JiraRequestError(
            f"{what} was answered with a redirect (HTTP {status}) to {location!r}, which "
            "is not followed. The site may have been renamed: check site, site_url and api_url",
            status=status,
        )
    if status == 400:
        return JiraRequestError(
            f"{what} was rejected as malformed (HTTP 400{quoted})",
            status=status,
            messages=messages,
        )
    return JiraRequestError(
        f"{what} failed (HTTP {status}{quoted})", status=status, messages=messages
    )


def _messages(errors: object) -> tuple[str, ...]:
    if not isinstance(errors, list):
        return ()
    return tuple(
        str(error.get("message", "")) if isinstance(error, dict) else str(error) for error in errors
    )


def _devinfo_messages(errors: object) -> tuple[str, ...]:
    if not isinstance(errors, dict):
        return ()
    found = list(_messages(errors.get("errorMessages")))
    for kind in ("commits", "branches", "pullRequests"):
        for item in errors.get(kind) or ():
            if isinstance(item, dict):
                found.extend(
                    f"{kind} {item.get('id')}: {m}" for m in _messages(item.get("errorMessages"))
                )
    return tuple(found)


def _unique(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))
