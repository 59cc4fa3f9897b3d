"""Tests of buildbot_jira.simulator.burst: the burst limit per endpoint, the near-limit switch.

Over HTTP in memory (the simulator's resource through treq's testing agent)
on a fake clock, and the bookkeeping alone.
"""

from __future__ import annotations

from typing import Any

from twisted.trial import unittest

from buildbot_jira.simulator import DEFAULT_CLOUD_ID, JiraSimulator
from buildbot_jira.simulator.burst import BurstLimit, BurstVerdict, BurstWindows
from buildbot_jira.simulator.rate_limits import iso_moment

from .test_contract import valid_build
from .test_simulator import (
    BUILDS,
    CREDENTIALS,
    DEPLOYMENTS,
    DEVINFO,
    InMemoryTestCase,
    Reply,
    SimulatorTestCase,
    run,
)

# A moment of 2027, with a fraction, so that dates and rounding show.
START = 1_800_000_000.25
BUILD = f"/jira/builds/0.1/cloud/{DEFAULT_CLOUD_ID}/pipelines/main-ci/builds/1"
OTHER_BUILD = f"/jira/builds/0.1/cloud/{DEFAULT_CLOUD_ID}/pipelines/other/builds/7"
RATE_HEADERS = (
    "retry-after",
    "ratelimit-reason",
    "x-ratelimit-reset",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-nearlimit",
)


def build(number: int) -> dict[str, Any]:
    return {**valid_build(), "buildNumber": number}


def rate_headers(reply: Reply) -> dict[str, str]:
    """The rate-limit headers of ``reply``."""
    return {name: reply.headers[name] for name in RATE_HEADERS if name in reply.headers}


