"""Tests of buildbot_jira.simulator, over real HTTP on loopback.

The simulator's clock is a ``task.Clock``: token expiry and answer delays
are driven by ``clock.advance``, never by waiting.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import attrs
from treq.client import HTTPClient
from twisted.internet import defer, reactor, task
from twisted.trial import unittest
from twisted.web.client import Agent, HTTPConnectionPool, ResponseNeverReceived

from buildbot_jira.simulator import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_CLOUD_ID,
    IssuedToken,
    JiraSimulator,
    RunningSimulator,
    contract,
)
from buildbot_jira.tools.cli import build_parser, main, make_simulator, print_banner

from .test_contract import valid_build, valid_deployment

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


class TokenTests(SimulatorTestCase):
    @run
    async def test_valid_credentials_get_a_bearer_token(self) -> None:
        reply = await self.request("POST", "/oauth/token", CREDENTIALS)
        self.assertEqual(reply.status, 200)
        self.assertEqual(reply.body["token_type"], "Bearer")
        self.assertEqual(reply.body["expires_in"], 3600)
        self.assertIn("write:build:jira-software", reply.body["scope"])
        self.assertEqual(
            [t.access_token for t in self.simulator.issued_tokens], [reply.body["access_token"]]
        )
        self.assertEqual(self.simulator.token_requests, 1)

    @run
    async def test_bad_secret_is_401_access_denied(self) -> None:
        reply = await self.request(
            "POST", "/oauth/token", {**CREDENTIALS, "client_secret": "wrong"}
        )
        self.assertEqual(reply.status, 401)
        self.assertEqual(
            reply.body, {"error": "access_denied", "error_description": "Unauthorized"}
        )
        self.assertEqual(self.simulator.issued_tokens, [])

    @run
    async def test_unknown_client_is_401(self) -> None:
        reply = await self.request("POST", "/oauth/token", {**CREDENTIALS, "client_id": "who"})
        self.assertEqual(reply.status, 401)

    @run
    async def test_bad_grant_audience_or_body_is_an_oauth_error(self) -> None:
        grant = await self.request(
            "POST", "/oauth/token", {**CREDENTIALS, "grant_type": "password"}
        )
        self.assertEqual((grant.status, grant.body["error"]), (403, "unauthorized_client"))
        audience = await self.request(
            "POST", "/oauth/token", {**CREDENTIALS, "audience": "example.com"}
        )
        self.assertEqual((audience.status, audience.body["error"]), (403, "access_denied"))
        missing = await self.request("POST", "/oauth/token", {"grant_type": "client_credentials"})
        self.assertEqual((missing.status, missing.body["error"]), (400, "invalid_request"))
        garbage = await self.request("POST", "/oauth/token", data=b"client_id=x")
        self.assertEqual(garbage.status, 400)
        self.assertEqual(self.simulator.issued_tokens, [])

    @run
    async def test_token_expires_by_the_clock(self) -> None:
        _, running = await self.start(token_lifetime=60)
        token = await self.token(running)
        path = BUILDS
        ok = await self.request(
            "POST", path, {"builds": [valid_build()]}, token=token, running=running
        )
        self.assertEqual(ok.status, 202)
        self.clock.advance(59)
        still = await self.request(
            "GET",
            f"/jira/builds/0.1/cloud/{DEFAULT_CLOUD_ID}/pipelines/main-ci/builds/42",
            token=token,
            running=running,
        )
        self.assertEqual(still.status, 200)
        self.clock.advance(1)
        expired = await self.request(
            "POST", path, {"builds": [valid_build()]}, token=token, running=running
        )
        self.assertEqual(expired.status, 401)
        fresh = await self.token(running)
        again = await self.request(
            "POST", path, {"builds": [valid_build()]}, token=fresh, running=running
        )
        self.assertEqual(again.status, 202)

    @run
    async def test_secrets_are_not_recorded_nor_shown(self) -> None:
        token = await self.token()
        await self.post_builds(valid_build(), token=token)
        state = await self.request("GET", "/_simulator/state")
        text = json.dumps(state.body)
        self.assertNotIn(DEFAULT_CLIENT_SECRET, text)
        self.assertNotIn(token, text)
        self.assertEqual(self.simulator.requests[0].body["client_secret"], "<redacted>")
        self.assertNotIn(token, repr(self.simulator.issued_tokens))
        self.assertNotIn(DEFAULT_CLIENT_SECRET, repr(self.simulator))


class GatewayTests(SimulatorTestCase):
    @run
    async def test_tenant_info_answers_the_cloud_id(self) -> None:
        reply = await self.request("GET", "/_edge/tenant_info")
        self.assertEqual((reply.status, reply.body), (200, {"cloudId": DEFAULT_CLOUD_ID}))

    @run
    async def test_unknown_paths_are_404(self) -> None:
        self.assertEqual((await self.request("GET", "/nothing/here")).status, 404)
        token = await self.token()
        self.assertEqual((await self.request("GET", "/jira/nothing", token=token)).status, 404)

    @run
    async def test_api_needs_a_token(self) -> None:
        reply = await self.request("POST", BUILDS, {"builds": [valid_build()]})
        self.assertEqual(reply.status, 401)
        bogus = await self.request("POST", BUILDS, {"builds": [valid_build()]}, token="made-up")
        self.assertEqual(bogus.status, 401)
        self.assertEqual(self.simulator.builds, {})

    @run
    async def test_revoked_tokens_are_refused_and_new_ones_work(self) -> None:
        token = await self.token()
        self.simulator.revoke_tokens()
        reply = await self.post_builds(valid_build(), token=token)
        self.assertEqual(reply.status, 401)
        self.assertEqual((await self.post_builds(valid_build())).status, 202)

    @run
    async def test_wrong_cloud_id_is_404(self) -> None:
        token = await self.token()
        path = BUILDS.replace(DEFAULT_CLOUD_ID, "another-cloud")
        reply = await self.request("POST", path, {"builds": [valid_build()]}, token=token)
        self.assertEqual(reply.status, 404)
        self.assertEqual(self.simulator.builds, {})

    @run
    async def test_client_without_permission_is_403(self) -> None:
        simulator, running = await self.start(permissions={DEFAULT_CLIENT_ID: ["deployments"]})
        token = await self.token(running)
        refused = await self.request(
            "POST", BUILDS, {"builds": [valid_build()]}, token=token, running=running
        )
        self.assertEqual(refused.status, 403)
        self.assertEqual(len(refused.body), 1)
        self.assertIn("builds", refused.body[0]["message"])
        allowed = await self.request(
            "POST",
            DEPLOYMENTS,
            {"deployments": [valid_deployment()]},
            token=token,
            running=running,
        )
        self.assertEqual(allowed.status, 202)
        self.assertEqual(simulator.builds, {})

    @run
    async def test_a_request_over_the_size_limit_is_413(self) -> None:
        simulator, running = await self.start(max_body_bytes=2000)
        token = await self.token(running)
        builds = {"builds": [valid_build(buildNumber=n) for n in range(10)]}
        reply = await self.request("POST", BUILDS, builds, token=token, running=running)
        self.assertEqual(reply.status, 413)
        self.assertIn("send fewer entities", reply.body[0]["message"])
        self.assertEqual(simulator.builds, {})

    def test_permissions_must_name_entity_types(self) -> None:
        with self.assertRaises(ValueError):
            JiraSimulator(clock=self.clock, permissions={DEFAULT_CLIENT_ID: ["build"]})

    @run
    async def test_wrong_method_is_405(self) -> None:
        reply = await self.request("GET", BUILDS, token=await self.token())
        self.assertEqual(reply.status, 405)
        self.assertEqual(reply.headers["allow"], "POST")

    @run
    async def test_bulk_needs_json_content_type(self) -> None:
        reply = await self.request(
            "POST",
            BUILDS,
            {"builds": [valid_build()]},
            token=await self.token(),
            content_type="text/plain",
        )
        self.assertEqual(reply.status, 415)


class BuildTests(SimulatorTestCase):
    @run
    async def test_a_valid_build_is_accepted_and_stored(self) -> None:
        reply = await self.post_builds(valid_build())
        self.assertEqual(reply.status, 202)
        self.assertEqual(
            reply.body,
            {
                "acceptedBuilds": [{"pipelineId": "main-ci", "buildNumber": 42}],
                "rejectedBuilds": [],
                "unknownIssueKeys": [],
            },
        )
        self.assertEqual(
            contract.validation_errors(contract.response_schema("builds"), reply.body), []
        )
        self.assertEqual(self.simulator.builds[("main-ci", 42)].current, valid_build())
        self.assertEqual(self.simulator.builds_for_issue("PROJ-1"), [valid_build()])
        self.assertEqual(self.simulator.builds_for_issue("PROJ-2"), [])

    @run
    async def test_get_and_delete_with_an_encoded_pipeline_id(self) -> None:
        pipeline = "team/app ü?#%"
        token = await self.token()
        await self.post_builds(valid_build(pipelineId=pipeline), token=token)
        path = (
            f"/jira/builds/0.1/cloud/{DEFAULT_CLOUD_ID}/pipelines/"
            f"{quote(pipeline, safe='')}/builds/42"
        )
        found = await self.request("GET", path, token=token)
        self.assertEqual((found.status, found.body["pipelineId"]), (200, pipeline))
        deleted = await self.request("DELETE", path, token=token)
        self.assertEqual(deleted.status, 202)
        self.assertEqual((await self.request("GET", path, token=token)).status, 404)

    @run
    async def test_an_older_update_is_accepted_but_ignored(self) -> None:
        token = await self.token()
        await self.post_builds(
            valid_build(updateSequenceNumber=5, state="in_progress"), token=token
        )
        older = await self.post_builds(
            valid_build(updateSequenceNumber=3, state="failed"), token=token
        )
        self.assertEqual(
            older.body["acceptedBuilds"], [{"pipelineId": "main-ci", "buildNumber": 42}]
        )
        same = await self.post_builds(
            valid_build(updateSequenceNumber=5, state="failed"), token=token
        )
        self.assertEqual(len(same.body["acceptedBuilds"]), 1)
        stored = self.simulator.builds[("main-ci", 42)]
        self.assertEqual(stored.current["state"], "in_progress")
        await self.post_builds(valid_build(updateSequenceNumber=9, state="successful"), token=token)
        self.assertEqual(stored.current["state"], "successful")
        self.assertEqual([v["updateSequenceNumber"] for v in stored.history], [5, 9])

    @run
    async def test_a_missing_required_field_is_rejected_with_a_message(self) -> None:
        build = valid_build()
        del build["url"]
        reply = await self.post_builds(build, valid_build(buildNumber=43))
        self.assertEqual(reply.status, 202)
        self.assertEqual(
            reply.body["rejectedBuilds"],
            [
                {
                    "key": {"pipelineId": "main-ci", "buildNumber": 42},
                    "errors": [{"message": "$: 'url' is a required property"}],
                }
            ],
        )
        self.assertEqual(
            reply.body["acceptedBuilds"], [{"pipelineId": "main-ci", "buildNumber": 43}]
        )
        self.assertEqual(list(self.simulator.builds), [("main-ci", 43)])

    @run
    async def test_a_bad_state_is_rejected(self) -> None:
        reply = await self.post_builds(valid_build(state="done"))
        self.assertEqual(reply.body["acceptedBuilds"], [])
        [rejected] = reply.body["rejectedBuilds"]
        self.assertIn("$.state: 'done' is not one of", rejected["errors"][0]["message"])
        self.assertEqual(self.simulator.builds, {})

    @run
    async def test_a_bad_issue_key_is_rejected(self) -> None:
        reply = await self.post_builds(valid_build(issueKeys=["proj 1"]))
        [rejected] = reply.body["rejectedBuilds"]
        self.assertTrue(rejected["errors"][0]["message"].startswith("$.issueKeys[0]:"))
        self.assertEqual(self.simulator.builds, {})

    @run
    async def test_more_than_100_builds_is_400(self) -> None:
        builds = [valid_build(buildNumber=n) for n in range(101)]
        reply = await self.post_builds(*builds)
        self.assertEqual(reply.status, 400)
        self.assertEqual(reply.body, [{"message": "$.builds: has 101 items, at most 100 allowed"}])
        self.assertEqual(self.simulator.builds, {})

    @run
    async def test_malformed_requests_are_400_with_error_messages(self) -> None:
        token = await self.token()
        bodies: list[Any] = [
            b"{not json",
            [valid_build()],
            {},
            {"builds": []},
            {"builds": ["a string"]},
            {"builds": [valid_build()], "properties": {f"k{i}": "v" for i in range(6)}},
            {"builds": [valid_build()], "providerMetadata": {"product": 5}},
        ]
        for body in bodies:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            reply = await self.request("POST", BUILDS, data=data, token=token)
            self.assertEqual(reply.status, 400, body)
            self.assertIsInstance(reply.body, list)
            self.assertTrue(reply.body[0]["message"], body)
        self.assertEqual(self.simulator.builds, {})

    @run
    async def test_unknown_issue_keys(self) -> None:
        reply = await self.post_builds(
            valid_build(buildNumber=1, issueKeys=["NOPE-1"]),
            valid_build(buildNumber=2, issueKeys=["PROJ-2", "NOPE-2"]),
        )
        self.assertEqual(reply.body["unknownIssueKeys"], ["NOPE-1", "NOPE-2"])
        # Linked only to unknown issues: neither stored nor accepted.
        self.assertEqual(
            reply.body["acceptedBuilds"], [{"pipelineId": "main-ci", "buildNumber": 2}]
        )
        self.assertEqual(list(self.simulator.builds), [("main-ci", 2)])

    @run
    async def test_every_project_is_known_when_none_is_listed(self) -> None:
        simulator, running = await self.start(known_projects=None)
        token = await self.token(running)
        reply = await self.request(
            "POST",
            BUILDS,
            {"builds": [valid_build(issueKeys=["ANY-9"])]},
            token=token,
            running=running,
        )
        self.assertEqual(reply.body["unknownIssueKeys"], [])
        self.assertEqual(len(simulator.builds), 1)


class DeploymentTests(SimulatorTestCase):
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


class DevinfoAndFlagTests(SimulatorTestCase):
    @run
    async def test_devinfo_accepts_fails_and_reports_unknown_keys(self) -> None:
        commit = {
            "id": "c1",
            "issueKeys": ["PROJ-1"],
            "updateSequenceId": 1,
            "hash": "c1",
            "author": {"name": "A"},
            "authorTimestamp": "2024-09-01T12:00:00Z",
            "displayId": "c1",
            "fileCount": 0,
            "message": "PROJ-1 fix",
            "url": "https://git.example.com/c/c1",
        }
        bad = {**commit, "id": "c2", "issueKeys": ["not a key"]}
        unknown = {**commit, "id": "c3", "issueKeys": ["NOPE-3"]}
        body = {
            "repositories": [
                {
                    "id": "r1",
                    "name": "repo",
                    "url": "https://git.example.com/r1",
                    "updateSequenceId": 1,
                    "commits": [commit, bad, unknown],
                }
            ]
        }
        reply = await self.request("POST", DEVINFO, body, token=await self.token())
        self.assertEqual(reply.status, 202)
        self.assertEqual(
            reply.body["acceptedDevinfoEntities"],
            {"r1": {"commits": ["c1"], "branches": [], "pullRequests": []}},
        )
        [failure] = reply.body["failedDevinfoEntities"]["r1"]["commits"]
        self.assertEqual(failure["id"], "c2")
        self.assertEqual(reply.body["unknownIssueKeys"], ["NOPE-3"])
        self.assertEqual(
            contract.validation_errors(contract.response_schema("devinfo"), reply.body), []
        )
        self.assertEqual(list(self.simulator.devinfo_entities), [("r1", "commits", "c1")])
        self.assertEqual(list(self.simulator.repositories), ["r1"])

    @run
    async def test_devinfo_400_uses_its_own_error_shape(self) -> None:
        reply = await self.request("POST", DEVINFO, {}, token=await self.token())
        self.assertEqual(reply.status, 400)
        self.assertEqual(
            reply.body, {"errorMessages": [{"message": "$: 'repositories' is a required property"}]}
        )

    @run
    async def test_feature_flags(self) -> None:
        flag = {
            "id": "f1",
            "key": "new-ui",
            "issueKeys": ["PROJ-1"],
            "updateSequenceId": 1,
            "summary": {"status": {"enabled": True}, "lastUpdated": "2024-09-01T12:00:00Z"},
            "details": [
                {
                    "url": "https://flags.example.com/f1",
                    "lastUpdated": "2024-09-01T12:00:00Z",
                    "environment": {"name": "prod"},
                    "status": {"enabled": True},
                }
            ],
        }
        broken = {**flag, "id": "f2"}
        del broken["summary"]
        reply = await self.request(
            "POST", FLAGS, {"flags": [flag, broken]}, token=await self.token()
        )
        self.assertEqual(reply.body["acceptedFeatureFlags"], ["f1"])
        self.assertEqual(list(reply.body["failedFeatureFlags"]), ["f2"])
        self.assertEqual(
            contract.validation_errors(contract.response_schema("featureflags"), reply.body), []
        )
        self.assertEqual(self.simulator.feature_flags_for_issue("PROJ-1"), [flag])


class FaultTests(SimulatorTestCase):
    @run
    async def test_fail_next_with_retry_after(self) -> None:
        token = await self.token()
        self.simulator.fail_next(2, 429, retry_after=7)
        first = await self.post_builds(valid_build(), token=token)
        second = await self.post_builds(valid_build(), token=token)
        third = await self.post_builds(valid_build(), token=token)
        self.assertEqual([first.status, second.status, third.status], [429, 429, 202])
        self.assertEqual(first.headers["retry-after"], "7")
        self.assertEqual(first.body, [{"message": "Simulated failure: HTTP 429"}])
        self.assertEqual(self.simulator.api_requests, 3)
        self.assertEqual([r.fault for r in self.simulator.requests[1:]], ["fail", "fail", None])
        self.assertEqual(len(self.simulator.builds[("main-ci", 42)].history), 1)

    @run
    async def test_fail_next_scopes(self) -> None:
        self.simulator.fail_next(1, 503, scope="token", body={"error": "temporarily_unavailable"})
        failed = await self.request("POST", "/oauth/token", CREDENTIALS)
        self.assertEqual((failed.status, failed.body), (503, {"error": "temporarily_unavailable"}))
        token = await self.token()
        self.simulator.fail_next(1, 500, scope="token")
        # An API call does not use up a token-scoped fault.
        self.assertEqual((await self.post_builds(valid_build(), token=token)).status, 202)
        self.assertEqual((await self.request("POST", "/oauth/token", CREDENTIALS)).status, 500)
        self.simulator.fail_next(1, 502, scope="any")
        self.assertEqual((await self.request("GET", "/_edge/tenant_info")).status, 502)
        self.assertEqual(self.simulator.token_requests, 3)

    @run
    async def test_drop_next_cuts_the_connection(self) -> None:
        token = await self.token()
        self.simulator.drop_next(1)
        with self.assertRaises(ResponseNeverReceived):
            await self.post_builds(valid_build(), token=token)
        self.assertEqual(self.simulator.builds, {})
        self.assertEqual(self.simulator.requests[-1].fault, "drop")
        self.assertIsNone(self.simulator.requests[-1].status)
        self.assertEqual((await self.post_builds(valid_build(), token=token)).status, 202)

    @run
    async def test_delay_holds_the_answer_until_the_clock_moves(self) -> None:
        token = await self.token()
        self.simulator.set_delay(30)
        answer = defer.ensureDeferred(self.post_builds(valid_build(), token=token))
        await self.simulator.when_received(2)
        self.assertFalse(answer.called)
        self.clock.advance(29)
        self.assertFalse(answer.called)
        self.clock.advance(1)
        reply = await answer
        self.assertEqual(reply.status, 202)

    @run
    async def test_a_client_leaving_during_a_delay_is_coped_with(self) -> None:
        token = await self.token()
        self.simulator.delay = 30
        answer = defer.ensureDeferred(self.post_builds(valid_build(), token=token))
        await self.simulator.when_received(2)
        answer.cancel()
        await self.running.when_idle()
        self.assertTrue(self.simulator.requests[-1].disconnected)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(30)  # nothing left to write: must not raise
        with self.assertRaises(ResponseNeverReceived):
            await answer


class ObservationTests(SimulatorTestCase):
    @run
    async def test_state_shows_requests_and_stores(self) -> None:
        token = await self.token()
        self.clock.advance(100)
        await self.post_builds(valid_build(), token=token)
        await self.post_builds(valid_build(updateSequenceNumber=2, state="failed"), token=token)
        reply = await self.request("GET", "/_simulator/state")
        state = reply.body
        self.assertEqual(state["cloudId"], DEFAULT_CLOUD_ID)
        self.assertEqual(state["counts"]["requests"], 3)
        self.assertEqual(state["counts"]["tokenRequests"], 1)
        self.assertEqual(state["counts"]["apiRequests"], 2)
        self.assertEqual(state["counts"]["builds"], 1)
        self.assertEqual(
            [(r["method"], r["status"], r["timestamp"]) for r in state["requests"]],
            [("POST", 200, 0), ("POST", 202, 100), ("POST", 202, 100)],
        )
        self.assertEqual(state["requests"][1]["body"], {"builds": [valid_build()]})
        [build] = state["builds"]
        self.assertEqual(build["key"], ["main-ci", 42])
        self.assertEqual(build["current"]["state"], "failed")
        self.assertEqual([v["state"] for v in build["history"]], ["successful", "failed"])
        self.assertEqual(len(state["tokens"]), 1)

    @run
    async def test_simulator_views_change_nothing(self) -> None:
        await self.request("GET", "/_simulator/state")
        await self.request("GET", "/_simulator/issues")
        posted = await self.request("POST", "/_simulator/state", {"builds": []})
        self.assertEqual(posted.status, 405)
        self.assertEqual(self.simulator.requests, [])

    @run
    async def test_issues_view_links_builds_and_deployments(self) -> None:
        token = await self.token()
        await self.post_builds(valid_build(issueKeys=["PROJ-1", "NOPE-1"]), token=token)
        await self.request("POST", DEPLOYMENTS, {"deployments": [valid_deployment()]}, token=token)
        reply = await self.request("GET", "/_simulator/issues")
        self.assertEqual(list(reply.body), ["PROJ-1"])
        self.assertEqual(reply.body["PROJ-1"]["builds"][0]["buildNumber"], 42)
        self.assertEqual(reply.body["PROJ-1"]["deployments"][0]["deploymentSequenceNumber"], 7)


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
        import io

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


class TokenValueTests(unittest.TestCase):
    def test_token_validity(self) -> None:
        token = IssuedToken("t", "c", issued_at=0, expires_at=10)
        self.assertTrue(token.is_valid(9.9))
        self.assertFalse(token.is_valid(10))
        token.revoked = True
        self.assertFalse(token.is_valid(0))
