"""The wire model: its limits match the contract, and its values stay within them."""

from __future__ import annotations

import datetime

from twisted.trial import unittest

from buildbot_jira.jira import model
from buildbot_jira.jira.model import (
    BuildData,
    DeploymentData,
    Environment,
    Pipeline,
    SequenceNumbers,
    TestInfo,
    clip,
    iso_timestamp,
)
from buildbot_jira.simulator.contract import entity_schema


def build(**fields: object) -> BuildData:
    values: dict = {
        "pipeline_id": "ci.example.com/app",
        "build_number": 1,
        "update_sequence_number": 1,
        "display_name": "app #1",
        "url": "http://ci.example.com/#/builders/1/builds/1",
        "state": "successful",
        "last_updated": iso_timestamp(0),
        "issue_keys": ("ABC-1",),
    }
    values.update(fields)
    return BuildData(**values)


class ContractLimitTests(unittest.TestCase):
    """The limits written here are the ones the contract's document states."""

    def test_states_and_environment_types_are_the_contracts_enums(self) -> None:
        builds, deployments = entity_schema("builds"), entity_schema("deployments")
        self.assertEqual(model.BUILD_STATES, set(builds["properties"]["state"]["enum"]))
        self.assertEqual(model.DEPLOYMENT_STATES, set(deployments["properties"]["state"]["enum"]))
        environment = deployments["properties"]["environment"]["properties"]["type"]
        self.assertEqual(model.ENVIRONMENT_TYPES, set(environment["enum"]))

    def test_issue_key_limits_are_the_contracts(self) -> None:
        issue_keys = entity_schema("builds")["properties"]["issueKeys"]
        self.assertEqual(model.MAX_ISSUE_KEYS, issue_keys["maxItems"])
        part = model.MAX_ISSUE_KEY_PART
        self.assertEqual(issue_keys["items"]["pattern"], rf"^\w{{1,{part}}}-\d{{1,{part}}}$")
        self.assertEqual(
            model.MAX_REFERENCES, entity_schema("builds")["properties"]["references"]["maxItems"]
        )

    def test_issue_key_pattern_reads_the_contract_as_jira_does(self) -> None:
        key = model.ISSUE_KEY_RE
        self.assertTrue(key.fullmatch("A" * 255 + "-" + "1" * 255))
        self.assertTrue(key.fullmatch("abc_1-0"))  # the contract is looser than Jira's own rule
        self.assertIsNone(key.fullmatch("A" * 256 + "-1"))
        self.assertIsNone(key.fullmatch("ABC-" + "1" * 256))
        # Java's \w and \d are ASCII only, unlike Python's.
        self.assertIsNone(key.fullmatch("ÄBC-1"))
        self.assertIsNone(key.fullmatch("ABC-\u0661"))
        self.assertIsNone(key.fullmatch("ABC-1\n"))


class BuildDataTests(unittest.TestCase):
    def test_issue_keys_are_checked_deduplicated_and_capped(self) -> None:
        keys = [f"K-{n}" for n in range(1, 151)]
        data = build(issue_keys=["K-1", *keys])
        self.assertEqual(data.issue_keys, tuple(keys[: model.MAX_ISSUE_KEYS]))
        with self.assertRaisesRegex(ValueError, "'feature/ABC-1' is not a Jira issue key"):
            build(issue_keys=("feature/ABC-1",))
        with self.assertRaisesRegex(ValueError, "at least one issue key"):
            build(issue_keys=())

    def test_state_and_numbers_are_checked(self) -> None:
        with self.assertRaises(ValueError):
            build(state="passed")
        for number in (-1, 2**63, True):
            with self.assertRaises(ValueError):
                build(build_number=number)

    def test_json_of_a_minimal_build(self) -> None:
        self.assertEqual(
            build(display_name="").to_json(),
            {
                "schemaVersion": "1.0",
                "pipelineId": "ci.example.com/app",
                "buildNumber": 1,
                "updateSequenceNumber": 1,
                "displayName": "#1",
                "url": "http://ci.example.com/#/builders/1/builds/1",
                "state": "successful",
                "lastUpdated": "1970-01-01T00:00:00.000Z",
                "issueKeys": ["ABC-1"],
            },
        )

    def test_test_info_counts_skipped_tests_in_the_total(self) -> None:
        info = TestInfo(passed=3, failed=1, skipped=2)
        self.assertEqual(
            info.to_json(),
            {"totalNumber": 6, "numberPassed": 3, "numberFailed": 1, "numberSkipped": 2},
        )


