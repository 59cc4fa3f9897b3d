"""Value classes for what buildbot-jira sends, and their JSON within the contract.

Each class validates its fields when it is made and turns itself into the
JSON dict that the contract describes, cutting strings to the contract's
lengths and lists to its counts, so that nothing built here is rejected for
its size. It is also the one home of the contract's limits (states,
environment types, the issue-key pattern, how many keys a build carries),
which the rest of the plugin imports rather than restates. No I/O, no
reactor.
"""

from __future__ import annotations

import datetime
import re
import reprlib
from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal

import attrs

__all__ = [
    "BUILD_STATES",
    "DEPLOYMENT_STATES",
    "ENTITY_LISTS",
    "ENTITY_TYPES",
    "ENVIRONMENT_TYPES",
    "ISSUE_KEY_RE",
    "MAX_ASSOCIATION_VALUES",
    "MAX_ISSUE_KEYS",
    "MAX_ISSUE_KEY_PART",
    "MAX_REFERENCES",
    "BuildData",
    "BuildReference",
    "DeploymentData",
    "EntityType",
    "Environment",
    "Pipeline",
    "SequenceNumbers",
    "TestInfo",
    "clip",
    "iso_timestamp",
    "shown",
]

EntityType = Literal["builds", "deployments", "devinfo", "featureflags"]

#: The four kinds of data that the DevOps APIs accept.
ENTITY_TYPES: Final[tuple[EntityType, ...]] = ("builds", "deployments", "devinfo", "featureflags")

#: The member of each bulk request body that holds the list of entities.
ENTITY_LISTS: Final[Mapping[EntityType, str]] = {
    "builds": "builds",
    "deployments": "deployments",
    "devinfo": "repositories",
    "featureflags": "flags",
}

#: The states a build may be in.
BUILD_STATES = frozenset({"pending", "in_progress", "successful", "failed", "cancelled", "unknown"})
#: The states a deployment may be in.
DEPLOYMENT_STATES = frozenset(
    {"unknown", "pending", "in_progress", "cancelled", "failed", "rolled_back", "successful"}
)
#: The types an environment may have; ``unmapped`` is the one for "none of these".
ENVIRONMENT_TYPES = frozenset({"unmapped", "development", "testing", "staging", "production"})

#: The most characters of each part of an issue key: the project before the
#: dash, and the number after it.
MAX_ISSUE_KEY_PART = 255

#: The contract's issue-key pattern ``^\w{1,255}-\d{1,255}$``, read as Jira
#: reads it (Java regular expressions: ``\w`` and ``\d`` are ASCII only).
#: Use it with ``fullmatch``.
ISSUE_KEY_RE = re.compile(
    rf"[A-Za-z0-9_]{{1,{MAX_ISSUE_KEY_PART}}}-[0-9]{{1,{MAX_ISSUE_KEY_PART}}}"
)

#: A build, or a deployment, carries at most this many issue keys.
MAX_ISSUE_KEYS = 100
#: A build carries at most this many references (commit and branch).
MAX_REFERENCES = 5
#: Deployments may carry at most 500 association values in all.
MAX_ASSOCIATION_VALUES = 500
#: Deployments may carry at most this many association entries.
MAX_ASSOCIATIONS = 3
#: The longest string the contract accepts in most fields.
SHORT_TEXT = 255
#: The longest URL the contract accepts.
URL_TEXT = 2000
#: The contract's integers are int64.
MAX_INT64 = 2**63 - 1


def clip(text: object, limit: int = SHORT_TEXT) -> str:
    """``text`` as a string of at most ``limit`` characters, marked with … where cut.

    Control characters become spaces: they have no place in a name shown in
    Jira, and a commit message or branch name may carry any of them.
    """
    value = "" if text is None else str(text)
    if len(value) > limit * 4:
        value = value[: limit * 4]
    value = "".join(" " if (ord(c) < 32 or 0x7F <= ord(c) < 0xA0) else c for c in value)
    # Lone surrogates (from undecodable bytes) cannot be encoded as JSON text.
    value = value.encode("utf-8", "replace").decode("utf-8")
    if len(value) <= limit:
        return value
    return value[: limit - 1] + "\u2026"


_BRIEF = reprlib.Repr()
_BRIEF.maxlevel = 3
_BRIEF.maxtuple = _BRIEF.maxlist = _BRIEF.maxdict = _BRIEF.maxset = _BRIEF.maxfrozenset = 4
_BRIEF.maxdeque = _BRIEF.maxarray = 4
_BRIEF.maxstring, _BRIEF.maxlong, _BRIEF.maxother = 60, 40, 60


