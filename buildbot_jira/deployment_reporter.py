"""``JiraDeploymentReporter``: builds or steps that deploy, to Jira's deployments API.

Builder level (no ``step_pattern``): each build of the reported builders is
a deployment to ``environment_id``. Step level: each step whose name matches
``step_pattern`` is a deployment, to the environment its ``environment``
group names (or ``environment_id``). Nothing here waits for Jira: updates
go to the outbox.
"""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger

from buildbot_jira.events import BuildEvent, JiraEventGenerator
from buildbot_jira.jira.model import ENVIRONMENT_TYPES
from buildbot_jira.mapping.builds import BuildSnapshot
from buildbot_jira.mapping.deployments import (
    DeploymentTarget,
    guess_environment_type,
    step_target_fields,
)
from buildbot_jira.options import (
    DeploymentReporterOptions,
    ReporterOptions,
    parse_deployment_reporter,
)
from buildbot_jira.reporter_base import JiraReporterBase, RecentIds

__all__ = ["JiraDeploymentReporter"]

log = Logger()


class JiraDeploymentReporter(JiraReporterBase):
    """Reports deployments to Jira's deployments API.

    Builder level (no ``step_pattern``): each build of the reported builders
    is a deployment to ``environment_id``. Step level: each step whose name
    matches ``step_pattern`` is a deployment, to the environment its
    ``environment`` group names (or ``environment_id``). See the README for
    every argument.
    """

    options: DeploymentReporterOptions | None = None
    # The steps whose start was sent: a step is updated many times while it runs.
    _started_steps: RecentIds | None = None

    @classmethod
    def parse_options(
        cls,
        site: object = None,
        client_id: object = None,
        client_secret: object = None,
        **arguments: Any,
    ) -> DeploymentReporterOptions:
        """Check every argument of the deployment reporter."""
        return parse_deployment_reporter(site, client_id, client_secret, **arguments)

    def generator(self, options: ReporterOptions) -> JiraEventGenerator:
        """Build events; with a ``step_pattern``, the matching steps' events too."""
        assert isinstance(options, DeploymentReporterOptions)
        pattern = options.step_pattern

        def wanted(event: str, step: dict[str, Any]) -> bool:
            """Only matching steps; ``updated`` only once the step really runs."""
            if pattern is None or not pattern.search(step.get("name") or ""):
                return False
            if event == "finished":
                return True
            # A step that is skipped never acquires its locks: waiting for that
            # tells a running deployment from one that will not happen.
            return (
                step.get("locks_acquired_at") is not None
                and not step.get("complete")
                and step["stepid"] not in (self._started_steps or ())
            )

        # A deployment carries no test counts: nothing reads test results.
        return JiraEventGenerator(
            builders=options.builders,
            branches=options.branches,
            step_events=("updated", "finished") if pattern is not None else (),
            step_filter=wanted,
            mapping=options.mapping,
            test_results=False,
        )

    async def apply_options(self, options: ReporterOptions) -> None:
        """Use ``options``; the steps already started are remembered across a reconfig."""
        if self._started_steps is None:
            self._started_steps = RecentIds()
        await super().apply_options(options)

    async def report(self, event: BuildEvent) -> None:
        """Send the deployment's state for a build or step event."""
        assert self.options is not None
        assert self._started_steps is not None
        snapshot = event.snapshot
        if self.options.step_pattern is None:
            if event.kind == "builds":
                await self._send(snapshot, await self._builder_target(snapshot))
            return
        if event.kind != "steps" or event.step is None:
            return
        step = event.step
        if event.event == "updated":
            if step["stepid"] in self._started_steps:
                return
            self._started_steps.add(step["stepid"])
        target = await self._step_target(snapshot, step)
        if target is not None:
            await self._send(snapshot, target)

    async def _environment(
        self, snapshot: BuildSnapshot, environment_id: str
    ) -> tuple[str, str, str]:
        assert self.options is not None
        options = self.options
        name = await self.render(options.environment_name, snapshot) or environment_id
        kind = await self.render(options.environment_type, snapshot)
        if kind is None:
            kind = guess_environment_type(name, options.environment_types)
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
        assert self.options is not None
        environment_id = await self.render(self.options.environment_id, snapshot)
        if not environment_id:
            self.log_debug("{build}: environment_id rendered empty", build=snapshot.url)
            return None
        environment_id, name, kind = await self._environment(snapshot, environment_id)
        return DeploymentTarget(
            environment_id=environment_id, environment_name=name, environment_type=kind
        )

    async def _step_target(
        self, snapshot: BuildSnapshot, step: dict[str, Any]
    ) -> DeploymentTarget | None:
        assert self.options is not None
        assert self.options.step_pattern is not None
        match = self.options.step_pattern.search(step.get("name") or "")
        if match is None:
            return None
        environment_id = match.groupdict().get("environment")
        if not environment_id:
            environment_id = await self.render(self.options.environment_id, snapshot)
        if not environment_id:
            return None
        environment_id, name, kind = await self._environment(snapshot, environment_id)
        return DeploymentTarget(
            environment_id=environment_id,
            environment_name=name,
            environment_type=kind,
            **step_target_fields(step),
        )

    async def _send(self, snapshot: BuildSnapshot, target: DeploymentTarget | None) -> None:
        if target is None:
            return
        assert self.options is not None
        data = self.options.deployments.deployment_data(
            snapshot,
            target,
            keys=self.issue_keys(snapshot),
            pipeline_name=snapshot.builder_name,
            **await self.common_fields(snapshot),
        )
        context = f"{snapshot.builder_name} #{snapshot.number} to {target.environment_id}"
        self.queue("deployments", data, context)
