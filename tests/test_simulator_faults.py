"""Tests of buildbot_jira.simulator.faults: failing and dropped answers, over HTTP and alone."""

from __future__ import annotations

import email.utils

from twisted.trial import unittest
from twisted.web.client import ResponseNeverReceived

from buildbot_jira.simulator.exchange import IncomingRequest
from buildbot_jira.simulator.faults import FaultPlan
from buildbot_jira.simulator.rate_limits import RATE_LIMIT_REASONS, http_date, iso_moment

from .test_contract import valid_build
from .test_simulator import (
    BUILDS,
    CREDENTIALS,
    InMemoryTestCase,
    Reply,
    SimulatorTestCase,
    run,
)

# A moment of 2027, with a fraction, so that dates and rounding show.
START = 1_800_000_000.25


class FaultTests(SimulatorTestCase):
    """Faults answer requests instead of the APIs."""

    @run
    async def test_fail_next_with_retry_after(self) -> None:
        token = await self.token()
        self.simulator.fail_next(2, 429, retry_after=7)
        first = await self.post_builds(valid_build(), token=token)
        second = await self.post_builds(valid_build(), token=token)
        third = await self.post_builds(valid_build(), token=token)
        self.assertEqual([first.status, second.status, third.status], [429, 429, 202])
        self.assertEqual(first.headers["retry-after"], "7")
        self.assertEqual(first.body, [{"message": "Simulated failure: HTTP 429"}])
        self.assertEqual(self.simulator.api_requests, 3)
        self.assertEqual([r.fault for r in self.simulator.requests[1:]], ["fail", "fail", None])
        self.assertEqual(len(self.simulator.builds[("main-ci", 42)].history), 1)

    @run
    async def test_fail_next_scopes(self) -> None:
        self.simulator.fail_next(1, 503, scope="token", body={"error": "temporarily_unavailable"})
        failed = await self.request("POST", "/oauth/token", CREDENTIALS)
        self.assertEqual((failed.status, failed.body), (503, {"error": "temporarily_unavailable"}))
        token = await self.token()
        self.simulator.fail_next(1, 500, scope="token")
        # An API call does not use up a token-scoped fault.
        self.assertEqual((await self.post_builds(valid_build(), token=token)).status, 202)
        self.assertEqual((await self.request("POST", "/oauth/token", CREDENTIALS)).status, 500)
        self.simulator.fail_next(1, 502, scope="any")
        self.assertEqual((await self.request("GET", "/_edge/tenant_info")).status, 502)
        self.assertEqual(self.simulator.token_requests, 3)

    @run
    async def test_drop_next_cuts_the_connection(self) -> None:
        token = await self.token()
        self.simulator.drop_next(1)
        with self.assertRaises(ResponseNeverReceived):
            await self.post_builds(valid_build(), token=token)
        self.assertEqual(self.simulator.builds, {})
        self.assertEqual(self.simulator.requests[-1].fault, "drop")
        self.assertIsNone(self.simulator.requests[-1].status)
        self.assertEqual((await self.post_builds(valid_build(), token=token)).status, 202)


