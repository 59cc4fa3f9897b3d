"""The token cache, against the simulator over loopback HTTP."""

from __future__ import annotations

from twisted.internet import defer, task
from twisted.trial import unittest

from buildbot_jira.jira.auth import ClientCredentials, TokenCache, TokenUnavailable
from buildbot_jira.jira.errors import JiraAuthError
from tests.support import SECRET, captured_log, coroutine_test, make_client, start_simulator


class TokenCacheTests(unittest.TestCase):
    @coroutine_test
    async def test_concurrent_callers_share_one_token_request(self) -> None:
        running = await start_simulator(self)
        client = make_client(self, running)
        tokens = await defer.gatherResults(
            [defer.Deferred.fromCoroutine(client.tokens.get_token()) for _ in range(50)]
        )
        self.assertEqual(running.simulator.token_requests, 1)
        self.assertEqual(len(set(tokens)), 1)
        self.assertEqual(client.tokens.requests_sent, 1)

    @coroutine_test
    async def test_fifty_concurrent_api_calls_cause_one_token_request(self) -> None:
        running = await start_simulator(self)
        client = make_client(self, running)
        calls = [
            defer.Deferred.fromCoroutine(client.get_build("pipeline", number))
            for number in range(50)
        ]
        results = await defer.gatherResults(calls)
        self.assertEqual(results, [None] * 50)  # nothing stored yet: 404 for each
        self.assertEqual(running.simulator.token_requests, 1)
        self.assertEqual(running.simulator.api_requests, 50)

    @coroutine_test
    async def test_token_is_renewed_within_the_margin_and_not_before(self) -> None:
        clock = task.Clock()
        clock.advance(1_000_000)
        running = await start_simulator(self, token_lifetime=600, clock=clock)
        client = make_client(self, running, clock=clock, margin=60)
        first = await client.tokens.get_token()
        clock.advance(539)  # 61 s left: still outside the margin
        self.assertEqual(await client.tokens.get_token(), first)
        self.assertEqual(running.simulator.token_requests, 1)
        clock.advance(2)  # 59 s left: inside the margin, renewed before it expires
        second = await client.tokens.get_token()
        self.assertNotEqual(second, first)
        self.assertEqual(running.simulator.token_requests, 2)

    @coroutine_test
    async def test_margin_is_never_more_than_half_the_lifetime(self) -> None:
        clock = task.Clock()
        running = await start_simulator(self, token_lifetime=60, clock=clock)
        client = make_client(self, running, clock=clock, margin=300)
        first = await client.tokens.get_token()
        clock.advance(29)
        self.assertEqual(await client.tokens.get_token(), first)
        clock.advance(2)
        self.assertNotEqual(await client.tokens.get_token(), first)

    @coroutine_test
    async def test_wrong_secret_names_site_and_client_and_hides_secret(self) -> None:
        running = await start_simulator(self)
        wrong = "wrong-secret-value-1234"
        client = make_client(self, running, secret=wrong)
        with captured_log() as lines, self.assertRaises(JiraAuthError) as raised:
            await client.tokens.get_token()
        message = str(raised.exception)
        self.assertIn("example.atlassian.net", message)
        self.assertIn("sim-client-id", message)
        self.assertIn("access_denied", message)
        for text in [message, repr(raised.exception), repr(client.tokens), *lines]:
            self.assertNotIn(wrong, text)

    @coroutine_test
    async def test_server_error_on_token_endpoint_is_retryable_not_an_auth_error(self) -> None:
        running = await start_simulator(self)
        running.simulator.fail_next(1, 503, retry_after=7, scope="token")
        client = make_client(self, running)
        with self.assertRaises(TokenUnavailable) as raised:
            await client.tokens.get_token()
        self.assertEqual(raised.exception.retry_after, 7)
        self.assertTrue(await client.tokens.get_token())

    def test_credentials_repr_hides_the_secret(self) -> None:
        credentials = ClientCredentials(client_id="id", client_secret=SECRET)
        self.assertNotIn(SECRET, repr(credentials))
        self.assertIn("id", repr(credentials))

    @coroutine_test
    async def test_invalidate_forgets_only_that_token(self) -> None:
        running = await start_simulator(self)
        client = make_client(self, running)
        cache: TokenCache = client.tokens
        first = await cache.get_token()
        cache.invalidate("some-other-token")
        self.assertEqual(await cache.get_token(), first)
        cache.invalidate(first)
        self.assertNotEqual(await cache.get_token(), first)
        self.assertEqual(running.simulator.token_requests, 2)
        current = cache.current
        assert current is not None
        self.assertNotIn(current.value, repr(current))
