"""JiraDeploymentGate: its arguments, and the step in a fake build with a scripted Jira.

The polling loop itself is tested in ``tests/test_gating.py``.
"""

from __future__ import annotations

import warnings
from typing import Any

from buildbot import config
from buildbot.config.errors import capture_config_errors
from buildbot.plugins import reporters, steps, util
from buildbot.process import buildstep
from buildbot.process.results import CANCELLED, FAILURE, RETRY, SUCCESS, WARNINGS
from buildbot.test.reactor import TestReactorMixin
from buildbot.test.steps import TestBuildStepMixin
from buildbot.warnings import DeprecatedApiWarning
from twisted.internet import defer
from twisted.trial import unittest

from buildbot_jira import steps as steps_module
from buildbot_jira.jira.errors import JiraAuthError, JiraPermissionError, JiraUnavailableError
from buildbot_jira.jira.http import DEFAULT_TIMEOUT
from buildbot_jira.jira.results import GatingStatus
from buildbot_jira.jira.retry import RetryPolicy
from buildbot_jira.options import GateOptions
from buildbot_jira.sites import JiraSite
from buildbot_jira.steps import GATE_RETRY, JiraDeploymentGate
from tests.support import SECRET, coroutine_test

GOOD: dict[str, Any] = {
    "site": "example.atlassian.net",
    "client_id": "id",
    "client_secret": SECRET,
    "environment_id": "production",
}


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
            wait_timeout=3600,
            timeout_result=util.FAILURE,
        )
        self.assertEqual(gate.name, "jira-gate")
        # A gate that Jira did not open must stop the build before the deployment.
        self.assertTrue(gate.haltOnFailure)
        assert gate.options is not None
        self.assertEqual(gate.options.interval, 30.0)
        self.assertEqual(gate.options.site.api_url, "https://api.atlassian.com")
        # The gate's wait_timeout is its wait; each request keeps the site's own.
        self.assertEqual(gate.options.timeout, 3600.0)
        self.assertEqual(gate.options.wait_timeout, 3600.0)
        self.assertEqual(gate.options.site.timeout, DEFAULT_TIMEOUT)
        self.assertFalse(gate.options.timeout_is_the_wait)

    def test_the_gate_keeps_its_options_and_nothing_else(self) -> None:
        class PlainStep(buildstep.BuildStep):
            """What Buildbot's BuildStep alone leaves on a step like the gate."""

            name = "jira-gate"
            haltOnFailure = True
            warnOnWarnings = True

        gate = JiraDeploymentGate(**GOOD)
        self.assertIsInstance(gate.options, GateOptions)
        self.assertEqual(set(vars(gate)), set(vars(PlainStep())) | {"options"})

    def test_missing_environment_id_is_named(self) -> None:
        self.assertIn("environment_id", config_error(environment_id=None))
        self.assertIn("environment_id", config_error(environment_id=""))
        self.assertIn("environment_id", config_error(environment_id=42))

    def test_wrong_interval_and_timeout_are_named(self) -> None:
        for value in ("30", 0, -1, True, None):
            self.assertIn("interval", config_error(interval=value), repr(value))
            self.assertIn("timeout must", config_error(timeout=value), repr(value))

    def test_bad_timeout_result_is_named(self) -> None:
        for value in (RETRY, 42, "retry", "flaky", True, None):
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
        self.assertTrue(message.startswith("JiraDeploymentGate 'jira-gate': "), message)

    def test_reporter_only_arguments_are_refused_saying_so(self) -> None:
        message = config_error(builders=["deploy"], outbox_size=10)
        self.assertEqual(
            message,
            "JiraDeploymentGate 'jira-gate': builders, outbox_size: argument(s) of the Jira "
            "reporters, not of the gate; the arguments every Jira service shares are site, "
            "client_id, client_secret, cloud_id, api_url, site_url, timeout, "
            "min_request_interval, ca_bundle, ca_bundle_only, proxy",
        )
        self.assertNotIn("unexpected keyword", message)

    def test_an_unknown_argument_names_the_closest(self) -> None:
        message = config_error(enviroment_id="production", name="approve")
        self.assertTrue(message.startswith("JiraDeploymentGate 'approve': "), message)
        self.assertIn("unknown argument(s): enviroment_id (did you mean environment_id?)", message)
        self.assertIn("wait_timeout", message)
        self.assertIn("besides those of every Buildbot step", message)

    def test_one_dict_of_site_arguments_serves_every_service(self) -> None:
        # The README's example: reporters and gate built from one dict pass checkConfig.
        jira = {
            "site": "example.atlassian.net",
            "client_id": util.Secret("jira-client-id"),
            "client_secret": util.Secret("jira-client-secret"),
            "cloud_id": "4c2b0000-0000-0000-0000-000000000000",
            "api_url": "https://api.atlassian.com",
            "site_url": "https://example.atlassian.net",
            "timeout": 10,
            "min_request_interval": 2,
        }
        with capture_config_errors() as errors:
            builds = reporters.JiraBuildReporter(name="jira-builds", **jira)
            deployments = reporters.JiraDeploymentReporter(
                name="jira-deploy-prod",
                builders=["deploy-prod"],
                environment_id="prod-east1",
                environment_type="production",
                enable_gating=True,
                **jira,
            )
            gate = JiraDeploymentGate(
                environment_id="prod-east1", wait_timeout=3600, timeout_result="failure", **jira
            )
        self.assertEqual(errors.errors, [])
        self.assertEqual(builds.name, "jira-builds")
        self.assertEqual(deployments.name, "jira-deploy-prod")
        assert gate.options is not None
        self.assertEqual(gate.options.wait_timeout, 3600.0)
        self.assertEqual(gate.options.site.timeout, 10.0)
        self.assertEqual(gate.options.site.min_request_interval, 2.0)
        self.assertEqual(gate.options.timeout_result, FAILURE)
        self.assertFalse(gate.options.timeout_is_the_wait)

    def test_timeout_without_wait_timeout_is_the_wait_with_a_warning(self) -> None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            gate = JiraDeploymentGate(**GOOD, timeout=600)
        assert gate.options is not None
        self.assertEqual(gate.options.wait_timeout, 600.0)
        self.assertEqual(gate.options.site.timeout, DEFAULT_TIMEOUT)
        (warning,) = [w for w in caught if issubclass(w.category, DeprecatedApiWarning)]
        self.assertIn(
            "JiraDeploymentGate 'jira-gate': timeout is the gate's whole wait", str(warning.message)
        )
        self.assertIn("name the wait wait_timeout", str(warning.message))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            JiraDeploymentGate(**GOOD, timeout=10, wait_timeout=600)
        self.assertEqual([w for w in caught if issubclass(w.category, DeprecatedApiWarning)], [])

    def test_timeout_result_takes_a_constant_or_a_name(self) -> None:
        for value in (util.WARNINGS, "warnings", "WARNINGS"):
            gate = JiraDeploymentGate(**GOOD, timeout_result=value)
            assert gate.options is not None
            self.assertEqual(gate.options.timeout_result, WARNINGS)

    def test_the_secret_is_not_in_the_steps_text(self) -> None:
        # Buildbot writes a step's text to its log (when locks are released, for one).
        gate = JiraDeploymentGate(**GOOD)
        self.assertNotIn(SECRET, str(gate))
        self.assertNotIn(SECRET, repr(gate))
        self.assertIn("production", str(gate))


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
    def __init__(self, client: FakeJira, site: JiraSite[str], retry: RetryPolicy) -> None:
        self.site = site
        self.retry = retry
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
        self.connections: list[FakeConnection] = []
        self.users: list[str | None] = []

        async def connect(
            master: Any, site: JiraSite[str], *, retry: RetryPolicy, user: str | None = None
        ) -> FakeConnection:
            self.assertIs(master, self.master)
            self.users.append(user)
            connection = FakeConnection(self.jira, site, retry)
            self.connections.append(connection)
            return connection

        self.patch(steps_module, "connect", connect)
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
        (connection,) = self.connections
        self.assertEqual(connection.site.client_id, "id-from-secret")
        self.assertEqual(connection.site.client_secret, SECRET)
        self.assertEqual(connection.site.site, "example.atlassian.net")
        # The shared client's log lines name the step among its users.
        self.assertEqual(self.users, ["jira-gate"])
        self.assertEqual(connection.retry, GATE_RETRY)
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
        step = self.gate(interval=10, wait_timeout=25, timeout_result=WARNINGS)
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
        self.assertIn("failed: Jira refused client ID", text)
        self.assertIn("Check client_id and client_secret", text)
        self.assertNotIn(SECRET, text)
        self.assertTrue(self.connections[0].released)

    @coroutine_test
    async def test_missing_permission_fails_and_says_what_to_check(self) -> None:
        self.script(JiraPermissionError("GET deployments was refused (HTTP 403)", status=403))
        step = self.gate()
        self.expect_outcome(FAILURE, "Jira gating: permission missing (failure)")
        await self.run_gate()
        text = self.log_text(step)
        self.assertIn("Asking Jira's deployments API for the gating status of deployment", text)
        self.assertIn("GET deployments was refused (HTTP 403)", text)
        self.assertIn("lack the permission", text)

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
        self.assertTrue(self.connections[0].released)
        self.assertIn("Interrupted", self.log_text(step))
