"""What a generator remembers of the builds it reports, and how it picks them.

:mod:`buildbot_jira.events` reads a build once, on its first event, and
keeps what cannot change while it runs here until it finishes; builders
and branches are picked with :func:`matches_any`. :class:`RecentIds` is the
reporters' bounded memory of what they have seen.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Hashable
from typing import Any

import attrs

from buildbot_jira.jira.model import TestInfo
from buildbot_jira.mapping.builds import BuildSnapshot

__all__ = ["DEFAULT_CACHE_SIZE", "BuildCache", "KnownBuild", "RecentIds", "matches_any"]

#: How many builds a generator remembers: far more than run at once.
DEFAULT_CACHE_SIZE = 1000


@attrs.define
class KnownBuild:
    """What a generator remembers of one build between its events.

    ``base``: what cannot change while it runs (no properties, its
    ``source_keys``), or None for a build not reported (another master's,
    builder or branch). ``properties`` and ``test_counts``: as last read;
    ``all_test_results``: whether those cover every step that has run.
    """

    base: BuildSnapshot | None
    properties: dict[str, Any] = attrs.field(factory=dict)
    test_counts: TestInfo | None = None
    all_test_results: bool = False


class BuildCache:
    """The builds a generator knows, at most ``size``; the least recently used go first.

    A build is added on its first event and dropped when it finishes; the
    bound holds builds whose "finished" event never comes. A build that was
    dropped is read again on its next event.
    """

    def __init__(self, size: int = DEFAULT_CACHE_SIZE) -> None:
        self.size = size
        self._builds: dict[int, KnownBuild] = {}

    def __len__(self) -> int:
        return len(self._builds)

    def get(self, buildid: int) -> KnownBuild | None:
        """What is known of the build, or None; a build asked for is kept longest."""
        known = self._builds.pop(buildid, None)
        if known is not None:
            self._builds[buildid] = known
        return known

    def put(self, buildid: int, known: KnownBuild) -> None:
        """Remember ``known``, forgetting the least recently used beyond ``size``."""
        self._builds.pop(buildid, None)
        self._builds[buildid] = known
        while len(self._builds) > self.size:
            del self._builds[next(iter(self._builds))]

    def drop(self, buildid: int) -> None:
        """Forget the build (it has finished)."""
        self._builds.pop(buildid, None)


def matches_any(value: str | None, choices: Collection[str | re.Pattern[str]] | None) -> bool:
    """Whether ``value`` is one of ``choices`` (strings match whole, patterns search)."""
    if choices is None:
        return True
    if value is None:
        return False
    for choice in choices:
        if isinstance(choice, re.Pattern):
            if choice.search(value):
                return True
        elif choice == value:
            return True
    return False


class RecentIds:
    """The ids (or other hashable values) most recently added, at most ``size`` of them.

    The oldest go first.
    """

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._ids: dict[Hashable, None] = {}

    def __contains__(self, identifier: object) -> bool:
        return identifier in self._ids

    def add(self, identifier: Hashable) -> None:
        """Remember ``identifier``, forgetting the oldest beyond ``size``."""
        self._ids[identifier] = None
        while len(self._ids) > self._size:
            del self._ids[next(iter(self._ids))]
