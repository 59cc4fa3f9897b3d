"""The client and Jira's rate limits, in memory on a fake clock: it paces its requests,
waits what Jira asks for by reason, never asks an endpoint while its wait runs, and logs
each episode once.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

from twisted.internet import defer, task
from twisted.trial import unittest
from twisted.web import resource, server

from buildbot_jira.jira.auth import ClientCredentials, TokenCache
from buildbot_jira.jira.client import JiraCloud, RetryPolicy
from buildbot_jira.jira.errors import JiraRateLimitedError, JiraUnavailableError
from buildbot_jira.jira.http import HttpTransport
from tests.support import SECRET, build_payload, captured_log, drive, memory_agent

#: 2026-03-02T10:00:00Z: the fake clock's time when a test starts (epoch seconds).
START = datetime.datetime(2026, 3, 2, 10, 0, tzinfo=datetime.timezone.utc).timestamp()

BURST = {"RateLimit-Reason": "jira-burst-based"}


class ScriptedJira(resource.Resource):
    """Answers tokens, and API calls as scripted per entity type (202 when nothing is)."""

    isLeaf = True

    def __init__(self, clock: task.Clock) -> None:
        super().__init__()
        self.clock = clock
        self.script: dict[str, list[tuple[int, dict[str, str]]]] = {}
        #: (seconds since START, entity type, HTTP method) of every API call.
        self.calls: list[tuple[float, str, str]] = []

    def answer(self, entity: str, status: int, **headers: str) -> None:
        """Answer the next call of ``entity`` with ``status`` and ``headers``."""
        names = {name.replace("_", "-"): value for name, value in headers.items()}
        self.script.setdefault(entity, []).append((status, names))

    def times(self, entity: str) -> list[float]:
        return [time for time, kind, _ in self.calls if kind == entity]

    def render(self, request: server.Request) -> bytes:
        request.setHeader(b"content-type", b"application/json")
        path = request.path.decode()
        if path == "/oauth/token":
            return json.dumps({"access_token": "token", "expires_in": 3600}).encode()
        entity = path.split("/")[2]  # /jira/<entity>/0.1/cloud/<id>/bulk
        self.calls.append((round(self.clock.seconds() - START, 6), entity, request.method.decode()))
        status, headers = (self.script.get(entity) or [(202, {})]).pop(0)
        request.setResponseCode(status)
        for name, value in headers.items():
            request.setHeader(name, value)
        return json.dumps({} if status == 202 else [{"message": "limited"}]).encode()


class RateLimitTestCase(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = task.Clock()
        self.clock.advance(START)
        self.jira = ScriptedJira(self.clock)

    def client(
        self, *, min_request_interval: float = 0.0, retry: RetryPolicy | None = None
    ) -> JiraCloud:
        """A client of the scripted Jira; it retries once after 1 s (or what Jira asks)."""
        transport = HttpTransport(clock=self.clock, agent=memory_agent(self.jira, self.clock))
        self.addCleanup(lambda: defer.Deferred.fromCoroutine(transport.close()))
        return JiraCloud(
            site="example.atlassian.net",
            token_cache=TokenCache(
                credentials=ClientCredentials(client_id="id", client_secret=SECRET),
                transport=transport,
                clock=self.clock,
            ),
            transport=transport,
            cloud_id="cloud-1",
            retry=retry or RetryPolicy(max_attempts=2, initial_delay=1, jitter=0),
            min_request_interval=min_request_interval,
            clock=self.clock,
            uniform=lambda: 0.0,
        )

    def later(self, seconds: float, work: Any) -> defer.Deferred[Any]:
        """Start ``work()`` (a coroutine) ``seconds`` from now on the clock."""
        return task.deferLater(self.clock, seconds, lambda: defer.Deferred.fromCoroutine(work()))

    def run_all(self, *deferreds: defer.Deferred[Any]) -> list[Any]:
        """Drive ``deferreds`` to their ends: their results, or the first one's error."""
        try:
            return drive(self.clock, defer.gatherResults(list(deferreds), consumeErrors=True))
        except defer.FirstError as first:
            first.subFailure.raiseException()
            raise


def builds(client: JiraCloud, number: int = 1, keys: tuple[str, ...] = ("A-1",)) -> Any:
    return lambda: client.submit_builds([build_payload(number, keys=keys)])


def deployments(client: JiraCloud) -> Any:
    payload = build_payload(1)
    del payload["buildNumber"]
    payload.update(pipeline={"id": "p"}, environment={"id": "e"}, deploymentSequenceNumber=1)
    return lambda: client.submit_deployments([payload])


class PacingTests(RateLimitTestCase):
    def test_requests_to_one_endpoint_are_paced_and_a_quiet_one_goes_at_once(self) -> None:
        client = self.client(min_request_interval=1.0)
        self.run_all(*(self.later(0.1 * n, builds(client, n)) for n in range(3)))
        self.run_all(self.later(10, builds(client, 9)))
        self.assertEqual(self.jira.times("builds"), [0, 1, 2, 12])

    def test_near_limit_widens_the_interval_of_that_endpoint(self) -> None:
        client = self.client(min_request_interval=1.0)
        self.jira.answer("builds", 202, X_RateLimit_NearLimit="true")
        self.run_all(
            *(self.later(0.1 * n, builds(client, n)) for n in range(3)),
            *(self.later(0.1 * n, deployments(client)) for n in range(2)),
            self.later(4.5, builds(client, 4)),
        )
        # 2 s apart while near the limit (the third waited before the second's
        # answer eased it), then 1 s again.
        self.assertEqual(self.jira.times("builds"), [0, 2, 4, 5])
        self.assertEqual(self.jira.times("deployments"), [0, 1])


