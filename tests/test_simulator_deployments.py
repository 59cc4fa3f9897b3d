"""Tests of buildbot_jira.simulator.deployments: the deployments API and gating, over HTTP."""

from __future__ import annotations

from typing import Any

from twisted.trial import unittest

from buildbot_jira.simulator import (
    contract,
)
from buildbot_jira.simulator.deployments import deployment_problems

from .test_contract import valid_deployment
from .test_simulator import (
    DEPLOYMENTS,
    Reply,
    SimulatorTestCase,
    deployment_path,
    run,
)


class DeploymentTests(SimulatorTestCase):
    """Deployments: associations, contract rules, gating."""

    async def post(self, *deployments: dict[str, Any], token: str | None = None) -> Reply:
        return await self.request(
            "POST",
            DEPLOYMENTS,
            {"deployments": list(deployments)},
            token=token or await self.token(),
        )

    @run
    async def test_associations_and_the_older_issue_keys_both_work(self) -> None:
        older = valid_deployment(deploymentSequenceNumber=1, issueKeys=["PROJ-1"])
        del older["associations"]
        newer = valid_deployment(
            deploymentSequenceNumber=2,
            associations=[
                {"associationType": "issueIdOrKeys", "values": ["PROJ-2"]},
                {"associationType": "serviceIdOrKeys", "values": ["svc-1"]},
                {
                    "associationType": "commit",
                    "values": [{"commitHash": "ab12", "repositoryId": "r"}],
                },
            ],
        )
        reply = await self.post(older, newer)
        self.assertEqual(reply.status, 202)
        self.assertEqual(
            [d["deploymentSequenceNumber"] for d in reply.body["acceptedDeployments"]], [1, 2]
        )
        self.assertEqual(reply.body["rejectedDeployments"], [])
        self.assertEqual(
            contract.validation_errors(contract.response_schema("deployments"), reply.body), []
        )
        self.assertEqual(self.simulator.deployments_for_issue("PROJ-1"), [older])
        self.assertEqual(self.simulator.deployments_for_issue("PROJ-2"), [newer])

    @run
    async def test_unknown_associations(self) -> None:
        only_unknown = valid_deployment(
            deploymentSequenceNumber=1,
            associations=[
                {"associationType": "issueIdOrKeys", "values": ["NOPE-1"]},
            ],
        )
        mixed = valid_deployment(
            deploymentSequenceNumber=2,
            associations=[
                {"associationType": "issueIdOrKeys", "values": ["PROJ-1", "NOPE-2"]},
            ],
        )
        reply = await self.post(only_unknown, mixed)
        self.assertEqual(reply.body["unknownIssueKeys"], ["NOPE-1", "NOPE-2"])
        self.assertEqual(
            reply.body["unknownAssociations"],
            [{"associationType": "issueIdOrKeys", "values": ["NOPE-1", "NOPE-2"]}],
        )
        self.assertEqual(
            [d["deploymentSequenceNumber"] for d in reply.body["acceptedDeployments"]], [2]
        )
        self.assertEqual(list(self.simulator.deployments), [("deploy", "stg", 2)])

    @run
    async def test_contract_violations_are_rejected(self) -> None:
        no_description = valid_deployment()
        del no_description["description"]
        unlinked = valid_deployment(deploymentSequenceNumber=8)
        del unlinked["associations"]
        bad_environment = valid_deployment(
            deploymentSequenceNumber=9,
            environment={"id": "x", "displayName": "X", "type": "qa"},
        )
        reply = await self.post(no_description, unlinked, bad_environment)
        messages = [r["errors"][0]["message"] for r in reply.body["rejectedDeployments"]]
        self.assertEqual(messages[0], "$: 'description' is a required property")
        self.assertIn("at least one issue or service", messages[1])
        self.assertTrue(messages[2].startswith("$.environment.type: 'qa'"))
        self.assertEqual(self.simulator.deployments, {})

    @run
    async def test_gating_awaits_until_set(self) -> None:
        token = await self.token()
        gated = valid_deployment(commands=[{"command": "initiate_deployment_gating"}])
        plain = valid_deployment(deploymentSequenceNumber=8)
        await self.post(gated, plain, token=token)
        path = deployment_path("deploy", "stg", 7, "/gating-status")
        awaiting = await self.request("GET", path, token=token)
        self.assertEqual(awaiting.status, 200)
        self.assertEqual(awaiting.body["gatingStatus"], "awaiting")
        self.assertEqual(
            contract.validation_errors(contract.gating_status_schema(), awaiting.body), []
        )
        ungated = await self.request(
            "GET", deployment_path("deploy", "stg", 8, "/gating-status"), token=token
        )
        self.assertEqual(ungated.status, 404)

        self.simulator.set_gating_status("deploy", "stg", 7, "allowed", details=["PROJ-1"])
        allowed = await self.request("GET", path, token=token)
        self.assertEqual(allowed.body["gatingStatus"], "allowed")
        self.assertEqual(
            allowed.body["details"],
            [
                {
                    "type": "issue",
                    "issueKey": "PROJ-1",
                    "issueLink": f"{self.running.url}/browse/PROJ-1",
                }
            ],
        )
        self.assertEqual(
            contract.validation_errors(contract.gating_status_schema(), allowed.body), []
        )
        with self.assertRaises(ValueError):
            self.simulator.set_gating_status("deploy", "stg", 7, "maybe")
        with self.assertRaises(KeyError):
            self.simulator.set_gating_status("deploy", "stg", 99, "allowed")

    @run
    async def test_get_a_deployment(self) -> None:
        token = await self.token()
        deployment = valid_deployment(
            pipeline={"id": "a/b", "displayName": "d", "url": "https://ci.example.com/x"}
        )
        await self.post(deployment, token=token)
        found = await self.request("GET", deployment_path("a/b", "stg", 7), token=token)
        self.assertEqual((found.status, found.body), (200, deployment))
        missing = await self.request("GET", deployment_path("a/b", "stg", 6), token=token)
        self.assertEqual(missing.status, 404)


class DeploymentRuleTests(unittest.TestCase):
    """The rules the contract states in words, without HTTP."""

    def test_at_most_500_association_values_in_all(self) -> None:
        values = [f"svc-{n}" for n in range(250)]
        deployment = valid_deployment(
            associations=[
                {"associationType": "serviceIdOrKeys", "values": values},
                {"associationType": "serviceIdOrKeys", "values": [*values, "one-more"]},
            ]
        )
        self.assertEqual(
            deployment_problems(deployment),
            ["$.associations: has 501 values in all, at most 500 allowed"],
        )
        deployment["associations"][1]["values"].pop()
        self.assertEqual(deployment_problems(deployment), [])
