"""JiraDeploymentGate: its arguments, the polling loop (against the simulator), the step."""

from __future__ import annotations

from typing import Any

from buildbot import config
from buildbot.config.errors import capture_config_errors
from buildbot.plugins import steps, util
from buildbot.process.results import CANCELLED, FAILURE, RETRY, SUCCESS, WARNINGS
from buildbot.test.reactor import TestReactorMixin
from buildbot.test.steps import TestBuildStepMixin
from twisted.internet import defer, task
from twisted.trial import unittest

from buildbot_jira import steps as steps_module
from buildbot_jira.connection import SiteSettings
from buildbot_jira.jira.client import GatingStatus
from buildbot_jira.jira.errors import JiraAuthError, JiraPermissionError, JiraUnavailableError
from buildbot_jira.jira.model import DeploymentData, Environment, Pipeline
from buildbot_jira.simulator import RunningSimulator
from buildbot_jira.steps import (
    GATE_RETRY,
    DeploymentKey,
    GateOutcome,
    GatePoll,
    JiraDeploymentGate,
    wait_for_gate,
)
from tests.support import SECRET, coroutine_test, make_client, real_turn, start_simulator

GOOD: dict[str, Any] = {
    "site": "example.atlassian.net",
    "client_id": "id",
    "client_secret": SECRET,
    "environment_id": "production",
}

KEY = DeploymentKey("ci.example.com/app", "production", 7000)


def config_error(**arguments: object) -> str:
    """The configuration error the gate reports for ``arguments`` (GOOD for the rest)."""
    try:
        JiraDeploymentGate(**{**GOOD, **arguments})
    except config.ConfigErrors as errors:
        return "; ".join(errors.errors)
    raise AssertionError(f"no configuration error for {arguments!r}")


class GateConfigTests(unittest.TestCase):
    def test_plugin_is_found_by_buildbot(self) -> None:
        self.assertIs(steps.JiraDeploymentGate, JiraDeploymentGate)

    def test_documented_example_is_accepted(self) -> None:
        gate = JiraDeploymentGate(
            site="example.atlassian.net",
            client_id=util.Secret("jira-client-id"),
            client_secret=util.Secret("jira-client-secret"),
            environment_id=util.Property("environment", default="prod-east1"),
            interval=30,
            timeout=3600,
            timeout_result=util.FAILURE,
        )
        self.assertEqual(gate.name, "jira-gate")
        # A gate that Jira did not open must stop the build before the deployment.
        self.assertTrue(gate.haltOnFailure)
        assert gate.options is not None
        self.assertEqual(gate.options.interval, 30.0)
        self.assertEqual(gate.options.site.api_url, "https://api.atlassian.com")

    def test_missing_environment_id_is_named(self) -> None:
        self.assertIn("environment_id", config_error(environment_id=None))
        self.assertIn("environment_id", config_error(environment_id=""))
        self.assertIn("environment_id", config_error(environment_id=42))

    def test_wrong_interval_and_timeout_are_named(self) -> None:
        for value in ("30", 0, -1, True, None):
            self.assertIn("interval", config_error(interval=value), repr(value))
            self.assertIn("timeout must", config_error(timeout=value), repr(value))

    def test_bad_timeout_result_is_named(self) -> None:
        for value in (RETRY, 42, "failure", True, None):
            message = config_error(timeout_result=value)
            self.assertIn("timeout_result", message, repr(value))
            self.assertIn("FAILURE", message)

    def test_shared_site_arguments_are_checked(self) -> None:
        self.assertIn("site", config_error(site=None))
        self.assertIn("client_id", config_error(client_id=None))
        self.assertIn("client_secret", config_error(client_secret=""))
        self.assertIn("api_url", config_error(api_url="http://jira.example.com"))
        self.assertIn("pipeline_id", config_error(pipeline_id=12))
        self.assertIn("cloud_id", config_error(cloud_id=5))

    def test_unknown_argument_is_refused_by_buildbot(self) -> None:
        self.assertIn("enviroment_id", config_error(enviroment_id="production"))

    def test_step_arguments_are_passed_to_buildbot(self) -> None:
        gate = JiraDeploymentGate(**GOOD, name="approve", haltOnFailure=False)
        self.assertEqual(gate.name, "approve")
        self.assertFalse(gate.haltOnFailure)

    def test_errors_are_collected_while_a_config_loads(self) -> None:
        with capture_config_errors() as errors:
            JiraDeploymentGate(**{**GOOD, "environment_id": None, "interval": "soon"})
        (message,) = errors.errors
        self.assertTrue(message.startswith("JiraDeploymentGate: "))

    def test_the_secret_is_not_in_the_steps_text(self) -> None:
        # Buildbot writes a step's text to its log (when locks are released, for one).
        gate = JiraDeploymentGate(**GOOD)
        self.assertNotIn(SECRET, str(gate))
        self.assertNotIn(SECRET, repr(gate))
        self.assertIn("production", str(gate))


