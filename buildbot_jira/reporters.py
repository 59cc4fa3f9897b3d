"""The Buildbot services that a ``master.cfg`` names to report to Jira.

Thin wiring: a generator picks the events, :mod:`buildbot_jira.mapping.builds`
turns builds into Jira data, and an :class:`~buildbot_jira.delivery.outbox.Outbox`
delivers it in the background. Nothing here waits for Jira, so nothing here
can slow a build down or fail it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from buildbot import config
from buildbot.process.properties import Properties
from buildbot.reporters.base import ReporterBase
from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger

from buildbot_jira import connection
from buildbot_jira.delivery.outbox import Outbox, StateStore, Update
from buildbot_jira.events import BuildEvent, JiraEventGenerator, fetch_snapshot
from buildbot_jira.jira.client import EntityType, RetryPolicy
from buildbot_jira.jira.errors import JiraConfigError
from buildbot_jira.jira.model import (
    BUILD_STATES,
    DEPLOYMENT_STATES,
    ENVIRONMENT_TYPES,
    BuildData,
    DeploymentData,
    SequenceNumbers,
    TestInfo,
    iso_timestamp,
)
from buildbot_jira.mapping.builds import (
    DEFAULT_RESULT_STATES,
    BuildMapping,
    BuildSnapshot,
    Skip,
    build_test_info,
    default_pipeline_id,
    instance_name,
)
from buildbot_jira.mapping.deployments import (
    DEFAULT_DEPLOYMENT_STATES,
    DeploymentMapping,
    DeploymentTarget,
    guess_environment_type,
    step_target_fields,
)
from buildbot_jira.options import (
    SHARED_ARGUMENTS,
    SiteOptions,
    check_environment_types,
    check_flag,
    check_number,
    check_pattern,
    check_renderable,
    check_result_states,
    check_text_list,
    refuse_unknown,
    take,
    take_options,
)

__all__ = ["JiraBuildReporter", "JiraDeploymentReporter", "JiraReporterBase"]

log = Logger()


def reporter_retry(min_backoff: float) -> RetryPolicy:
    """The client retries once, briefly; the outbox retries patiently after that."""
    return RetryPolicy(max_attempts=2, initial_delay=min(1.0, min_backoff), max_delay=10.0)


class JiraReporterBase(ReporterBase):
    """What the Jira reporters share: options, connection, outbox, rendering."""

    # What a reconfig compares (Buildbot adds ReporterBase's ``generators``, so
    # an unchanged reporter is reconfigured too: cheap, and nothing is lost).
    compare_attrs: ClassVar[tuple[str, ...]] = ("name", "_config_args", "_config_kwargs")
    #: The step events a reporter needs, besides build new and finished.
    step_events: ClassVar[tuple[str, ...]] = ()
    #: The arguments this reporter takes besides the shared ones.
    own_arguments: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.mapping = BuildMapping()
        self._result_states: Mapping[str, str | None] = DEFAULT_RESULT_STATES
        self.options: SiteOptions | None = None
        self.outbox: Outbox | None = None
        self._connection: connection.JiraConnection | None = None
        self._sequence = SequenceNumbers()
        super().__init__(*args, **kwargs)

    def __repr__(self) -> str:
        site = self.options.site if self.options else "?"
        return f"<{type(self).__name__} {self.name!r} site={site!r}>"

    def getConfigDict(self) -> dict[str, Any]:
        """Buildbot shows this in its web UI: never with the client secret."""
        data: dict[str, Any] = super().getConfigDict()
        data["kwargs"] = {
            k: ("***" if k == "client_secret" else v) for k, v in data["kwargs"].items()
        }
        data["args"] = tuple("***" if i == 2 else v for i, v in enumerate(data["args"]))
        return data

    # -- configuration --------------------------------------------------------

    def _parse(
        self, site: object, client_id: object, client_secret: object, options: dict[str, Any]
    ) -> SiteOptions:
        options = dict(options)
        site_options = take_options(site, client_id, client_secret, options)
        self._parse_own(options)
        refuse_unknown(options, self.known_arguments())
        return site_options

    def _parse_own(self, options: dict[str, Any]) -> None:
        """Check and keep the reporter's own arguments, removing them from ``options``."""

    @classmethod
    def known_arguments(cls) -> tuple[str, ...]:
        """Every argument the reporter takes."""
        return (*SHARED_ARGUMENTS, *cls.own_arguments)

    def checkConfig(
        self,
        site: object = None,
        client_id: object = None,
        client_secret: object = None,
        **options: Any,
    ) -> None:
        """Check the arguments, with no side effects; errors name the argument."""
        try:
            self.options = self._parse(site, client_id, client_secret, options)
        except JiraConfigError as problem:
            config.error(f"{type(self).__name__}: {problem}")
            return
        super().checkConfig(generators=[self._generator(self.options)])

    def _generator(self, options: SiteOptions) -> JiraEventGenerator:
        return JiraEventGenerator(
            builders=options.builders, branches=options.branches, step_events=self.step_events
        )

    async def _reconfigure(
        self, site: object, client_id: object, client_secret: object, options: dict[str, Any]
    ) -> None:
        site_options = self._parse(site, client_id, client_secret, options)
        self.options = site_options
        rendered_id, rendered_secret = await self.renderSecrets(
            site_options.client_id, site_options.client_secret
        )
        settings = site_options.site_settings(
            str(rendered_id), str(rendered_secret), reporter_retry(site_options.min_backoff)
        )
        old, self._connection = (
            self._connection,
            connection.acquire(settings, reactor=self.master.reactor),
        )
        if self.outbox is None:
            objectid = await self.master.db.state.getObjectId(
                self.name, f"buildbot_jira.{type(self).__name__}"
            )
            self.outbox = Outbox(
                client=self._connection.client,
                store=StateStore(
                    master=self.master, objectid=objectid, masterid=self.master.masterid
                ),
                clock=self.master.reactor,
                name=self.name,
            )
        outbox = self.outbox
        outbox.client = self._connection.client
        outbox.cap = site_options.outbox_size
        outbox.dry_run = site_options.dry_run
        outbox.configure(
            initial_backoff=site_options.min_backoff,
            max_backoff=site_options.max_backoff,
            grace=site_options.shutdown_grace,
        )
        if old is not None:
            await old.release()
        self.mapping = BuildMapping(
            rules=site_options.key_rules,
            result_states=self._result_states,
            issue_keys_property=site_options.issue_keys_property,
            text_properties=site_options.issue_key_properties,
        )
        await super().reconfigService(generators=[self._generator(site_options)])

    def reconfigService(
        self,
        site: object = None,
        client_id: object = None,
        client_secret: object = None,
        **options: Any,
    ) -> defer.Deferred[None]:
        """Render the secrets, connect to the site, and subscribe to events."""
        return defer.Deferred.fromCoroutine(
            self._reconfigure(site, client_id, client_secret, options)
        )

    # -- life cycle -------------------------------------------------------------

    def startService(self) -> defer.Deferred[None]:
        """Start the service, then the outbox (which sends what an earlier run left)."""

        async def start() -> None:
            await super(JiraReporterBase, self).startService()
            if self.outbox is not None:
                await self.outbox.start()

        return defer.Deferred.fromCoroutine(start())

    def stopService(self) -> defer.Deferred[None]:
        """Stop taking events, give requests in flight a grace period, keep the rest."""

        async def stop() -> None:
            await super(JiraReporterBase, self).stopService()
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

    def _debug(self, text: str, **fields: Any) -> None:
        # Buildbot's log shows every level; `debug=True` is the switch.
        if self.options is not None and self.options.debug:
            log.info("{reporter}: " + text, reporter=self.name, **fields)

    async def _render(self, renderable: Any, snapshot: BuildSnapshot) -> str | None:
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
        rendered = await self._render(self.options.pipeline_id, snapshot)
        if rendered:
            return rendered
        instance = instance_name(self.master.config.buildbotURL)
        return default_pipeline_id(instance, snapshot.builder_name)

    def now(self) -> float:
        """The master's clock."""
        return float(self.master.reactor.seconds())

    def next_sequence(self) -> int:
        """A new ``updateSequenceNumber``."""
        return self._sequence.next(self.now())

    def issue_keys(self, snapshot: BuildSnapshot) -> tuple[str, ...]:
        """The build's issue keys; what was odd about them is logged."""
        keys = self.mapping.issue_keys(snapshot)
        for note in keys.notes:
            log.warn(
                "{reporter}: build {build}: {note}",
                reporter=self.name,
                build=snapshot.url,
                note=note,
            )
        return keys.keys

    async def common_fields(self, snapshot: BuildSnapshot) -> dict[str, Any]:
        """The fields every update has: pipeline, sequence, time, rendered names."""
        options = self.options
        return {
            "pipeline_id": await self.pipeline_id(snapshot),
            "update_sequence_number": self.next_sequence(),
            "last_updated": iso_timestamp(self.now()),
            "display_name": await self._render(options and options.display_name, snapshot),
            "label": await self._render(options and options.label, snapshot),
        }

    def queue(
        self, entity: EntityType, data: BuildData | DeploymentData | Skip, context: str
    ) -> bool:
        """Hand ``data`` to the outbox, or log why it is not sent; whether it was queued."""
        if isinstance(data, Skip):
            self._debug("{what} is not sent: {reason}", what=context, reason=data.reason)
            return False
        assert self.outbox is not None
        payload = data.to_json()
        if self.options is not None and self.options.debug:
            self._debug("queued {payload}", payload=json.dumps(payload, sort_keys=True))
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


