"""Development information requests: repositories merged, then split within the contract (pure).

A devinfo request carries repositories, each with its commits, branches and
pull requests. The outbox hands the client one repository object per entity
(:class:`~buildbot_jira.mapping.devinfo.DevinfoEntity`); :func:`devinfo_requests`
merges those of one repository and splits the result into as few request
bodies as the contract allows: at most 100 repositories and 1,000 entities
per request, at most 400 commits, 400 branches and 400 pull requests per
repository, and never one repository twice in a request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

__all__ = [
    "DEVINFO_KINDS",
    "MAX_DEVINFO_ENTITIES_PER_REQUEST",
    "MAX_ENTITIES_PER_KIND",
    "MAX_REPOSITORIES_PER_REQUEST",
    "devinfo_requests",
    "entity_count",
    "split_in_two",
]

#: The entity lists of a repository.
DEVINFO_KINDS: Final = ("commits", "branches", "pullRequests")
#: The most repositories in one request.
MAX_REPOSITORIES_PER_REQUEST: Final = 100
#: The most entities (commits, branches and pull requests together) in one request.
MAX_DEVINFO_ENTITIES_PER_REQUEST: Final = 1000
#: The most entities of one kind in one repository of a request.
MAX_ENTITIES_PER_KIND: Final = 400

_USN: Final = "updateSequenceId"


def _sequence(item: Mapping[str, Any]) -> int:
    value = item.get(_USN)
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


def entity_count(repository: Mapping[str, Any]) -> int:
    """How many commits, branches and pull requests ``repository`` carries."""
    return sum(len(repository.get(kind) or ()) for kind in DEVINFO_KINDS)


def _merge(repositories: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One repository object per ID, in order of first appearance.

    Its fields are those of the object with the highest ``updateSequenceId``
    (the later one on a tie); of two entities of one kind and ID, the one
    with the highest ``updateSequenceId`` is kept (the later one on a tie),
    in the place of the first.
    """
    fields: dict[object, dict[str, Any]] = {}
    entities: dict[object, dict[str, dict[object, Mapping[str, Any]]]] = {}
    for position, repository in enumerate(repositories):
        key = repository.get("id", ("no id", position))
        if not isinstance(key, str):
            key = ("no id", position)  # never merged: Jira judges it on its own
        own = {k: v for k, v in repository.items() if k not in DEVINFO_KINDS}
        if key not in fields or _sequence(own) >= _sequence(fields[key]):
            fields[key] = own
        kinds = entities.setdefault(key, {kind: {} for kind in DEVINFO_KINDS})
        for kind in DEVINFO_KINDS:
            for index, item in enumerate(repository.get(kind) or ()):
                item_key = item.get("id") if isinstance(item, Mapping) else None
                if not isinstance(item_key, str):
                    item_key = ("no id", position, index)
                held = kinds[kind].get(item_key)
                if held is None or _sequence(item) >= _sequence(held):
                    kinds[kind][item_key] = item
    merged = []
    for key, own in fields.items():
        repository = dict(own)
        for kind in DEVINFO_KINDS:
            items = [dict(item) for item in entities[key][kind].values()]
            if items:
                repository[kind] = items
        merged.append(repository)
    return merged


def devinfo_requests(repositories: Sequence[Mapping[str, Any]]) -> list[list[dict[str, Any]]]:
    """The ``repositories`` lists of the requests that carry ``repositories``, merged.

    Repository objects with the same ID are merged (entities concatenated;
    of the entities of one kind and ID the one with the highest
    ``updateSequenceId`` is kept; the repository's fields come from the
    object with the highest ``updateSequenceId``), then split into request
    bodies within the contract: at most 100 repositories and 1,000 entities
    per request, at most 400 commits, 400 branches and 400 pull requests per
    repository. Each repository goes in the first request with room for it;
    one with more than fits is split over several requests, each part
    carrying its fields and never two parts in one request. Nothing is lost
    or sent twice, and the order of each repository's entities is kept.
    """
    requests: list[list[dict[str, Any]]] = []
    rooms: list[int] = []  # how many more entities each request takes
    for repository in _merge(repositories):
        left = {kind: list(repository.get(kind, ())) for kind in DEVINFO_KINDS}
        fields = {k: v for k, v in repository.items() if k not in DEVINFO_KINDS}
        index = 0  # each part goes in a later request than the part before it
        while True:
            while index < len(requests) and (
                len(requests[index]) == MAX_REPOSITORIES_PER_REQUEST
                or (rooms[index] == 0 and entity_count(left))
            ):
                index += 1
            if index == len(requests):
                requests.append([])
                rooms.append(MAX_DEVINFO_ENTITIES_PER_REQUEST)
            part = dict(fields)
            for kind in DEVINFO_KINDS:
                taken = left[kind][: min(MAX_ENTITIES_PER_KIND, rooms[index])]
                if taken:
                    part[kind] = taken
                    left[kind] = left[kind][len(taken) :]
                    rooms[index] -= len(taken)
            requests[index].append(part)
            index += 1
            if not entity_count(left):
                break
    return requests


def split_in_two(
    repositories: Sequence[Mapping[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
    """Two requests' worth of ``repositories``, for a request that Jira found too large (413).

    Several repositories are split between the two; a single one has its
    entities split (each half carries its fields). None when there is only
    one repository with at most one entity: it cannot be made smaller.
    """
    items = [dict(r) for r in repositories]
    if len(items) > 1:
        middle = len(items) // 2
        return items[:middle], items[middle:]
    if not items or entity_count(items[0]) < 2:
        return None
    [repository] = items
    fields = {k: v for k, v in repository.items() if k not in DEVINFO_KINDS}
    pairs = [(kind, item) for kind in DEVINFO_KINDS for item in repository.get(kind) or ()]
    middle = len(pairs) // 2
    halves = []
    for chosen in (pairs[:middle], pairs[middle:]):
        half = dict(fields)
        for kind, item in chosen:
            half.setdefault(kind, []).append(item)
        halves.append([half])
    return halves[0], halves[1]