# -- the polling loop, against the simulator over loopback --------------------------


def deployment(number: int = 7000, *, gating: bool = True) -> dict[str, Any]:
    """A deployment of KEY's pipeline and environment, asking for gating."""
    return DeploymentData(
        pipeline=Pipeline(id=KEY.pipeline_id, display_name="app", url="https://ci.example.com"),
        environment=Environment(
            id=KEY.environment_id, display_name="production", type="production"
        ),
        deployment_sequence_number=number,
        update_sequence_number=1,
        display_name="app #7 to production",
        url="https://ci.example.com/#/builders/1/builds/7",
        description="deployment in progress",
        state="in_progress",
        last_updated="2026-11-28T00:00:00Z",
        issue_keys=("PROJ-1",),
        gating=gating,
    ).to_json()


class Polls:
    """An ``on_poll`` that keeps every poll, and waits (in real turns) for the next one."""

    def __init__(self) -> None:
        self.seen: list[GatePoll] = []

    def __call__(self, poll: GatePoll) -> None:
        self.seen.append(poll)

    async def nth(self, number: int) -> GatePoll:
        for _ in range(5000):
            if len(self.seen) >= number:
                return self.seen[number - 1]
            await real_turn()
        raise AssertionError(f"poll {number} never happened")

    def statuses(self) -> list[str | None]:
        return [poll.status.status if poll.status else None for poll in self.seen]


