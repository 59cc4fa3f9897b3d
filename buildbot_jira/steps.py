"""Build steps that talk to Jira: a deployment gate.

:class:`JiraDeploymentGate` holds a build until Jira Service Management's
change management decides on the build's deployment: the deployment that a
``JiraDeploymentReporter(..., enable_gating=True)`` sent when the build
started. The waiting itself is :func:`wait_for_gate`, which needs only
something that answers gating status and a clock, so it is tested without a
master.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, ClassVar, Literal, Protocol, TypeVar, cast

import attrs
from buildbot import config
from buildbot.process import buildstep
from buildbot.process.results import (
    CANCELLED,
    EXCEPTION,
    FAILURE,
    SKIPPED,
    SUCCESS,
    WARNINGS,
    statusToString,
)
from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from buildbot_jira.connection import SiteSettings, acquire
from buildbot_jira.jira.auth import DEFAULT_API_URL
from buildbot_jira.jira.client import GatingStatus, RetryPolicy
from buildbot_jira.jira.errors import (
    JiraAuthError,
    JiraConfigError,
    JiraError,
    JiraPermissionError,
    JiraSiteError,
    JiraUnavailableError,
)
from buildbot_jira.mapping.builds import default_pipeline_id, instance_name
from buildbot_jira.mapping.deployments import deployment_sequence_number
from buildbot_jira.options import SiteOptions, check_renderable, take_options

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

T = TypeVar("T")

#: The gating statuses that end the wait.
FINAL_STATUSES = frozenset({"allowed", "prevented", "invalid"})

#: The gate asks once per poll: the polls are its retries, and a ``Retry-After``
#: from Jira stretches the wait until the next poll instead of a wait inside the client.
GATE_RETRY = RetryPolicy(max_attempts=1)

#: Results that ``timeout_result`` may name (RETRY would start the build again,
#: which makes a new deployment that needs a new decision).
TIMEOUT_RESULTS: Mapping[int, str] = {
    SUCCESS: "SUCCESS",
    WARNINGS: "WARNINGS",
    FAILURE: "FAILURE",
    SKIPPED: "SKIPPED",
    EXCEPTION: "EXCEPTION",
    CANCELLED: "CANCELLED",
}

Decision = Literal["allowed", "prevented", "invalid", "timeout"]


class GatingSource(Protocol):
    """What :func:`wait_for_gate` asks: :class:`~buildbot_jira.jira.client.JiraCloud` is one."""

    async def get_gating_status(
        self, pipeline_id: str, environment_id: str, sequence_number: int
    ) -> GatingStatus | None:
        """Jira's gating status of a deployment, or None while Jira has none."""
        ...


@attrs.frozen
class DeploymentKey:
    """Which deployment a gate waits for."""

    pipeline_id: str
    environment_id: str
    sequence_number: int

    def __str__(self) -> str:
        return (
            f"deployment {self.sequence_number} of pipeline {self.pipeline_id!r} "
            f"to environment {self.environment_id!r}"
        )


@attrs.frozen
class GatePoll:
    """One question to Jira and its answer, as the gate reports it while waiting.

    ``status`` is None when Jira had no gating data yet (404) or could not be
    asked (``problem`` says why). ``next_poll_in`` is None when there is no
    next poll: Jira decided, or the time is up before the next one.
    """

    number: int
    elapsed: float
    status: GatingStatus | None
    problem: str | None = None
    next_poll_in: float | None = None


@attrs.frozen
class GateOutcome:
    """How the wait ended.

    ``decision`` is Jira's final status, or ``timeout``. ``last_status`` is
    the last gating status Jira gave (None: it never had any).
    """

    decision: Decision
    last_status: GatingStatus | None
    polls: int
    elapsed: float
    last_problem: str | None = None

    @property
    def blocking_issues(self) -> tuple[str, ...]:
        """The keys of the issues that the last status named."""
        return blocking_issue_keys(self.last_status)


def blocking_issue_keys(status: GatingStatus | None) -> tuple[str, ...]:
    """The issue keys in a gating status's details, in order."""
    if status is None:
        return ()
    keys = (detail.get("issueKey") for detail in status.details)
    return tuple(key for key in keys if isinstance(key, str) and key)


class _TimeUp(Exception):
    """The gate's time ran out while Jira was being asked."""