class ProvokedRateLimitTests(InMemoryTestCase):
    """Faults that play each of Jira's rate limits, for clients to rehearse with (in memory)."""

    def setUp(self) -> None:
        super().setUp()
        self.clock.advance(START)
        self.token = self.simulator.issue_token()

    def post(self) -> Reply:
        return self.call("POST", BUILDS, {"builds": [valid_build()]}, token=self.token)

    def test_each_reason_comes_back_as_asked(self) -> None:
        for reason in RATE_LIMIT_REASONS:
            self.simulator.fail_next(1, 429, retry_after=3, reason=reason)
            refused = self.post()
            self.assertEqual(refused.status, 429)
            self.assertEqual(refused.headers["ratelimit-reason"], reason)
            self.assertEqual(refused.headers["retry-after"], "3")
            self.assertNotIn("x-ratelimit-reset", refused.headers)
        self.assertEqual({r.fault for r in self.simulator.requests}, {"fail"})
        self.assertEqual(self.simulator.builds, {})
        self.assertEqual(self.post().status, 202)

    def test_retry_after_as_an_http_date_counts_from_the_answer(self) -> None:
        self.simulator.fail_next(
            1, 429, retry_after=30, reason="jira-quota-based", retry_after_form="http-date"
        )
        self.clock.advance(5)
        refused = self.post()
        self.assertEqual(refused.headers["retry-after"], http_date(START + 5 + 30))
        told = email.utils.parsedate_to_datetime(refused.headers["retry-after"]).timestamp()
        self.assertTrue(START + 35 <= told < START + 36)
        self.assertEqual(refused.headers["ratelimit-reason"], "jira-quota-based")

    def test_a_wait_told_only_by_x_ratelimit_reset(self) -> None:
        self.simulator.fail_next(
            1, 429, retry_after=3, reason="jira-per-issue-on-write", retry_after_form="reset"
        )
        refused = self.post()
        self.assertNotIn("retry-after", refused.headers)
        self.assertEqual(refused.headers["x-ratelimit-reset"], iso_moment(START + 3))
        self.assertEqual(refused.headers["ratelimit-reason"], "jira-per-issue-on-write")

    def test_a_503_with_retry_after_and_any_headers(self) -> None:
        self.simulator.fail_next(
            1, 503, retry_after=2, headers={"X-RateLimit-NearLimit": "true", "Retry-After": "9"}
        )
        failed = self.post()
        self.assertEqual(failed.status, 503)
        # Headers given by name win over the ones the fault makes.
        self.assertEqual(failed.headers["retry-after"], "9")
        self.assertEqual(failed.headers["x-ratelimit-nearlimit"], "true")
        self.assertNotIn("ratelimit-reason", failed.headers)

    def test_a_recurring_fault_keeps_its_reason_and_form(self) -> None:
        self.simulator.fail_every(
            2, 429, retry_after=1, reason="jira-cost-based", retry_after_form="http-date"
        )
        replies = [self.post() for _ in range(4)]
        self.assertEqual([r.status for r in replies], [202, 429, 202, 429])
        self.assertEqual(replies[3].headers["ratelimit-reason"], "jira-cost-based")
        self.assertEqual(replies[3].headers["retry-after"], http_date(START + 1))

    def test_bad_rate_limit_faults_are_refused(self) -> None:
        for ask in (
            lambda: self.simulator.fail_next(1, 429, reason="too-many"),  # type: ignore[arg-type]
            lambda: self.simulator.fail_next(1, 429, retry_after_form="reset"),
            lambda: self.simulator.fail_every(1, 429, retry_after_form="http-date"),
            lambda: self.simulator.fail_every(
                1,
                429,
                retry_after=1,
                retry_after_form="later",  # type: ignore[arg-type]
            ),
        ):
            with self.assertRaises(ValueError):
                ask()
        self.assertEqual(self.simulator.state()["pendingFaults"], [])
        self.assertIsNone(self.simulator.state()["recurringFault"])


def incoming(path: str) -> IncomingRequest:
    return IncomingRequest(
        method="GET",
        raw_path=path,
        segments=tuple(path.split("/")[1:]),
        headers={},
        body=b"",
        site_url="http://jira.example",
        received_at=0.0,
    )


API = incoming("/jira/builds/0.1/cloud/c/bulk")
TOKEN = incoming("/oauth/token")
SITE = incoming("/_edge/tenant_info")


