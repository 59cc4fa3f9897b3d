"""The Jira Cloud client, against the simulator over loopback HTTP."""

from __future__ import annotations

from twisted.internet import defer, task
from twisted.trial import unittest

from buildbot_jira.jira.client import RetryPolicy, SubmitResult
from buildbot_jira.jira.errors import (
    JiraAuthError,
    JiraConfigError,
    JiraPermissionError,
    JiraRequestError,
    JiraSiteError,
    JiraUnavailableError,
)
from buildbot_jira.jira.http import check_base_url, is_loopback_host
from buildbot_jira.simulator.contract import request_schema, validation_errors
from tests.support import (
    SECRET,
    build_payload,
    captured_log,
    coroutine_test,
    make_client,
    settle,
    start_simulator,
    wait_for_delayed_call,
)


class CloudIdTests(unittest.TestCase):
    @coroutine_test
    async def test_cloud_id_is_looked_up_once(self) -> None:
        running = await start_simulator(self, cloud_id="cloud-123")
        client = make_client(self, running)
        ids = await defer.gatherResults(
            [defer.Deferred.fromCoroutine(client.get_cloud_id()) for _ in range(5)]
        )
        self.assertEqual(set(ids), {"cloud-123"})
        await client.get_cloud_id()
        tenant_lookups = [r for r in running.simulator.requests if "tenant_info" in r.path]
        self.assertEqual(len(tenant_lookups), 1)

    @coroutine_test
    async def test_unknown_site_says_the_site_name_is_probably_wrong(self) -> None:
        running = await start_simulator(self)
        client = make_client(self, running)
        client.site_url = running.url + "/no-such-site"
        with self.assertRaises(JiraSiteError) as raised:
            await client.get_cloud_id()
        self.assertIn("site name is probably wrong", str(raised.exception))

    @coroutine_test
    async def test_configured_cloud_id_skips_the_lookup(self) -> None:
        running = await start_simulator(self)
        client = make_client(self, running)
        client._cloud_id = running.simulator.cloud_id
        await client.submit_builds([build_payload()])
        self.assertFalse([r for r in running.simulator.requests if "tenant_info" in r.path])


