"""``JiraDevInfoReporter``: Buildbot's changes, to Jira's development information API.

Buildbot's change sources (``GitPoller``, ``HgPoller``, ``SVNPoller``,
``GerritChangeSource``, the change hooks...) see every commit of servers
that Jira Cloud cannot reach. This reporter sends each change's commit, its
branch (when the branch name names an issue) and its pull request or
review (when the change source tells of one) to Jira's development panel,
through the durable outbox.

One master of a cluster sends them: the one that holds the reporter's job
(:mod:`~buildbot_jira.change_feed`). It reads the changes in change ID
order from where the job stands, so that a change made while no master
held the job, or while this one was down, is still sent; each entity's
``updateSequenceId`` is its change's ID, so a change sent twice (by a
holder that died between saving its work and moving the job on) is sent
with the same numbers, and Jira keeps one. What a change becomes is pure:
:mod:`~buildbot_jira.mapping.devinfo`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from twisted.internet import defer, task
from twisted.logger import Logger

from buildbot_jira.change_feed import ChangeFeed, Gaps
from buildbot_jira.connection import JiraConnection
from buildbot_jira.credentials import UnrenderedCredential
from buildbot_jira.delivery.client import DeliveryClient, DevinfoDelivery
from buildbot_jira.delivery.outbox import Update
from buildbot_jira.devinfo_options import (
    UPDATES_PER_CHANGE,
    DevinfoReporterOptions,
    parse_devinfo_reporter,
    rendered_template,
)
from buildbot_jira.events import JiraEventGenerator
from buildbot_jira.mapping.builds import Skip
from buildbot_jira.mapping.devinfo import ChangeFacts, DevinfoMapping, map_change
from buildbot_jira.options import ReporterOptions
from buildbot_jira.reporter_base import JiraReporterBase

__all__ = ["CHANGES_PER_READ", "CLAIM_INTERVAL", "JiraDevInfoReporter"]

log = Logger()

#: Seconds between two attempts of a master that does not hold the job to take it.
CLAIM_INTERVAL = 30.0
#: Changes read at a time; the job moves on after each read.
CHANGES_PER_READ = 100


class JiraDevInfoReporter(JiraReporterBase):
    """Reports the commits, branches and reviews of Buildbot's changes to Jira.

    See the README for every argument. It takes no build events: it reads
    the changes themselves, on the master that holds its job.
    """

    options: DevinfoReporterOptions | None = None
    _feed: ChangeFeed | None = None
    _changes: Any = None  # the subscription to new changes
    _masters: Any = None  # the subscription to masters that start and stop
    _poll: task.LoopingCall | None = None
    _draining: defer.Deferred[None] | None = None
    _again = False
    _retry: Any = None  # the delayed call: read again past a gap, or give the job up again
    _gaps: Gaps | None = None
    _following: defer.Deferred[None] | None = None
    _gave_up = False  # whether an idle reporter has given its job up
    _stopping = False

    @classmethod
    def parse_options(
        cls,
        site: object = None,
        client_id: object = None,
        client_secret: object = None,
        **arguments: Any,
    ) -> DevinfoReporterOptions:
        """Check every argument of the development information reporter."""
        return parse_devinfo_reporter(site, client_id, client_secret, **arguments)

    def generator(self, options: ReporterOptions) -> JiraEventGenerator | None:
        """None: the reporter reads changes, not build events."""
        return None

    def delivery_client(
        self, connection: JiraConnection, options: ReporterOptions
    ) -> DeliveryClient:
        """The connection's client, asked to prevent transitions if the options say so."""
        assert isinstance(options, DevinfoReporterOptions)
        return DevinfoDelivery(connection.client, prevent_transitions=options.prevent_transitions)

    def interrupted_state(self) -> str | None:
        """None: development information has no state that a master's end could interrupt."""
        return None

    # -- life cycle -------------------------------------------------------------

    async def start_delivery(self) -> None:
        """Start the outbox, then take part in the job: claim it, follow new changes.

        A database that fails here is logged, and the poll tries again: the
        master starts, and its builds are reported, in any case.
        """
        await super().start_delivery()
        if self._stopping or self._poll is not None:
            return  # stopped while the outbox started
        self._poll = task.LoopingCall(self._tick)
        self._poll.clock = self.master.reactor
        self._poll.start(CLAIM_INTERVAL, now=False)
        await self._tick()

    def _tick(self) -> defer.Deferred[None]:
        """The poll: follow changes if that failed so far, then read what is new.

        The poll waits for the Deferred: one attempt to follow at a time.
        """
        if self._masters is not None:
            self.drain_soon()
        elif self._following is None:
            following = defer.Deferred.fromCoroutine(self._follow())
            if not following.called:
                self._following = following
            return following
        return self._following or defer.succeed(None)

    async def _follow(self) -> None:
        """Find the job, note where it starts, subscribe to new changes and masters."""
        try:
            if self._feed is None:
                self._feed = await self._new_feed()
            await self._feed.note_start()
            if self._changes is None:
                self._changes = await self.master.mq.startConsuming(
                    self._new_change, ("changes", None, "new")
                )
            # A master takes the job once it is active (Buildbot says so after the
            # services start), and may take it when another master stops.
            self._masters = await self.master.mq.startConsuming(
                self._master_event, ("masters", None, None)
            )
            self.drain_soon()
        except Exception:  # noqa: BLE001 - the master must start; the poll tries again
            log.failure(
                "{reporter}: could not start following changes; trying again in {interval} s",
                reporter=self.name,
                interval=CLAIM_INTERVAL,
            )
        finally:
            self._following = None

    async def _new_feed(self) -> ChangeFeed:
        objectid = await self.master.db.state.getObjectId(
            self.name, f"buildbot_jira.{type(self).__name__}"
        )
        return ChangeFeed(master=self.master, objectid=objectid)

    async def stay_idle(self, options: ReporterOptions, problem: UnrenderedCredential) -> None:
        """Idle: send nothing, and leave the job to another master."""
        await super().stay_idle(options, problem)
        await self._give_up_job()

    async def _give_up_job(self) -> None:
        try:
            if self._feed is None:
                self._feed = await self._new_feed()
            # Whatever this master knows: after a restart, the job may name it still.
            await self._feed.release(force=True)
            self._gave_up = True
        except Exception:  # noqa: BLE001 - the job then waits for this master's stop
            log.failure("{reporter}: could not give up its job", reporter=self.name)
            if self.idle_reason is not None and not self._stopping:
                self._retry = self.master.reactor.callLater(CLAIM_INTERVAL, self._idle_again)

    def _idle_again(self) -> None:
        if self.idle_reason is not None and not self._gave_up and not self._stopping:
            defer.Deferred.fromCoroutine(self._give_up_job())

    async def apply_options(self, options: ReporterOptions) -> None:
        """Use ``options``; a reporter no longer idle reads the changes at once."""
        await super().apply_options(options)
        if self.idle_reason is None:
            self.drain_soon()

    def stopService(self) -> defer.Deferred[None]:
        """Stop following changes, finish the read under way, give the job up, stop."""

        async def stop() -> None:
            self._stopping = True
            poll, self._poll = self._poll, None
            if poll is not None and poll.running:
                poll.stop()
            if self._following is not None:
                await self._following
            for consumer in (self._changes, self._masters):
                if consumer is not None:
                    consumer.stopConsuming()
            self._changes = self._masters = None
            self._again = False
            if self._draining is not None:
                await self._draining
            retry, self._retry = self._retry, None
            if retry is not None and retry.active():
                retry.cancel()
            if self._feed is not None:
                try:
                    await self._feed.release()
                except Exception:  # noqa: BLE001 - the job then waits for this master's expiry
                    log.failure("{reporter}: could not give up its job", reporter=self.name)
            await super(JiraDevInfoReporter, self).stopService()

        return defer.Deferred.fromCoroutine(stop())

    # -- following changes --------------------------------------------------------

    def _new_change(self, key: tuple[str, ...], message: Mapping[str, Any]) -> None:
        self.drain_soon()

    def _master_event(self, key: tuple[str, ...], message: Mapping[str, Any]) -> None:
        # This master has started (it is active now), or another has stopped.
        if key[-1] == "stopped" or message.get("masterid") == self.master.masterid:
            self.drain_soon()

    def drain_soon(self) -> None:
        """Send the changes after the job's position, now or once the read under way ends."""
        if self._changes is None:
            return
        if self._draining is not None:
            self._again = True
            return
        draining = defer.Deferred.fromCoroutine(self._drain_all())
        if not draining.called:
            self._draining = draining

    @property
    def idle(self) -> bool:
        """Whether no read of changes runs or waits to (for tests)."""
        return self._draining is None

    async def _drain_all(self) -> None:
        try:
            while True:
                self._again = False
                try:
                    await self._drain()
                except Exception:  # noqa: BLE001 - the next change or poll tries again
                    log.failure("{reporter}: could not read new changes", reporter=self.name)
                if not self._again or self._changes is None:
                    return
        finally:
            self._draining = None

    async def _drain(self) -> None:
        feed, outbox = self._feed, self.outbox
        if feed is None or outbox is None or self.options is None:
            return
        if self.idle_reason is not None:
            # Idle since a reconfig: another master may send the changes meanwhile.
            if not self._gave_up:
                await self._give_up_job()
            return
        held = feed.held
        # Asked at every read: a master that was taken for dead has lost the job.
        if not await feed.claim():
            if held:
                self._lost()
            return
        if self.idle_reason is not None:  # gone idle at a reconfig during the claim
            await self._give_up_job()
            return
        self._gave_up = False
        if not held:
            log.info("{reporter}: this master now sends the changes", reporter=self.name)
        if self._gaps is None:
            self._gaps = Gaps()
        while self._changes is not None and self.idle_reason is None:
            # Back-pressure: no more changes than the outbox has room for.
            room = min(CHANGES_PER_READ, (outbox.cap - len(outbox)) // UPDATES_PER_CHANGE)
            if room <= 0:
                self.log_debug("the outbox is full; new changes wait for Jira to take some")
                return
            position = await feed.position()
            ids = await feed.change_ids_after(position, room)
            usable, wait = self._gaps.usable(position, ids, self.master.reactor.seconds())
            if wait is not None:
                self._read_again_in(wait)
            if not usable:
                return
            dropped = outbox.dropped
            handled = position
            for changeid in usable:
                if not await self._send_change(changeid):
                    break
                handled = changeid
            # Saved before the job moves on: a master that dies now loses nothing.
            saved = await outbox.flush()
            if outbox.dropped != dropped or not saved:
                # What was lost or is unsaved is made again from the changes at the next read.
                log.warn(
                    "{reporter}: the outbox could not keep changes {first} to {last}; "
                    "they are read again later",
                    reporter=self.name,
                    first=usable[0],
                    last=usable[-1],
                )
                return
            if handled == position:
                return
            if not await feed.advance(handled):
                self._lost()
                return
            if handled != usable[-1] or wait is not None or len(ids) < room:
                return

    def _lost(self) -> None:
        log.info("{reporter}: another master sends the changes from now on", reporter=self.name)

    def _read_again_in(self, seconds: float) -> None:
        """Read once more after ``seconds``: a gap in the change IDs may be passed over then."""
        if self._changes is None or (self._retry is not None and self._retry.active()):
            return
        self._retry = self.master.reactor.callLater(seconds, self.drain_soon)

    async def _send_change(self, changeid: int) -> bool:
        """Queue what change ``changeid`` becomes; False if it could not be read.

        A change that cannot be mapped is logged and passed over: one odd
        change must not hold the others back. One that cannot be read (the
        database failed) stops the read, and the next read tries it again.
        """
        assert self._feed is not None
        try:
            change = await self._feed.read_change(changeid)
        except Exception:  # noqa: BLE001 - read again from this change next time
            log.failure(
                "{reporter}: could not read change {changeid}; trying again later",
                reporter=self.name,
                changeid=changeid,
            )
            return False
        if change is None:
            return True
        try:
            await self.report_change(ChangeFacts.from_change(change))
        except Exception:  # noqa: BLE001 - one odd change must not hold the others back
            log.failure(
                "{reporter}: could not report change {changeid} to Jira",
                reporter=self.name,
                changeid=changeid,
            )
        return True

    async def report_change(self, change: ChangeFacts) -> int:
        """Queue the commit, branch and review of ``change``; how many entities."""
        assert self.options is not None
        assert self.outbox is not None
        reason = self.options.wants(change)
        if reason is not None:
            self.log_debug("change {id} is not sent: {reason}", id=change.changeid, reason=reason)
            return 0
        mapping = DevinfoMapping(
            rules=self.options.mapping.rules,
            keys_from_branch=self.options.keys_from_branch,
            commit_url=await rendered_template(self.options, "commit_url", change, self.master),
            branch_url=await rendered_template(self.options, "branch_url", change, self.master),
            repository_url=await rendered_template(
                self.options, "repository_url", change, self.master
            ),
        )
        entities = map_change(change, mapping, change_page=self.change_page(change.changeid))
        if isinstance(entities, Skip):
            self.log_debug(
                "change {id} is not sent: {reason}", id=change.changeid, reason=entities.reason
            )
            return 0
        context = f"change {change.changeid} ({(change.revision or '')[:12]})"
        for entity in entities:
            self.outbox.put(
                Update(
                    entity="devinfo",
                    key=entity.key,
                    payload=entity.payload,
                    sequence=entity.sequence,
                    final=True,
                    context=context,
                )
            )
        return len(entities)

    def change_page(self, changeid: int) -> str | None:
        """The change's page in Buildbot's web UI."""
        url = self.master.config.buildbotURL
        return f"{url.rstrip('/')}/#/changes/{changeid}" if url else None