class FaultPlanTests(unittest.TestCase):
    """The plan alone, without HTTP."""

    def test_faults_apply_in_the_order_asked_for_within_their_scope(self) -> None:
        plan = FaultPlan()
        plan.fail_next(1, 503, scope="token")
        plan.fail_next(2, 429, retry_after=2.5)
        plan.drop_next(1, scope="any")
        first = plan.take(API)
        assert first is not None
        self.assertEqual((first.kind, first.status), ("fail", 429))
        token = plan.take(TOKEN)
        assert token is not None
        self.assertEqual(token.status, 503)
        second = plan.take(API)
        assert second is not None
        self.assertEqual(second.status, 429)
        dropped = plan.take(SITE)
        assert dropped is not None
        self.assertEqual(dropped.kind, "drop")
        self.assertIsNone(plan.take(API))
        self.assertEqual(plan.pending, [])

    def test_a_site_request_is_faulted_only_by_an_any_scope(self) -> None:
        plan = FaultPlan()
        plan.fail_next(1, 500)
        plan.fail_next(1, 502, scope="token")
        self.assertIsNone(plan.take(SITE))
        self.assertEqual(len(plan.pending), 2)

    def test_the_recurring_fault_counts_only_requests_left_to_it(self) -> None:
        plan = FaultPlan()
        plan.fail_every(2, 503, retry_after=1)
        plan.fail_next(1, 429)
        taken = [plan.take(API) for _ in range(5)]
        self.assertEqual([f.status if f else None for f in taken], [429, None, 503, None, 503])
        recurring = taken[2]
        assert recurring is not None
        self.assertEqual(recurring.answer().headers, {"Retry-After": "1"})

    def test_a_fault_answer_carries_retry_after_and_a_default_body(self) -> None:
        plan = FaultPlan()
        plan.fail_next(1, 429, retry_after=2.5)
        plan.fail_next(1, 503, body={"error": "busy"})
        first, second = plan.take(API), plan.take(API)
        assert first is not None
        assert second is not None
        self.assertEqual(first.answer().headers, {"Retry-After": "2.5"})
        self.assertEqual(first.answer().body, [{"message": "Simulated failure: HTTP 429"}])
        self.assertEqual((second.answer().status, second.answer().body), (503, {"error": "busy"}))
        self.assertEqual(second.answer().headers, {})

    def test_bad_faults_are_refused(self) -> None:
        plan = FaultPlan()
        for ask in (
            lambda: plan.fail_next(0, 500),
            lambda: plan.drop_next(1, scope="everything"),  # type: ignore[arg-type]
            lambda: plan.fail_every(0, 500),
            lambda: plan.fail_every(1, 500, scope="site"),  # type: ignore[arg-type]
            lambda: setattr(plan, "delay", -0.1),
        ):
            with self.assertRaises(ValueError):
                ask()
        self.assertEqual((plan.pending, plan.recurring, plan.delay), ([], None, 0.0))

    def test_clear_forgets_faults_and_delay_and_json_shows_them(self) -> None:
        plan = FaultPlan()
        plan.delay = 3
        plan.fail_next(2, 500, scope="any")
        plan.fail_every(4, 503)
        self.assertEqual(
            plan.to_json(),
            {
                "delay": 3,
                "pendingFaults": [{"kind": "fail", "remaining": 2, "scope": "any", "status": 500}],
                "recurringFault": {"every": 4, "scope": "api", "status": 503},
            },
        )
        plan.clear()
        self.assertEqual(
            plan.to_json(), {"delay": 0.0, "pendingFaults": [], "recurringFault": None}
        )

    def test_a_fault_dates_its_wait_from_the_moment_it_answers(self) -> None:
        plan = FaultPlan()
        plan.fail_next(2, 429, retry_after=3, reason="jira-quota-based", retry_after_form="reset")
        fault = plan.take(API)
        assert fault is not None
        self.assertEqual(
            fault.answer(now=START).headers,
            {"X-RateLimit-Reset": iso_moment(START + 3), "RateLimit-Reason": "jira-quota-based"},
        )
        later = fault.answer(now=START + 10).headers["X-RateLimit-Reset"]
        self.assertEqual(later, iso_moment(START + 13))

    def test_a_planned_fault_keeps_its_own_copy_of_the_headers(self) -> None:
        plan = FaultPlan()
        headers = {"X-Trace": "1"}
        plan.fail_next(1, 503, headers=headers)
        headers["X-Trace"] = "2"
        fault = plan.take(API)
        assert fault is not None
        self.assertEqual(fault.answer().headers, {"X-Trace": "1"})
