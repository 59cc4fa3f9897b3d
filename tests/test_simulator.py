"""Tests of buildbot_jira.simulator.core: the JiraSimulator facade, and what every test module
of the simulator shares (``SimulatorTestCase``: a simulator on loopback with a fake clock).

The simulator's clock is a ``task.Clock``: token expiry and answer delays
are driven by ``clock.advance``, never by waiting.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import attrs
from treq.client import HTTPClient
from treq.testing import StubTreq
from twisted.internet import defer, reactor, task
from twisted.trial import unittest
from twisted.web.client import Agent, HTTPConnectionPool

from buildbot_jira.simulator import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_CLOUD_ID,
    JiraSimulator,
    ReceivedRequest,
    RunningSimulator,
)
from buildbot_jira.tools.cli import build_parser, main, make_simulator, print_banner

from .test_contract import valid_build

CREDENTIALS = {
    "audience": "api.atlassian.com",
    "grant_type": "client_credentials",
    "client_id": DEFAULT_CLIENT_ID,
    "client_secret": DEFAULT_CLIENT_SECRET,
}
BUILDS = f"/jira/builds/0.1/cloud/{DEFAULT_CLOUD_ID}/bulk"
DEPLOYMENTS = f"/jira/deployments/0.1/cloud/{DEFAULT_CLOUD_ID}/bulk"
DEVINFO = f"/jira/devinfo/0.1/cloud/{DEFAULT_CLOUD_ID}/bulk"
FLAGS = f"/jira/featureflags/0.1/cloud/{DEFAULT_CLOUD_ID}/bulk"


@attrs.frozen
class Reply:
    status: int
    headers: Mapping[str, str]
    body: Any


def deployment_path(pipeline: str, environment: str, sequence: int, tail: str = "") -> str:
    return (
        f"/jira/deployments/0.1/cloud/{DEFAULT_CLOUD_ID}/pipelines/{quote(pipeline, safe='')}"
        f"/environments/{quote(environment, safe='')}/deployments/{sequence}{tail}"
    )


class SimulatorTestCase(unittest.TestCase):
    """Runs a simulator on a free loopback port, with a fake clock."""

    def setUp(self) -> defer.Deferred[None]:  # type: ignore[override]
        self.clock = task.Clock()
        pool = HTTPConnectionPool(reactor, persistent=False)
        self.http = HTTPClient(Agent(reactor, pool=pool))
        self.addCleanup(pool.closeCachedConnections)
        return defer.ensureDeferred(self._start_default())

    async def _start_default(self) -> None:
        self.simulator, self.running = await self.start()

    async def start(self, **options: Any) -> tuple[JiraSimulator, RunningSimulator]:
        simulator = JiraSimulator(clock=self.clock, **options)
        running = await simulator.listen()
        self.addCleanup(lambda: defer.ensureDeferred(running.stop()))
        return simulator, running

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = None,
        data: bytes | None = None,
        running: RunningSimulator | None = None,
        content_type: str = "application/json",
    ) -> Reply:
        headers: dict[bytes | str, bytes | str] = {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            headers["Content-Type"] = content_type
        url = (running or self.running).url + path
        response = await self.http.request(method, url, data=data, headers=headers)
        raw = await response.content()
        return Reply(
            response.code,
            {k.decode().lower(): v[0].decode() for k, v in response.headers.getAllRawHeaders()},
            json.loads(raw) if raw else None,
        )

    async def token(self, running: RunningSimulator | None = None, **changes: str) -> str:
        reply = await self.request(
            "POST", "/oauth/token", {**CREDENTIALS, **changes}, running=running
        )
        self.assertEqual(reply.status, 200, reply.body)
        return str(reply.body["access_token"])

    async def post_builds(self, *builds: dict[str, Any], token: str | None = None) -> Reply:
        return await self.request(
            "POST", BUILDS, {"builds": list(builds)}, token=token or await self.token()
        )


def run(coroutine_function: Any) -> Any:
    """Let trial run an ``async def`` test method."""

    def test(self: Any) -> defer.Deferred[Any]:
        return defer.ensureDeferred(coroutine_function(self))

    test.__name__ = coroutine_function.__name__
    test.__doc__ = coroutine_function.__doc__
    return test


class InMemoryTestCase(unittest.TestCase):
    """A simulator served without sockets, through treq's testing agent, on a fake clock."""

    def setUp(self) -> None:
        self.clock = task.Clock()
        self.serve(JiraSimulator(clock=self.clock))

    def serve(self, simulator: JiraSimulator) -> None:
        """Serve ``simulator`` (whose clock should be ``self.clock``) from now on."""
        self.simulator = simulator
        self.http = StubTreq(simulator.resource())

    def call(self, method: str, path: str, body: Any = None, *, token: str = "") -> Reply:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        sent = self.http.request(method, "http://jira.example" + path, json=body, headers=headers)
        self.http.flush()
        response = self.successResultOf(sent)
        raw = self.successResultOf(response.content())
        return Reply(
            response.code,
            {k.decode().lower(): v[0].decode() for k, v in response.headers.getAllRawHeaders()},
            json.loads(raw) if raw else None,
        )


