"""Which Buildbot events a Jira reporter reports, and what it reads of each build.

A generator subscribes to build (and optionally step) events, drops those of
other masters, builders and branches, and gathers what Buildbot knows of the
build into a :class:`~buildbot_jira.mapping.builds.BuildSnapshot`. This is the
only module that reads the master's data: the reporters get snapshots, and
read a running build again through :func:`fetch_running_snapshot`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from typing import Any

import attrs
from buildbot.reporters import utils as reporter_utils
from twisted.internet import defer

from buildbot_jira.jira.model import TestInfo
from buildbot_jira.mapping.builds import BuildSnapshot, SourceStamp, epoch

__all__ = [
    "BuildEvent",
    "JiraEventGenerator",
    "fetch_running_snapshot",
    "fetch_snapshot",
    "matches_any",
]


@attrs.frozen
class BuildEvent:
    """What a generator hands to its reporter: an event and the build it concerns.

    ``kind`` is ``"builds"`` or ``"steps"``; ``event`` is ``"new"``,
    ``"started"`` or ``"finished"``; ``step`` is the step's data for step
    events.
    """

    kind: str
    event: str
    snapshot: BuildSnapshot
    step: dict[str, Any] | None = None


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


class JiraEventGenerator:
    """Picks the build and step events that a Jira reporter reports.

    :param builders: builder names (or compiled patterns) to report; None: all.
    :param branches: branch names (or compiled patterns); a build is reported
        when any of its sourcestamps is on one of them. None: all.
    :param step_events: the step events wanted too (``"updated"``, ``"finished"``).
    :param step_filter: which step events are worth reading the build for
        (called with the event and the step's data); None: all.
    """

    def __init__(
        self,
        *,
        builders: Collection[str | re.Pattern[str]] | None = None,
        branches: Collection[str | re.Pattern[str]] | None = None,
        step_events: Sequence[str] = (),
        step_filter: Callable[[str, dict[str, Any]], bool] | None = None,
    ) -> None:
        self.builders = builders
        self.branches = branches
        self.step_filter = step_filter
        self.wanted_event_keys = [("builds", None, "new"), ("builds", None, "finished")]
        self.wanted_event_keys += [("steps", None, event) for event in step_events]

    def check(self) -> None:
        """Buildbot's hook for checking a generator's configuration (done by the reporter)."""

    def generate_name(self) -> str:
        """A name for reporters that have none."""
        return "jira"

    def generate(
        self, master: Any, reporter: Any, key: tuple[str, ...], message: dict[str, Any]
    ) -> defer.Deferred[BuildEvent | None]:
        """The :class:`BuildEvent` for an event, or None when it is not reported."""
        return defer.Deferred.fromCoroutine(self._generate(master, key, message))

    async def _generate(
        self, master: Any, key: tuple[str, ...], message: dict[str, Any]
    ) -> BuildEvent | None:
        kind, event = key[0], key[-1]
        step = None
        if kind == "steps":
            if self.step_filter is not None and not self.step_filter(event, message):
                return None
            step = message
            build = await master.data.get(("builds", message["buildid"]))
        else:
            build = message
        # Every master sees every event; report only the builds this one runs.
        if build is None or build.get("masterid") != master.masterid:
            return None
        builder = await master.data.get(("builders", build["builderid"]))
        builder_name = builder["name"] if builder else str(build["builderid"])
        if not matches_any(builder_name, self.builders):
            return None
        snapshot = await fetch_snapshot(master, build, builder_name)
        if self.branches is not None and not any(
            matches_any(ss.branch, self.branches) for ss in snapshot.sourcestamps
        ):
            return None
        return BuildEvent(kind=kind, event=event, snapshot=snapshot, step=step)


async def fetch_snapshot(master: Any, build: dict[str, Any], builder_name: str) -> BuildSnapshot:
    """Everything the mapping needs of ``build``, read from the master's data API."""
    buildid = build["buildid"]
    buildrequest = await master.data.get(("buildrequests", build["buildrequestid"]))
    buildset = await master.data.get(("buildsets", buildrequest["buildsetid"]))
    properties = await master.data.get(("builds", buildid, "properties")) or {}
    changes = await master.data.get(("builds", buildid, "changes")) or []
    result_sets = await master.data.get(("builds", buildid, "test_result_sets")) or []
    sourcestamps = tuple(
        SourceStamp(
            codebase=ss.get("codebase") or "",
            repository=ss.get("repository") or "",
            branch=ss.get("branch"),
            revision=ss.get("revision"),
        )
        for ss in (buildset or {}).get("sourcestamps") or ()
    )
    return BuildSnapshot(
        buildid=buildid,
        number=build["number"],
        builderid=build["builderid"],
        builder_name=builder_name,
        masterid=build["masterid"],
        url=reporter_utils.getURLForBuild(master, build["builderid"], build["number"]),
        state_string=build.get("state_string") or "",
        results=build.get("results"),
        complete=bool(build.get("complete")),
        started_at=epoch(build.get("started_at")),
        complete_at=epoch(build.get("complete_at")),
        properties={name: value for name, (value, _source) in properties.items()},
        sourcestamps=sourcestamps,
        change_comments=tuple(c.get("comments") or "" for c in changes),
        test_counts=_test_counts(result_sets),
    )


async def fetch_running_snapshot(
    master: Any, buildid: int, builder_name: str
) -> BuildSnapshot | None:
    """A running build's snapshot, read afresh; None once it has finished (or is gone)."""
    build = await master.data.get(("builds", buildid))
    if build is None or build.get("complete"):
        return None
    return await fetch_snapshot(master, build, builder_name)


def _test_counts(result_sets: Sequence[dict[str, Any]]) -> TestInfo | None:
    """Passed and failed counts summed over the sets that have any; None if none has."""
    counted = [
        rs
        for rs in result_sets
        if isinstance(rs.get("tests_passed"), int) or isinstance(rs.get("tests_failed"), int)
    ]
    if not counted:
        return None
    return TestInfo(
        passed=sum(max(0, rs.get("tests_passed") or 0) for rs in counted),
        failed=sum(max(0, rs.get("tests_failed") or 0) for rs in counted),
    )
