"""Feature flags -> Jira's FeatureFlagData: where a flag is on, per environment.

A :class:`FlagDeclaration` is what a build says of one flag (its key, and
its state in one or more environments), from the step's arguments or from a
flags file (:mod:`~buildbot_jira.mapping.flags_file` reads the file's data).
:func:`feature_flag` turns it into a :class:`FeatureFlag`, whose
:meth:`~FeatureFlag.to_json` stays within the contract's limits.

The flag's ``id`` is stable: the key itself when it is short and made of
``A-Z a-z 0-9 . _ -`` (``new-checkout``), else a readable slug of it and a
digest (``new-checkout~3f2a...``), which no plain key can be since ``~`` is
never in one. Jira replaces a flag's data with each report, so a report
carries the build's environments and those Jira holds (:func:`known_details`):
environments reported by several builds add up. No I/O, no reactor.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import attrs

from buildbot_jira.jira.model import (
    ENVIRONMENT_TYPES,
    MAX_INT64,
    MAX_ISSUE_KEYS,
    URL_TEXT,
    clip,
    shown,
)
from buildbot_jira.mapping.builds import Skip
from buildbot_jira.mapping.deployments import guess_environment_type

__all__ = [
    "FLAG_ENVIRONMENT_TYPES",
    "EnvironmentDetail",
    "FeatureFlag",
    "FlagDeclaration",
    "FlagState",
    "FlagStatus",
    "Rollout",
    "environment_name",
    "feature_flag",
    "flag_environment_type",
    "is_web_url",
    "known_details",
    "stable_flag_id",
]

#: The environment types a flag's environment may have: the deployments' less ``unmapped``.
FLAG_ENVIRONMENT_TYPES = ENVIRONMENT_TYPES - {"unmapped"}

_READABLE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
_WORDS = re.compile(r"[A-Za-z0-9]+")
#: How relevant an environment is to a flag's summary.
_RANK = {"production": 4, "staging": 3, "testing": 2, "development": 1}


def stable_flag_id(key: str) -> str:
    """The flag ID for ``key``: the key when it fits, else a slug and a digest of it."""
    if _READABLE_ID.fullmatch(key):
        return key
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    slug = "-".join(_WORDS.findall(key))[:200] or "flag"
    return f"{slug}~{digest}"


def is_web_url(value: object) -> bool:
    """Whether ``value`` is an absolute http:// or https:// URL, as the contract's ``url``."""
    if not isinstance(value, str) or any(c.isspace() for c in value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def flag_environment_type(
    name: str, given: str | None = None, explicit: Mapping[str | re.Pattern[str], str] | None = None
) -> str | None:
    """The type of environment ``name``: ``given``, else guessed as deployments do.

    None for ``unmapped``, which the feature-flag schema has no place for.
    """
    kind = given or guess_environment_type(name, explicit)
    return kind if kind in FLAG_ENVIRONMENT_TYPES else None


def environment_name(value: object) -> Any:
    """An environment's name as Jira shows it (within 255 characters, no control characters)."""
    return clip(value).strip() if isinstance(value, str) else value


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@attrs.frozen
class Rollout:
    """How far a flag is rolled out: a percentage, a text (a cohort), or a count of rules."""

    percentage: float | None = None
    text: str | None = attrs.field(default=None, converter=environment_name)
    rules: int | None = None

    def __attrs_post_init__(self) -> None:
        """At most one of the three, each of the contract's kind."""
        given = [
            name for name in ("percentage", "text", "rules") if getattr(self, name) is not None
        ]
        if len(given) > 1:
            raise ValueError(f"give one rollout, not {' and '.join(given)}")
        if self.percentage is not None and not (
            _number(self.percentage) and 0 <= self.percentage <= 100
        ):
            raise ValueError(f"rollout percentage must be 0 to 100, not {shown(self.percentage)}")
        if self.text is not None and not (isinstance(self.text, str) and self.text.strip()):
            raise ValueError(f"rollout text must be a non-empty string, not {shown(self.text)}")
        if self.rules is not None and not (
            isinstance(self.rules, int) and not isinstance(self.rules, bool)
        ):
            raise ValueError(f"rollout rules must be a whole number, not {shown(self.rules)}")
        if self.rules is not None and not 0 <= self.rules <= MAX_INT64:
            raise ValueError(f"rollout rules must be 0 or more, not {shown(self.rules)}")

    def to_json(self) -> dict[str, Any]:
        """The contract's ``FeatureFlagRollout``."""
        if self.percentage is not None:
            value = float(self.percentage)
            return {"percentage": int(value) if value.is_integer() else value}
        if self.text is not None:
            return {"text": clip(self.text)}
        if self.rules is not None:
            return {"rules": self.rules}
        return {}

    def describe(self) -> str:
        """A few words for a log line: ``25 %``, ``beta users``, ``3 rules``."""
        if self.percentage is not None:
            return f"{self.percentage:g} %"
        return self.text if self.text is not None else f"{self.rules} rules"


@attrs.frozen
class FlagStatus:
    """Whether a flag is on, what it serves when off, and how far it is rolled out."""

    enabled: bool = attrs.field(validator=attrs.validators.instance_of(bool))
    default_value: str | None = None
    rollout: Rollout | None = None

    def to_json(self) -> dict[str, Any]:
        """The contract's ``FeatureFlagStatus``."""
        status: dict[str, Any] = {"enabled": self.enabled}
        if self.default_value:
            status["defaultValue"] = clip(self.default_value)
        rollout = self.rollout.to_json() if self.rollout is not None else {}
        if rollout:
            status["rollout"] = rollout
        return status

    def describe(self) -> str:
        """``on``, ``on (25 %)`` or ``off``."""
        if not self.enabled:
            return "off"
        return (
            f"on ({self.rollout.describe()})" if self.rollout and self.rollout.to_json() else "on"
        )


def _non_empty(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{attribute.name} must be a non-empty string, not {value!r}")


@attrs.frozen(kw_only=True)
class EnvironmentDetail:
    """A flag's state in one environment, as the contract's ``FeatureFlagDetails``."""

    name: str = attrs.field(converter=environment_name, validator=_non_empty)
    type: str | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(attrs.validators.in_(FLAG_ENVIRONMENT_TYPES)),
    )
    status: FlagStatus
    url: str = attrs.field(validator=_non_empty)
    last_updated: str = attrs.field(validator=_non_empty)

    def to_json(self) -> dict[str, Any]:
        """The contract's ``FeatureFlagDetails``."""
        environment = {"name": clip(self.name)}
        if self.type is not None:
            environment["type"] = self.type
        return {
            "url": clip(self.url, URL_TEXT),
            "lastUpdated": self.last_updated,
            "environment": environment,
            "status": self.status.to_json(),
        }

    @classmethod
    def from_json(cls, data: object) -> EnvironmentDetail | None:
        """A detail that Jira holds, or None when it is not of the contract's shape."""
        try:
            environment, status = data["environment"], data["status"]  # type: ignore[index]
            rollout = status.get("rollout") or {}
            kind = environment.get("type")
            return cls(
                name=environment["name"],
                type=kind if kind in FLAG_ENVIRONMENT_TYPES else None,
                status=FlagStatus(
                    enabled=status["enabled"],
                    default_value=status.get("defaultValue") or None,
                    rollout=Rollout(
                        percentage=rollout.get("percentage"),
                        text=None if "percentage" in rollout else rollout.get("text"),
                        rules=None
                        if {"percentage", "text"} & set(rollout)
                        else rollout.get("rules"),
                    )
                    if rollout
                    else None,
                ),
                url=data["url"],  # type: ignore[index]
                last_updated=data["lastUpdated"],  # type: ignore[index]
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            return None


def known_details(stored: object) -> tuple[tuple[EnvironmentDetail, ...], int]:
    """The environments and the ``updateSequenceId`` of a flag as Jira answers it (GET).

    Details of an unexpected shape are left out; no flag gives ``((), 0)``.
    """
    if not isinstance(stored, Mapping):
        return (), 0
    details = stored.get("details")
    found = [EnvironmentDetail.from_json(d) for d in details] if isinstance(details, list) else []
    sequence = stored.get("updateSequenceId")
    last = sequence if isinstance(sequence, int) and not isinstance(sequence, bool) else 0
    return tuple(d for d in found if d is not None), last


def _flag_id(key: str, flag_id: str | None) -> str:
    return clip(flag_id) if flag_id else stable_flag_id(key)


def _as_details(value: Iterable[EnvironmentDetail]) -> tuple[EnvironmentDetail, ...]:
    return tuple(value)


def _checked_issue_keys(value: Iterable[str]) -> tuple[str, ...]:
    keys = tuple(dict.fromkeys(value))[:MAX_ISSUE_KEYS]
    if not keys:
        raise ValueError("a feature flag needs at least one issue key")
    return keys


def _sequence(_instance: object, _attribute: object, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_INT64:
        raise ValueError(f"updateSequenceId must be an integer from 0 to 2**63-1, not {value!r}")


@attrs.frozen(kw_only=True)
class FeatureFlag:
    """One flag as Jira's feature flags API takes it."""

    key: str = attrs.field(validator=_non_empty)
    details: tuple[EnvironmentDetail, ...] = attrs.field(converter=_as_details)
    issue_keys: tuple[str, ...] = attrs.field(converter=_checked_issue_keys)
    update_sequence_id: int = attrs.field(validator=_sequence)
    flag_id: str | None = None
    display_name: str | None = None
    url: str | None = None

    @details.validator
    def _one_per_environment(
        self, _attribute: object, value: tuple[EnvironmentDetail, ...]
    ) -> None:
        names = [detail.name for detail in value]
        if not names:
            raise ValueError("a feature flag needs the details of at least one environment")
        if len(set(names)) != len(names):
            raise ValueError(f"environments named more than once: {names}")

    @property
    def id(self) -> str:
        """The flag's ID in Jira: ``flag_id``, or :func:`stable_flag_id` of the key."""
        return _flag_id(self.key, self.flag_id)

    @property
    def summary_detail(self) -> EnvironmentDetail:
        """The most relevant environment: production first, then the latest updated."""
        return max(self.details, key=lambda d: (_RANK.get(d.type or "", 0), d.last_updated))

    def with_known(self, known: Iterable[EnvironmentDetail]) -> FeatureFlag:
        """This flag with the environments Jira already holds that it does not report."""
        ours = {detail.name: detail for detail in self.details}
        merged: dict[str, EnvironmentDetail] = {}
        # Jira's order is kept, with this report's state in place of Jira's.
        for detail in known:
            merged.setdefault(detail.name, ours.get(detail.name, detail))
        for detail in self.details:
            merged.setdefault(detail.name, detail)
        return attrs.evolve(self, details=tuple(merged.values()))

    def to_json(self) -> dict[str, Any]:
        """The contract's ``FeatureFlagData``."""
        top = self.summary_detail
        return {
            "schemaVersion": "1.0",
            "id": self.id,
            "key": clip(self.key),
            "displayName": clip(self.display_name or self.key),
            "issueKeys": list(self.issue_keys),
            "updateSequenceId": self.update_sequence_id,
            "summary": {
                "url": clip(self.url or top.url, URL_TEXT),
                "status": top.status.to_json(),
                "lastUpdated": max(detail.last_updated for detail in self.details),
            },
            "details": [detail.to_json() for detail in self.details],
        }


@attrs.frozen(kw_only=True)
class FlagState:
    """A flag's declared state in one environment (``type`` None: guessed from the name)."""

    environment: str = attrs.field(converter=environment_name, validator=_non_empty)
    status: FlagStatus
    type: str | None = None
    url: str | None = None


@attrs.frozen(kw_only=True)
class FlagDeclaration:
    """What a build says of one flag: its states, and optionally its ID, name, keys and URL."""

    key: str
    states: tuple[FlagState, ...]
    flag_id: str | None = None
    display_name: str | None = None
    issue_keys: tuple[str, ...] | None = None
    url: str | None = None

    @property
    def id(self) -> str:
        """The flag's ID in Jira, as :attr:`FeatureFlag.id`."""
        return _flag_id(self.key, self.flag_id)


def feature_flag(
    declaration: FlagDeclaration,
    *,
    issue_keys: Iterable[str],
    last_updated: str,
    update_sequence_id: int,
    fallback_url: str,
    environment_types: Mapping[str | re.Pattern[str], str] | None = None,
    known: Iterable[EnvironmentDetail] = (),
) -> FeatureFlag | Skip:
    """The flag to send for ``declaration``, or why nothing is sent.

    ``issue_keys`` serve when the declaration names none; ``fallback_url``
    (the build's page) when it gives no URL; ``known`` are the details Jira
    holds, kept for the environments this declaration does not report.
    """
    keys = declaration.issue_keys if declaration.issue_keys is not None else tuple(issue_keys)
    if not keys:
        return Skip(f"flag {declaration.key!r} names no Jira issue, so nothing would link it")
    details: dict[str, EnvironmentDetail] = {}
    for state in declaration.states:  # the first state of an environment counts
        details.setdefault(
            state.environment,
            EnvironmentDetail(
                name=state.environment,
                type=flag_environment_type(state.environment, state.type, environment_types),
                status=state.status,
                url=state.url or declaration.url or fallback_url,
                last_updated=last_updated,
            ),
        )
    flag = FeatureFlag(
        key=declaration.key,
        details=details.values(),
        issue_keys=keys,
        update_sequence_id=update_sequence_id,
        flag_id=declaration.flag_id,
        display_name=declaration.display_name,
        url=declaration.url,
    )
    return flag.with_known(known)