def shown(value: object, limit: int = 60) -> str:
    """``value`` for a message, in at most ``limit`` characters, whatever it is.

    A repr of bounded cost: a file or a property may hold a megabyte where a
    word belongs, nesting thousands deep, or (YAML's aliases) a structure
    that a full repr would expand into billions of items.
    """
    try:
        text = _BRIEF.repr(value)
    except ValueError:  # an int of more digits than Python converts
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def iso_timestamp(moment: datetime.datetime | float) -> str:
    """An ISO 8601 UTC timestamp with milliseconds, as Jira shows in its examples."""
    if not isinstance(moment, datetime.datetime):
        moment = datetime.datetime.fromtimestamp(moment, tz=datetime.timezone.utc)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    moment = moment.astimezone(datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _checked_keys(value: Iterable[str], limit: int) -> tuple[str, ...]:
    keys = tuple(dict.fromkeys(value))
    for key in keys:
        if not ISSUE_KEY_RE.fullmatch(key):
            raise ValueError(f"{key!r} is not a Jira issue key")
    return keys[:limit]


def _issue_keys(value: Iterable[str]) -> tuple[str, ...]:
    """A build's issue keys: the contract's ``issueKeys`` holds at most 100."""
    return _checked_keys(value, MAX_ISSUE_KEYS)


def _deployment_issue_keys(value: Iterable[str]) -> tuple[str, ...]:
    """A deployment's issue keys: associations hold 500 values in all."""
    return _checked_keys(value, MAX_ASSOCIATION_VALUES)


def _one_of(choices: frozenset[str]) -> Any:
    return attrs.validators.in_(choices)


def _non_negative_int(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_INT64:
        raise ValueError(f"{attribute.name} must be an integer from 0 to 2**63-1, not {value!r}")


@attrs.frozen
class TestInfo:
    """Test counts of a build."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    passed: int = attrs.field(validator=_non_negative_int)
    failed: int = attrs.field(validator=_non_negative_int)
    skipped: int = attrs.field(default=0, validator=_non_negative_int)

    @property
    def total(self) -> int:
        """All tests run or skipped."""
        return self.passed + self.failed + self.skipped

    def to_json(self) -> dict[str, int]:
        """The contract's ``testInfo`` object."""
        return {
            "totalNumber": self.total,
            "numberPassed": self.passed,
            "numberFailed": self.failed,
            "numberSkipped": self.skipped,
        }


@attrs.frozen
class BuildReference:
    """The commit and the branch (ref) a build or deployment ran on."""

    revision: str | None = None
    repository: str | None = None
    branch: str | None = None
    branch_uri: str | None = None

    def to_json(self) -> dict[str, Any] | None:
        """The contract's ``BuildReferences`` object, or None when it would be empty."""
        reference: dict[str, Any] = {}
        if self.revision:
            reference["commit"] = {
                "id": clip(self.revision),
                "repositoryUri": clip(self.repository or "unknown", URL_TEXT),
            }
        if self.branch:
            uri = self.branch_uri or f"{self.repository or ''}#{self.branch}"
            reference["ref"] = {"name": clip(self.branch), "uri": clip(uri, URL_TEXT)}
        return reference or None


@attrs.frozen
class BuildData:
    """One build as Jira's builds API takes it."""

    pipeline_id: str
    build_number: int = attrs.field(validator=_non_negative_int)
    update_sequence_number: int = attrs.field(validator=_non_negative_int)
    display_name: str
    url: str
    state: str = attrs.field(validator=_one_of(BUILD_STATES))
    last_updated: str
    issue_keys: tuple[str, ...] = attrs.field(converter=_issue_keys)
    description: str | None = None
    label: str | None = None
    test_info: TestInfo | None = None
    references: tuple[BuildReference, ...] = ()

    @issue_keys.validator
    def _at_least_one_key(self, _attribute: object, value: tuple[str, ...]) -> None:
        if not value:
            raise ValueError("a build needs at least one issue key")

    @property
    def key(self) -> str:
        """A string that names this build among all builds of a site."""
        return f"{self.pipeline_id}#{self.build_number}"

    def to_json(self) -> dict[str, Any]:
        """The contract's ``BuildData`` object."""
        data: dict[str, Any] = {
            "schemaVersion": "1.0",
            "pipelineId": clip(self.pipeline_id),
            "buildNumber": self.build_number,
            "updateSequenceNumber": self.update_sequence_number,
            "displayName": clip(self.display_name) or f"#{self.build_number}",
            "url": clip(self.url, URL_TEXT),
            "state": self.state,
            "lastUpdated": self.last_updated,
            "issueKeys": list(self.issue_keys),
        }
        if self.description:
            data["description"] = clip(self.description)
        if self.label:
            data["label"] = clip(self.label)
        if self.test_info is not None:
            data["testInfo"] = self.test_info.to_json()
        references = [r for r in (ref.to_json() for ref in self.references) if r]
        if references:
            data["references"] = references[:MAX_REFERENCES]
        return data


@attrs.frozen
class Pipeline:
    """The pipeline (Buildbot builder) a deployment belongs to."""

    id: str
    display_name: str
    url: str

    def to_json(self) -> dict[str, str]:
        """The contract's ``pipeline`` object."""
        return {
            "id": clip(self.id),
            "displayName": clip(self.display_name) or clip(self.id),
            "url": clip(self.url, URL_TEXT),
        }


@attrs.frozen
class Environment:
    """Where a deployment went."""

    id: str
    display_name: str
    type: str = attrs.field(validator=_one_of(ENVIRONMENT_TYPES))

    def to_json(self) -> dict[str, str]:
        """The contract's ``environment`` object."""
        return {
            "id": clip(self.id),
            "displayName": clip(self.display_name) or clip(self.id),
            "type": self.type,
        }


@attrs.frozen
class DeploymentData:
    """One deployment as Jira's deployments API takes it."""

    pipeline: Pipeline
    environment: Environment
    deployment_sequence_number: int = attrs.field(validator=_non_negative_int)
    update_sequence_number: int = attrs.field(validator=_non_negative_int)
    display_name: str
    url: str
    description: str
    state: str = attrs.field(validator=_one_of(DEPLOYMENT_STATES))
    last_updated: str
    issue_keys: tuple[str, ...] = attrs.field(default=(), converter=_deployment_issue_keys)
    service_ids: tuple[str, ...] = ()
    references: tuple[BuildReference, ...] = ()
    label: str | None = None
    duration: int | None = None
    gating: bool = False

    @property
    def key(self) -> str:
        """A string that names this deployment among all deployments of a site."""
        return f"{self.pipeline.id}#{self.environment.id}#{self.deployment_sequence_number}"

    def associations(self) -> list[dict[str, Any]]:
        """Issue keys, services and commits, within the contract's 500 values in all."""
        budget = MAX_ASSOCIATION_VALUES
        associations: list[dict[str, Any]] = []
        services = [clip(s) for s in dict.fromkeys(self.service_ids) if s]
        commits = [
            {"commitHash": clip(r.revision), "repositoryId": clip(r.repository or "unknown")}
            for r in self.references
            if r.revision
        ]
        for kind, values in (
            ("issueIdOrKeys", list(self.issue_keys)),
            ("serviceIdOrKeys", services),
            ("commit", commits),
        ):
            values = values[:budget]
            if values:
                associations.append({"associationType": kind, "values": values})
                budget -= len(values)
        return associations

    def to_json(self) -> dict[str, Any]:
        """The contract's ``DeploymentData`` object."""
        data: dict[str, Any] = {
            "schemaVersion": "1.0",
            "deploymentSequenceNumber": self.deployment_sequence_number,
            "updateSequenceNumber": self.update_sequence_number,
            "displayName": clip(self.display_name) or "deployment",
            "url": clip(self.url, URL_TEXT),
            "description": clip(self.description) or self.state,
            "lastUpdated": self.last_updated,
            "state": self.state,
            "pipeline": self.pipeline.to_json(),
            "environment": self.environment.to_json(),
        }
        associations = self.associations()
        if associations:
            data["associations"] = associations
        if self.label:
            data["label"] = clip(self.label)
        if self.duration is not None:
            data["duration"] = max(0, int(self.duration))
        if self.gating:
            data["commands"] = [{"command": "initiate_deployment_gating"}]
        return data


class SequenceNumbers:
    """Update sequence numbers: milliseconds since the epoch, never repeated.

    Jira ignores an update whose ``updateSequenceNumber`` is not greater than
    the one it holds. Milliseconds keep numbers growing across master
    restarts; taking one more than the last number handed out when the clock
    has not moved (or went back) keeps two updates within one millisecond
    apart.
    """

    def __init__(self, last: int = 0) -> None:
        self._last = last

    def next(self, now: float) -> int:
        """The next number, for an update made at epoch time ``now`` (seconds)."""
        self._last = max(int(now * 1000), self._last + 1)
        return self._last