class SubmitTests(unittest.TestCase):
    @coroutine_test
    async def test_builds_are_accepted_and_stored(self) -> None:
        running = await start_simulator(self)
        client = make_client(self, running)
        result = await client.submit_builds([build_payload(1), build_payload(2)])
        self.assertEqual(sorted(k["buildNumber"] for k in result.accepted), [1, 2])
        self.assertEqual(result.rejected, ())
        self.assertEqual(len(running.simulator.builds), 2)

    @coroutine_test
    async def test_every_body_sent_validates_against_the_contract(self) -> None:
        running = await start_simulator(self)
        client = make_client(self, running)
        await client.submit_builds([build_payload(n) for n in range(1, 4)])
        bodies = [r.body for r in running.simulator.requests if r.path.endswith("/bulk")]
        self.assertTrue(bodies)
        for body in bodies:
            self.assertEqual(validation_errors(request_schema("builds"), body), [])

    @coroutine_test
    async def test_rejections_and_unknown_keys_are_parsed(self) -> None:
        running = await start_simulator(self)
        client = make_client(self, running)
        bad = build_payload(2)
        bad["state"] = "exploded"
        result = await client.submit_builds(
            [build_payload(1), bad, build_payload(3, keys=("NOPE-9",))]
        )
        self.assertEqual([k["buildNumber"] for k in result.accepted], [1])
        self.assertEqual(len(result.rejected), 1)
        self.assertEqual(result.rejected[0].key["buildNumber"], 2)
        self.assertTrue(any("state" in e for e in result.rejected[0].errors))
        self.assertEqual(result.unknown_issue_keys, ("NOPE-9",))

    @coroutine_test
    async def test_more_than_100_builds_go_in_several_requests(self) -> None:
        running = await start_simulator(self)
        client = make_client(self, running)
        result = await client.submit_builds([build_payload(n) for n in range(1, 251)])
        self.assertEqual(len(result.accepted), 250)
        posts = [r for r in running.simulator.requests if r.path.endswith("/bulk")]
        self.assertEqual([len(r.body["builds"]) for r in posts], [100, 100, 50])

    @coroutine_test
    async def test_413_splits_the_batch_and_every_build_arrives(self) -> None:
        running = await start_simulator(self)
        one = len(str(build_payload(1)))
        running.simulator.max_body_bytes = one * 3
        client = make_client(self, running)
        result = await client.submit_builds([build_payload(n) for n in range(1, 9)])
        self.assertEqual(sorted(k["buildNumber"] for k in result.accepted), list(range(1, 9)))
        self.assertEqual(len(running.simulator.builds), 8)
        statuses = [r.status for r in running.simulator.requests if r.path.endswith("/bulk")]
        self.assertIn(413, statuses)

    @coroutine_test
    async def test_feature_flags_and_devinfo_are_sent(self) -> None:
        running = await start_simulator(self)
        client = make_client(self, running)
        flags = await client.submit_feature_flags(
            [
                {
                    "schemaVersion": "1.0",
                    "id": "flag-1",
                    "key": "new-login",
                    "updateSequenceId": 1,
                    "issueKeys": ["PROJ-1"],
                    "summary": {
                        "url": "https://flags.example.com/new-login",
                        "status": {"enabled": True},
                        "lastUpdated": "2026-11-28T10:00:00.000Z",
                    },
                    "details": [
                        {
                            "url": "https://flags.example.com/new-login/prod",
                            "lastUpdated": "2026-11-28T10:00:00.000Z",
                            "environment": {"name": "prod", "type": "production"},
                            "status": {"enabled": True},
                        }
                    ],
                }
            ]
        )
        self.assertEqual(flags.accepted, ("flag-1",))
        devinfo = await client.submit_development_information(
            [
                {
                    "id": "repo-1",
                    "name": "app",
                    "url": "https://git.example.com/app",
                    "updateSequenceId": 1,
                    "commits": [
                        {
                            "id": "abc123",
                            "issueKeys": ["PROJ-1"],
                            "updateSequenceId": 1,
                            "hash": "abc123",
                            "message": "PROJ-1 fix",
                            "author": {"name": "Dev"},
                            "fileCount": 1,
                            "url": "https://git.example.com/app/commit/abc123",
                            "displayId": "abc123",
                            "authorTimestamp": "2026-11-28T10:00:00.000Z",
                        }
                    ],
                }
            ]
        )
        self.assertEqual(devinfo.rejected, ())
        self.assertEqual(devinfo.accepted[0]["repository"], "repo-1")


