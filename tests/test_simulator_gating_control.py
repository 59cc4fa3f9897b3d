"""Tests of buildbot_jira.simulator.gating_control: rehearsing gating while the simulator runs."""

from __future__ import annotations

from typing import Any

from twisted.trial import unittest

from buildbot_jira.simulator import GATING_STATUSES, JiraSimulator, contract
from buildbot_jira.simulator.tenant import Tenant

from .test_contract import valid_deployment
from .test_simulator import CREDENTIALS, DEPLOYMENTS, InMemoryTestCase, Reply, deployment_path

GATE = [{"command": "initiate_deployment_gating"}]


class GatingControlTests(InMemoryTestCase):
    def deploy(self, number: int = 7, *, gated: bool = True) -> None:
        token = self.call("POST", "/oauth/token", CREDENTIALS).body["access_token"]
        extra: dict[str, Any] = {"commands": GATE} if gated else {}
        deployment = valid_deployment(deploymentSequenceNumber=number, **extra)
        reply = self.call("POST", DEPLOYMENTS, {"deployments": [deployment]}, token=token)
        self.assertEqual(reply.status, 202)

    def gating(self, number: int = 7) -> Reply:
        token = self.call("POST", "/oauth/token", CREDENTIALS).body["access_token"]
        path = deployment_path("deploy", "stg", number, "/gating-status")
        reply = self.call("GET", path, token=token)
        if reply.status == 200:
            errors = contract.validation_errors(contract.gating_status_schema(), reply.body)
            self.assertEqual(errors, [])
        return reply

    def test_the_simulator_can_start_gated_deployments_with_any_status(self) -> None:
        for status in GATING_STATUSES:
            with self.subTest(status=status):
                self.serve(JiraSimulator(clock=self.clock, default_gating_status=status))
                self.deploy()
                self.assertEqual(self.gating().body["gatingStatus"], status)
        with self.assertRaisesRegex(ValueError, "one of allowed, prevented, awaiting, invalid"):
            JiraSimulator(clock=self.clock, default_gating_status="maybe")

    def test_one_post_decides_every_gated_deployment_and_the_next_ones(self) -> None:
        self.deploy(7)
        self.deploy(8)
        self.deploy(9, gated=False)
        self.assertEqual(self.gating(7).body["gatingStatus"], "awaiting")
        self.clock.advance(60)
        reply = self.call(
            "POST", "/_simulator/gating", {"gatingStatus": "prevented", "details": ["PROJ-9"]}
        )
        self.assertEqual(reply.status, 200, reply.body)
        self.assertEqual(reply.body["changed"], [["deploy", "stg", 7], ["deploy", "stg", 8]])
        for number in (7, 8):
            answer = self.gating(number).body
            self.assertEqual(answer["gatingStatus"], "prevented")
            self.assertEqual([d["issueKey"] for d in answer["details"]], ["PROJ-9"])
            self.assertEqual(answer["updatedTimestamp"], "1970-01-01T00:01:00.000Z")
        self.assertEqual(self.gating(9).status, 404)  # it did not ask to be gated
        self.deploy(10)
        later = self.gating(10).body
        self.assertEqual(later["gatingStatus"], "prevented")
        self.assertEqual([d["issueKey"] for d in later["details"]], ["PROJ-9"])
        self.assertEqual(self.simulator.default_gating_status, "prevented")

    def test_a_post_naming_a_deployment_decides_that_one_only(self) -> None:
        self.deploy(7)
        self.deploy(8)
        key = {"pipelineId": "deploy", "environmentId": "stg", "deploymentSequenceNumber": 8}
        reply = self.call("POST", "/_simulator/gating", {"gatingStatus": "allowed", **key})
        self.assertEqual(reply.status, 200, reply.body)
        self.assertEqual(reply.body["changed"], [["deploy", "stg", 8]])
        self.assertEqual(self.gating(8).body["gatingStatus"], "allowed")
        self.assertEqual(self.gating(7).body["gatingStatus"], "awaiting")
        self.assertEqual(reply.body["gatingStatus"], "awaiting")  # new ones still await
        shown = self.call("GET", "/_simulator/gating").body
        self.assertEqual(
            [(d["deploymentSequenceNumber"], d["gatingStatus"]) for d in shown["deployments"]],
            [(7, "awaiting"), (8, "allowed")],
        )

    def test_bad_posts_say_what_is_wrong_and_change_nothing(self) -> None:
        self.deploy(7)
        cases = [
            ("not json", 400, "must be a JSON object"),
            ({"gatingStatus": "maybe"}, 400, "one of allowed, prevented, awaiting, invalid"),
            ({"gatingStatus": "allowed", "details": "PROJ-1"}, 400, "list of issue keys"),
            ({"gatingStatus": "allowed", "pipelineId": "deploy"}, 400, "all of pipelineId"),
            (
                {
                    "gatingStatus": "allowed",
                    "pipelineId": "deploy",
                    "environmentId": "stg",
                    "deploymentSequenceNumber": 99,
                },
                404,
                "No gated deployment",
            ),
        ]
        for body, status, message in cases:
            with self.subTest(body=body):
                reply = self.call("POST", "/_simulator/gating", body)
                self.assertEqual(reply.status, status)
                self.assertIn(message, reply.body[0]["message"])
        self.assertEqual(self.gating(7).body["gatingStatus"], "awaiting")
        self.assertEqual(self.simulator.default_gating_status, "awaiting")

    def test_the_control_is_neither_recorded_nor_faulted(self) -> None:
        self.simulator.fail_next(3, 503, scope="any")
        reply = self.call("POST", "/_simulator/gating", {"gatingStatus": "allowed"})
        self.assertEqual(reply.status, 200)
        self.assertEqual(self.simulator.requests, [])


class TenantGatingTests(unittest.TestCase):
    def test_an_unknown_default_is_refused_when_assigned_too(self) -> None:
        tenant = Tenant()
        self.assertEqual(tenant.default_gating_status, "awaiting")
        with self.assertRaises(ValueError):
            tenant.default_gating_status = "soon"
        self.assertEqual(tenant.default_gating_status, "awaiting")