class JiraBuildReporter(JiraReporterBase):
    """Reports every build that names a Jira issue to Jira's builds API.

    A build is sent as ``in_progress`` when it starts and with its final
    state when it ends; finished steps keep the running build's test counts
    current. See the README for every argument.
    """

    step_events = ("finished",)
    own_arguments = ("result_states", "test_update_interval")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.test_update_interval = 5.0
        self._finished: dict[int, None] = {}
        self._last_tests: dict[int, tuple[float, TestInfo | None]] = {}
        self._test_timers: dict[int, IDelayedCall] = {}
        super().__init__(*args, **kwargs)

    def _parse_own(self, options: dict[str, Any]) -> None:
        self._result_states = take(
            options,
            "result_states",
            DEFAULT_RESULT_STATES,
            lambda v, a: check_result_states(v, a, DEFAULT_RESULT_STATES, BUILD_STATES),
        )
        self._interval = take(
            options, "test_update_interval", 5.0, lambda v, a: check_number(v, a, minimum=0)
        )

    async def _reconfigure(
        self, site: object, client_id: object, client_secret: object, options: dict[str, Any]
    ) -> None:
        await super()._reconfigure(site, client_id, client_secret, options)
        self.test_update_interval = self._interval

    def stopService(self) -> defer.Deferred[None]:
        """Stop, then cancel pending test-count updates (late step events start none)."""

        def cancel_timers(result: object) -> object:
            for timer in self._test_timers.values():
                if timer.active():
                    timer.cancel()
            self._test_timers.clear()
            return result

        return super().stopService().addBoth(cancel_timers)

    async def report(self, event: BuildEvent) -> None:
        """Send the build's state for a build or step event."""
        snapshot = event.snapshot
        if event.kind == "steps":
            self._step_finished(snapshot)
            return
        if event.event == "finished":
            self._forget(snapshot.buildid)
        await self.send_build(snapshot)

    async def send_build(self, snapshot: BuildSnapshot) -> None:
        """Map the build as it is now and queue it."""
        if not snapshot.complete and snapshot.buildid in self._finished:
            return  # a late step event must never undo a final state
        keys = self.issue_keys(snapshot)
        if not snapshot.complete and keys:
            self._show_keys(snapshot, keys)
        data = self.mapping.build_data(snapshot, keys=keys, **await self.common_fields(snapshot))
        queued = self.queue("builds", data, f"{snapshot.builder_name} #{snapshot.number}")
        if queued and not snapshot.complete:
            assert isinstance(data, BuildData)
            self._last_tests[snapshot.buildid] = (self.now(), data.test_info)

    def _show_keys(self, snapshot: BuildSnapshot, keys: tuple[str, ...]) -> None:
        """Set the keys as a property of the running build, for the web UI and later steps."""
        if self.options is None or self.options.issue_keys_property in snapshot.properties:
            return
        builder = self.master.botmaster.builders.get(snapshot.builder_name)
        for build in getattr(builder, "building", ()):
            if getattr(build, "buildid", None) == snapshot.buildid:
                build.setProperty(self.options.issue_keys_property, list(keys), self.name)

    def _forget(self, buildid: int) -> None:
        self._finished[buildid] = None
        while len(self._finished) > 10_000:
            del self._finished[next(iter(self._finished))]
        self._last_tests.pop(buildid, None)
        timer = self._test_timers.pop(buildid, None)
        if timer is not None and timer.active():
            timer.cancel()

    def _step_finished(self, snapshot: BuildSnapshot) -> None:
        """Keep a running build's test counts current, at most once per interval."""
        if not self.running or snapshot.complete or snapshot.buildid in self._finished:
            return
        last = self._last_tests.get(snapshot.buildid)
        if last is None:
            return  # the build was not sent (no keys), so neither are its counts
        sent_at, sent_counts = last
        if build_test_info(snapshot) == sent_counts or snapshot.buildid in self._test_timers:
            return
        delay = max(0.0, sent_at + self.test_update_interval - self.now())

        def send() -> None:
            self._test_timers.pop(snapshot.buildid, None)
            defer.Deferred.fromCoroutine(self._refresh(snapshot)).addErrback(
                lambda failure: log.failure(
                    "{reporter}: test count update failed", failure, reporter=self.name
                )
            )

        self._test_timers[snapshot.buildid] = self.master.reactor.callLater(delay, send)

    async def _refresh(self, snapshot: BuildSnapshot) -> None:
        # Read the build again: more steps may have finished while we waited.
        build = await self.master.data.get(("builds", snapshot.buildid))
        if build is None or build.get("complete"):
            return
        fresh = await fetch_snapshot(self.master, build, snapshot.builder_name)
        await self.send_build(fresh)


