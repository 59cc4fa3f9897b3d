"""Tests of buildbot_jira.simulator.devinfo: the development information API, over HTTP."""

from __future__ import annotations

from buildbot_jira.simulator import (
    contract,
)

from .test_simulator import (
    DEVINFO,
    SimulatorTestCase,
    run,
)


class DevinfoTests(SimulatorTestCase):
    """Repositories and their commits, branches and pull requests."""

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
