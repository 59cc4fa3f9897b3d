"""The token cache, against the simulator in memory."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer, task
from twisted.trial import unittest

from buildbot_jira.jira.auth import ClientCredentials, SingleFlight, TokenCache, TokenUnavailable
from buildbot_jira.jira.client import JiraCloud
from buildbot_jira.jira.errors import JiraAuthError, JiraUnavailableError
from buildbot_jira.simulator import JiraSimulator
from tests.support import SECRET, captured_log, drive, memory_client


class TokenCacheTests(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = task.Clock()
        self.sim = JiraSimulator(clock=self.clock)

    def client(self, *, token_lifetime: int | None = None, **options: Any) -> JiraCloud:
        """A client of the simulator (made anew when ``token_lifetime`` is given)."""
        if token_lifetime is not None:
            self.sim = JiraSimulator(clock=self.clock, token_lifetime=token_lifetime)
        return memory_client(self, self.sim, clock=self.clock, **options)

    def result_of(self, work: Any) -> Any:
        """The result of ``work`` (a coroutine or Deferred), driven on the clock."""
        return drive(self.clock, work)

    def test_concurrent_callers_share_one_token_request(self) -> None:
        client = self.client()
        waiting = [defer.Deferred.fromCoroutine(client.tokens.get_token()) for _ in range(50)]
        # All fifty wait on the one request under way, which nothing has answered yet.
        self.assertFalse(any(d.called for d in waiting))
        tokens = self.result_of(defer.gatherResults(waiting))
        self.assertEqual(self.sim.token_requests, 1)
        self.assertEqual(len(set(tokens)), 1)
        self.assertEqual(client.tokens.requests_sent, 1)

    def test_fifty_concurrent_api_calls_cause_one_token_request(self) -> None:
        client = self.client()
        calls = [
            defer.Deferred.fromCoroutine(client.get_build("pipeline", number))
            for number in range(50)
        ]
        results = self.result_of(defer.gatherResults(calls))
        self.assertEqual(results, [None] * 50)  # nothing stored yet: 404 for each
        self.assertEqual(self.sim.token_requests, 1)
        self.assertEqual(self.sim.api_requests, 50)

    def test_token_is_renewed_within_the_margin_and_not_before(self) -> None:
        self.clock.advance(1_000_000)
        client = self.client(token_lifetime=600, margin=60)
        first = self.result_of(client.tokens.get_token())
        self.clock.advance(539)  # 61 s left: still outside the margin
        self.assertEqual(self.result_of(client.tokens.get_token()), first)
        self.assertEqual(self.sim.token_requests, 1)
        self.clock.advance(2)  # 59 s left: inside the margin, renewed before it expires
        second = self.result_of(client.tokens.get_token())
        self.assertNotEqual(second, first)
        self.assertEqual(self.sim.token_requests, 2)

    def test_margin_is_never_more_than_half_the_lifetime(self) -> None:
        client = self.client(token_lifetime=60, margin=300)
        first = self.result_of(client.tokens.get_token())
        self.clock.advance(29)
        self.assertEqual(self.result_of(client.tokens.get_token()), first)
        self.clock.advance(2)
        self.assertNotEqual(self.result_of(client.tokens.get_token()), first)

    def test_wrong_secret_names_site_and_client_and_hides_secret(self) -> None:
        wrong = "wrong-secret-value-1234"
        client = self.client(secret=wrong)
        with captured_log() as lines, self.assertRaises(JiraAuthError) as raised:
            self.result_of(client.tokens.get_token())
        message = str(raised.exception)
        self.assertIn("example.atlassian.net", message)
        self.assertIn("sim-client-id", message)
        self.assertIn("access_denied", message)
        self.assertFalse(raised.exception.retryable)
        for text in [message, repr(raised.exception), repr(client.tokens), *lines]:
            self.assertNotIn(wrong, text)

    def test_server_error_on_token_endpoint_is_retryable_not_an_auth_error(self) -> None:
        self.sim.fail_next(1, 503, retry_after=7, scope="token")
        client = self.client()
        with self.assertRaises(TokenUnavailable) as raised:
            self.result_of(client.tokens.get_token())
        self.assertEqual(raised.exception.retry_after, 7)
        self.assertTrue(raised.exception.retryable)
        self.assertIsInstance(raised.exception, JiraUnavailableError)
        self.assertTrue(self.result_of(client.tokens.get_token()))

    def test_no_answer_from_the_token_endpoint_is_retryable(self) -> None:
        self.sim.drop_next(1, scope="token")
        client = self.client()
        with self.assertRaises(TokenUnavailable) as raised:
            self.result_of(client.tokens.get_token())
        self.assertIn("token request failed", str(raised.exception))
        self.assertIsNone(raised.exception.retry_after)
        self.assertTrue(self.result_of(client.tokens.get_token()))

    def test_a_token_answer_without_a_token_is_an_auth_error(self) -> None:
        self.sim.fail_next(1, 200, body={"token_type": "Bearer"}, scope="token")
        client = self.client()
        with self.assertRaises(JiraAuthError) as raised:
            self.result_of(client.tokens.get_token())
        self.assertIn("without a usable access_token", str(raised.exception))
        self.assertIsNone(client.tokens.current)

    def test_credentials_repr_hides_the_secret(self) -> None:
        credentials = ClientCredentials(client_id="id", client_secret=SECRET)
        self.assertNotIn(SECRET, repr(credentials))
        self.assertIn("id", repr(credentials))

    def test_invalidate_forgets_only_that_token(self) -> None:
        client = self.client()
        cache: TokenCache = client.tokens
        first = self.result_of(cache.get_token())
        cache.invalidate("some-other-token")
        self.assertEqual(self.result_of(cache.get_token()), first)
        cache.invalidate(first)
        self.assertNotEqual(self.result_of(cache.get_token()), first)
        self.assertEqual(self.sim.token_requests, 2)
        current = cache.current
        assert current is not None
        self.assertNotIn(current.value, repr(current))


class SingleFlightTests(unittest.TestCase):
    def test_callers_during_a_run_share_its_result_and_later_callers_start_anew(self) -> None:
        flight = SingleFlight()
        started: list[defer.Deferred[str]] = []

        async def start() -> str:
            answer: defer.Deferred[str] = defer.Deferred()
            started.append(answer)
            return await answer

        first = defer.Deferred.fromCoroutine(flight.run(start))
        second = defer.Deferred.fromCoroutine(flight.run(start))
        self.assertTrue(flight.running)
        self.assertEqual(len(started), 1)
        started[0].callback("one")
        self.assertEqual(self.successResultOf(first), "one")
        self.assertEqual(self.successResultOf(second), "one")
        self.assertFalse(flight.running)
        third = defer.Deferred.fromCoroutine(flight.run(start))
        self.assertEqual(len(started), 2)
        started[1].callback("two")
        self.assertEqual(self.successResultOf(third), "two")

    def test_a_failed_run_fails_every_waiter(self) -> None:
        flight = SingleFlight()
        answer: defer.Deferred[str] = defer.Deferred()

        async def start() -> str:
            return await answer

        waiters = [defer.Deferred.fromCoroutine(flight.run(start)) for _ in range(3)]
        answer.errback(JiraAuthError("refused"))
        for waiter in waiters:
            self.failureResultOf(waiter, JiraAuthError)
        self.assertFalse(flight.running)