async def _within(clock: IReactorTime, seconds: float, work: Coroutine[Any, Any, T]) -> T:
    """``work``'s result, or :class:`_TimeUp` once ``seconds`` have passed."""
    running = _cancellable(defer.Deferred.fromCoroutine(work))
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        running.cancel()

    timer = clock.callLater(max(seconds, 0.0), expire)
    try:
        return await running
    except defer.CancelledError:
        if expired:
            raise _TimeUp() from None
        raise
    finally:
        if timer.active():
            timer.cancel()


def _cancellable(work: defer.Deferred[T]) -> defer.Deferred[T]:
    """``work``, whose cancellation always ends in ``CancelledError``.

    Cancelling a request that is waiting for its answer can surface as a
    connection failure (which the client reports as Jira being unavailable);
    the wait must see a cancellation as what it is.
    """
    cancelled = False

    def cancel(_: defer.Deferred[T]) -> None:
        nonlocal cancelled
        cancelled = True
        work.cancel()

    outer: defer.Deferred[T] = defer.Deferred(canceller=cancel)

    def forward(result: Any) -> None:
        if cancelled:
            return  # whatever the cancelled work turned into is dropped
        if isinstance(result, Failure):
            outer.errback(result)
        else:
            outer.callback(result)

    work.addBoth(forward)
    return outer


def _shielded(work: Awaitable[None] | None) -> defer.Deferred[None]:
    """Wait for ``work`` without letting a cancellation of the wait cancel ``work``.

    A log line or URL already on its way to the database is finished even
    when the step is interrupted meanwhile.
    """
    if work is None:
        return defer.succeed(None)
    pending = work

    async def finish() -> None:
        await pending

    inner = defer.Deferred.fromCoroutine(finish())
    outer: defer.Deferred[None] = defer.Deferred()
    inner.chainDeferred(outer)
    return outer


@attrs.frozen
class _Answer:
    """What one question to Jira brought: a status, or why there is none."""

    status: GatingStatus | None = None
    problem: str | None = None
    retry_after: float | None = None

    @property
    def decided(self) -> bool:
        return self.status is not None and self.status.status in FINAL_STATUSES


async def _ask(
    client: GatingSource, deployment: DeploymentKey, *, clock: IReactorTime, seconds: float
) -> _Answer:
    """Ask Jira once, within ``seconds``; an unreachable Jira is an answer too."""
    try:
        status = await _within(
            clock,
            seconds,
            client.get_gating_status(
                deployment.pipeline_id, deployment.environment_id, deployment.sequence_number
            ),
        )
    except JiraUnavailableError as unavailable:
        return _Answer(problem=str(unavailable), retry_after=unavailable.retry_after)
    return _Answer(status=status)


async def wait_for_gate(
    client: GatingSource,
    deployment: DeploymentKey,
    *,
    clock: IReactorTime,
    interval: float,
    timeout: float,
    on_poll: Callable[[GatePoll], Awaitable[None] | None] | None = None,
) -> GateOutcome:
    """Ask Jira every ``interval`` seconds until it decides, or ``timeout`` passes.

    No gating data yet (404) and an unreachable Jira
    (:class:`~buildbot_jira.jira.errors.JiraUnavailableError`) are asked again at
    the next poll; a ``Retry-After`` longer than ``interval`` pushes that
    poll back. A question still unanswered when the time is up is abandoned.
    Any other error of the client (refused credentials, missing permission,
    unknown site) is raised. ``on_poll`` hears of every poll (it may return
    an awaitable). Cancelling the wait stops it at once.
    """
    started = clock.seconds()
    deadline = started + timeout
    last_status: GatingStatus | None = None
    answer = _Answer()
    number = 0

    def outcome(decision: Decision) -> GateOutcome:
        elapsed = clock.seconds() - started
        return GateOutcome(decision, last_status, number, elapsed, answer.problem)

    while True:
        number += 1
        try:
            answer = await _ask(client, deployment, clock=clock, seconds=deadline - clock.seconds())
        except _TimeUp:
            return outcome("timeout")
        last_status = answer.status or last_status
        pause = max(interval, answer.retry_after or 0.0)
        if on_poll is not None:
            last_poll = answer.decided or pause >= deadline - clock.seconds()
            poll = GatePoll(
                number=number,
                elapsed=clock.seconds() - started,
                status=answer.status,
                problem=answer.problem,
                next_poll_in=None if last_poll else pause,
            )
            await _shielded(on_poll(poll))
        if answer.status is not None and answer.decided:
            return outcome(cast(Decision, answer.status.status))
        remaining = deadline - clock.seconds()
        if pause >= remaining:
            await task.deferLater(clock, max(remaining, 0.0), lambda: None)
            return outcome("timeout")
        await task.deferLater(clock, pause, lambda: None)


