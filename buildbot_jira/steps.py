"""Build steps that talk to Jira: a deployment gate, and (re-exported) the others.

:class:`JiraDeploymentGate` holds a build until Jira Service Management's
change management decides on the deployment a ``JiraDeploymentReporter(...,
enable_gating=True)`` sent at build start (options: :mod:`~buildbot_jira.gate_options`,
waiting: :func:`~buildbot_jira.gating.wait_for_gate`).
:class:`~buildbot_jira.feature_flag_step.JiraFeatureFlag` tells Jira where a flag is on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
from buildbot import config
from buildbot.process import buildstep
from buildbot.process.results import CANCELLED, FAILURE, SUCCESS, statusToString
from buildbot.warnings import warn_deprecated
from twisted.internet import defer

from buildbot_jira.arguments import closest
from buildbot_jira.connection import connect
from buildbot_jira.credentials import shown_argument
from buildbot_jira.feature_flag_step import JiraFeatureFlag
from buildbot_jira.gate_options import (
    DEFAULT_GATE_INTERVAL,
    GATE_ARGUMENTS,
    NOT_GIVEN,
    TIMEOUT_RESULTS,
    GateOptions,
    NotGiven,
    parse_gate,
)
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
from buildbot_jira.issue_keys_step import JiraIssueKeys
from buildbot_jira.jira.errors import JiraConfigError, JiraError
from buildbot_jira.mapping.builds import default_pipeline_id, instance_name
from buildbot_jira.mapping.deployments import deployment_sequence_number
from buildbot_jira.options import BUILD_REPORTER_ARGUMENTS, DEPLOYMENT_REPORTER_ARGUMENTS
from buildbot_jira.sites import SITE_ARGUMENTS, JiraSite

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
    "JiraFeatureFlag",
    "JiraIssueKeys",
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


#: What only the reporters take: a dict shared by every service may hold them.
_REPORTER_ONLY = frozenset(BUILD_REPORTER_ARGUMENTS + DEPLOYMENT_REPORTER_ARGUMENTS) - frozenset(
    (*GATE_ARGUMENTS, "name")
)


def _foreign_arguments(kwargs: Mapping[str, Any]) -> str | None:
    """What is wrong with the arguments that neither the gate nor Buildbot's steps take."""
    unknown = sorted(name for name in kwargs if name not in buildstep.BuildStep._params_names)
    if not unknown:
        return None
    reporters = [name for name in unknown if name in _REPORTER_ONLY]
    if reporters:
        return (
            f"{', '.join(reporters)}: argument(s) of the Jira reporters, not of the gate; "
            f"the arguments every Jira service shares are {', '.join(SITE_ARGUMENTS)}"
        )
    known = (*GATE_ARGUMENTS, *buildstep.BuildStep._params_names)
    names = []
    for name in unknown:
        suggestion = closest(name, known)
        names.append(f"{name} (did you mean {suggestion}?)" if suggestion else name)
    return (
        f"unknown argument(s): {', '.join(names)}; the gate's own arguments are: "
        f"{', '.join(sorted(GATE_ARGUMENTS))}, besides those of every Buildbot step"
    )


class JiraDeploymentGate(buildstep.BuildStep):
    """Waits until Jira allows this build's deployment, and fails if Jira prevents it.

    The deployment is the one a ``JiraDeploymentReporter`` with
    ``enable_gating=True`` sends when the build starts: pipeline
    ``pipeline_id`` (by default the reporters' pipeline ID of this builder),
    environment ``environment_id``, and the build's deployment sequence
    number. The step asks Jira every ``interval`` seconds: ``allowed`` is
    SUCCESS, ``prevented`` and ``invalid`` are FAILURE, and when
    ``wait_timeout`` seconds pass without a decision the step ends with
    ``timeout_result``.
    The issues holding the deployment show as links on the step, and every
    answer is written to the step's ``jira gating`` log.

    :param site: the Jira site's host name, such as ``example.atlassian.net``.
    :param client_id: the OAuth client ID (a string or ``util.Secret``).
    :param client_secret: the OAuth client secret (a string or ``util.Secret``).
    :param environment_id: the Jira environment ID (renderable); the same as
        the reporter's.
    :param pipeline_id: the Jira pipeline ID (renderable); give it when the
        reporter is given one.
    :param cloud_id, api_url, site_url, min_request_interval, proxy, ca_bundle,
        ca_bundle_only: as in the reporters (see the README).
    :param timeout: seconds for one HTTP request, as in the reporters. Given
        without ``wait_timeout``, it is the whole wait (deprecated).
    :param interval: seconds between two questions to Jira.
    :param wait_timeout: seconds to wait for a decision in all (an hour).
    :param timeout_result: the step's result when ``wait_timeout`` passes: a
        Buildbot result other than RETRY, as a constant (``util.WARNINGS``)
        or a name (``"warnings"``).

    The site arguments are those of the reporters, with the same meanings,
    so one dict of them can be given to every Jira service
    (``JiraDeploymentGate(**jira, environment_id=...)``); an argument that
    only the reporters take is refused with a message that says so.

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
        api_url: str | NotGiven = NOT_GIVEN,
        site_url: str | None = None,
        timeout: float | NotGiven = NOT_GIVEN,
        min_request_interval: float | NotGiven = NOT_GIVEN,
        proxy: Any = NOT_GIVEN,
        ca_bundle: str | NotGiven = NOT_GIVEN,
        ca_bundle_only: bool | NotGiven = NOT_GIVEN,
        interval: float = DEFAULT_GATE_INTERVAL,
        wait_timeout: float | NotGiven = NOT_GIVEN,
        timeout_result: int | str = FAILURE,
        **kwargs: Any,
    ) -> None:
        # The one attribute of ours: Buildbot makes a new step from these
        # arguments for every build, so this is parsed for each build too.
        service = f"{type(self).__name__} {kwargs.get('name', self.name)!r}"
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
                timeout=timeout,
                min_request_interval=min_request_interval,
                proxy=proxy,
                ca_bundle=ca_bundle,
                ca_bundle_only=ca_bundle_only,
                interval=interval,
                wait_timeout=wait_timeout,
                timeout_result=timeout_result,
            )
        except JiraConfigError as problem:
            config.error(f"{service}: {problem}")
        if options is not None and options.timeout_is_the_wait:
            # Once per process: Python shows a warning once per place and text.
            warn_deprecated(
                "0.2.0",
                f"{service}: timeout is the gate's whole wait only while wait_timeout is "
                "not given; name the wait wait_timeout, so that timeout means seconds per "
                "request as in the reporters (and a dict of site arguments can be shared)",
            )
        foreign = _foreign_arguments(kwargs)
        if foreign is not None:
            config.error(f"{service}: {foreign}")
            kwargs = {k: v for k, v in kwargs.items() if k in buildstep.BuildStep._params_names}
        self.options = options
        super().__init__(**kwargs)

    def __str__(self) -> str:
        # BuildStep's own text shows every argument, and Buildbot logs it.
        kwargs = self.get_step_factory().kwargs
        shown = ", ".join(
            f"{name}={'***' if name == 'client_secret' else repr(shown_argument(name, value))}"
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
            f"(asking every {options.interval:g} s, for at most {options.wait_timeout:g} s)"
        )
        connection = await connect(self.master, rendered.site, retry=GATE_RETRY, user=self.name)
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
                timeout=options.wait_timeout,
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
            self._show(f"Jira gating: no decision within {options.wait_timeout:g} s")
            await self._write(timeout_advice(outcome, deployment, options.wait_timeout))
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
