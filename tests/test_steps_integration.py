"""JiraDeploymentGate in a real master with a real local worker, against the simulator.

The builder's build is a deployment to ``production`` that a
``JiraDeploymentReporter`` sends with gating at build start; the gate is the
build's first step and a ``deploy`` shell step follows it. The simulator
plays Jira Service Management: the test decides the gating status.
"""

from __future__ import annotations

import os
from typing import Any

from buildbot.plugins import secrets, util
from buildbot.process.results import CANCELLED, FAILURE, SUCCESS, WARNINGS
from twisted.internet import defer, reactor, task

from buildbot_jira.reporters import JiraDeploymentReporter
from buildbot_jira.simulator import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from buildbot_jira.steps import JiraDeploymentGate
from tests.masters import JiraMasterTestCase, jira_arguments, shell
from tests.support import coroutine_test

PIPELINE = "buildbot.example.com:8010/release"


class DeploymentGateTests(JiraMasterTestCase):
    async def start(self, with_secrets: bool = False, **gate: Any) -> None:
        """A master whose ``release`` builder is: the gate, then ``deploy``."""
        running = await self.start_simulator()
        reporter = JiraDeploymentReporter(
            name="jira-deploy",
            builders=["release"],
            environment_id="production",
            environment_name="production",
            environment_type="production",
            enable_gating=True,
            **jira_arguments(running),
        )
        gate_arguments: dict[str, Any] = {
            **jira_arguments(running),
            "environment_id": "production",
            "interval": 0.5,
            "timeout": 30,
            **gate,
        }
        config: dict[str, Any] = {}
        if with_secrets:
            config["secretsProviders"] = [secrets.SecretInAFile(dirname=self.secret_directory())]
            gate_arguments["client_id"] = util.Secret("jira-client-id")
            gate_arguments["client_secret"] = util.Secret("jira-client-secret")
        await self.start_master(
            [reporter],
            {"release": [JiraDeploymentGate(**gate_arguments), shell("deploy", "true")]},
            **config,
        )

    def secret_directory(self) -> str:
        directory = self.mktemp()
        os.makedirs(directory)
        for name, value in (
            ("jira-client-id", DEFAULT_CLIENT_ID),
            ("jira-client-secret", DEFAULT_CLIENT_SECRET),
        ):
            path = os.path.join(directory, name)
            with open(path, "w", encoding="utf-8") as secret:
                secret.write(value)
            os.chmod(path, 0o600)
        return directory

    def release(self) -> defer.Deferred[dict[str, Any]]:
        """Start a build of a change that names PROJ-7; fires with the finished build."""
        return self.doForceBuild(
            useChange={
                "branch": "release/PROJ-7",
                "comments": "PROJ-7: ship it",
                "revision": "0123456789abcdef0123456789abcdef01234567",
                "repository": "https://git.example.com/app.git",
                "author": "dev <dev@example.com>",
                "files": ["app.py"],
                "project": "app",
            },
            wantSteps=True,
            wantLogs=True,
        )

    def gating_keys(self) -> list[tuple[str, str, int]]:
        return list(self.sim.simulator.gating)

    def questions(self) -> int:
        """How often the gate has asked the simulator for a gating status."""
        return sum(1 for r in self.sim.simulator.requests if r.path.endswith("/gating-status"))

    async def until_waiting(self) -> tuple[str, str, int]:
        """Wait until the deployment asks for gating and the gate has asked about it."""
        await self.until(lambda: len(self.gating_keys()) == 1)
        await self.until(lambda: self.questions() >= 2)
        (key,) = self.gating_keys()
        return key

    @staticmethod
    def step(build: dict[str, Any], name: str) -> dict[str, Any] | None:
        return next((s for s in build["steps"] if s["name"] == name), None)

    @staticmethod
    def log_text(step: dict[str, Any], name: str) -> str:
        (found,) = [log for log in step["logs"] if log["name"] == name]
        return "\n".join(line[1:] for line in found["contents"]["content"].splitlines())

    @coroutine_test
    async def test_allowed_lets_the_deployment_run(self) -> None:
        await self.start(with_secrets=True)
        building = self.release()
        key = await self.until_waiting()
        self.assertFalse(building.called)  # held at the gate
        self.assertEqual(self.sim.simulator.gating[key].status, "awaiting")
        self.assertEqual(key[:2], (PIPELINE, "production"))
        self.sim.simulator.set_gating_status(*key, "allowed")
        build = await building
        self.assertEqual(build["results"], SUCCESS)
        self.assertEqual(key[2], build["number"] * 1000)
        gate = self.step(build, "jira-gate")
        deploy = self.step(build, "deploy")
        assert gate is not None
        assert deploy is not None
        self.assertEqual(gate["results"], SUCCESS)
        self.assertEqual(gate["state_string"], "Jira gating: allowed")
        self.assertEqual(deploy["results"], SUCCESS)
        self.assertGreaterEqual(deploy["started_at"], gate["complete_at"])
        text = self.log_text(gate, "jira gating")
        self.assertIn("gating status awaiting", text)
        self.assertIn("gating status allowed", text)
        self.assertNotIn(DEFAULT_CLIENT_SECRET, text + gate["state_string"])
        # The gate and the reporter share one token (the same credentials, one master).
        self.assertEqual(self.sim.simulator.token_requests, 1)

    @coroutine_test
    async def test_prevented_stops_the_build_and_links_the_blocking_issue(self) -> None:
        await self.start()
        building = self.release()
        key = await self.until_waiting()
        self.sim.simulator.set_gating_status(*key, "prevented", details=["PROJ-9"])
        build = await building
        self.assertEqual(build["results"], FAILURE)
        gate = self.step(build, "jira-gate")
        assert gate is not None
        self.assertEqual(gate["results"], FAILURE)
        self.assertEqual(gate["state_string"], "Jira gating: prevented by PROJ-9 (failure)")
        self.assertEqual(
            [(url["name"], url["url"]) for url in gate["urls"]],
            [("PROJ-9", f"{self.sim.url}/browse/PROJ-9")],
        )
        self.assertIsNone(self.step(build, "deploy"))  # the gate halts the build
        self.assertIn("held by PROJ-9", self.log_text(gate, "jira gating"))
        # The reporter tells Jira that this deployment did not happen.
        await self.until(lambda: self.sim.simulator.deployments[key].current["state"] == "failed")

    @coroutine_test
    async def test_no_decision_in_time_ends_with_the_configured_result(self) -> None:
        await self.start(timeout=2, timeout_result=WARNINGS)
        build = await self.release()
        self.assertEqual(build["results"], WARNINGS)
        gate = self.step(build, "jira-gate")
        deploy = self.step(build, "deploy")
        assert gate is not None
        assert deploy is not None
        self.assertEqual(gate["results"], WARNINGS)
        self.assertEqual(gate["state_string"], "Jira gating: no decision within 2 s (warnings)")
        waited = (gate["complete_at"] - gate["started_at"]).total_seconds()
        self.assertGreaterEqual(waited, 1)  # whole seconds: the wait was 2 s
        self.assertGreaterEqual(self.questions(), 3)
        self.assertEqual(deploy["results"], SUCCESS)  # WARNINGS does not halt the build
        self.assertIn("last answer was: awaiting", self.log_text(gate, "jira gating"))

    @coroutine_test
    async def test_a_timeout_fails_by_default_and_stops_the_deployment(self) -> None:
        await self.start(timeout=1)
        build = await self.release()
        self.assertEqual(build["results"], FAILURE)
        self.assertIsNone(self.step(build, "deploy"))

    @coroutine_test
    async def test_stopping_the_build_stops_the_gate_at_once(self) -> None:
        await self.start(timeout=600)
        building = self.release()
        await self.until_waiting()
        (running,) = [b for b in await self.master.data.get(("builds",)) if not b["complete"]]
        await self.master.data.control(
            "stop", {"reason": "not today"}, ("builds", running["buildid"])
        )
        build = await building
        self.assertEqual(build["results"], CANCELLED)
        gate = self.step(build, "jira-gate")
        assert gate is not None
        self.assertEqual(gate["results"], CANCELLED)
        self.assertIsNone(self.step(build, "deploy"))
        asked = self.questions()
        await self.pause(1.5)  # three intervals: no more questions once the step stopped
        self.assertEqual(self.questions(), asked)

    async def pause(self, seconds: float) -> None:
        await task.deferLater(reactor, seconds, lambda: None)
