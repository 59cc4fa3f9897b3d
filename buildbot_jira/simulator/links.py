"""Which issues and services an entity names, read from its JSON.

The functions take any JSON value: they serve both entities that passed
validation and the raw bodies of received requests, so a value of the
wrong shape names nothing rather than raising.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

__all__ = [
    "ISSUE_ASSOCIATIONS",
    "associated_issue_keys",
    "listed_issue_keys",
    "service_keys",
    "unique",
]

#: The association types whose values are issue keys (or IDs).
ISSUE_ASSOCIATIONS: Final = frozenset({"issueKeys", "issueIdOrKeys"})


def unique(values: Iterable[str]) -> list[str]:
    """``values`` without repeats, in their first order."""
    return list(dict.fromkeys(values))


def listed_issue_keys(entity: Any) -> list[str]:
    """The keys in an entity's ``issueKeys`` list (builds, flags, commits, branches...)."""
    keys = entity.get("issueKeys") if isinstance(entity, dict) else None
    return [k for k in keys if isinstance(k, str)] if isinstance(keys, list) else []


def associated_issue_keys(entity: Any) -> list[str]:
    """A deployment's issue keys, in the older ``issueKeys`` form and in associations."""
    keys = listed_issue_keys(entity)
    for association_type, values in _associations(entity):
        if association_type in ISSUE_ASSOCIATIONS:
            keys += [v for v in values if isinstance(v, str)]
    return unique(keys)


def service_keys(entity: Any) -> list[Any]:
    """The values of a deployment's ``serviceIdOrKeys`` associations."""
    return [
        value
        for association_type, values in _associations(entity)
        if association_type == "serviceIdOrKeys"
        for value in values
    ]


def _associations(entity: Any) -> list[tuple[Any, list[Any]]]:
    """Each association of ``entity`` as (type, values), skipping malformed ones."""
    associations = entity.get("associations") if isinstance(entity, dict) else None
    if not isinstance(associations, list):
        return []
    pairs = []
    for association in associations:
        if isinstance(association, dict):
            values = association.get("values")
            pairs.append(
                (association.get("associationType"), values if isinstance(values, list) else [])
            )
    return pairs