class RetryTests(unittest.TestCase):
    @coroutine_test
    async def test_429_waits_what_retry_after_says(self) -> None:
        clock = task.Clock()
        running = await start_simulator(self)
        running.simulator.fail_next(1, 429, retry_after=2)
        client = make_client(self, running, clock=clock)
        sending = defer.Deferred.fromCoroutine(client.submit_builds([build_payload()]))
        self.assertEqual(await wait_for_delayed_call(clock), 2)
        self.assertFalse(sending.called)
        self.assertEqual(len(running.simulator.builds), 0)
        clock.advance(2)
        result = await settle(sending, clock)
        self.assertEqual(len(result.accepted), 1)
        self.assertEqual(len(running.simulator.builds), 1)

    @coroutine_test
    async def test_503_three_times_then_success_delivers_exactly_once(self) -> None:
        clock = task.Clock()
        running = await start_simulator(self)
        running.simulator.fail_next(3, 503)
        client = make_client(self, running, clock=clock)
        sending = defer.Deferred.fromCoroutine(client.submit_builds([build_payload()]))
        result = await settle(sending, clock)
        self.assertEqual(len(result.accepted), 1)
        posts = [r.status for r in running.simulator.requests if r.path.endswith("/bulk")]
        self.assertEqual(posts, [503, 503, 503, 202])
        (stored,) = running.simulator.builds.values()
        self.assertEqual(len(stored.history), 1)

    @coroutine_test
    async def test_backoff_grows_and_gives_up_after_max_attempts(self) -> None:
        clock = task.Clock()
        running = await start_simulator(self)
        running.simulator.fail_next(10, 500)
        retry = RetryPolicy(max_attempts=3, initial_delay=1, multiplier=2, jitter=0)
        client = make_client(self, running, clock=clock, retry=retry)
        sending = defer.Deferred.fromCoroutine(client.submit_builds([build_payload()]))
        self.assertEqual(await wait_for_delayed_call(clock), 1)
        clock.advance(1)
        self.assertEqual(await wait_for_delayed_call(clock), 2)
        clock.advance(2)
        with self.assertRaises(JiraUnavailableError) as raised:
            await settle(sending, clock)
        self.assertIn("3 attempts", str(raised.exception))
        self.assertEqual(running.simulator.api_requests, 3)

    @coroutine_test
    async def test_dropped_connections_are_retried(self) -> None:
        clock = task.Clock()
        running = await start_simulator(self)
        running.simulator.drop_next(2)
        client = make_client(self, running, clock=clock)
        result = await settle(
            defer.Deferred.fromCoroutine(client.submit_builds([build_payload()])), clock
        )
        self.assertEqual(len(result.accepted), 1)

    @coroutine_test
    async def test_a_slow_answer_times_out_and_is_retried(self) -> None:
        clock = task.Clock()
        running = await start_simulator(self, clock=clock)
        running.simulator.set_delay(60)
        retry = RetryPolicy(max_attempts=2, initial_delay=1, jitter=0)
        client = make_client(
            self, running, clock=clock, transport_clock=clock, retry=retry, timeout=5
        )
        sending = defer.Deferred.fromCoroutine(client.submit_builds([build_payload()]))
        with self.assertRaises(JiraUnavailableError) as raised:
            await settle(sending, clock)
        self.assertIn("no answer within 5 s", str(raised.exception))

    @coroutine_test
    async def test_revoked_token_is_replaced_once_and_the_call_succeeds(self) -> None:
        running = await start_simulator(self)
        client = make_client(self, running)
        await client.submit_builds([build_payload(1)])
        running.simulator.revoke_tokens()
        result = await client.submit_builds([build_payload(2)])
        self.assertEqual(len(result.accepted), 1)
        self.assertEqual(running.simulator.token_requests, 2)
        statuses = [r.status for r in running.simulator.requests if r.path.endswith("/bulk")]
        self.assertEqual(statuses, [202, 401, 202])

    @coroutine_test
    async def test_a_second_401_is_an_authentication_error(self) -> None:
        running = await start_simulator(self)
        running.simulator.fail_next(2, 401)
        client = make_client(self, running)
        with self.assertRaises(JiraAuthError):
            await client.submit_builds([build_payload()])
        self.assertEqual(running.simulator.token_requests, 2)
        self.assertEqual(running.simulator.api_requests, 2)

    @coroutine_test
    async def test_400_is_not_retried_and_quotes_jira(self) -> None:
        running = await start_simulator(self)
        running.simulator.fail_next(1, 400, body=[{"message": "bad envelope"}])
        client = make_client(self, running)
        with self.assertRaises(JiraRequestError) as raised:
            await client.submit_builds([build_payload()])
        self.assertIn("bad envelope", str(raised.exception))
        self.assertEqual(raised.exception.status, 400)
        self.assertEqual(running.simulator.api_requests, 1)

    @coroutine_test
    async def test_403_is_not_retried_and_names_the_missing_permission(self) -> None:
        running = await start_simulator(self, permissions={"sim-client-id": ["deployments"]})
        client = make_client(self, running)
        with self.assertRaises(JiraPermissionError) as raised:
            await client.submit_builds([build_payload()])
        self.assertIn("permission to write builds", str(raised.exception))
        self.assertEqual(running.simulator.api_requests, 1)

    @coroutine_test
    async def test_a_redirect_is_not_followed(self) -> None:
        running = await start_simulator(self)
        running.simulator.fail_next(1, 301)
        client = make_client(self, running)
        with self.assertRaises(JiraRequestError) as raised:
            await client.submit_builds([build_payload()])
        self.assertIn("redirect", str(raised.exception))
        self.assertEqual(running.simulator.api_requests, 1)

    @coroutine_test
    async def test_unreachable_host_gives_up_cleanly(self) -> None:
        clock = task.Clock()
        running = await start_simulator(self)
        url = running.url
        await running.stop()
        client = make_client(self, running, clock=clock)
        client.api_url = client.site_url = url
        client.tokens.api_url = url
        with self.assertRaises(JiraUnavailableError) as raised:
            await settle(defer.Deferred.fromCoroutine(client.get_cloud_id()), clock)
        self.assertIn("unavailable", str(raised.exception))