class BurstLimitTests(InMemoryTestCase):
    """A burst limit of N requests per second per endpoint and method."""

    def setUp(self) -> None:
        super().setUp()
        self.clock.advance(START)
        self.serve(JiraSimulator(clock=self.clock, rate_limit=2))
        self.token = self.simulator.issue_token()

    def post(self, path: str, body: Any) -> Reply:
        return self.call("POST", path, body, token=self.token)

    def post_build(self, number: int) -> Reply:
        return self.post(BUILDS, {"builds": [build(number)]})

    def test_the_request_after_the_budget_is_refused_with_all_three_headers(self) -> None:
        first, second, third = self.post_build(1), self.post_build(2), self.post_build(3)
        self.assertEqual([first.status, second.status, third.status], [202, 202, 429])
        self.assertEqual(
            rate_headers(third),
            {
                "retry-after": "1",
                "ratelimit-reason": "jira-burst-based",
                "x-ratelimit-reset": iso_moment(START + 1),
                "x-ratelimit-limit": "2",
                "x-ratelimit-remaining": "0",
            },
        )
        self.assertIn("at most 2 requests per second", third.body[0]["message"])
        # The refused request was not processed: only two builds are stored.
        self.assertEqual(sorted(number for _, number in self.simulator.builds), [1, 2])
        # It is recorded like any request, and is no fault.
        last = self.simulator.requests[-1]
        self.assertEqual((last.status, last.fault), (429, None))

    def test_served_answers_count_the_budget_down(self) -> None:
        self.simulator.set_rate_limit(10)
        replies = [self.post_build(number) for number in range(1, 11)]
        self.assertEqual({reply.status for reply in replies}, {202})
        self.assertEqual(
            [reply.headers["x-ratelimit-remaining"] for reply in replies],
            [str(left) for left in range(9, -1, -1)],
        )
        self.assertEqual({reply.headers["x-ratelimit-limit"] for reply in replies}, {"10"})
        # Less than a fifth of the budget left: 1 and 0 of 10.
        self.assertEqual(
            [reply.headers.get("x-ratelimit-nearlimit") for reply in replies],
            [None] * 8 + ["true", "true"],
        )
        self.assertNotIn("retry-after", replies[-1].headers)

    def test_a_request_during_the_wait_is_refused_again_and_not_counted(self) -> None:
        self.simulator.set_rate_limit(2, retry_after=3)
        self.post_build(1), self.post_build(2)
        refused = self.post_build(3)
        self.assertEqual((refused.status, refused.headers["retry-after"]), (429, "3"))
        wait_ends = iso_moment(START + 3)
        self.assertEqual(refused.headers["x-ratelimit-reset"], wait_ends)
        # Long after the window, yet within the wait: refused again, the same end told.
        self.clock.advance(1.5)
        again = self.post_build(4)
        self.assertEqual((again.status, again.headers["retry-after"]), (429, "2"))
        self.assertEqual(again.headers["x-ratelimit-reset"], wait_ends)
        self.assertEqual(again.headers["ratelimit-reason"], "jira-burst-based")
        self.clock.advance(1)
        late = self.post_build(5)
        self.assertEqual((late.status, late.headers["retry-after"]), (429, "1"))
        self.clock.advance(0.5)
        served = self.post_build(6)
        # The refused request half a second ago did not count against this window.
        self.assertEqual((served.status, served.headers["x-ratelimit-remaining"]), (202, "1"))
        self.assertEqual(sorted(number for _, number in self.simulator.builds), [1, 2, 6])

    def test_the_window_slides_with_the_clock(self) -> None:
        self.post_build(1)
        self.clock.advance(0.5)
        self.post_build(2)
        self.clock.advance(0.5)
        # The first request has left the window, the second has not.
        served = self.post_build(3)
        self.assertEqual((served.status, served.headers["x-ratelimit-remaining"]), (202, "0"))
        refused = self.post_build(4)
        # The window frees in half a second: told as a whole second.
        self.assertEqual((refused.status, refused.headers["retry-after"]), (429, "1"))
        self.clock.advance(1)
        self.assertEqual(self.post_build(5).status, 202)

    def test_other_endpoints_and_methods_are_unaffected(self) -> None:
        self.post_build(1), self.post_build(2)
        self.assertEqual(self.post_build(3).status, 429)
        deployment = self.post(DEPLOYMENTS, {"deployments": []})
        self.assertEqual(deployment.headers["x-ratelimit-remaining"], "1")
        devinfo = self.post(DEVINFO, {"repositories": []})
        self.assertEqual(devinfo.headers["x-ratelimit-remaining"], "1")
        # The GET of single builds is one endpoint, whichever build it names.
        found = self.call("GET", BUILD, token=self.token)
        self.assertEqual((found.status, found.headers["x-ratelimit-remaining"]), (200, "1"))
        missing = self.call("GET", OTHER_BUILD, token=self.token)
        self.assertEqual((missing.status, missing.headers["x-ratelimit-remaining"]), (404, "0"))
        self.assertEqual(self.call("GET", BUILD, token=self.token).status, 429)
        deleted = self.call("DELETE", BUILD, token=self.token)
        self.assertEqual((deleted.status, deleted.headers["x-ratelimit-remaining"]), (202, "1"))
        # The token endpoint and tenant_info are not limited, nor a path that names none.
        for _ in range(4):
            self.assertEqual(self.call("POST", "/oauth/token", CREDENTIALS).status, 200)
            site = self.call("GET", "/_edge/tenant_info")
            self.assertEqual((site.status, rate_headers(site)), (200, {}))
            self.assertEqual(self.call("GET", "/jira/nothing", token=self.token).status, 404)

    def test_a_refusal_speaks_the_shape_of_its_api(self) -> None:
        self.simulator.set_rate_limit(1)
        self.post(DEVINFO, {"repositories": []})
        refused = self.post(DEVINFO, {"repositories": []})
        self.assertEqual(refused.status, 429)
        self.assertIn("errorMessages", refused.body)

    def test_scopes_reach_the_token_endpoint_and_the_site(self) -> None:
        self.simulator.set_rate_limit(1, scope="token")
        self.assertEqual(self.call("POST", "/oauth/token", CREDENTIALS).status, 200)
        self.assertEqual(self.call("POST", "/oauth/token", CREDENTIALS).status, 429)
        self.assertEqual([self.post_build(n).status for n in (1, 2)], [202, 202])
        self.simulator.set_rate_limit(1, scope="any")
        self.assertEqual([self.post_build(n).status for n in (3, 4)], [202, 429])
        sites = [self.call("GET", "/_edge/tenant_info").status for _ in range(2)]
        self.assertEqual(sites, [200, 429])

    def test_faulted_requests_are_not_served_so_they_do_not_count(self) -> None:
        self.simulator.fail_next(3, 503)
        self.assertEqual([self.post_build(n).status for n in (1, 2, 3)], [503, 503, 503])
        self.assertEqual([self.post_build(n).status for n in (4, 5, 6)], [202, 202, 429])

    def test_the_limit_can_be_changed_and_lifted(self) -> None:
        self.post_build(1), self.post_build(2)
        self.assertEqual(self.post_build(3).status, 429)
        # A new limit starts with fresh counts and no wait.
        self.simulator.set_rate_limit(3)
        self.assertEqual(self.simulator.rate_limit, BurstLimit(3))
        self.assertEqual([self.post_build(n).status for n in (4, 5, 6, 7)], [202, 202, 202, 429])
        self.simulator.set_rate_limit(None)
        self.assertIsNone(self.simulator.rate_limit)
        lifted = [self.post_build(n) for n in range(8, 14)]
        self.assertEqual({reply.status for reply in lifted}, {202})
        self.assertEqual({name for r in lifted for name in rate_headers(r)}, set())
        # The rate limit is a setting, not a fault: clearing faults keeps it.
        self.simulator.set_rate_limit(1)
        self.simulator.clear_faults()
        self.assertEqual(self.simulator.rate_limit, BurstLimit(1))

    def test_the_state_shows_the_limit_and_counts_the_refusals(self) -> None:
        for number in range(1, 6):
            self.post_build(number)
        state = self.simulator.state()
        self.assertEqual(
            state["rateLimits"],
            {
                "burstLimit": {"requestsPerSecond": 2, "retryAfter": None, "scope": "api"},
                "nearLimit": False,
            },
        )
        self.assertEqual([r["status"] for r in state["requests"]], [202, 202, 429, 429, 429])
        self.assertEqual({r["fault"] for r in state["requests"]}, {None})


