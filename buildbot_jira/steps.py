"""Build steps that talk to Jira: a deployment gate.

:class:`JiraDeploymentGate` holds a build until Jira Service Management's
change management decides on the build's deployment: the deployment that a
``JiraDeploymentReporter(..., enable_gating=True)`` sent when the build
started. The step is wiring: its options come from
:mod:`buildbot_jira.options`, its connection from
:mod:`buildbot_jira.connection`, and the waiting itself is
:func:`~buildbot_jira.gating.wait_for_gate`, which is tested without a master.
"""

from __future__ import annotations

from typing import Any

import attrs
from buildbot import config
from buildbot.process import buildstep
from buildbot.process.results import CANCELLED, FAILURE, SUCCESS, statusToString
from twisted.internet import defer

from buildbot_jira.connection import connect
from buildbot_jira.gating import (
    FINAL_STATUSES,
    GATE_RETRY,
    DeploymentKey,
    GateOutcome,
    GatePoll,
    GatingSource,
    blocking_issue_keys,
    describe_poll,
    describe_status,
    timeout_advice,
    wait_for_gate,
)
from buildbot_jira.jira.auth import DEFAULT_API_URL
from buildbot_jira.jira.errors import JiraConfigError, JiraError
from buildbot_jira.mapping.builds import default_pipeline_id, instance_name
from buildbot_jira.mapping.deployments import deployment_sequence_number
from buildbot_jira.options import TIMEOUT_RESULTS, GateOptions, parse_gate
from buildbot_jira.sites import JiraSite

# The waiting's names stay importable from here, where they were first.
__all__ = [
    "FINAL_STATUSES",
    "GATE_RETRY",
    "TIMEOUT_RESULTS",
    "DeploymentKey",
    "GateOutcome",
    "GatePoll",
    "GatingSource",
    "JiraDeploymentGate",
    "blocking_issue_keys",
    "wait_for_gate",
]


@attrs.frozen
class _Rendered:
    """The gate's renderable arguments, rendered for one build."""

    site: JiraSite[str]
    environment_id: str
    pipeline_id: str | None


def _is_web_link(link: object) -> bool:
    return isinstance(link, str) and link.startswith(("https://", "http://"))