class SecretTests(unittest.TestCase):
    @coroutine_test
    async def test_no_secret_or_token_in_logs_of_failures_and_rejections(self) -> None:
        running = await start_simulator(self)
        with captured_log() as lines:
            bad = make_client(self, running, secret="not-the-secret-xyz")
            with self.assertRaises(JiraAuthError) as auth_error:
                await bad.submit_builds([build_payload()])
            good = make_client(self, running)
            rejected = build_payload(1)
            del rejected["url"]
            result = await good.submit_builds([rejected])
            self.assertEqual(len(result.rejected), 1)
        tokens = [t.access_token for t in running.simulator.issued_tokens]
        self.assertTrue(tokens)
        texts = [*lines, str(auth_error.exception), repr(result), repr(good), repr(good.tokens)]
        for text in texts:
            for secret in (SECRET, "not-the-secret-xyz", *tokens):
                self.assertNotIn(secret, text)


class UrlTests(unittest.TestCase):
    def test_plain_http_is_refused_off_this_machine(self) -> None:
        with self.assertRaises(JiraConfigError) as raised:
            check_base_url("http://jira.example.com", argument="api_url")
        self.assertIn("api_url", str(raised.exception))
        with self.assertRaises(JiraConfigError):
            check_base_url("http://10.0.0.5:8080", argument="site_url")

    def test_loopback_and_https_are_accepted(self) -> None:
        self.assertEqual(
            check_base_url("http://127.0.0.1:8099/", argument="a"), "http://127.0.0.1:8099"
        )
        self.assertEqual(check_base_url("http://[::1]:1", argument="a"), "http://[::1]:1")
        self.assertEqual(check_base_url("http://localhost", argument="a"), "http://localhost")
        self.assertEqual(
            check_base_url("https://api.atlassian.com", argument="a"), "https://api.atlassian.com"
        )
        self.assertTrue(is_loopback_host("127.8.9.1"))
        self.assertFalse(is_loopback_host("128.0.0.1"))

    def test_not_a_url_is_refused(self) -> None:
        for value in (None, 42, "", "ftp://x", "api.atlassian.com"):
            with self.assertRaises(JiraConfigError):
                check_base_url(value, argument="api_url")


class ResultTests(unittest.TestCase):
    def test_merge_keeps_everything_and_unique_keys(self) -> None:
        a = SubmitResult(entity="builds", accepted=(1,), unknown_issue_keys=("A-1",))
        b = SubmitResult(entity="builds", accepted=(2,), unknown_issue_keys=("A-1", "B-2"))
        merged = a.merge(b)
        self.assertEqual(merged.accepted, (1, 2))
        self.assertEqual(merged.unknown_issue_keys, ("A-1", "B-2"))

    def test_unexpected_bodies_parse_to_empty_results(self) -> None:
        self.assertEqual(SubmitResult.from_response("builds", None).accepted, ())
        self.assertEqual(SubmitResult.from_response("deployments", []).rejected, ())