class DeploymentDataTests(unittest.TestCase):
    def test_environment_type_must_be_the_contracts(self) -> None:
        self.assertEqual(Environment("prod", "Prod", "production").to_json()["type"], "production")
        with self.assertRaises(ValueError):
            Environment("prod", "Prod", "live")

    def test_json_names_the_pipeline_environment_and_gating(self) -> None:
        data = DeploymentData(
            pipeline=Pipeline("ci/deploy", "", "http://ci/"),
            environment=Environment("prod", "", "production"),
            deployment_sequence_number=7000,
            update_sequence_number=1,
            display_name="deploy #7",
            url="http://ci/builds/7",
            description="",
            state="successful",
            last_updated=iso_timestamp(0),
            gating=True,
        )
        payload = data.to_json()
        self.assertEqual(payload["pipeline"]["displayName"], "ci/deploy")
        self.assertEqual(payload["environment"]["displayName"], "prod")
        self.assertEqual(payload["description"], "successful")
        self.assertEqual(payload["commands"], [{"command": "initiate_deployment_gating"}])
        self.assertNotIn("associations", payload)
        self.assertEqual(data.key, "ci/deploy#prod#7000")


class TimestampTests(unittest.TestCase):
    def test_timestamps_are_utc_with_milliseconds(self) -> None:
        self.assertEqual(iso_timestamp(1.2345), "1970-01-01T00:00:01.234Z")
        naive = datetime.datetime(2024, 5, 6, 7, 8, 9, 10_000)
        self.assertEqual(iso_timestamp(naive), "2024-05-06T07:08:09.010Z")
        plus_two = datetime.timezone(datetime.timedelta(hours=2))
        aware = datetime.datetime(2024, 5, 6, 9, 8, 9, tzinfo=plus_two)
        self.assertEqual(iso_timestamp(aware), "2024-05-06T07:08:09.000Z")


class SequenceTests(unittest.TestCase):
    def test_numbers_are_milliseconds_and_strictly_increase(self) -> None:
        numbers = SequenceNumbers()
        first = numbers.next(1000.0)
        self.assertEqual(first, 1_000_000)
        same_millisecond = [numbers.next(1000.0) for _ in range(5)]
        self.assertEqual(same_millisecond, [1_000_001 + n for n in range(5)])
        self.assertEqual(numbers.next(999.0), 1_000_006)  # the clock went back
        self.assertEqual(numbers.next(2000.0), 2_000_000)


class ClipTests(unittest.TestCase):
    def test_clip_marks_the_cut_and_removes_control_characters(self) -> None:
        self.assertEqual(clip("a\x00b\nc"), "a b c")
        self.assertEqual(len(clip("x" * 1000)), 255)
        self.assertTrue(clip("x" * 1000).endswith("\u2026"))
        self.assertEqual(clip("\udcff"), "?")


def test_a_deployment_carries_up_to_500_issue_keys_and_a_build_100() -> None:
    from buildbot_jira.jira.model import (
        MAX_ASSOCIATION_VALUES,
        MAX_ISSUE_KEYS,
        BuildData,
        DeploymentData,
        Environment,
        Pipeline,
    )
    from buildbot_jira.simulator.contract import entity_schema, validation_errors

    keys = [f"ABC-{n}" for n in range(1, 700)]
    deployment = DeploymentData(
        pipeline=Pipeline(id="ci/app", display_name="app", url="https://ci.example.com/b/1"),
        environment=Environment(id="production", display_name="production", type="production"),
        deployment_sequence_number=1,
        update_sequence_number=1,
        display_name="app #1 to production",
        url="https://ci.example.com/b/1/builds/1",
        description="deployed",
        state="successful",
        last_updated="2026-12-02T06:00:00.000Z",
        issue_keys=keys,
    )
    payload = deployment.to_json()
    values = sum(len(a["values"]) for a in payload["associations"])
    assert values == MAX_ASSOCIATION_VALUES
    assert validation_errors(entity_schema("deployments"), payload) == []
    build = BuildData(
        pipeline_id="ci/app",
        build_number=1,
        update_sequence_number=1,
        display_name="app #1",
        url="https://ci.example.com/b/1/builds/1",
        state="successful",
        last_updated="2026-12-02T06:00:00.000Z",
        issue_keys=keys,
    )
    assert len(build.to_json()["issueKeys"]) == MAX_ISSUE_KEYS
