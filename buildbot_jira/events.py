"""Which Buildbot events a Jira reporter reports, and what it reads of each build.

A generator subscribes to build (and optionally step) events, drops those of
other masters, builders and branches, and gathers what Buildbot knows of the
build into a :class:`~buildbot_jira.mapping.builds.BuildSnapshot`. This is the
only module that reads the master's data.

What cannot change while a build runs (builder, sourcestamps, changes, the
issue keys in them) is read once, on its first event, and kept in a
:class:`BuildCache` until it finishes; later events read what can change
(properties; test results once a step that may have recorded some has
finished). Changes are read per sourcestamp: Buildbot's
``('builds', id, 'changes')`` walks back through the builder's history to
the last successful build on the branch, a cost that grows with every build
when each build has a branch of its own. A sourcestamp with no change (a
forced build of a revision, or a rebuild of one) takes the change records
Buildbot has of its revision on its repository, branch and codebase.

:func:`read_change_records` reads the change records a deployment ships
(:mod:`buildbot_jira.mapping.deployed_issues` says which).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from typing import Any

import attrs
import sqlalchemy as sa
from buildbot.process.results import SKIPPED
from buildbot.reporters import utils as reporter_utils
from twisted.internet import defer

from buildbot_jira.build_cache import DEFAULT_CACHE_SIZE, BuildCache, KnownBuild, matches_any
from buildbot_jira.jira.model import TestInfo
from buildbot_jira.mapping.builds import BuildMapping, BuildSnapshot, SourceStamp, epoch
from buildbot_jira.mapping.deployed_issues import ChangeRecord

__all__ = [
    "DEFAULT_CACHE_SIZE",
    "REVISION_CHANGES",
    "BuildCache",
    "BuildEvent",
    "JiraEventGenerator",
    "KnownBuild",
    "matches_any",
    "read_change_records",
]

#: The most change records of one revision read for a sourcestamp without a
#: change (a revision pushed to several branches has one per push).
REVISION_CHANGES = 5


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


class JiraEventGenerator:
    """Picks the build and step events that a Jira reporter reports.

    :param builders: builder names (or compiled patterns) to report; None: all.
    :param branches: branch names (or compiled patterns); a build is reported
        when any of its sourcestamps is on one of them. None: all.
    :param step_events: the step events wanted too (``"updated"``, ``"finished"``).
    :param step_filter: which step events are worth reading the build for
        (called with the event and the step's data); None: all.
    :param mapping: how the issue keys of a build's branches and commit
        messages are found (once per build, when it is first read).
    :param test_results: whether snapshots carry test counts (a finished
        step reads them again).
    :param step_properties: whether step events read the properties again
        (else their snapshots carry the properties as last read).
    :param cache: the builds remembered between their events.
    """

    def __init__(
        self,
        *,
        builders: Collection[str | re.Pattern[str]] | None = None,
        branches: Collection[str | re.Pattern[str]] | None = None,
        step_events: Sequence[str] = (),
        step_filter: Callable[[str, dict[str, Any]], bool] | None = None,
        mapping: BuildMapping | None = None,
        test_results: bool = True,
        step_properties: bool = True,
        cache: BuildCache | None = None,
    ) -> None:
        self.builders = builders
        self.branches = branches
        self.step_filter = step_filter
        self.mapping = mapping or BuildMapping()
        self.test_results = test_results
        self.step_properties = step_properties
        self.builds = cache if cache is not None else BuildCache()
        self.wanted_event_keys = [("builds", None, "new"), ("builds", None, "finished")]
        self.wanted_event_keys += [("steps", None, event) for event in step_events]
        # A builder ID always names the same builder (and there are few): read each once.
        self._builder_names: dict[int, str] = {}
        # Events that need a build being read wait for that read, not a second one.
        self._reading: dict[int, list[defer.Deferred[KnownBuild]]] = {}

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
        if kind == "steps":
            if self.step_filter is not None and not self.step_filter(event, message):
                return None
            snapshot = await self._step_snapshot(master, message)
            if snapshot is None:
                return None
            return BuildEvent(kind=kind, event=event, snapshot=snapshot, step=message)
        try:
            snapshot = await self._build_snapshot(master, message, final=event == "finished")
        finally:
            if event == "finished":
                self.builds.drop(message["buildid"])
        if snapshot is None:
            return None
        return BuildEvent(kind=kind, event=event, snapshot=snapshot)

    async def running_snapshot(self, master: Any, buildid: int) -> BuildSnapshot | None:
        """A running build's snapshot as it is now; None once it has finished (or is gone)."""
        build = await master.data.get(("builds", buildid))
        if build is None or build.get("complete"):
            return None
        known, just_read = await self._known(master, build)
        if known.base is None:
            return None
        if self.test_results and not known.all_test_results:
            await self._read_build_test_results(master, known)
        return await self._snapshot(master, known, build, read_properties=not just_read)

    async def _build_snapshot(
        self, master: Any, build: dict[str, Any], *, final: bool
    ) -> BuildSnapshot | None:
        # Every master sees every event; report only the builds this one runs.
        if build.get("masterid") != master.masterid:
            self.builds.put(build["buildid"], KnownBuild(base=None))
            return None
        known, just_read = await self._known(master, build, new=not final)
        if known.base is None:
            return None
        # A build's results are all there when it finishes; a new one has none.
        if final and self.test_results:
            await self._read_build_test_results(master, known)
        return await self._snapshot(master, known, build, read_properties=not just_read)

    async def _step_snapshot(self, master: Any, step: dict[str, Any]) -> BuildSnapshot | None:
        buildid = step["buildid"]
        known = self.builds.get(buildid)
        if known is None:
            build = await master.data.get(("builds", buildid))
            if build is None or build.get("masterid") != master.masterid:
                self.builds.put(buildid, KnownBuild(base=None))
                return None
            known, just_read = await self._known(master, build)
        else:
            just_read = False
        if known.base is None:
            return None
        # The test results of the build (not of this step alone) are read, so
        # that a step whose event came before the build was known still counts.
        if self.test_results and (not known.all_test_results or _may_record_tests(step)):
            await self._read_build_test_results(master, known)
        # The build as it started: a step event tells nothing else of it.
        read = self.step_properties and not just_read
        return await self._snapshot(master, known, None, read_properties=read)

    async def _snapshot(
        self,
        master: Any,
        known: KnownBuild,
        build: dict[str, Any] | None,
        *,
        read_properties: bool,
    ) -> BuildSnapshot:
        """The build now: what is known of it (properties read again, if asked) and state."""
        assert known.base is not None
        if read_properties:  # they can change at any time
            known.properties = await _read_properties(master, known.base.buildid)
        snapshot = attrs.evolve(
            known.base, properties=known.properties, test_counts=known.test_counts
        )
        if build is None:
            return snapshot
        return attrs.evolve(snapshot, **_build_state(build))

    async def _known(
        self, master: Any, build: dict[str, Any], *, new: bool = False
    ) -> tuple[KnownBuild, bool]:
        """What is known of ``build``, and whether it was just read for this event.

        From the cache, or read once however many ask. ``new``: ``build``
        comes from its "new" event, so it has no test results yet.
        """
        buildid = build["buildid"]
        known = self.builds.get(buildid)
        if known is not None:
            return known, False
        waiting = self._reading.get(buildid)
        if waiting is not None:
            waiter: defer.Deferred[KnownBuild] = defer.Deferred()
            waiting.append(waiter)
            return await waiter, False
        self._reading[buildid] = []
        try:
            known = await self._read_known(master, build)
        except Exception:
            for waiter in self._reading.pop(buildid):
                waiter.errback()
            raise
        known.all_test_results = new
        self.builds.put(buildid, known)
        for waiter in self._reading.pop(buildid):
            waiter.callback(known)
        return known, True

    async def _read_known(self, master: Any, build: dict[str, Any]) -> KnownBuild:
        """Read what cannot change while ``build`` runs, and find the keys in it."""
        builder_name = await self._builder_name(master, build["builderid"])
        if not matches_any(builder_name, self.builders):
            return KnownBuild(base=None)
        buildrequest = await master.data.get(("buildrequests", build["buildrequestid"]))
        buildset = None
        if buildrequest is not None:
            buildset = await master.data.get(("buildsets", buildrequest["buildsetid"]))
        stamps = (buildset or {}).get("sourcestamps") or ()
        sourcestamps = tuple(
            SourceStamp(
                codebase=ss.get("codebase") or "",
                repository=ss.get("repository") or "",
                branch=ss.get("branch"),
                revision=ss.get("revision"),
            )
            for ss in stamps
        )
        if self.branches is not None and not any(
            matches_any(ss.branch, self.branches) for ss in sourcestamps
        ):
            return KnownBuild(base=None)
        comments: list[str] = []
        for ss, stamp in zip(stamps, sourcestamps, strict=True):
            # The change each sourcestamp carries: the push or pull request
            # that triggered the build, one read per codebase. A rebuild
            # shares its original's sourcestamps, so their changes too.
            changes = await master.data.get(("sourcestamps", ss["ssid"], "changes")) or ()
            comments.extend(change.get("comments") or "" for change in changes)
            if not changes and stamp.revision:
                # A forced build names a revision and carries no change.
                records = await read_change_records(
                    master, stamp, revision=stamp.revision, limit=REVISION_CHANGES
                )
                comments.extend(record.comments for record in records)
        properties = await _read_properties(master, build["buildid"])
        base = BuildSnapshot(
            buildid=build["buildid"],
            number=build["number"],
            builderid=build["builderid"],
            builder_name=builder_name,
            masterid=build["masterid"],
            url=reporter_utils.getURLForBuild(master, build["builderid"], build["number"]),
            properties=properties,
            sourcestamps=sourcestamps,
            change_comments=tuple(comments),
            **_build_state(build),
        )
        # The commit messages are searched now, once, and not kept: a build of
        # many huge commits must not hold them in memory while it runs.
        keys = self.mapping.source_keys(base)
        return KnownBuild(
            base=attrs.evolve(base, properties={}, change_comments=(), source_keys=keys),
            properties=properties,
        )

    async def _builder_name(self, master: Any, builderid: int) -> str:
        name = self._builder_names.get(builderid)
        if name is None:
            builder = await master.data.get(("builders", builderid))
            name = builder["name"] if builder else str(builderid)
            self._builder_names[builderid] = name
        return name

    async def _read_build_test_results(self, master: Any, known: KnownBuild) -> None:
        assert known.base is not None
        path = ("builds", known.base.buildid, "test_result_sets")
        known.test_counts = _test_counts(await master.data.get(path) or [])
        known.all_test_results = True


async def read_change_records(
    master: Any,
    stamp: SourceStamp,
    *,
    revision: str | None = None,
    after: int | None = None,
    upto: int | None = None,
    limit: int,
) -> list[ChangeRecord]:
    """Buildbot's change records on ``stamp``'s repository, branch and codebase, newest first.

    Only those of ``revision`` (if given), after change ``after`` and up to
    ``upto`` (if given), at most ``limit``. An empty repository (a forced
    build whose form leaves it blank) matches any. One query that reads
    three columns: the data API would read each change's files, properties
    and sourcestamp too.
    """

    def select(connection: Any) -> list[ChangeRecord]:
        table = master.db.model.changes
        query = sa.select(table.c.changeid, table.c.revision, table.c.comments).where(
            table.c.branch == stamp.branch, table.c.codebase == stamp.codebase
        )
        if stamp.repository:
            query = query.where(table.c.repository == stamp.repository)
        if revision is not None:
            query = query.where(table.c.revision == revision)
        if after is not None:
            query = query.where(table.c.changeid > after)
        if upto is not None:
            query = query.where(table.c.changeid <= upto)
        query = query.order_by(table.c.changeid.desc()).limit(limit)
        return [
            ChangeRecord(
                changeid=row.changeid,
                revision=row.revision,
                comments=row.comments or "",
                repository=stamp.repository,
                branch=stamp.branch,
                codebase=stamp.codebase,
            )
            for row in connection.execute(query)
        ]

    records: list[ChangeRecord] = await master.db.pool.do(select)
    return records


async def _read_properties(master: Any, buildid: int) -> dict[str, Any]:
    """The build's property values (without their sources)."""
    properties = await master.data.get(("builds", buildid, "properties")) or {}
    return {name: value for name, (value, _source) in properties.items()}


def _build_state(build: dict[str, Any]) -> dict[str, Any]:
    """The fields of a snapshot that change while the build runs, from the build's data."""
    return {
        "state_string": build.get("state_string") or "",
        "results": build.get("results"),
        "complete": bool(build.get("complete")),
        "started_at": epoch(build.get("started_at")),
        "complete_at": epoch(build.get("complete_at")),
    }


def _may_record_tests(step: dict[str, Any]) -> bool:
    """Whether a finished step may have recorded test results: a skipped one never ran."""
    return step.get("results") != SKIPPED and step.get("started_at") is not None


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