class JiraDeploymentGate(buildstep.BuildStep):
    """Waits until Jira allows this build's deployment, and fails if Jira prevents it.

    The deployment is the one a ``JiraDeploymentReporter`` with
    ``enable_gating=True`` sends when the build starts: pipeline
    ``pipeline_id`` (by default the reporters' pipeline ID of this builder),
    environment ``environment_id``, and the build's deployment sequence
    number. The step asks Jira every ``interval`` seconds: ``allowed`` is
    SUCCESS, ``prevented`` and ``invalid`` are FAILURE, and when ``timeout``
    seconds pass without a decision the step ends with ``timeout_result``.
    The issues holding the deployment show as links on the step, and every
    answer is written to the step's ``jira gating`` log.

    :param site: the Jira site's host name, such as ``example.atlassian.net``.
    :param client_id: the OAuth client ID (a string or ``util.Secret``).
    :param client_secret: the OAuth client secret (a string or ``util.Secret``).
    :param environment_id: the Jira environment ID (renderable); the same as
        the reporter's.
    :param pipeline_id: the Jira pipeline ID (renderable); give it when the
        reporter is given one.
    :param cloud_id: the site's cloud ID; looked up when not given.
    :param api_url: the OAuth gateway.
    :param site_url: where the site answers (``https://<site>`` by default).
    :param interval: seconds between two questions to Jira.
    :param timeout: seconds to wait for a decision.
    :param timeout_result: the step's result when ``timeout`` passes.

    Unlike most steps, the gate halts the build when it fails
    (``haltOnFailure=True``), so that nothing after it deploys, and a
    WARNINGS result shows on the build (``warnOnWarnings=True``); both can be
    given as usual.
    """

    name = "jira-gate"
    # A deployment that Jira did not allow must not go on; a WARNINGS timeout
    # result shows on the build.
    haltOnFailure = True
    warnOnWarnings = True

    #: The checked arguments; None only when a configuration error was collected.
    options: GateOptions | None
    # What the step shows while it runs; set by run() on the per-build copy.
    _summary: str = "Jira gating: waiting"
    _waiting: defer.Deferred[GateOutcome] | None = None
    _gating_log: Any = None
    _linked: frozenset[str] = frozenset()

    def __init__(
        self,
        *,
        site: str | None = None,
        client_id: Any = None,
        client_secret: Any = None,
        environment_id: Any = None,
        pipeline_id: Any = None,
        cloud_id: str | None = None,
        api_url: str = DEFAULT_API_URL,
        site_url: str | None = None,
        interval: float = 30.0,
        timeout: float = 3600.0,
        timeout_result: int = FAILURE,
        **kwargs: Any,
    ) -> None:
        # The one attribute of ours: Buildbot makes a new step from these
        # arguments for every build, so this is parsed for each build too.
        options: GateOptions | None = None
        try:
            options = parse_gate(
                site=site,
                client_id=client_id,
                client_secret=client_secret,
                environment_id=environment_id,
                pipeline_id=pipeline_id,
                cloud_id=cloud_id,
                api_url=api_url,
                site_url=site_url,
                interval=interval,
                timeout=timeout,
                timeout_result=timeout_result,
            )
        except JiraConfigError as problem:
            config.error(f"JiraDeploymentGate: {problem}")
        self.options = options
        super().__init__(**kwargs)

    def __str__(self) -> str:
        # BuildStep's own text shows every argument, and Buildbot logs it.
        kwargs = self.get_step_factory().kwargs
        shown = ", ".join(
            f"{name}={'***' if name == 'client_secret' else repr(value)}"
            for name, value in kwargs.items()
        )
        return f"{type(self).__name__}({shown})"

    __repr__ = __str__

    # -- summaries --------------------------------------------------------------

    def getCurrentSummary(self) -> dict[str, str]:
        """The state string while the step waits: Jira's latest answer."""
        return {"step": self._summary}

    def getResultSummary(self) -> dict[str, str]:
        """The state string once the step is done: Jira's decision."""
        summary = self._summary
        if self.results not in (None, SUCCESS):
            summary += f" ({statusToString(self.results)})"
        return {"step": summary}

    def _show(self, summary: str) -> None:
        self._summary = summary
        self.updateSummary()

    # -- running ----------------------------------------------------------------

    def interrupt(self, reason: Any) -> defer.Deferred[None]:
        """Stop waiting for Jira at once; the step ends CANCELLED."""
        stopping: defer.Deferred[None] = super().interrupt(reason)
        if self._waiting is not None:
            self._waiting.cancel()
        return stopping

    async def run(self) -> int:
        """Render the arguments, wait for Jira's decision, and turn it into a result."""
        self._gating_log = await self.addLog("jira gating")
        self._linked = frozenset()
        if self.options is None:  # only when the configuration errors were not raised
            return await self._fail("the step's arguments are wrong (see the master's log)")
        options = self.options
        try:
            rendered = await self._render_arguments(options)
        except JiraConfigError as problem:
            return await self._fail(str(problem), state=problem.summary)
        deployment = DeploymentKey(
            pipeline_id=rendered.pipeline_id or self._default_pipeline_id(),
            environment_id=rendered.environment_id,
            sequence_number=deployment_sequence_number(self.build.number),
        )
        if self.stopped:
            return CANCELLED
        await self._write(
            f"Waiting for Jira's gating decision on {deployment} "
            f"(asking every {options.interval:g} s, for at most {options.timeout:g} s)"
        )
        connection = await connect(self.master, rendered.site, retry=GATE_RETRY)
        try:
            outcome = await self._wait(connection.client, deployment, options)
        except defer.CancelledError:
            if not self.stopped:
                raise
            self._show("Jira gating: cancelled")
            await self._write("Interrupted: stopped waiting for Jira.")
            return CANCELLED
        except JiraError as problem:
            # The error says what went wrong, its hint what to check.
            return await self._fail(
                f"Asking Jira's deployments API for the gating status of {deployment} "
                f"failed: {problem}\n{problem.hint}",
                state=problem.summary,
            )
        finally:
            await connection.release()
        return await self._conclude(outcome, deployment, options)

    async def _render_arguments(self, options: GateOptions) -> _Rendered:
        values = {
            "client_id": options.site.client_id,
            "client_secret": options.site.client_secret,
            "environment_id": options.environment_id,
            "pipeline_id": options.pipeline_id,
        }
        rendered: dict[str, str | None] = {}
        for argument, renderable in values.items():
            try:
                value = await self.build.render(renderable)
            except (KeyError, ValueError, TypeError) as problem:
                # A missing secret or property: Buildbot's message names it, never a value.
                raise JiraConfigError(f"{argument} could not be rendered: {problem}") from None
            text = None if value is None else str(value).strip()
            if not text and argument != "pipeline_id":
                raise JiraConfigError(
                    f"{argument} rendered to an empty value; check the secret or property it names"
                )
            rendered[argument] = text or None
        return _Rendered(
            site=options.site.rendered(str(rendered["client_id"]), str(rendered["client_secret"])),
            environment_id=str(rendered["environment_id"]),
            pipeline_id=rendered["pipeline_id"],
        )

    def _default_pipeline_id(self) -> str:
        instance = instance_name(self.master.config.buildbotURL)
        return default_pipeline_id(instance, self.build.builder.name)

    async def _wait(
        self, client: GatingSource, deployment: DeploymentKey, options: GateOptions
    ) -> GateOutcome:
        self._waiting = defer.Deferred.fromCoroutine(
            wait_for_gate(
                client,
                deployment,
                clock=self.master.reactor,
                interval=options.interval,
                timeout=options.timeout,
                on_poll=self._record,
            )
        )
        try:
            return await self._waiting
        finally:
            self._waiting = None

    async def _record(self, poll: GatePoll) -> None:
        """Show one answer of Jira: state string, issue links, log line."""
        if poll.problem is not None:
            self._show("Jira gating: Jira unavailable, retrying")
        else:
            self._show(f"Jira gating: {describe_status(poll.status)}")
        for detail in poll.status.details if poll.status is not None else ():
            key, link = detail.get("issueKey"), detail.get("issueLink")
            if isinstance(key, str) and key and _is_web_link(link) and key not in self._linked:
                self._linked = self._linked | {key}
                await self.addURL(key, link)
        await self._write(describe_poll(poll))

    async def _conclude(
        self, outcome: GateOutcome, deployment: DeploymentKey, options: GateOptions
    ) -> int:
        if outcome.decision == "allowed":
            self._show("Jira gating: allowed")
            await self._write("Jira allowed the deployment.")
            return SUCCESS
        if outcome.decision == "timeout":
            self._show(f"Jira gating: no decision within {options.timeout:g} s")
            await self._write(timeout_advice(outcome, deployment, options.timeout))
            return options.timeout_result
        self._show(f"Jira gating: {describe_status(outcome.last_status)}")
        if outcome.decision == "prevented":
            held = ", ".join(outcome.blocking_issues) or "its change management rules"
            await self._write(f"Jira prevented the deployment; it is held by {held}.")
        else:
            await self._write(
                "Jira found the deployment invalid for gating: check that the environment "
                "is set up for change management in Jira Service Management."
            )
        return FAILURE

    async def _fail(self, message: str, *, state: str = "failed") -> int:
        self._show(f"Jira gating: {state}")
        await self._write(message)
        return FAILURE

    async def _write(self, line: str) -> None:
        if self._gating_log is not None:
            text = self.build.properties.cleanupTextFromSecrets(line)
            await self._gating_log.addStdout(text + "\n")