class NearLimitTests(InMemoryTestCase):
    """The switch that adds ``X-RateLimit-NearLimit: true`` to successful API answers."""

    def test_successful_api_answers_carry_it_until_faults_are_cleared(self) -> None:
        token = self.simulator.issue_token()
        self.simulator.near_limit = True
        accepted = self.call("POST", BUILDS, {"builds": [valid_build()]}, token=token)
        self.assertEqual(rate_headers(accepted), {"x-ratelimit-nearlimit": "true"})
        # Only successful answers, and only of the APIs.
        malformed = self.call("POST", BUILDS, {"builds": "none"}, token=token)
        self.assertEqual((malformed.status, rate_headers(malformed)), (400, {}))
        self.assertEqual(rate_headers(self.call("POST", "/oauth/token", CREDENTIALS)), {})
        self.assertEqual(self.simulator.state()["rateLimits"]["nearLimit"], True)
        self.simulator.clear_faults()
        self.assertFalse(self.simulator.near_limit)
        again = self.call("POST", BUILDS, {"builds": [valid_build()]}, token=token)
        self.assertEqual(rate_headers(again), {})


class OnTheWireTests(SimulatorTestCase):
    """The rate-limit headers reach a client over a real loopback connection."""

    @run
    async def test_a_refusal_and_its_headers_cross_tcp(self) -> None:
        self.clock.advance(START)
        self.simulator.set_rate_limit(1)
        token = await self.token()
        served = await self.post_builds(build(1), token=token)
        refused = await self.post_builds(build(2), token=token)
        self.assertEqual(
            rate_headers(served),
            {
                "x-ratelimit-limit": "1",
                "x-ratelimit-remaining": "0",
                "x-ratelimit-nearlimit": "true",
            },
        )
        self.assertEqual(refused.status, 429)
        self.assertEqual(
            rate_headers(refused),
            {
                "retry-after": "1",
                "ratelimit-reason": "jira-burst-based",
                "x-ratelimit-reset": iso_moment(START + 1),
                "x-ratelimit-limit": "1",
                "x-ratelimit-remaining": "0",
            },
        )


class BurstWindowsTests(unittest.TestCase):
    """The bookkeeping alone, without HTTP."""

    def test_a_window_serves_its_budget_then_refuses_until_the_wait_ends(self) -> None:
        windows = BurstWindows(BurstLimit(2))
        self.assertEqual(windows.judge("POST /a", 10.0), BurstVerdict(True, 1))
        self.assertEqual(windows.judge("POST /a", 10.4), BurstVerdict(True, 0))
        self.assertEqual(windows.judge("POST /a", 10.6), BurstVerdict(False, 0, 11.6))
        self.assertEqual(windows.judge("POST /a", 11.5), BurstVerdict(False, 0, 11.6))
        self.assertEqual(windows.judge("GET /a", 11.5), BurstVerdict(True, 1))
        self.assertEqual(windows.judge("POST /a", 11.6), BurstVerdict(True, 1))

    def test_a_request_exactly_one_window_later_finds_room(self) -> None:
        # 0.1 + 1.0 is not exactly 1.1 in floating point.
        windows = BurstWindows(BurstLimit(1))
        self.assertTrue(windows.judge("POST /a", 0.1).served)
        self.assertTrue(windows.judge("POST /a", 1.1).served)
        self.assertTrue(windows.judge("POST /a", 2.1).served)

    def test_a_chosen_wait_replaces_the_window(self) -> None:
        windows = BurstWindows(BurstLimit(1, retry_after=3))
        windows.judge("POST /a", 0.0)
        self.assertEqual(windows.judge("POST /a", 0.5), BurstVerdict(False, 0, 3.5))

    def test_bad_limits_are_refused(self) -> None:
        for options in (
            {"requests_per_second": 0},
            {"requests_per_second": 1, "retry_after": 0},
            {"requests_per_second": 1, "scope": "site"},
        ):
            with self.subTest(options=options), self.assertRaises(ValueError):
                BurstLimit(**options)
        with self.assertRaises(ValueError):
            JiraSimulator(rate_limit=0)