class WaitForGateTests(unittest.TestCase):
    """The loop with a fake clock for its waits and the simulator on loopback for Jira."""

    async def start(
        self,
        *,
        stored: bool = True,
        interval: float = 30,
        timeout: float = 3600,
        slow_jira: bool = False,
    ) -> tuple[RunningSimulator, task.Clock, Polls, defer.Deferred[GateOutcome]]:
        """Start the simulator (with KEY's deployment stored) and the wait.

        Returns the simulator, the fake clock, the polls seen and the wait.
        ``slow_jira`` puts the simulator's answer delays on the fake clock too.
        """
        self.clock = task.Clock()
        running = await start_simulator(self, clock=self.clock if slow_jira else None)
        self.client = make_client(self, running, clock=self.clock, retry=GATE_RETRY)
        if stored:
            await self.client.submit_deployments([deployment()])
        polls = Polls()
        waiting = defer.Deferred.fromCoroutine(
            wait_for_gate(
                self.client,
                KEY,
                clock=self.clock,
                interval=interval,
                timeout=timeout,
                on_poll=polls,
            )
        )
        return running, self.clock, polls, waiting

    @staticmethod
    def gating_requests(running: RunningSimulator) -> list[Any]:
        return [r for r in running.simulator.requests if r.path.endswith("/gating-status")]

    @coroutine_test
    async def test_awaiting_then_allowed_is_allowed(self) -> None:
        running, clock, polls, waiting = await self.start()
        first = await polls.nth(1)
        self.assertEqual(first.status.status if first.status else None, "awaiting")
        self.assertEqual(first.next_poll_in, 30)
        running.simulator.set_gating_status(*attrs_key(), "allowed")
        # Nothing is asked before the interval has passed.
        clock.advance(29)
        for _ in range(20):
            await real_turn()
        self.assertEqual(len(self.gating_requests(running)), 1)
        clock.advance(1)
        outcome = await waiting
        self.assertEqual(outcome.decision, "allowed")
        self.assertEqual(outcome.polls, 2)
        self.assertEqual(outcome.elapsed, 30)
        self.assertEqual(polls.statuses(), ["awaiting", "allowed"])
        self.assertIsNone(polls.seen[-1].next_poll_in)
        self.assertEqual(len(self.gating_requests(running)), 2)

    @coroutine_test
    async def test_prevented_names_the_blocking_issues(self) -> None:
        running, _, _, waiting = await self.start()
        running.simulator.set_gating_status(*attrs_key(), "prevented", details=["PROJ-9", "OPS-2"])
        outcome = await waiting
        self.assertEqual(outcome.decision, "prevented")
        self.assertEqual(outcome.blocking_issues, ("PROJ-9", "OPS-2"))
        assert outcome.last_status is not None
        links = [d["issueLink"] for d in outcome.last_status.details]
        self.assertEqual(links, [f"{running.url}/browse/PROJ-9", f"{running.url}/browse/OPS-2"])
        self.assertEqual(outcome.polls, 1)

    @coroutine_test
    async def test_invalid_ends_the_wait(self) -> None:
        running, _, _, waiting = await self.start()
        running.simulator.set_gating_status(*attrs_key(), "invalid")
        outcome = await waiting
        self.assertEqual(outcome.decision, "invalid")

    @coroutine_test
    async def test_no_data_yet_is_asked_again_until_there_is(self) -> None:
        running, clock, polls, waiting = await self.start(stored=False)
        first = await polls.nth(1)
        self.assertIsNone(first.status)
        self.assertIsNone(first.problem)
        self.assertEqual(first.next_poll_in, 30)
        self.assertEqual([r.status for r in self.gating_requests(running)], [404])
        await self.client.submit_deployments([deployment()])
        clock.advance(30)
        await polls.nth(2)
        running.simulator.set_gating_status(*attrs_key(), "allowed")
        clock.advance(30)
        outcome = await waiting
        self.assertEqual(polls.statuses(), [None, "awaiting", "allowed"])
        self.assertEqual(outcome.decision, "allowed")
        self.assertEqual(outcome.elapsed, 60)

    @coroutine_test
    async def test_429_retry_after_longer_than_the_interval_is_honoured(self) -> None:
        running, clock, polls, waiting = await self.start()
        await polls.nth(1)
        running.simulator.fail_next(1, 429, retry_after=90)
        clock.advance(30)
        limited = await polls.nth(2)
        self.assertIsNone(limited.status)
        self.assertIn("429", limited.problem or "")
        self.assertEqual(limited.next_poll_in, 90)
        clock.advance(89)
        for _ in range(20):
            await real_turn()
        self.assertEqual(len(self.gating_requests(running)), 2)
        running.simulator.set_gating_status(*attrs_key(), "allowed")
        clock.advance(1)
        outcome = await waiting
        self.assertEqual(outcome.decision, "allowed")
        self.assertEqual(outcome.elapsed, 120)
        self.assertEqual([r.status for r in self.gating_requests(running)], [200, 429, 200])

    @coroutine_test
    async def test_a_short_retry_after_keeps_the_interval(self) -> None:
        running, clock, polls, waiting = await self.start()
        await polls.nth(1)
        running.simulator.fail_next(1, 503, retry_after=5)
        clock.advance(30)
        unavailable = await polls.nth(2)
        self.assertIn("503", unavailable.problem or "")
        self.assertEqual(unavailable.next_poll_in, 30)
        waiting.cancel()
        with self.assertRaises(defer.CancelledError):
            await waiting

    @coroutine_test
    async def test_timeout_ends_with_the_last_status(self) -> None:
        _, clock, polls, waiting = await self.start(interval=30, timeout=100)
        for number in (1, 2, 3):
            await polls.nth(number)
            clock.advance(30)
        last = await polls.nth(4)
        # 90 s: the next poll would come after the deadline, so there is none.
        self.assertEqual(last.elapsed, 90)
        self.assertIsNone(last.next_poll_in)
        self.assertFalse(waiting.called)
        clock.advance(10)
        outcome = await waiting
        self.assertEqual(outcome.decision, "timeout")
        self.assertEqual(outcome.elapsed, 100)
        self.assertEqual(outcome.polls, 4)
        assert outcome.last_status is not None
        self.assertEqual(outcome.last_status.status, "awaiting")
        self.assertEqual(clock.getDelayedCalls(), [])

    @coroutine_test
    async def test_a_slow_answer_does_not_stretch_the_timeout(self) -> None:
        running, clock, polls, waiting = await self.start(timeout=100, slow_jira=True)
        await polls.nth(1)
        # From now on the simulator answers only when the fake clock has moved 1000 s.
        running.simulator.set_delay(1000)
        clock.advance(30)
        await self.until_asked(running, 2)
        clock.advance(69)
        await real_turn()
        self.assertFalse(waiting.called)
        clock.advance(1)
        outcome = await waiting
        self.assertEqual(outcome.decision, "timeout")
        self.assertEqual(outcome.elapsed, 100)
        self.assertEqual(len(polls.seen), 1)
        assert outcome.last_status is not None
        self.assertEqual(outcome.last_status.status, "awaiting")
        self.assertEqual(outcome.polls, 2)

    @coroutine_test
    async def test_refused_credentials_are_raised_not_polled(self) -> None:
        running = await start_simulator(self)
        clock = task.Clock()
        client = make_client(self, running, clock=clock, retry=GATE_RETRY, secret="wrong")
        with self.assertRaises(JiraAuthError):
            await wait_for_gate(client, KEY, clock=clock, interval=30, timeout=3600)
        self.assertEqual(clock.getDelayedCalls(), [])

    @coroutine_test
    async def test_missing_permission_is_raised(self) -> None:
        running = await start_simulator(self, permissions={"buildbot-ci": ["builds"]})
        clock = task.Clock()
        client = make_client(self, running, clock=clock, retry=GATE_RETRY)
        with self.assertRaises(JiraPermissionError):
            await wait_for_gate(client, KEY, clock=clock, interval=30, timeout=3600)

    @coroutine_test
    async def test_cancelling_stops_the_polling_at_once(self) -> None:
        running, clock, polls, waiting = await self.start()
        await polls.nth(1)
        waiting.cancel()
        with self.assertRaises(defer.CancelledError):
            await waiting
        self.assertEqual(clock.getDelayedCalls(), [])
        clock.advance(3600)
        for _ in range(20):
            await real_turn()
        self.assertEqual(len(self.gating_requests(running)), 1)

    @coroutine_test
    async def test_cancelling_during_a_request_stops_at_once(self) -> None:
        running, clock, polls, waiting = await self.start(slow_jira=True)
        await polls.nth(1)
        running.simulator.set_delay(1000)
        clock.advance(30)
        await self.until_asked(running, 2)
        waiting.cancel()
        with self.assertRaises(defer.CancelledError):
            await waiting
        self.assertEqual(len(polls.seen), 1)
        self.assertEqual(clock.getDelayedCalls()[0].getTime(), 1030)  # the simulator's answer

    async def until_asked(self, running: RunningSimulator, count: int) -> None:
        """Wait (in real turns) until the simulator has received ``count`` gating questions."""
        for _ in range(5000):
            if len(self.gating_requests(running)) >= count:
                return
            await real_turn()
        raise AssertionError(f"Jira was not asked {count} times")


