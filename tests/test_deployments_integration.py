"""JiraDeploymentReporter in a real master with a real local worker, against the simulator."""

from __future__ import annotations

from buildbot.plugins import steps, util
from buildbot.process.results import SUCCESS

from buildbot_jira.reporters import JiraDeploymentReporter
from buildbot_jira.simulator.contract import entity_schema, validation_errors
from tests.masters import JiraMasterTestCase, jira_arguments, shell
from tests.support import coroutine_test


class DeploymentReporterTests(JiraMasterTestCase):
    def deployments(self) -> dict[str, dict]:
        """Stored deployments by environment ID."""
        return {key[1]: e.current for key, e in self.sim.simulator.deployments.items()}

    def received(self) -> list[dict]:
        return [
            deployment
            for request in self.sim.simulator.requests
            if request.path.endswith("/bulk") and isinstance(request.body, dict)
            for deployment in request.body.get("deployments", [])
        ]

    @coroutine_test
    async def test_each_matching_step_is_a_deployment(self) -> None:
        running = await self.start_simulator()
        reporter = JiraDeploymentReporter(
            name="jira-steps",
            step_pattern=r"^deploy to (?P<environment>.+)$",
            **jira_arguments(running),
        )
        await self.start_master(
            [reporter],
            {
                "release": [
                    shell("compile", "true"),
                    shell("deploy to staging", "true"),
                    shell("deploy to production", "exit 1"),
                    shell("deploy to qa", "true", doStepIf=False),
                ]
            },
        )
        await self.build_with_change(branch="feature/PROJ-42-pay", comments="PROJ-43 fix")
        await self.until(lambda: self.deployments().get("production", {}).get("state") == "failed")
        await self.until(lambda: self.deployments().get("staging", {}).get("state") == "successful")
        stored = self.deployments()
        self.assertEqual(set(stored), {"staging", "production"})  # the skipped step sent nothing
        self.assertEqual(stored["staging"]["environment"]["type"], "staging")
        self.assertEqual(stored["production"]["environment"]["type"], "production")
        for deployment in stored.values():
            issues = next(
                a for a in deployment["associations"] if a["associationType"] == "issueIdOrKeys"
            )
            self.assertEqual(issues["values"], ["PROJ-42", "PROJ-43"])
            self.assertEqual(deployment["pipeline"]["displayName"], "release")
        self.assertNotEqual(
            stored["staging"]["deploymentSequenceNumber"],
            stored["production"]["deploymentSequenceNumber"],
        )
        states = [(d["environment"]["id"], d["state"]) for d in self.received()]
        self.assertEqual(
            states.index(("staging", "in_progress")) < states.index(("staging", "successful")), True
        )
        self.assertNotIn("qa", {env for env, _ in states})
        for payload in self.received():
            self.assertEqual(validation_errors(entity_schema("deployments"), payload), [])

    @coroutine_test
    async def test_builder_level_deployment_renders_its_environment_type(self) -> None:
        running = await self.start_simulator()
        reporter = JiraDeploymentReporter(
            name="jira-deploy",
            builders=["deploy-prod"],
            environment_id="prod-east1",
            environment_name="prod-east1",
            environment_type=util.Property("env_type"),
            service_ids=["svc-payments"],
            **jira_arguments(running),
        )
        await self.start_master(
            [reporter],
            {
                "deploy-prod": [
                    steps.SetProperty(property="env_type", value="staging"),
                    shell("deploy", "true"),
                ]
            },
        )
        build = await self.build_with_change(branch="PROJ-77")
        self.assertEqual(build["results"], SUCCESS)
        await self.until(
            lambda: self.deployments().get("prod-east1", {}).get("state") == "successful"
        )
        stored = self.deployments()["prod-east1"]
        self.assertEqual(stored["environment"]["type"], "staging")
        self.assertEqual(stored["deploymentSequenceNumber"], build["number"] * 1000)
        self.assertIn(
            {"associationType": "serviceIdOrKeys", "values": ["svc-payments"]},
            stored["associations"],
        )
        self.assertGreaterEqual(stored["duration"], 0)
        states = [d["state"] for d in self.received()]
        self.assertEqual(states[0], "in_progress")
        self.assertEqual(states[-1], "successful")