class RetryAfterTests(RateLimitTestCase):
    def test_retry_after_in_seconds(self) -> None:
        client = self.client()
        self.jira.answer("builds", 429, Retry_After="3", **BURST)
        self.run_all(self.later(0, builds(client)))
        self.assertEqual(self.jira.times("builds"), [0, 3])

    def test_retry_after_as_an_http_date(self) -> None:
        client = self.client()
        self.jira.answer("builds", 429, Retry_After="Mon, 02 Mar 2026 10:00:05 GMT")
        self.run_all(self.later(0, builds(client)))
        self.assertEqual(self.jira.times("builds"), [0, 5])

    def test_x_ratelimit_reset_when_retry_after_is_absent(self) -> None:
        client = self.client()
        self.jira.answer("builds", 429, X_RateLimit_Reset="2026-03-02T10:00:08Z", **BURST)
        self.run_all(self.later(0, builds(client)))
        self.assertEqual(self.jira.times("builds"), [0, 8])

    def test_a_503_with_retry_after_holds_the_endpoint(self) -> None:
        client = self.client(min_request_interval=1.0)
        self.jira.answer("builds", 503, Retry_After="4")
        self.run_all(self.later(0, builds(client)), self.later(1, builds(client, 2)))
        self.assertEqual(self.jira.times("builds"), [0, 4, 5])

    def test_a_wait_longer_than_the_policy_allows_is_handed_back(self) -> None:
        client = self.client()
        self.jira.answer("builds", 429, Retry_After="1000", **BURST)
        with self.assertRaises(JiraRateLimitedError) as raised:
            self.run_all(self.later(0, builds(client)))
        self.assertEqual(
            (raised.exception.retry_after, raised.exception.reason),
            (1000, BURST["RateLimit-Reason"]),
        )
        self.assertEqual(self.jira.times("builds"), [0])
        self.assertEqual(client.limits.next_time(("builds", "POST")), START + 1000)

    def test_retries_that_run_out_on_429_say_it_was_a_rate_limit(self) -> None:
        client = self.client()
        for _ in range(2):
            self.jira.answer("builds", 429, Retry_After="1", RateLimit_Reason="jira-quota-based")
        with self.assertRaises(JiraRateLimitedError) as raised:
            self.run_all(self.later(0, builds(client)))
        self.assertIsInstance(raised.exception, JiraUnavailableError)  # kept and retried
        self.assertEqual(raised.exception.reason, "jira-quota-based")
        self.assertIn("after 2 attempts", str(raised.exception))


class ReasonTests(RateLimitTestCase):
    def test_a_burst_limit_holds_that_endpoint_only(self) -> None:
        client = self.client(min_request_interval=1.0)
        self.jira.answer("builds", 429, Retry_After="3", **BURST)
        self.run_all(
            self.later(0, builds(client, 1)),
            self.later(0.5, builds(client, 2)),  # asked during the wait
            self.later(0.5, deployments(client)),
        )
        self.assertEqual(self.jira.times("builds"), [0, 3, 5])  # then spaced 2 s apart
        self.assertEqual(self.jira.times("deployments"), [0.5])

    def test_a_per_issue_limit_is_handed_back_and_holds_those_issues(self) -> None:
        client = self.client(min_request_interval=1.0)
        self.jira.answer("builds", 429, Retry_After="4", RateLimit_Reason="jira-per-issue-on-write")
        with self.assertRaises(JiraRateLimitedError) as raised:
            self.run_all(self.later(0, builds(client, 1, ("HOT-1",))))
        self.assertEqual(raised.exception.reason, "jira-per-issue-on-write")
        self.assertEqual(raised.exception.retry_after, 4)
        self.run_all(
            self.later(0.5, builds(client, 2, ("COLD-1",))),
            self.later(0.5, builds(client, 3, ("HOT-1",))),
        )
        self.assertEqual(self.jira.times("builds"), [0, 1, 4])

    def test_a_quota_limit_holds_the_whole_site(self) -> None:
        client = self.client()
        self.jira.answer("builds", 429, Retry_After="6", RateLimit_Reason="jira-cost-based")
        self.run_all(self.later(0, builds(client)), self.later(1, deployments(client)))
        self.assertEqual(self.jira.times("builds"), [0, 6])
        self.assertEqual(self.jira.times("deployments"), [6])


class EpisodeLogTests(RateLimitTestCase):
    def test_each_episode_is_logged_once_when_it_begins_and_once_when_it_ends(self) -> None:
        client = self.client(retry=RetryPolicy(max_attempts=4, initial_delay=1, jitter=0))
        # The client is shared: each line names whoever shares it.
        client.users.add("jira-builds")
        client.users.add("jira-deployments")
        for _ in range(3):
            self.jira.answer("builds", 429, Retry_After="2", **BURST)
        with captured_log() as lines:
            self.run_all(self.later(0, builds(client)), self.later(7, builds(client, 2)))
        texts = [line for line in lines if "Jira site" in line and not line.startswith("{")]
        self.assertEqual(
            texts,
            [
                "jira-builds, jira-deployments: Jira site 'example.atlassian.net' limits POST "
                "builds requests (jira-burst-based): none goes to it for 2 s, then they are "
                "spaced 1 s apart",
                "jira-builds, jira-deployments: Jira site 'example.atlassian.net' takes POST "
                "builds requests again",
            ],
        )
        # Each 429 doubles the interval too: 1, 2, then 4 s.
        self.assertEqual(self.jira.times("builds"), [0, 2, 4, 8, 12])
