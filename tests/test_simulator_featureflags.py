"""Tests of buildbot_jira.simulator.featureflags: the feature flags API, over HTTP."""

from __future__ import annotations

from buildbot_jira.simulator import (
    contract,
)

from .test_simulator import (
    FLAGS,
    SimulatorTestCase,
    run,
)


class FeatureFlagTests(SimulatorTestCase):
    """Feature flags: judged one by one, stored by ID."""

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
