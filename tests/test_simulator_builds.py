"""Tests of buildbot_jira.simulator.builds: the builds API, over HTTP."""

from __future__ import annotations

from urllib.parse import quote

from buildbot_jira.simulator import (
    DEFAULT_CLOUD_ID,
    contract,
)

from .test_contract import valid_build
from .test_simulator import (
    BUILDS,
    SimulatorTestCase,
    run,
)


class BuildTests(SimulatorTestCase):
    """Builds: judged one by one, stored with Jira's sequence-number rule."""

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