# -- the build step -------------------------------------------------------------


def _seconds(value: object, argument: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise JiraConfigError(f"{argument} must be a number of seconds above 0, not {value!r}")
    return float(value)


def _timeout_result(value: object) -> int:
    if isinstance(value, bool) or value not in TIMEOUT_RESULTS:
        names = ", ".join(TIMEOUT_RESULTS.values())
        raise JiraConfigError(
            f"timeout_result must be a Buildbot result ({names} from "
            f"buildbot.plugins.util), not {value!r}"
        )
    return cast(int, value)


@attrs.frozen
class _GateOptions:
    """The gate's arguments, checked."""

    site: SiteOptions
    environment_id: Any
    pipeline_id: Any
    interval: float
    timeout: float
    timeout_result: int


def _check_arguments(
    site: object,
    client_id: object,
    client_secret: object,
    *,
    environment_id: object,
    pipeline_id: object,
    cloud_id: object,
    api_url: object,
    site_url: object,
    interval: object,
    timeout: object,
    timeout_result: object,
) -> _GateOptions:
    """Check every argument of the gate; :class:`JiraConfigError` names the wrong one."""
    site_options = take_options(
        site,
        client_id,
        client_secret,
        {"cloud_id": cloud_id, "api_url": api_url, "site_url": site_url},
    )
    return _GateOptions(
        site=site_options,
        environment_id=check_renderable(environment_id, "environment_id", required=True),
        pipeline_id=check_renderable(pipeline_id, "pipeline_id"),
        interval=_seconds(interval, "interval"),
        timeout=_seconds(timeout, "timeout"),
        timeout_result=_timeout_result(timeout_result),
    )


@attrs.frozen
class _Rendered:
    """The gate's renderable arguments, rendered for one build."""

    client_id: str
    client_secret: str = attrs.field(repr=False)
    environment_id: str
    pipeline_id: str | None


def _describe_status(status: GatingStatus | None) -> str:
    if status is None:
        return "no gating status yet"
    keys = blocking_issue_keys(status)
    return f"{status.status} by {', '.join(keys)}" if keys else status.status


def _describe_poll(poll: GatePoll) -> str:
    """One line of the ``jira gating`` log."""
    if poll.problem is not None:
        what = f"Jira could not be asked: {poll.problem}"
    elif poll.status is None:
        what = "no gating status yet (Jira has no gating data for this deployment)"
    else:
        what = f"gating status {poll.status.status}"
        for detail in poll.status.details:
            what += f"\n    held by {detail.get('issueKey', '?')}: {detail.get('issueLink', '')}"
    after = f"; asking again in {poll.next_poll_in:g} s" if poll.next_poll_in is not None else ""
    return f"[{poll.elapsed:.0f} s] poll {poll.number}: {what}{after}"


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
    _RENDERED_ARGUMENTS: ClassVar[tuple[str, ...]] = (
        "client_id",
        "client_secret",
        "environment_id",
        "pipeline_id",
    )

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
        try:
            self.options: _GateOptions | None = _check_arguments(
                site,
                client_id,
                client_secret,
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
            self.options = None
            config.error(f"JiraDeploymentGate: {problem}")
        self._summary = "Jira gating: waiting"
        self._waiting: defer.Deferred[GateOutcome] | None = None
        self._linked: set[str] = set()
        self._gating_log: Any = None
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
        if self.options is None:  # only when the configuration errors were not raised
            return await self._fail("the step's arguments are wrong (see the master's log)")
        options = self.options
        try:
            rendered = await self._render_arguments()
        except JiraConfigError as problem:
            return await self._fail(str(problem), state="configuration error")
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
        connection = acquire(self._settings(options.site, rendered), reactor=self.master.reactor)
        try:
            outcome = await self._wait(connection.client, deployment, options)
        except defer.CancelledError:
            if not self.stopped:
                raise
            self._show("Jira gating: cancelled")
            await self._write("Interrupted: stopped waiting for Jira.")
            return CANCELLED
        except JiraError as problem:
            return await self._fail(_what_to_check(problem), state=_short_reason(problem))
        finally:
            await connection.release()
        return await self._conclude(outcome, deployment, options)

    async def _render_arguments(self) -> _Rendered:
        assert self.options is not None
        values = {
            "client_id": self.options.site.client_id,
            "client_secret": self.options.site.client_secret,
            "environment_id": self.options.environment_id,
            "pipeline_id": self.options.pipeline_id,
        }
        rendered: dict[str, str | None] = {}
        for argument in self._RENDERED_ARGUMENTS:
            try:
                value = await self.build.render(values[argument])
            except (KeyError, ValueError, TypeError) as problem:
                # A missing secret or property: Buildbot's message names it, never a value.
                raise JiraConfigError(f"{argument} could not be rendered: {problem}") from None
            text = None if value is None else str(value).strip()
            if not text and argument != "pipeline_id":
                raise JiraConfigError(
                    f"{argument} rendered to an empty value; check the secret or property it names"
                )
            rendered[argument] = text or None
        return _Rendered(**cast(dict[str, Any], rendered))

    def _default_pipeline_id(self) -> str:
        instance = instance_name(self.master.config.buildbotURL)
        return default_pipeline_id(instance, self.build.builder.name)

    @staticmethod
    def _settings(site: SiteOptions, rendered: _Rendered) -> SiteSettings:
        return site.site_settings(rendered.client_id, rendered.client_secret, GATE_RETRY)

    async def _wait(
        self, client: GatingSource, deployment: DeploymentKey, options: _GateOptions
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
            self._show(f"Jira gating: {_describe_status(poll.status)}")
        for detail in poll.status.details if poll.status is not None else ():
            key, link = detail.get("issueKey"), detail.get("issueLink")
            if isinstance(key, str) and key and _is_web_link(link) and key not in self._linked:
                self._linked.add(key)
                await self.addURL(key, link)
        await self._write(_describe_poll(poll))

    async def _conclude(
        self, outcome: GateOutcome, deployment: DeploymentKey, options: _GateOptions
    ) -> int:
        if outcome.decision == "allowed":
            self._show("Jira gating: allowed")
            await self._write("Jira allowed the deployment.")
            return SUCCESS
        if outcome.decision == "timeout":
            self._show(f"Jira gating: no decision within {options.timeout:g} s")
            await self._write(_timeout_advice(outcome, deployment, options))
            return options.timeout_result
        self._show(f"Jira gating: {_describe_status(outcome.last_status)}")
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


def _short_reason(problem: JiraError) -> str:
    if isinstance(problem, JiraAuthError):
        return "credentials refused"
    if isinstance(problem, JiraPermissionError):
        return "permission missing"
    if isinstance(problem, JiraSiteError):
        return "unknown site"
    return "Jira refused the request"


def _what_to_check(problem: JiraError) -> str:
    """The error's own message and what to check to fix it."""
    if isinstance(problem, JiraAuthError):
        advice = (
            "Check the step's client_id and client_secret: they must be OAuth 2.0 "
            "credentials of this Jira site (Jira settings > Apps > OAuth credentials)."
        )
    elif isinstance(problem, JiraPermissionError):
        advice = (
            "The OAuth credentials must have the permission for deployments to read "
            "gating status; a Jira admin can grant it where the credentials were created."
        )
    elif isinstance(problem, JiraSiteError):
        advice = "Check the step's site (and site_url, cloud_id if given)."
    else:
        advice = "Check the step's pipeline_id and environment_id, and site, api_url."
    return f"{problem}\n{advice}"


def _timeout_advice(outcome: GateOutcome, deployment: DeploymentKey, options: _GateOptions) -> str:
    """Why the time ran out, as far as the last answers tell."""
    text = f"No decision from Jira within {options.timeout:g} s ({outcome.polls} polls). "
    if outcome.last_problem is not None:
        return text + f"Jira could not be asked at the last poll: {outcome.last_problem}"
    if outcome.last_status is None:
        return text + (
            f"Jira never had gating data for {deployment}. Check that a "
            "JiraDeploymentReporter with enable_gating=True reports this builder to "
            f"environment {deployment.environment_id!r} with the same pipeline_id, that the "
            "build names a Jira issue (Jira keeps no deployment without one), and that "
            "the environment is set up for change management in Jira Service Management."
        )
    return text + f"Its last answer was: {_describe_status(outcome.last_status)}."
