"""``JiraDeploymentReporter``: builds or steps that deploy, to Jira's deployments API.

Builder level (no ``step_pattern``): each build of the reported builders is
a deployment to ``environment_id``. Step level: each step whose name matches
``step_pattern`` is a deployment, to the environment its ``environment``
group names (or ``environment_id``). Nothing here waits for Jira: updates
go to the outbox.

With ``deployed_issues="since-last"`` a deployment names the issues of
every change that reached its environment since the environment's last
successful deployment (:mod:`~buildbot_jira.mapping.deployed_issues`),
read once per deployment; where that one stopped is kept in the master's
database (:mod:`~buildbot_jira.deployment_history`).
"""

from __future__ import annotations

from typing import Any

import attrs
from twisted.logger import Logger

from buildbot_jira.deployment_history import DeploymentHistory
from buildbot_jira.events import BuildEvent, JiraEventGenerator, read_change_records
from buildbot_jira.jira.model import ENVIRONMENT_TYPES
from buildbot_jira.mapping.builds import BuildSnapshot, Skip, SourceStamp, references
from buildbot_jira.mapping.deployed_issues import (
    DeployedRevision,
    cap_keys,
    collect_range,
    key_budget,
    plan_range,
    shipped_keys,
)
from buildbot_jira.mapping.deployments import (
    DeploymentTarget,
    deployment_sequence_number,
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

#: How many open deployments a reporter remembers what they ship: far more than run at once.
_OPEN_DEPLOYMENTS = 1000


@attrs.frozen
class Shipped:
    """What one deployment ships (or rolls back), read once for all its updates.

    ``keys``: the issue keys of the changes in range, newest first;
    ``reached``: per codebase, where the environment is once it succeeds.
    """

    keys: tuple[str, ...] = ()
    rolled_back: bool = False
    reached: dict[str, DeployedRevision] = attrs.field(factory=dict)


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
    _history: DeploymentHistory | None = None
    # What each open deployment ships, by its key, the oldest first.
    _shipped: dict[str, Shipped] | None = None

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
            self._history = DeploymentHistory(self.master)
            self._shipped = {}
        await super().apply_options(options)

    def interrupted_state(self) -> str | None:
        """The deployment state for RETRY (``result_states``), which an interrupted one gets."""
        assert self.options is not None
        return self.options.deployments.result_states.get("retry")

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
        fields = await self.common_fields(snapshot)
        number = deployment_sequence_number(snapshot.number, target.step_number)
        key = f"{fields['pipeline_id']}#{target.environment_id}#{number}"
        context = f"{snapshot.builder_name} #{snapshot.number} to {target.environment_id}"
        keys, shipped = self.issue_keys(snapshot), None
        if self.options.deployed_issues == "since-last":
            shipped = await self._shipped_by(snapshot, target, key, fields["pipeline_id"])
            keys = self._deployed_keys(snapshot, keys, shipped, context)
        rolled_back = shipped is not None and shipped.rolled_back
        data = self.options.deployments.deployment_data(
            snapshot,
            target,
            keys=keys,
            pipeline_name=snapshot.builder_name,
            rolled_back=rolled_back,
            **fields,
        )
        if isinstance(data, Skip) and self.outbox is not None:
            # No final state goes: the deployment is no longer open. The key
            # is DeploymentData.key's.
            self.outbox.close("deployments", key)
        self.queue("deployments", data, context)
        state = self.options.deployments.state(snapshot, target, rolled_back=rolled_back)
        if shipped is not None and state != "in_progress":
            assert self._shipped is not None
            assert self._history is not None
            self._shipped.pop(key, None)
            if state in ("successful", "rolled_back"):
                await self._history.remember(
                    fields["pipeline_id"], target.environment_id, shipped.reached
                )

    def _deployed_keys(
        self, snapshot: BuildSnapshot, own: tuple[str, ...], shipped: Shipped, context: str
    ) -> tuple[str, ...]:
        """The build's own keys and the shipped ones, within the association budget.

        A rollback names the issues it undoes; its own only when those name none.
        """
        assert self.options is not None
        if shipped.rolled_back and shipped.keys:
            own = ()
        commits = sum(1 for reference in references(snapshot) if reference.revision)
        budget = key_budget(services=len(self.options.deployments.service_ids), commits=commits)
        capped = cap_keys(own, shipped.keys, budget)
        if capped.dropped:
            self.note(
                snapshot,
                f"{context}: {capped.dropped} of its {capped.dropped + len(capped.keys)} "
                f"issue keys are not sent (a deployment carries at most {budget} here); "
                "the newest are kept",
            )
        return capped.keys

    async def _shipped_by(
        self, snapshot: BuildSnapshot, target: DeploymentTarget, key: str, pipeline_id: str
    ) -> Shipped:
        """What the deployment ``key`` ships: read on its first update, kept until its last.

        A deployment whose state says it is rolled back, though its revision
        is not older, undoes what the last one shipped: read again, once.
        """
        assert self.options is not None
        assert self._shipped is not None
        shipped = self._shipped.get(key)
        rolling_back = self.options.deployments.state(snapshot, target) == "rolled_back"
        if shipped is None or (rolling_back and not shipped.rolled_back):
            shipped = await self._read_shipped(
                snapshot, pipeline_id, target.environment_id, rolling_back=rolling_back
            )
            self._shipped[key] = shipped
            while len(self._shipped) > _OPEN_DEPLOYMENTS:
                del self._shipped[next(iter(self._shipped))]
        return shipped

    async def _read_shipped(
        self, snapshot: BuildSnapshot, pipeline_id: str, environment_id: str, *, rolling_back: bool
    ) -> Shipped:
        assert self.options is not None
        assert self._history is not None
        last = await self._history.last(pipeline_id, environment_id)
        keys: list[str] = []
        rolled_back = False
        reached: dict[str, DeployedRevision] = {}
        for stamp in snapshot.sourcestamps:
            if not stamp.revision:
                continue
            deployed = await self._changeid(stamp, stamp.revision)
            previous = last.get(stamp.codebase)
            if previous is not None and previous.changeid is None and previous.revision:
                # Buildbot may have seen that revision since it was deployed.
                changeid = await self._changeid(stamp, previous.revision)
                previous = attrs.evolve(previous, changeid=changeid)
            plan = plan_range(
                deployed=deployed,
                last=previous,
                lookback=self.options.first_deployment_lookback,
                rolling_back=rolling_back,
                repository=stamp.repository,
                branch=stamp.branch,
                codebase=stamp.codebase,
            )
            shipped_after = None
            if plan is not None:
                records = await read_change_records(
                    self.master, stamp, after=plan.after, upto=plan.upto, limit=plan.limit + 1
                )
                found = collect_range(records, plan)
                keys.extend(shipped_keys(found.changes, self.options.mapping.rules))
                rolled_back = rolled_back or found.rolled_back
                shipped_after = None if plan.rolled_back else plan.after
                if found.truncated:
                    self.note(
                        snapshot,
                        f"more than {plan.limit:,} changes of {stamp.branch or 'its branch'} "
                        f"since the last deployment to {environment_id}: the newest "
                        f"{plan.limit:,} were read",
                    )
            reached[stamp.codebase] = DeployedRevision(
                revision=stamp.revision, changeid=deployed, shipped_after=shipped_after
            )
        return Shipped(keys=tuple(dict.fromkeys(keys)), rolled_back=rolled_back, reached=reached)

    async def _changeid(self, stamp: SourceStamp, revision: str) -> int | None:
        """The newest change record of ``revision`` on ``stamp``'s branch; None: none."""
        records = await read_change_records(self.master, stamp, revision=revision, limit=1)
        return records[0].changeid if records else None

    def note(self, snapshot: BuildSnapshot, text: str) -> None:
        """Log ``text`` about a deployment of ``snapshot``, once per build."""
        assert self._noted is not None
        if (snapshot.buildid, text) in self._noted:
            return
        self._noted.add((snapshot.buildid, text))
        log.info(
            "{reporter}: build {build}: {note}", reporter=self.name, build=snapshot.url, note=text
        )
