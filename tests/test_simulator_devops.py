"""Tests of buildbot_jira.simulator.devops: the bulk request envelope, over HTTP and alone."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from twisted.trial import unittest

from buildbot_jira.simulator.devops import bulk_body, entity_id, integer, path_integer, string
from buildbot_jira.simulator.exchange import Answer, IncomingRequest
from buildbot_jira.simulator.tenant import Tenant

from .test_contract import valid_build
from .test_simulator import (
    BUILDS,
    SimulatorTestCase,
    run,
)


class BulkEnvelopeTests(SimulatorTestCase):
    """Requests refused as a whole, before any entity is judged."""

    @run
    async def test_a_request_over_the_size_limit_is_413(self) -> None:
        simulator, running = await self.start(max_body_bytes=2000)
        token = await self.token(running)
        builds = {"builds": [valid_build(buildNumber=n) for n in range(10)]}
        reply = await self.request("POST", BUILDS, builds, token=token, running=running)
        self.assertEqual(reply.status, 413)
        self.assertIn("send fewer entities", reply.body[0]["message"])
        self.assertEqual(simulator.builds, {})

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


def bulk_request(body: bytes, content_type: str = "application/json") -> IncomingRequest:
    return IncomingRequest(
        method="POST",
        raw_path="/jira/devinfo/0.1/cloud/c/bulk",
        segments=("jira", "devinfo", "0.1", "cloud", "c", "bulk"),
        headers={"content-type": content_type},
        body=body,
        site_url="http://jira.example",
        received_at=0.0,
    )


class BulkBodyTests(unittest.TestCase):
    """``bulk_body`` alone, without HTTP."""

    def test_request_rules_run_only_on_a_body_the_schema_allows(self) -> None:
        seen: list[object] = []

        def rules(body: Mapping[str, Any]) -> list[str]:
            seen.append(body)
            return ["$.repositories: too many"]

        tenant = Tenant()
        refused = bulk_body(bulk_request(b"{}"), "devinfo", tenant=tenant, request_problems=rules)
        self.assertEqual(
            refused,
            Answer(
                400, {"errorMessages": [{"message": "$: 'repositories' is a required property"}]}
            ),
        )
        self.assertEqual(seen, [])
        body = json.dumps({"repositories": []}).encode()
        ruled = bulk_body(bulk_request(body), "devinfo", tenant=tenant, request_problems=rules)
        self.assertEqual(
            ruled, Answer(400, {"errorMessages": [{"message": "$.repositories: too many"}]})
        )
        self.assertEqual(seen, [{"repositories": []}])
        self.assertEqual(
            bulk_body(bulk_request(body), "devinfo", tenant=tenant), {"repositories": []}
        )

    def test_a_content_type_with_parameters_is_json_all_the_same(self) -> None:
        request = bulk_request(b'{"repositories": []}', "Application/JSON; charset=utf-8")
        self.assertEqual(bulk_body(request, "devinfo", tenant=Tenant()), {"repositories": []})

    def test_keys_and_ids_of_entities_that_may_be_malformed(self) -> None:
        self.assertEqual(
            [path_integer(s) for s in ("42", "-1", "4.2", "x", "")], [42, -1, None, None, None]
        )
        self.assertEqual((integer(3), integer(True), integer("3")), (3, None, None))
        self.assertEqual((string("a"), string(1)), ("a", None))
        self.assertEqual(entity_id({"id": "c1"}, "commits[0]"), "c1")
        self.assertEqual(entity_id({"id": 7}, "commits[0]"), "commits[0]")
