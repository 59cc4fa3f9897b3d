"""The Jira Cloud client, against the simulator in memory (and a few times over TCP)."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer, task
from twisted.trial import unittest

from buildbot_jira.jira.auth import DEFAULT_API_URL
from buildbot_jira.jira.client import JiraCloud, RetryPolicy
from buildbot_jira.jira.errors import (
    JiraAuthError,
    JiraPermissionError,
    JiraRequestError,
    JiraSiteError,
    JiraUnavailableError,
)
from buildbot_jira.simulator import JiraSimulator
from buildbot_jira.simulator.contract import request_schema, validation_errors
from tests.support import (
    SECRET,
    build_payload,
    captured_log,
    coroutine_test,
    drive,
    make_client,
    memory_client,
    next_delay,
    settle,
    start_simulator,
)


class MemoryTestCase(unittest.TestCase):
    """A simulator served in memory; ``self.clock`` is the time of everything."""

    def setUp(self) -> None:
        self.clock = task.Clock()
        self.sim = JiraSimulator(clock=self.clock)

    def simulator(self, **options: Any) -> JiraSimulator:
        """Replace the simulator with one made with ``options``."""
        self.sim = JiraSimulator(clock=self.clock, **options)
        return self.sim

    def client(self, **options: Any) -> JiraCloud:
        """A client of the simulator; ``options`` as for ``memory_client``."""
        return memory_client(self, self.sim, clock=self.clock, **options)

    def result_of(self, work: Any) -> Any:
        """The result of ``work`` (a coroutine or Deferred), driven on the clock."""
        return drive(self.clock, work)

    def posts(self) -> list[Any]:
        """The bulk POSTs the simulator received."""
        return [r for r in self.sim.requests if r.path.endswith("/bulk")]


class CloudIdTests(MemoryTestCase):
    def test_cloud_id_is_looked_up_once(self) -> None:
        self.simulator(cloud_id="cloud-123")
        client = self.client()
        ids = self.result_of(
            defer.gatherResults(
                [defer.Deferred.fromCoroutine(client.get_cloud_id()) for _ in range(5)]
            )
        )
        self.assertEqual(set(ids), {"cloud-123"})
        self.result_of(client.get_cloud_id())
        tenant_lookups = [r for r in self.sim.requests if "tenant_info" in r.path]
        self.assertEqual(len(tenant_lookups), 1)

    def test_cloud_id_comes_from_the_site_and_calls_go_through_the_gateway(self) -> None:
        self.simulator(cloud_id="cloud-123")
        client = self.client()
        self.assertEqual(client.site_url, "https://example.atlassian.net")
        self.assertEqual(client.api_url, DEFAULT_API_URL)
        self.result_of(client.submit_builds([build_payload()]))
        self.assertEqual(
            [r.path for r in self.sim.requests],
            [
                "/_edge/tenant_info",
                "/oauth/token",
                "/jira/builds/0.1/cloud/cloud-123/bulk",
            ],
        )

    def test_unknown_site_says_the_site_name_is_probably_wrong(self) -> None:
        client = self.client(site_url="https://example.atlassian.net/no-such-site")
        with self.assertRaises(JiraSiteError) as raised:
            self.result_of(client.get_cloud_id())
        self.assertIn("site name is probably wrong", str(raised.exception))

    def test_configured_cloud_id_skips_the_lookup(self) -> None:
        client = self.client(cloud_id=self.sim.cloud_id)
        self.result_of(client.submit_builds([build_payload()]))
        self.assertEqual(len(self.posts()), 1)
        self.assertFalse([r for r in self.sim.requests if "tenant_info" in r.path])


class SubmitTests(MemoryTestCase):
    def test_builds_are_accepted_and_stored(self) -> None:
        client = self.client()
        result = self.result_of(client.submit_builds([build_payload(1), build_payload(2)]))
        self.assertEqual(sorted(k["buildNumber"] for k in result.accepted), [1, 2])
        self.assertEqual(result.rejected, ())
        self.assertEqual(len(self.sim.builds), 2)

    def test_every_body_sent_validates_against_the_contract(self) -> None:
        client = self.client()
        self.result_of(client.submit_builds([build_payload(n) for n in range(1, 4)]))
        bodies = [r.body for r in self.posts()]
        self.assertTrue(bodies)
        for body in bodies:
            self.assertEqual(validation_errors(request_schema("builds"), body), [])

    def test_rejections_and_unknown_keys_are_parsed(self) -> None:
        client = self.client()
        bad = build_payload(2)
        bad["state"] = "exploded"
        result = self.result_of(
            client.submit_builds([build_payload(1), bad, build_payload(3, keys=("NOPE-9",))])
        )
        self.assertEqual([k["buildNumber"] for k in result.accepted], [1])
        self.assertEqual(len(result.rejected), 1)
        self.assertEqual(result.rejected[0].key["buildNumber"], 2)
        self.assertTrue(any("state" in e for e in result.rejected[0].errors))
        self.assertEqual(result.unknown_issue_keys, ("NOPE-9",))

    def test_more_than_100_builds_go_in_several_requests(self) -> None:
        client = self.client()
        result = self.result_of(client.submit_builds([build_payload(n) for n in range(1, 251)]))
        self.assertEqual(len(result.accepted), 250)
        self.assertEqual([len(r.body["builds"]) for r in self.posts()], [100, 100, 50])

    def test_413_splits_the_batch_and_every_build_arrives(self) -> None:
        one = len(str(build_payload(1)))
        self.sim.max_body_bytes = one * 3
        client = self.client()
        result = self.result_of(client.submit_builds([build_payload(n) for n in range(1, 9)]))
        self.assertEqual(sorted(k["buildNumber"] for k in result.accepted), list(range(1, 9)))
        self.assertEqual(len(self.sim.builds), 8)
        self.assertIn(413, [r.status for r in self.posts()])

    def test_a_single_build_too_large_is_a_request_error_that_drops_it(self) -> None:
        self.sim.max_body_bytes = 10
        client = self.client()
        with self.assertRaises(JiraRequestError) as raised:
            self.result_of(client.submit_builds([build_payload(1), build_payload(2)]))
        self.assertEqual(raised.exception.status, 413)
        self.assertFalse(raised.exception.keeps_update)
        self.assertIn("single builds entity too large", str(raised.exception))
        # The pair, then the first half alone: no point in sending the second.
        self.assertEqual([len(r.body["builds"]) for r in self.posts()], [2, 1])

    def test_feature_flags_and_devinfo_are_sent(self) -> None:
        client = self.client()
        flags = self.result_of(
            client.submit_feature_flags(
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
        )
        self.assertEqual(flags.accepted, ("flag-1",))
        devinfo = self.result_of(
            client.submit_development_information(
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
        )
        self.assertEqual(devinfo.rejected, ())
        self.assertEqual(devinfo.accepted[0]["repository"], "repo-1")

    def test_a_build_is_read_back_and_deleted(self) -> None:
        client = self.client()
        self.result_of(client.submit_builds([build_payload(7)]))
        stored = self.result_of(client.get_build("ci.example.com/app", 7))
        self.assertEqual(stored["buildNumber"], 7)
        self.result_of(client.delete_build("ci.example.com/app", 7))
        self.assertIsNone(self.result_of(client.get_build("ci.example.com/app", 7)))


class RetryTests(MemoryTestCase):
    def test_429_waits_what_retry_after_says(self) -> None:
        self.sim.fail_next(1, 429, retry_after=2)
        client = self.client()
        sending = defer.Deferred.fromCoroutine(client.submit_builds([build_payload()]))
        self.assertEqual(next_delay(self.clock), 2)
        self.assertFalse(sending.called)
        self.assertEqual(len(self.sim.builds), 0)
        self.clock.advance(2)
        result = self.result_of(sending)
        self.assertEqual(len(result.accepted), 1)
        self.assertEqual(len(self.sim.builds), 1)

    def test_503_three_times_then_success_delivers_exactly_once(self) -> None:
        self.sim.fail_next(3, 503)
        client = self.client()
        result = self.result_of(client.submit_builds([build_payload()]))
        self.assertEqual(len(result.accepted), 1)
        self.assertEqual([r.status for r in self.posts()], [503, 503, 503, 202])
        (stored,) = self.sim.builds.values()
        self.assertEqual(len(stored.history), 1)
        # The default policy's waits, without jitter: 1 + 2 + 4 seconds.
        self.assertEqual(self.clock.seconds(), 7)

    def test_backoff_grows_and_gives_up_after_max_attempts(self) -> None:
        self.sim.fail_next(10, 500)
        retry = RetryPolicy(max_attempts=3, initial_delay=1, multiplier=2, jitter=0)
        client = self.client(retry=retry)
        sending = defer.Deferred.fromCoroutine(client.submit_builds([build_payload()]))
        self.assertEqual(next_delay(self.clock), 1)
        self.clock.advance(1)
        self.assertEqual(next_delay(self.clock), 2)
        self.clock.advance(2)
        with self.assertRaises(JiraUnavailableError) as raised:
            self.result_of(sending)
        self.assertIn("3 attempts", str(raised.exception))
        self.assertEqual(self.sim.api_requests, 3)

    def test_dropped_connections_are_retried(self) -> None:
        self.sim.drop_next(2)
        client = self.client()
        result = self.result_of(client.submit_builds([build_payload()]))
        self.assertEqual(len(result.accepted), 1)
        self.assertEqual([r.fault for r in self.posts()], ["drop", "drop", None])

    def test_a_slow_answer_times_out_and_is_retried(self) -> None:
        self.sim.set_delay(60)
        retry = RetryPolicy(max_attempts=2, initial_delay=1, jitter=0)
        client = self.client(retry=retry, timeout=5)
        with self.assertRaises(JiraUnavailableError) as raised:
            self.result_of(client.submit_builds([build_payload()]))
        self.assertIn("no answer within 5 s", str(raised.exception))
        # Two attempts of 5 s with a wait of 1 s between them, and no more.
        self.assertEqual(self.clock.seconds(), 11)
        self.assertEqual(len(self.sim.requests), 2)

    def test_an_unavailable_token_endpoint_is_retried(self) -> None:
        self.sim.fail_next(1, 503, retry_after=3, scope="token")
        client = self.client()
        result = self.result_of(client.submit_builds([build_payload()]))
        self.assertEqual(len(result.accepted), 1)
        self.assertEqual(self.sim.token_requests, 2)
        self.assertEqual(self.clock.seconds(), 3)

    def test_refused_credentials_are_not_retried(self) -> None:
        client = self.client(secret="wrong-secret")
        with self.assertRaises(JiraAuthError):
            self.result_of(client.submit_builds([build_payload()]))
        self.assertEqual(self.sim.token_requests, 1)
        self.assertEqual(self.clock.seconds(), 0)

    def test_revoked_token_is_replaced_once_and_the_call_succeeds(self) -> None:
        client = self.client()
        self.result_of(client.submit_builds([build_payload(1)]))
        self.sim.revoke_tokens()
        result = self.result_of(client.submit_builds([build_payload(2)]))
        self.assertEqual(len(result.accepted), 1)
        self.assertEqual(self.sim.token_requests, 2)
        self.assertEqual([r.status for r in self.posts()], [202, 401, 202])

    def test_a_second_401_is_an_authentication_error(self) -> None:
        self.sim.fail_next(2, 401)
        client = self.client()
        with self.assertRaises(JiraAuthError):
            self.result_of(client.submit_builds([build_payload()]))
        self.assertEqual(self.sim.token_requests, 2)
        self.assertEqual(self.sim.api_requests, 2)

    def test_400_is_not_retried_and_quotes_jira(self) -> None:
        self.sim.fail_next(1, 400, body=[{"message": "bad envelope"}])
        client = self.client()
        with self.assertRaises(JiraRequestError) as raised:
            self.result_of(client.submit_builds([build_payload()]))
        self.assertIn("bad envelope", str(raised.exception))
        self.assertEqual(raised.exception.status, 400)
        self.assertEqual(self.sim.api_requests, 1)

    def test_403_is_not_retried_and_names_the_missing_permission(self) -> None:
        self.simulator(permissions={"sim-client-id": ["deployments"]})
        client = self.client()
        with self.assertRaises(JiraPermissionError) as raised:
            self.result_of(client.submit_builds([build_payload()]))
        self.assertIn("permission to write builds", str(raised.exception))
        self.assertEqual(self.sim.api_requests, 1)

    def test_a_redirect_is_not_followed(self) -> None:
        self.sim.fail_next(1, 301)
        client = self.client()
        with self.assertRaises(JiraRequestError) as raised:
            self.result_of(client.submit_builds([build_payload()]))
        self.assertIn("redirect", str(raised.exception))
        self.assertEqual(self.sim.api_requests, 1)


class LogNameTests(MemoryTestCase):
    """Every line the shared client logs begins with the names of those who share it."""

    def test_cloud_id_and_retry_lines_name_the_clients_users(self) -> None:
        client = self.client(retry=RetryPolicy(max_attempts=2, initial_delay=1, jitter=0))
        client.users.add("jira-builds")
        client.users.add("jira-gate")
        self.sim.fail_next(1, 503)
        with captured_log() as lines:
            result = self.result_of(client.submit_builds([build_payload()]))
        self.assertEqual(len(result.accepted), 1)
        texts = [line for line in lines if not line.startswith("{")]
        cloud_id = [line for line in texts if "has cloud ID" in line]
        retries = [line for line in texts if "retrying in" in line]
        self.assertEqual(
            cloud_id,
            [
                "jira-builds, jira-gate: Jira site example.atlassian.net has cloud ID "
                f"{self.sim.cloud_id}"
            ],
        )
        (retry,) = retries
        self.assertTrue(retry.startswith("jira-builds, jira-gate: POST "), retry)
        self.assertTrue(retry.endswith("answered HTTP 503; retrying in 1.0 s (1 of 1)"), retry)

    def test_a_client_of_nobody_in_particular_names_the_plugin(self) -> None:
        client = self.client()
        with captured_log() as lines:
            self.result_of(client.get_cloud_id())
        self.assertIn(
            f"buildbot-jira: Jira site example.atlassian.net has cloud ID {self.sim.cloud_id}",
            lines,
        )


class SecretTests(MemoryTestCase):
    def test_no_secret_or_token_in_logs_of_failures_and_rejections(self) -> None:
        with captured_log() as lines:
            bad = self.client(secret="not-the-secret-xyz")
            with self.assertRaises(JiraAuthError) as auth_error:
                self.result_of(bad.submit_builds([build_payload()]))
            good = self.client()
            rejected = build_payload(1)
            del rejected["url"]
            result = self.result_of(good.submit_builds([rejected]))
            self.assertEqual(len(result.rejected), 1)
        tokens = [t.access_token for t in self.sim.issued_tokens]
        self.assertTrue(tokens)
        texts = [*lines, str(auth_error.exception), repr(result), repr(good), repr(good.tokens)]
        for text in texts:
            for secret in (SECRET, "not-the-secret-xyz", *tokens):
                self.assertNotIn(secret, text)


class LoopbackTests(unittest.TestCase):
    """The client over real TCP to the simulator on loopback."""

    @coroutine_test
    async def test_a_full_round_trip_over_tcp(self) -> None:
        running = await start_simulator(self, cloud_id="cloud-tcp")
        client = make_client(self, running)
        result = await client.submit_builds([build_payload(1), build_payload(2)])
        self.assertEqual(sorted(k["buildNumber"] for k in result.accepted), [1, 2])
        stored = await client.get_build("ci.example.com/app", 2)
        assert stored is not None
        self.assertEqual(stored["displayName"], "app #2")
        self.assertEqual(
            [r.path for r in running.simulator.requests],
            [
                "/_edge/tenant_info",
                "/oauth/token",
                "/jira/builds/0.1/cloud/cloud-tcp/bulk",
                "/jira/builds/0.1/cloud/cloud-tcp/pipelines/ci.example.com%2Fapp/builds/2",
            ],
        )

    @coroutine_test
    async def test_unreachable_host_gives_up_cleanly(self) -> None:
        clock = task.Clock()
        running = await start_simulator(self)
        await running.stop()
        # Twisted reports a refused connection some 0.3 s late: two attempts suffice.
        retry = RetryPolicy(max_attempts=2, initial_delay=1, jitter=0)
        client = make_client(self, running, clock=clock, retry=retry)
        with self.assertRaises(JiraUnavailableError) as raised:
            await settle(defer.Deferred.fromCoroutine(client.get_cloud_id()), clock)
        self.assertIn("unavailable after 2 attempts", str(raised.exception))
        self.assertIn("Connection", str(raised.exception))
        self.assertEqual(running.simulator.requests, [])

    @coroutine_test
    async def test_a_slow_answer_times_out_on_the_injected_clock(self) -> None:
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
        # The simulator saw the client give up on each attempt.
        await running.when_idle()
        self.assertTrue(all(r.disconnected for r in running.simulator.requests))