def attrs_key() -> tuple[str, str, int]:
    """KEY as the simulator's (pipeline, environment, sequence number)."""
    return (KEY.pipeline_id, KEY.environment_id, KEY.sequence_number)


# -- the step in a fake build ---------------------------------------------------------------


class FakeJira:
    """Answers gating status from a script: GatingStatus, None (404) or an exception."""

    def __init__(self, reactor: Any, script: list[Any]) -> None:
        self.reactor = reactor
        self.script = list(script)
        self.asked: list[tuple[float, tuple[str, str, int]]] = []

    async def get_gating_status(
        self, pipeline_id: str, environment_id: str, sequence_number: int
    ) -> GatingStatus | None:
        self.asked.append((self.reactor.seconds(), (pipeline_id, environment_id, sequence_number)))
        answer = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


class FakeConnection:
    def __init__(self, client: FakeJira) -> None:
        self.client = client
        self.released = False

    async def release(self) -> None:
        self.released = True


def status(name: str, *issues: str) -> GatingStatus:
    details = tuple(
        {
            "type": "issue",
            "issueKey": key,
            "issueLink": f"https://example.atlassian.net/browse/{key}",
        }
        for key in issues
    )
    return GatingStatus(status=name, details=details)


class GateStepTests(TestBuildStepMixin, TestReactorMixin, unittest.TestCase):
    """The step in Buildbot's fake build, with a scripted Jira and the fake reactor."""

    def setUp(self) -> defer.Deferred[None]:  # type: ignore[override]
        self.setup_test_reactor()
        return self.setup_test_build_step(
            with_secrets={"jira-client-id": "id-from-secret", "jira-client-secret": SECRET}
        )

    def script(self, *answers: Any) -> FakeJira:
        """Make the step's connection answer ``answers``, in order (the last one repeats)."""
        self.jira = FakeJira(self.reactor, list(answers))
        self.connections: list[tuple[SiteSettings, FakeConnection]] = []

        def acquire(settings: SiteSettings, *, reactor: Any = None) -> FakeConnection:
            self.assertIs(reactor, self.reactor)
            connection = FakeConnection(self.jira)
            self.connections.append((settings, connection))
            return connection

        self.patch(steps_module, "acquire", acquire)
        return self.jira

    def gate(self, **arguments: Any) -> JiraDeploymentGate:
        base = {
            "site": "example.atlassian.net",
            "client_id": util.Secret("jira-client-id"),
            "client_secret": util.Secret("jira-client-secret"),
            "environment_id": util.Property("environment"),
        }
        step = self.setup_step(JiraDeploymentGate(**{**base, **arguments}))
        self.build.setProperty("environment", "prod-east1", "test")
        return step

    async def run_gate(self, *advances: float) -> None:
        """Run the step, advancing the fake reactor by each of ``advances`` in turn."""
        running = self.run_step()
        for seconds in advances:
            self.reactor.advance(seconds)
        await running

    def log_text(self, step: JiraDeploymentGate) -> str:
        return str(step.logs["jira gating"].stdout)

    async def urls(self, step: JiraDeploymentGate) -> list[tuple[str, str]]:
        data = await self.master.data.get(("steps", step.stepid))
        return [(url["name"], url["url"]) for url in data["urls"]]

    @coroutine_test
    async def test_allowed_after_awaiting_succeeds(self) -> None:
        jira = self.script(status("awaiting"), status("awaiting"), status("allowed"))
        step = self.gate()
        self.expect_outcome(SUCCESS, "Jira gating: allowed")
        await self.run_gate(30, 30)
        # The reporters' key: default pipeline of this builder, the build's sequence number.
        expected = ("localhost:8080/Builder", "prod-east1", 13000)
        self.assertEqual([key for _, key in jira.asked], [expected] * 3)
        self.assertEqual([at for at, _ in jira.asked], [0, 30, 60])
        ((settings, connection),) = self.connections
        self.assertEqual(settings.client_id, "id-from-secret")
        self.assertEqual(settings.client_secret, SECRET)
        self.assertEqual(settings.retry, GATE_RETRY)
        self.assertTrue(connection.released)
        text = self.log_text(step)
        self.assertIn("deployment 13000 of pipeline 'localhost:8080/Builder'", text)
        self.assertEqual(text.count("gating status awaiting; asking again in 30 s"), 2)
        self.assertIn("poll 3: gating status allowed", text)
        self.assertNotIn(SECRET, text)

    @coroutine_test
    async def test_state_string_shows_the_status_while_waiting(self) -> None:
        self.script(status("awaiting"), status("allowed"))
        step = self.gate()
        self.expect_outcome(SUCCESS)
        running = self.run_step()
        self.reactor.advance(1)  # the state string is debounced
        data = await self.master.data.get(("steps", step.stepid))
        self.assertEqual(data["state_string"], "Jira gating: awaiting")
        self.reactor.advance(29)
        await running

    @coroutine_test
    async def test_prevented_fails_with_a_link_to_each_blocking_issue(self) -> None:
        self.script(status("awaiting", "PROJ-9"), status("prevented", "PROJ-9", "OPS-2"))
        step = self.gate(pipeline_id="deploy/app")
        self.expect_outcome(FAILURE, "Jira gating: prevented by PROJ-9, OPS-2 (failure)")
        await self.run_gate(30)
        self.assertEqual(
            await self.urls(step),
            [
                ("PROJ-9", "https://example.atlassian.net/browse/PROJ-9"),
                ("OPS-2", "https://example.atlassian.net/browse/OPS-2"),
            ],
        )
        self.assertEqual(self.jira.asked[0][1][0], "deploy/app")
        text = self.log_text(step)
        self.assertIn("held by PROJ-9: https://example.atlassian.net/browse/PROJ-9", text)
        self.assertIn("Jira prevented the deployment; it is held by PROJ-9, OPS-2.", text)

    @coroutine_test
    async def test_invalid_fails(self) -> None:
        self.script(status("invalid"))
        self.gate()
        self.expect_outcome(FAILURE, "Jira gating: invalid (failure)")
        await self.run_gate()

    @coroutine_test
    async def test_timeout_ends_with_the_configured_result(self) -> None:
        self.script(None)
        step = self.gate(interval=10, timeout=25, timeout_result=WARNINGS)
        self.expect_outcome(WARNINGS, "Jira gating: no decision within 25 s (warnings)")
        await self.run_gate(10, 10, 5)
        self.assertEqual([at for at, _ in self.jira.asked], [0, 10, 20])
        text = self.log_text(step)
        self.assertIn("Jira never had gating data", text)
        self.assertIn("enable_gating=True", text)

    @coroutine_test
    async def test_unavailable_jira_waits_what_it_asks(self) -> None:
        self.script(JiraUnavailableError("Jira is down", retry_after=45), status("allowed"))
        step = self.gate(interval=10)
        self.expect_outcome(SUCCESS)
        await self.run_gate(10, 35)
        self.assertEqual([at for at, _ in self.jira.asked], [0, 45])
        self.assertIn(
            "Jira could not be asked: Jira is down; asking again in 45 s", self.log_text(step)
        )

    @coroutine_test
    async def test_refused_credentials_fail_and_say_what_to_check(self) -> None:
        self.script(JiraAuthError("Jira refused client ID 'id-from-secret'"))
        step = self.gate()
        self.expect_outcome(FAILURE, "Jira gating: credentials refused (failure)")
        await self.run_gate()
        text = self.log_text(step)
        self.assertIn("Check the step's client_id and client_secret", text)
        self.assertNotIn(SECRET, text)
        self.assertTrue(self.connections[0][1].released)

    @coroutine_test
    async def test_missing_permission_fails_and_says_what_to_check(self) -> None:
        self.script(JiraPermissionError("GET deployments was refused (HTTP 403)", status=403))
        step = self.gate()
        self.expect_outcome(FAILURE, "Jira gating: permission missing (failure)")
        await self.run_gate()
        self.assertIn("permission for deployments", self.log_text(step))

    @coroutine_test
    async def test_a_missing_secret_fails_and_names_it(self) -> None:
        self.script(status("allowed"))
        step = self.gate(client_secret=util.Secret("no-such-secret"))
        self.expect_outcome(FAILURE, "Jira gating: configuration error (failure)")
        await self.run_gate()
        self.assertIn("client_secret could not be rendered", self.log_text(step))
        self.assertIn("no-such-secret", self.log_text(step))
        self.assertEqual(self.connections, [])

    @coroutine_test
    async def test_an_empty_environment_property_fails_and_names_it(self) -> None:
        self.script(status("allowed"))
        step = self.gate(environment_id=util.Property("not-set"))
        self.expect_outcome(FAILURE, "Jira gating: configuration error (failure)")
        await self.run_gate()
        self.assertIn("environment_id rendered to an empty value", self.log_text(step))

    @coroutine_test
    async def test_interrupt_stops_the_wait_at_once(self) -> None:
        self.script(status("awaiting"))
        step = self.gate()
        self.expect_outcome(CANCELLED, "Jira gating: cancelled (cancelled)")
        running = self.run_step()
        self.reactor.advance(30)
        self.assertEqual(len(self.jira.asked), 2)
        await step.interrupt("stopped by a test")
        await running
        self.reactor.advance(3600)
        self.assertEqual(len(self.jira.asked), 2)
        self.assertTrue(self.connections[0][1].released)
        self.assertIn("Interrupted", self.log_text(step))
