"""wait_for_gate: the deployment gate's polling loop, on a fake clock, against the simulator."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer, task
from twisted.trial import unittest

from buildbot_jira.gating import (
    GATE_RETRY,
    DeploymentKey,
    GateOutcome,
    GatePoll,
    describe_poll,
    describe_status,
    timeout_advice,
    wait_for_gate,
)
from buildbot_jira.jira.errors import (
    JiraAuthError,
    JiraPermissionError,
    JiraRequestError,
    JiraUnavailableError,
)
from buildbot_jira.jira.model import DeploymentData, Environment, Pipeline
from buildbot_jira.jira.results import GatingStatus
from buildbot_jira.simulator import RunningSimulator
from tests.support import coroutine_test, make_client, real_turn, start_simulator

KEY = DeploymentKey("ci.example.com/app", "production", 7000)


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


class ScriptedJira:
    """Answers from a script, in order: a GatingStatus, None (404) or an exception to raise."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.asked = 0

    async def get_gating_status(
        self, pipeline_id: str, environment_id: str, sequence_number: int
    ) -> GatingStatus | None:
        self.asked += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


class ErrorSortingTests(unittest.TestCase):
    """Which errors the wait asks again after: the taxonomy's ``retryable``, nothing else."""

    def test_a_retryable_error_is_asked_again_after_what_jira_asked_for(self) -> None:
        clock = task.Clock()
        jira = ScriptedJira(
            JiraUnavailableError("Jira is down", retry_after=50), GatingStatus("allowed", ())
        )
        polls: list[GatePoll] = []
        waiting = defer.Deferred.fromCoroutine(
            wait_for_gate(jira, KEY, clock=clock, interval=10, timeout=600, on_poll=polls.append)
        )
        self.assertEqual(polls[0].problem, "Jira is down")
        self.assertEqual(polls[0].next_poll_in, 50)
        clock.advance(49)
        self.assertEqual(jira.asked, 1)
        clock.advance(1)
        outcome = self.successResultOf(waiting)
        self.assertEqual(outcome.decision, "allowed")
        self.assertEqual(jira.asked, 2)

    def test_an_error_that_needs_a_person_is_raised_at_once(self) -> None:
        for error in (
            JiraRequestError("GET gating-status answered HTTP 400", status=400),
            JiraAuthError("refused"),
        ):
            clock = task.Clock()
            jira = ScriptedJira(error)
            waiting = defer.Deferred.fromCoroutine(
                wait_for_gate(jira, KEY, clock=clock, interval=10, timeout=600)
            )
            self.assertIs(self.failureResultOf(waiting).value, error)
            self.assertEqual(clock.getDelayedCalls(), [])


class DescriptionTests(unittest.TestCase):
    def test_status_names_the_issues_that_hold_it(self) -> None:
        held = GatingStatus(
            "prevented", ({"issueKey": "PROJ-9"}, {"issueKey": "OPS-2"}, {"type": "x"})
        )
        self.assertEqual(describe_status(held), "prevented by PROJ-9, OPS-2")
        self.assertEqual(describe_status(GatingStatus("awaiting", ())), "awaiting")
        self.assertEqual(describe_status(None), "no gating status yet")

    def test_a_poll_line_says_what_comes_next(self) -> None:
        line = describe_poll(GatePoll(number=2, elapsed=30.4, status=None, next_poll_in=30))
        self.assertEqual(
            line,
            "[30 s] poll 2: no gating status yet (Jira has no gating data for this deployment)"
            "; asking again in 30 s",
        )

    def test_timeout_advice_without_any_data_says_what_to_check(self) -> None:
        outcome = GateOutcome("timeout", None, polls=3, elapsed=100)
        text = timeout_advice(outcome, KEY, 100)
        self.assertTrue(text.startswith("No decision from Jira within 100 s (3 polls). "))
        self.assertIn("enable_gating=True", text)
        self.assertIn("environment 'production'", text)