class InMemoryTests(InMemoryTestCase):
    """``JiraSimulator.resource()`` served without sockets, through treq's testing agent."""

    def test_the_resource_answers_the_whole_api(self) -> None:
        token = self.call("POST", "/oauth/token", CREDENTIALS).body["access_token"]
        reply = self.call("POST", BUILDS, {"builds": [valid_build()]}, token=token)
        self.assertEqual(reply.status, 202)
        self.assertEqual(list(self.simulator.builds), [("main-ci", 42)])
        self.assertEqual([r.status for r in self.simulator.requests], [200, 202])
        page = self.http.get("http://jira.example/")
        self.http.flush()
        text = self.successResultOf(self.successResultOf(page).text())
        self.assertIn('data-issue="PROJ-1"', text)

    def test_a_delayed_answer_waits_for_the_simulators_clock(self) -> None:
        self.simulator.set_delay(5)
        sent = self.http.get("http://jira.example/_edge/tenant_info")
        self.http.flush()
        self.assertNoResult(sent)
        self.clock.advance(5)
        self.http.flush()
        self.assertEqual(self.successResultOf(sent).code, 200)

    def test_observers_and_waiters_hear_of_each_request_once_decided(self) -> None:
        seen: list[ReceivedRequest] = []
        unsubscribe = self.simulator.subscribe(seen.append)
        waiter = self.simulator.when_received(2)
        self.call("GET", "/_edge/tenant_info")
        self.assertNoResult(waiter)
        self.call("GET", "/nothing")
        self.successResultOf(waiter)
        self.assertEqual(
            [(r.path, r.status) for r in seen], [("/_edge/tenant_info", 200), ("/nothing", 404)]
        )
        unsubscribe()
        self.call("GET", "/_edge/tenant_info")
        self.assertEqual(len(seen), 2)
        self.assertEqual(len(self.simulator.requests), 3)
        # A waiter for requests already received fires at once.
        self.successResultOf(self.simulator.when_received(3))

    def test_tokens_issued_without_http_work_until_revoked(self) -> None:
        token = self.simulator.issue_token()
        path = f"/jira/builds/0.1/cloud/{DEFAULT_CLOUD_ID}/pipelines/main-ci/builds/42"
        # The token passes the gateway: the API itself answers that no such build is stored.
        self.assertEqual(self.call("GET", path, token=token).body[0]["message"][:8], "No build")
        self.simulator.revoke_tokens()
        self.assertEqual(self.call("GET", path, token=token).status, 401)
        with self.assertRaises(KeyError):
            self.simulator.issue_token("nobody")


class SettingsTests(unittest.TestCase):
    """The simulator's settings and clock may change while it runs."""

    def test_settings_are_converted_and_checked_when_changed(self) -> None:
        simulator = JiraSimulator(clock=task.Clock())
        simulator.permissions = {DEFAULT_CLIENT_ID: ["builds"]}
        self.assertEqual(simulator.permissions, {DEFAULT_CLIENT_ID: frozenset({"builds"})})
        with self.assertRaises(ValueError):
            simulator.permissions = {DEFAULT_CLIENT_ID: ["build"]}
        simulator.known_projects = ["ops"]
        self.assertEqual(simulator.known_projects, frozenset({"OPS"}))
        self.assertTrue(simulator.is_known_issue("ops-1"))
        self.assertFalse(simulator.is_known_issue("PROJ-1"))
        with self.assertRaises(ValueError):
            simulator.delay = -1
        simulator.clients = {"me": "s3cret"}
        self.assertEqual(simulator.clients, {"me": "s3cret"})
        self.assertNotIn("s3cret", repr(simulator))

    def test_a_new_clock_times_what_follows(self) -> None:
        simulator = JiraSimulator(clock=task.Clock(), token_lifetime=60)
        later = task.Clock()
        later.advance(1000)
        simulator.clock = later
        simulator.issue_token()
        [token] = simulator.issued_tokens
        self.assertEqual((token.issued_at, token.expires_at), (1000, 1060))


class CommandLineTests(unittest.TestCase):
    def test_simulate_help_exits_0(self) -> None:
        with self.assertRaises(SystemExit) as raised:
            main(["simulate", "--help"])
        self.assertEqual(raised.exception.code, 0)

    def test_no_command_is_a_usage_error(self) -> None:
        self.assertEqual(main([]), 2)

    def test_simulate_options_make_the_simulator(self) -> None:
        args = build_parser().parse_args(
            [
                "simulate",
                "--project",
                "ops",
                "--project",
                "WEB",
                "--token-lifetime",
                "60",
                "--client-id",
                "me",
                "--client-secret",
                "s3cret",
                "--cloud-id",
                "c1",
            ]
        )
        simulator = make_simulator(args)
        self.assertEqual(simulator.known_projects, frozenset({"OPS", "WEB"}))
        self.assertEqual(simulator.token_lifetime, 60)
        self.assertEqual(simulator.clients, {"me": "s3cret"})
        self.assertEqual(simulator.cloud_id, "c1")
        any_project = make_simulator(build_parser().parse_args(["simulate", "--any-project"]))
        self.assertIsNone(any_project.known_projects)

    def test_banner_does_not_echo_a_chosen_secret(self) -> None:
        args = build_parser().parse_args(["simulate", "--client-secret", "s3cret"])
        simulator = make_simulator(args)
        unused: Any = None
        running = RunningSimulator(
            simulator=simulator, url="http://127.0.0.1:1", port=unused, connections=unused
        )
        out = io.StringIO()
        print_banner(running, args, out)
        self.assertIn("http://127.0.0.1:1", out.getvalue())
        self.assertNotIn("s3cret", out.getvalue())