class JiraDeploymentReporter(JiraReporterBase):
    """Reports deployments to Jira's deployments API.

    Builder level (no ``step_pattern``): each build of the reported builders
    is a deployment to ``environment_id``. Step level: each step whose name
    matches ``step_pattern`` is a deployment, to the environment its
    ``environment`` group names (or ``environment_id``). See the README for
    every argument.
    """

    step_events = ("updated", "finished")
    own_arguments = (
        "environment_id",
        "environment_name",
        "environment_type",
        "environment_types",
        "service_ids",
        "enable_gating",
        "step_pattern",
        "result_states",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.deployment_mapping = DeploymentMapping()
        self._started_steps: dict[int, None] = {}
        super().__init__(*args, **kwargs)

    def _parse_own(self, options: dict[str, Any]) -> None:
        self._step_pattern = take(options, "step_pattern", None, check_pattern)
        required = self._step_pattern is None or "environment" not in self._step_pattern.groupindex
        self._environment_id = take(
            options, "environment_id", None, lambda v, a: check_renderable(v, a, required=required)
        )
        if required and self._environment_id is None:
            raise JiraConfigError(
                "environment_id is required (or a step_pattern with an (?P<environment>...) group)"
            )
        self._environment_name = take(options, "environment_name", None, check_renderable)
        self._environment_type = take(options, "environment_type", None, check_renderable)
        no_types: dict[str | re.Pattern[str], str] = {}
        self._environment_types = take(
            options, "environment_types", no_types, check_environment_types
        )
        no_services: tuple[str, ...] = ()
        self._service_ids = take(options, "service_ids", no_services, check_text_list)
        self._gating = take(options, "enable_gating", False, check_flag)
        self._deployment_states = take(
            options,
            "result_states",
            DEFAULT_DEPLOYMENT_STATES,
            lambda v, a: check_result_states(v, a, DEFAULT_DEPLOYMENT_STATES, DEPLOYMENT_STATES),
        )

    def _generator(self, options: SiteOptions) -> JiraEventGenerator:
        return JiraEventGenerator(
            builders=options.builders,
            branches=options.branches,
            step_events=self.step_events if self._step_pattern is not None else (),
            step_filter=self._wants_step_event,
        )

    async def _reconfigure(
        self, site: object, client_id: object, client_secret: object, options: dict[str, Any]
    ) -> None:
        await super()._reconfigure(site, client_id, client_secret, options)
        self.deployment_mapping = DeploymentMapping(
            result_states=self._deployment_states,
            service_ids=self._service_ids,
            gating=self._gating,
        )

    def _wants_step_event(self, event: str, step: dict[str, Any]) -> bool:
        """Only matching steps; ``updated`` only once the step really runs."""
        pattern = self._step_pattern
        if pattern is None or not pattern.search(step.get("name") or ""):
            return False
        if event == "finished":
            return True
        # A step that is skipped never acquires its locks: waiting for that
        # tells a running deployment from one that will not happen.
        return (
            step.get("locks_acquired_at") is not None
            and not step.get("complete")
            and step["stepid"] not in self._started_steps
        )

    async def report(self, event: BuildEvent) -> None:
        """Send the deployment's state for a build or step event."""
        snapshot = event.snapshot
        if self._step_pattern is None:
            if event.kind == "builds":
                await self._send(snapshot, await self._builder_target(snapshot))
            return
        if event.kind != "steps" or event.step is None:
            return
        step = event.step
        if event.event == "updated":
            if step["stepid"] in self._started_steps:
                return
            self._started_steps[step["stepid"]] = None
            while len(self._started_steps) > 10_000:
                del self._started_steps[next(iter(self._started_steps))]
        target = await self._step_target(snapshot, step)
        if target is not None:
            await self._send(snapshot, target)

    async def _environment(
        self, snapshot: BuildSnapshot, environment_id: str
    ) -> tuple[str, str, str]:
        name = await self._render(self._environment_name, snapshot) or environment_id
        kind = await self._render(self._environment_type, snapshot)
        if kind is None:
            kind = guess_environment_type(name, self._environment_types)
        elif kind not in ENVIRONMENT_TYPES:
            log.warn(
                "{reporter}: environment_type {kind!r} is not a Jira environment type; "
                "sent as 'unmapped'",
                reporter=self.name,
                kind=kind,
            )
            kind = "unmapped"
        return environment_id, name, kind

    async def _builder_target(self, snapshot: BuildSnapshot) -> DeploymentTarget | None:
        environment_id = await self._render(self._environment_id, snapshot)
        if not environment_id:
            self._debug("{build}: environment_id rendered empty", build=snapshot.url)
            return None
        environment_id, name, kind = await self._environment(snapshot, environment_id)
        return DeploymentTarget(
            environment_id=environment_id, environment_name=name, environment_type=kind
        )

    async def _step_target(
        self, snapshot: BuildSnapshot, step: dict[str, Any]
    ) -> DeploymentTarget | None:
        assert self._step_pattern is not None
        match = self._step_pattern.search(step.get("name") or "")
        if match is None:
            return None
        environment_id = match.groupdict().get("environment")
        if not environment_id:
            environment_id = await self._render(self._environment_id, snapshot)
        if not environment_id:
            return None
        environment_id, name, kind = await self._environment(snapshot, environment_id)
        if name == environment_id and self._environment_name is None:
            name = environment_id
        return DeploymentTarget(
            environment_id=environment_id,
            environment_name=name,
            environment_type=kind,
            **step_target_fields(step),
        )

    async def _send(self, snapshot: BuildSnapshot, target: DeploymentTarget | None) -> None:
        if target is None:
            return
        data = self.deployment_mapping.deployment_data(
            snapshot,
            target,
            keys=self.issue_keys(snapshot),
            pipeline_name=snapshot.builder_name,
            **await self.common_fields(snapshot),
        )
        context = f"{snapshot.builder_name} #{snapshot.number} to {target.environment_id}"
        self.queue("deployments", data, context)
