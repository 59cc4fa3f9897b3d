"""``JiraBuildReporter``: Buildbot builds to Jira's builds API.

A build is sent as ``in_progress`` when it starts and with its final state
when it ends; while it runs, finished steps keep its test counts current,
at most once per ``test_update_interval`` (:class:`RunningBuilds` keeps
track). Nothing here waits for Jira: updates go to the outbox.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from buildbot_jira.events import BuildEvent, JiraEventGenerator
from buildbot_jira.jira.model import BuildData, TestInfo
from buildbot_jira.mapping.builds import BuildSnapshot, Skip, build_test_info
from buildbot_jira.options import BuildReporterOptions, ReporterOptions, parse_build_reporter
from buildbot_jira.reporter_base import JiraReporterBase, RecentIds

__all__ = ["JiraBuildReporter", "RunningBuilds"]

log = Logger()


class RunningBuilds:
    """What the build reporter remembers of builds between events.

    Which builds have finished (a late step event must not undo a final
    state), when each running build was last sent with which test counts,
    and the test-count updates that wait for their interval to pass.
    """

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self._finished = RecentIds()
        self._sent: dict[int, tuple[float, TestInfo | None]] = {}
        self._timers: dict[int, IDelayedCall] = {}

    def finished(self, buildid: int) -> bool:
        """Whether the build has finished (as far as the last 10 000 builds go)."""
        return buildid in self._finished

    def reported(self, buildid: int) -> bool:
        """Whether the build runs and was sent: only its steps are worth reading it for."""
        return buildid in self._sent

    def finish(self, buildid: int) -> None:
        """The build has finished: forget its counts, cancel its pending update."""
        self._finished.add(buildid)
        self._sent.pop(buildid, None)
        self._cancel(self._timers.pop(buildid, None))

    def sent(self, buildid: int, counts: TestInfo | None) -> None:
        """The running build was sent now, with ``counts``."""
        self._sent[buildid] = (self._clock.seconds(), counts)

    def schedule(
        self, snapshot: BuildSnapshot, interval: float, update: Callable[[], None]
    ) -> None:
        """Call ``update`` once ``interval`` has passed since the build was last sent.

        Nothing happens for a build that was never sent (it names no issue),
        whose counts are those sent, or whose update already waits.
        """
        buildid = snapshot.buildid
        last = self._sent.get(buildid)
        if last is None or self.finished(buildid) or buildid in self._timers:
            return
        sent_at, sent_counts = last
        if build_test_info(snapshot) == sent_counts:
            return

        def run() -> None:
            self._timers.pop(buildid, None)
            update()

        delay = max(0.0, sent_at + interval - self._clock.seconds())
        self._timers[buildid] = self._clock.callLater(delay, run)

    def cancel_all(self) -> None:
        """Cancel every pending update."""
        for timer in self._timers.values():
            self._cancel(timer)
        self._timers.clear()

    @staticmethod
    def _cancel(timer: IDelayedCall | None) -> None:
        if timer is not None and timer.active():
            timer.cancel()


class JiraBuildReporter(JiraReporterBase):
    """Reports every build that names a Jira issue to Jira's builds API.

    A build is sent as ``in_progress`` when it starts and with its final
    state when it ends; finished steps keep the running build's test counts
    current. See the README for every argument.
    """

    options: BuildReporterOptions | None = None
    _builds: RunningBuilds | None = None

    @classmethod
    def parse_options(
        cls,
        site: object = None,
        client_id: object = None,
        client_secret: object = None,
        **arguments: Any,
    ) -> BuildReporterOptions:
        """Check every argument of the build reporter."""
        return parse_build_reporter(site, client_id, client_secret, **arguments)

    def generator(self, options: ReporterOptions) -> JiraEventGenerator:
        """Build new and finished, and finished steps (for the test counts).

        A step event leads to reads only when its build was sent and still
        runs: the steps of builds that name no issue, or of other masters,
        builders and branches, cost nothing.
        """

        def wanted(event: str, step: dict[str, Any]) -> bool:
            return self._builds is not None and self._builds.reported(step["buildid"])

        return JiraEventGenerator(
            builders=options.builders,
            branches=options.branches,
            step_events=("finished",),
            step_filter=wanted,
            mapping=options.mapping,
            # A finished step can change the counts: its event reads the test
            # results alone; the update it may lead to reads the rest afresh.
            step_properties=False,
        )

    async def apply_options(self, options: ReporterOptions) -> None:
        """Use ``options``; the memory of running builds outlives a reconfig."""
        if self._builds is None:
            self._builds = RunningBuilds(self.master.reactor)
        await super().apply_options(options)

    def stopService(self) -> defer.Deferred[None]:
        """Stop, then cancel pending test-count updates (late step events start none)."""

        def cancel_updates(result: object) -> object:
            if self._builds is not None:
                self._builds.cancel_all()
            return result

        return super().stopService().addBoth(cancel_updates)

    async def report(self, event: BuildEvent) -> None:
        """Send the build's state for a build or step event."""
        assert self._builds is not None
        snapshot = event.snapshot
        if event.kind == "steps":
            self._step_finished(snapshot)
            return
        if event.event == "finished":
            self._builds.finish(snapshot.buildid)
        await self.send_build(snapshot)

    async def send_build(self, snapshot: BuildSnapshot) -> None:
        """Map the build as it is now and queue it."""
        assert self.options is not None
        assert self._builds is not None
        if not snapshot.complete and self._builds.finished(snapshot.buildid):
            return  # a late step event must never undo a final state
        keys = self.issue_keys(snapshot)
        if not snapshot.complete and keys:
            self._show_keys(snapshot, keys)
        fields = await self.common_fields(snapshot)
        data = self.options.mapping.build_data(snapshot, keys=keys, **fields)
        if isinstance(data, Skip) and snapshot.complete and self.outbox is not None:
            # No final state goes (its result is not reported): the build is
            # no longer open, and nobody must end it for it later. The key
            # is BuildData.key's.
            self.outbox.close("builds", f"{fields['pipeline_id']}#{snapshot.number}")
        queued = self.queue("builds", data, f"{snapshot.builder_name} #{snapshot.number}")
        if queued and not snapshot.complete:
            assert isinstance(data, BuildData)
            self._builds.sent(snapshot.buildid, data.test_info)

    def _show_keys(self, snapshot: BuildSnapshot, keys: tuple[str, ...]) -> None:
        """Set the keys as a property of the running build, for the web UI and later steps."""
        assert self.options is not None
        name = self.options.mapping.issue_keys_property
        if name in snapshot.properties:
            return
        builder = self.master.botmaster.builders.get(snapshot.builder_name)
        for build in getattr(builder, "building", ()):
            if getattr(build, "buildid", None) == snapshot.buildid:
                build.setProperty(name, list(keys), self.name)

    def _step_finished(self, snapshot: BuildSnapshot) -> None:
        """Keep a running build's test counts current, at most once per interval."""
        assert self.options is not None
        assert self._builds is not None
        if not self.running or snapshot.complete:
            return

        def update() -> None:
            defer.Deferred.fromCoroutine(self._refresh(snapshot)).addErrback(
                lambda failure: log.failure(
                    "{reporter}: test count update failed", failure, reporter=self.name
                )
            )

        self._builds.schedule(snapshot, self.options.test_update_interval, update)

    async def _refresh(self, snapshot: BuildSnapshot) -> None:
        # Read the build again: more steps may have finished while we waited.
        if self.events is None:
            return
        fresh = await self.events.running_snapshot(self.master, snapshot.buildid)
        if fresh is not None:
            await self.send_build(fresh)
