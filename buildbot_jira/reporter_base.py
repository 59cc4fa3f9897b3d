"""What the Jira reporters share: options, connection, outbox, rendering, queueing.

:class:`JiraReporterBase` is a Buildbot reporter whose ``checkConfig`` parses
the arguments and keeps nothing (Buildbot checks a configuration before it
decides to use it), and whose ``reconfigService`` parses them again into one
options value, takes a connection from the master's shared pool and points
the outbox at it. A subclass says which options it parses and how an event
becomes an update. A running reporter also adopts what its namesakes on
masters that died left (:mod:`~buildbot_jira.adoption`). A reporter whose
credentials cannot be rendered (a secret no provider holds) logs why and
stays idle, instead of failing the master.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from buildbot import config
from buildbot.process.properties import Properties
from buildbot.reporters.base import ReporterBase
from twisted.internet import defer
from twisted.logger import Logger

from buildbot_jira.adoption import MasterWatch
from buildbot_jira.build_cache import RecentIds
from buildbot_jira.connection import JiraConnection, connect
from buildbot_jira.credentials import UnrenderedCredential, render_credentials, shown_argument
from buildbot_jira.delivery.client import DeliveryClient
from buildbot_jira.delivery.database import DatabaseStore
from buildbot_jira.delivery.interrupted import interrupted_update
from buildbot_jira.delivery.outbox import Outbox, Update
from buildbot_jira.events import BuildEvent, JiraEventGenerator
from buildbot_jira.jira.errors import JiraConfigError
from buildbot_jira.jira.model import (
    BuildData,
    DeploymentData,
    EntityType,
    SequenceNumbers,
    iso_timestamp,
)
from buildbot_jira.jira.retry import RetryPolicy
from buildbot_jira.mapping.builds import BuildSnapshot, Skip, default_pipeline_id, instance_name
from buildbot_jira.options import ReporterOptions

__all__ = ["JiraReporterBase", "RecentIds", "reporter_retry"]

log = Logger()


def reporter_retry(min_backoff: float) -> RetryPolicy:
    """The client retries once, briefly; the outbox retries patiently after that."""
    return RetryPolicy(max_attempts=2, initial_delay=min(1.0, min_backoff), max_delay=10.0)


class JiraReporterBase(ReporterBase):
    """What the Jira reporters share: options, connection, outbox, rendering."""

    # What a reconfig compares (Buildbot adds ReporterBase's ``generators``, so
    # an unchanged reporter is reconfigured too: cheap, and nothing is lost).
    compare_attrs: ClassVar[tuple[str, ...]] = ("name", "_config_args", "_config_kwargs")

    # Set by reconfigService, never by checkConfig: a checked configuration
    # that Buildbot does not use must leave nothing behind.
    #: The options in use; None until the service is configured.
    options: ReporterOptions | None = None
    #: Where updates wait for delivery; None until the service is configured.
    outbox: Outbox | None = None
    #: The generator in use, which remembers the running builds; None until configured.
    events: JiraEventGenerator | None = None
    _connection: JiraConnection | None = None
    # Adopts what dead masters left, while the service runs.
    _watch: MasterWatch | None = None
    # The notes about a build's keys that were logged: each once per build.
    _noted: RecentIds | None = None
    _sequence: SequenceNumbers | None = None
    #: Why the reporter is idle (its credentials could not be rendered); None: it works.
    idle_reason: str | None = None

    def __repr__(self) -> str:
        site = self.options.site.site if self.options else "?"
        return f"<{type(self).__name__} {self.name!r} site={site!r}>"

    def getConfigDict(self) -> dict[str, Any]:
        """Buildbot shows this in its web UI: never with the client secret."""
        data: dict[str, Any] = super().getConfigDict()
        data["kwargs"] = {k: shown_argument(k, v) for k, v in data["kwargs"].items()}
        data["args"] = tuple("***" if i == 2 else v for i, v in enumerate(data["args"]))
        return data

    # -- configuration --------------------------------------------------------

    @classmethod
    def parse_options(
        cls,
        site: object = None,
        client_id: object = None,
        client_secret: object = None,
        **arguments: Any,
    ) -> ReporterOptions:
        """Check every argument; :class:`JiraConfigError` names a wrong one.

        Both ``checkConfig`` and ``reconfigService`` call this with the
        service's arguments: the options are never kept from a check.
        """
        raise NotImplementedError

    def generator(self, options: ReporterOptions) -> JiraEventGenerator | None:
        """The generator that picks this reporter's build events; None: it takes none."""
        return JiraEventGenerator(
            builders=options.builders, branches=options.branches, mapping=options.mapping
        )

    def delivery_client(
        self, connection: JiraConnection, options: ReporterOptions
    ) -> DeliveryClient:
        """What the outbox sends through: the connection's client, unless a reporter wraps it."""
        return connection.client

    def checkConfig(
        self,
        site: object = None,
        client_id: object = None,
        client_secret: object = None,
        **arguments: Any,
    ) -> None:
        """Check the arguments and keep nothing; errors name the argument."""
        try:
            options = self.parse_options(site, client_id, client_secret, **arguments)
        except JiraConfigError as problem:
            config.error(f"{type(self).__name__} {self.name!r}: {problem}")
            return
        generator = self.generator(options)
        super().checkConfig(generators=[generator] if generator else [])

    def reconfigService(
        self,
        site: object = None,
        client_id: object = None,
        client_secret: object = None,
        **arguments: Any,
    ) -> defer.Deferred[None]:
        """Parse the arguments, render the secrets, connect to the site, subscribe to events."""

        async def reconfigure() -> None:
            await self.apply_options(
                self.parse_options(site, client_id, client_secret, **arguments)
            )

        return defer.Deferred.fromCoroutine(reconfigure())

    async def apply_options(self, options: ReporterOptions) -> None:
        """Use ``options`` from now on: connection, outbox, subscriptions."""
        if self._noted is None:
            self._noted = RecentIds()
        site = await render_credentials(self.master, options.site)
        if isinstance(site, UnrenderedCredential):
            await self.stay_idle(options, site)
            return
        self.idle_reason = None
        # The new connection is taken before the old one is given back, so
        # that unchanged settings keep their client, token and cloud ID.
        connection = await connect(
            self.master, site, retry=reporter_retry(options.min_backoff), user=self.name
        )
        old, self._connection = self._connection, connection
        if self.outbox is None:
            objectid = await self.master.db.state.getObjectId(
                self.name, f"buildbot_jira.{type(self).__name__}"
            )
            self.outbox = Outbox(
                client=self.delivery_client(connection, options),
                store=DatabaseStore(
                    master=self.master, objectid=objectid, masterid=self.master.masterid
                ),
                clock=self.master.reactor,
                name=self.name,
                interrupt=self.interrupted,
            )
            self._sequence = SequenceNumbers()
        outbox = self.outbox
        outbox.client = self.delivery_client(connection, options)
        outbox.cap = options.outbox_size
        outbox.dry_run = options.dry_run
        outbox.configure(
            initial_backoff=options.min_backoff,
            max_backoff=options.max_backoff,
            grace=options.shutdown_grace,
        )
        self.options = options
        if old is not None:
            await old.release()
        # A new generator reads each running build afresh on its next event:
        # the keys it found may depend on options that have just changed.
        self.events = self.generator(options)
        await super().reconfigService(generators=[self.events] if self.events else [])
        if self.running and self._watch is None:
            # Idle when it started, configured now: deliver from now on.
            await self.start_delivery()

    async def stay_idle(self, options: ReporterOptions, problem: UnrenderedCredential) -> None:
        """Take no events, because the credentials cannot be rendered; log why.

        Buildbot's own services fail the master here: at start it does not
        come up, and after a reconfig it cannot be stopped. An outbox that
        runs already keeps delivering what it holds with the credentials it
        had; nothing new is queued.
        """
        self.idle_reason = problem.message(self.name)
        log.error("{reason}", reason=self.idle_reason)
        self.options = options
        # Kept for what asks a reporter for a build's keys (the JiraIssueKeys step).
        self.events = self.generator(options)
        await super().reconfigService(generators=[])

    # -- life cycle -------------------------------------------------------------

    def startService(self) -> defer.Deferred[None]:
        """Start the service, then the outbox (which sends what an earlier run left).

        Then what dead masters left is adopted, now and whenever Buildbot
        marks a master inactive.
        """

        async def start() -> None:
            await super(JiraReporterBase, self).startService()
            if self.outbox is not None:
                await self.start_delivery()

        return defer.Deferred.fromCoroutine(start())

    async def start_delivery(self) -> None:
        """Start the outbox and the adoption of what dead masters left."""
        assert self.outbox is not None
        await self.outbox.start()
        self._watch = MasterWatch(master=self.master, outbox=self.outbox, name=self.name)
        await self._watch.start()

    def stopService(self) -> defer.Deferred[None]:
        """Stop taking events, give requests in flight a grace period, keep the rest."""

        async def stop() -> None:
            await super(JiraReporterBase, self).stopService()
            watch, self._watch = self._watch, None
            if watch is not None:
                await watch.stop()
            if self.outbox is not None:
                await self.outbox.stop()
            if self._connection is not None:
                await self._connection.release()
                self._connection = None

        return defer.Deferred.fromCoroutine(stop())

    # -- reporting --------------------------------------------------------------

    def sendMessage(self, reports: list[BuildEvent]) -> defer.Deferred[None]:
        """Turn the generator's events into updates for the outbox; never waits for Jira."""
        return defer.Deferred.fromCoroutine(self._send_all(reports))

    async def _send_all(self, reports: list[BuildEvent]) -> None:
        for report in reports:
            try:
                await self.report(report)
            except Exception:  # noqa: BLE001 - one bad build must not stop the reporter
                log.failure(
                    "{reporter}: could not report build {build} to Jira",
                    reporter=self.name,
                    build=report.snapshot.buildid,
                )

    async def report(self, event: BuildEvent) -> None:
        """Report one event (the reporters say how)."""
        raise NotImplementedError

    def interrupted_state(self) -> str | None:
        """The state of an update whose build its master's end interrupted (None: none).

        The ``retry`` entry of ``result_states``: Buildbot finishes such builds
        with RETRY.
        """
        assert self.options is not None
        return self.options.mapping.result_states.get("retry")

    def interrupted(self, update: Update, reason: str) -> Update | None:
        """The final update of an entity whose master's run ended before it did."""
        state = self.interrupted_state()
        if state is None:
            return None
        return interrupted_update(
            update,
            state=state,
            reason=reason,
            sequence=self.next_sequence(),
            last_updated=iso_timestamp(self.now()),
        )

    def log_debug(self, text: str, **fields: Any) -> None:
        """Log ``text`` when the reporter has ``debug=True``."""
        # Buildbot's log shows every level: the argument is the switch.
        if self.options is not None and self.options.debug:
            log.info("{reporter}: " + text, reporter=self.name, **fields)

    async def render(self, renderable: Any, snapshot: BuildSnapshot) -> str | None:
        """``renderable`` rendered with the build's properties; None stays None."""
        if renderable is None:
            return None
        properties = Properties()
        for name, value in snapshot.properties.items():
            properties.setProperty(name, value, "build")
        properties.master = self.master
        rendered = await properties.render(renderable)
        return None if rendered is None else str(rendered)

    async def pipeline_id(self, snapshot: BuildSnapshot) -> str:
        """The Jira pipeline ID of the build's builder."""
        assert self.options is not None
        rendered = await self.render(self.options.pipeline_id, snapshot)
        if rendered:
            return rendered
        instance = instance_name(self.master.config.buildbotURL)
        return default_pipeline_id(instance, snapshot.builder_name)

    def now(self) -> float:
        """The master's clock."""
        return float(self.master.reactor.seconds())

    def next_sequence(self) -> int:
        """A new ``updateSequenceNumber``."""
        assert self._sequence is not None
        return self._sequence.next(self.now())

    def issue_keys(self, snapshot: BuildSnapshot) -> tuple[str, ...]:
        """The build's issue keys; what was odd about them is logged, once per build."""
        assert self.options is not None
        assert self._noted is not None
        keys = self.options.mapping.issue_keys(snapshot)
        for note in keys.notes:
            if (snapshot.buildid, note) in self._noted:
                continue
            self._noted.add((snapshot.buildid, note))
            log.warn(
                "{reporter}: build {build}: {note}",
                reporter=self.name,
                build=snapshot.url,
                note=note,
            )
        return keys.keys

    async def common_fields(self, snapshot: BuildSnapshot) -> dict[str, Any]:
        """The fields every update has: pipeline, sequence, time, rendered names."""
        assert self.options is not None
        options = self.options
        return {
            "pipeline_id": await self.pipeline_id(snapshot),
            "update_sequence_number": self.next_sequence(),
            "last_updated": iso_timestamp(self.now()),
            "display_name": await self.render(options.display_name, snapshot),
            "label": await self.render(options.label, snapshot),
        }

    def queue(
        self, entity: EntityType, data: BuildData | DeploymentData | Skip, context: str
    ) -> bool:
        """Hand ``data`` to the outbox, or log why it is not sent; whether it was queued."""
        if isinstance(data, Skip):
            self.log_debug("{what} is not sent: {reason}", what=context, reason=data.reason)
            return False
        assert self.outbox is not None
        payload = data.to_json()
        if self.options is not None and self.options.debug:
            self.log_debug("queued {payload}", payload=json.dumps(payload, sort_keys=True))
        self.outbox.put(
            Update(
                entity=entity,
                key=data.key,
                payload=payload,
                sequence=data.update_sequence_number,
                final=data.state != "in_progress",
                context=context,
            )
        )
        return True
