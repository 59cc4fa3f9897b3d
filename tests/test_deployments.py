"""Deployments: environment types, states, sequence numbers, associations, the contract."""

from __future__ import annotations

import re

from buildbot import config
from buildbot.process.results import (
    CANCELLED,
    EXCEPTION,
    FAILURE,
    RETRY,
    SKIPPED,
    SUCCESS,
    WARNINGS,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial import unittest

from buildbot_jira.jira.model import DeploymentData, iso_timestamp
from buildbot_jira.mapping.builds import RETRY_DESCRIPTION, Skip, SourceStamp
from buildbot_jira.mapping.deployments import (
    DeploymentMapping,
    DeploymentTarget,
    deployment_sequence_number,
    guess_environment_type,
)
from buildbot_jira.reporters import JiraDeploymentReporter
from buildbot_jira.simulator.contract import entity_schema, validation_errors
from tests.support import SECRET
from tests.test_builds import snapshot

SITE = {"site": "example.atlassian.net", "client_id": "id", "client_secret": SECRET}


def deployment(
    *,
    keys: tuple[str, ...] = ("PROJ-1",),
    target: DeploymentTarget | None = None,
    mapping: DeploymentMapping | None = None,
    **fields: object,
) -> DeploymentData | Skip:
    return (mapping or DeploymentMapping()).deployment_data(
        snapshot(**fields),
        target or DeploymentTarget("prod-east1", "prod-east1", "production"),
        keys=keys,
        pipeline_id="ci.example.com/deploy",
        pipeline_name="deploy",
        update_sequence_number=99,
        last_updated=iso_timestamp(0),
    )


class EnvironmentTypeTests(unittest.TestCase):
    def test_guesses_respect_word_separators(self) -> None:
        expected = {
            "prod": "production",
            "production": "production",
            "prod-east1": "production",
            "production-2": "production",
            "Live": "production",
            "staging": "staging",
            "stage_eu": "staging",
            "preprod": "staging",
            "pre-prod": "staging",
            "test": "testing",
            "qa": "testing",
            "uat-eu": "testing",
            "SIT 3": "testing",
            "dev": "development",
            "development": "development",
            "devtools": "unmapped",
            "preview": "unmapped",
            "productivity": "unmapped",
            "latest": "unmapped",
            "": "unmapped",
        }
        for name, kind in expected.items():
            self.assertEqual(guess_environment_type(name), kind, name)

    def test_pre_production_is_staging_however_it_is_written(self) -> None:
        for name in ("Pre Prod", "pre prod", "PreProd", "pre-prod", "pre_prod", "Pre-Production"):
            self.assertEqual(guess_environment_type(name), "staging", name)
        # "pre" must start a word: these are production still.
        for name in ("prod", "Prod EU", "compre prod"):
            self.assertEqual(guess_environment_type(name), "production", name)

    def test_explicit_entries_win(self) -> None:
        explicit = {"preview": "staging", re.compile("^eu-"): "production"}
        self.assertEqual(guess_environment_type("preview", explicit), "staging")
        self.assertEqual(guess_environment_type("eu-dev", explicit), "production")
        self.assertEqual(guess_environment_type("dev", explicit), "development")


class StateTests(unittest.TestCase):
    def test_results_map_to_states(self) -> None:
        expected = {
            SUCCESS: "successful",
            WARNINGS: "successful",
            FAILURE: "failed",
            EXCEPTION: "failed",
            CANCELLED: "cancelled",
        }
        for result, state in expected.items():
            data = deployment(results=result)
            assert isinstance(data, DeploymentData)
            self.assertEqual(data.state, state)
        self.assertIsInstance(deployment(results=SKIPPED), Skip)
        running = deployment(results=None, complete=False)
        assert isinstance(running, DeploymentData)
        self.assertEqual(running.state, "in_progress")

    def test_a_property_overrides_the_state(self) -> None:
        data = deployment(results=FAILURE, properties={"jira_deployment_state": "rolled_back"})
        assert isinstance(data, DeploymentData)
        self.assertEqual(data.state, "rolled_back")

    def test_a_successful_deployment_of_an_older_revision_is_a_rollback(self) -> None:
        mapping = DeploymentMapping()
        target = DeploymentTarget("prod", "prod", "production")
        for results, state in ((SUCCESS, "rolled_back"), (FAILURE, "failed")):
            data = mapping.deployment_data(
                snapshot(results=results),
                target,
                keys=("PROJ-1",),
                pipeline_id="ci.example.com/deploy",
                pipeline_name="deploy",
                update_sequence_number=99,
                last_updated=iso_timestamp(0),
                rolled_back=True,
            )
            assert isinstance(data, DeploymentData)
            self.assertEqual(data.state, state)
            self.assertEqual(validation_errors(entity_schema("deployments"), data.to_json()), [])
        running = mapping.state(snapshot(results=None, complete=False), target, rolled_back=True)
        self.assertEqual(running, "in_progress")

    def test_a_retried_deployment_is_cancelled_saying_it_is_retried(self) -> None:
        for target in (
            DeploymentTarget("prod", "prod", "production"),
            DeploymentTarget(
                "prod", "prod", "production", step_number=2, step_results=RETRY, step_complete=True
            ),
        ):
            data = deployment(target=target, results=RETRY)
            assert isinstance(data, DeploymentData)
            self.assertEqual((data.state, data.description), ("cancelled", RETRY_DESCRIPTION))
            payload = data.to_json()
            self.assertEqual(validation_errors(entity_schema("deployments"), payload), [])

    def test_step_results_decide_for_step_deployments(self) -> None:
        target = DeploymentTarget(
            "staging", "staging", "staging", step_number=3, step_results=FAILURE, step_complete=True
        )
        data = deployment(target=target, results=SUCCESS)
        assert isinstance(data, DeploymentData)
        self.assertEqual(data.state, "failed")


class SequenceTests(unittest.TestCase):
    def test_sequence_numbers_grow_per_build_and_step(self) -> None:
        self.assertEqual(deployment_sequence_number(7), 7000)
        self.assertEqual(deployment_sequence_number(7, 0), 7001)
        self.assertEqual(deployment_sequence_number(7, 4), 7005)
        self.assertLess(deployment_sequence_number(7, 998), deployment_sequence_number(8))
        self.assertLess(deployment_sequence_number(7, 5000), deployment_sequence_number(8))

    def test_every_update_of_one_deployment_has_the_same_key(self) -> None:
        running = deployment(results=None, complete=False)
        done = deployment(results=SUCCESS)
        assert isinstance(running, DeploymentData)
        assert isinstance(done, DeploymentData)
        self.assertEqual(running.key, done.key)


class AssociationTests(unittest.TestCase):
    def test_issue_service_and_commit_associations(self) -> None:
        data = deployment(mapping=DeploymentMapping(service_ids=("svc-1",)))
        assert isinstance(data, DeploymentData)
        payload = data.to_json()
        self.assertEqual(
            payload["associations"],
            [
                {"associationType": "issueIdOrKeys", "values": ["PROJ-1"]},
                {"associationType": "serviceIdOrKeys", "values": ["svc-1"]},
                {
                    "associationType": "commit",
                    "values": [
                        {
                            "commitHash": "0123456789abcdef",
                            "repositoryId": "https://github.com/org/app.git",
                        }
                    ],
                },
            ],
        )
        self.assertEqual(validation_errors(entity_schema("deployments"), payload), [])

    def test_no_keys_and_no_services_is_a_skip(self) -> None:
        self.assertIsInstance(deployment(keys=()), Skip)
        services_only = deployment(keys=(), mapping=DeploymentMapping(service_ids=("svc",)))
        self.assertIsInstance(services_only, DeploymentData)

    def test_associations_stay_within_500_values(self) -> None:
        services = tuple(f"svc-{n}" for n in range(450))
        stamps = tuple(
            SourceStamp(codebase=f"c{n}", repository=f"r{n}", branch="b", revision=f"{n:040x}")
            for n in range(5)
        )
        keys = tuple(f"PROJ-{n}" for n in range(1, 101))
        data = deployment(
            keys=keys, mapping=DeploymentMapping(service_ids=services), sourcestamps=stamps
        )
        assert isinstance(data, DeploymentData)
        payload = data.to_json()
        total = sum(len(a["values"]) for a in payload["associations"])
        self.assertEqual(total, 500)
        self.assertEqual(len(payload["associations"][0]["values"]), 100)
        self.assertEqual(validation_errors(entity_schema("deployments"), payload), [])

    def test_gating_adds_the_command(self) -> None:
        data = deployment(mapping=DeploymentMapping(gating=True))
        assert isinstance(data, DeploymentData)
        self.assertEqual(data.to_json()["commands"], [{"command": "initiate_deployment_gating"}])


class PropertyBasedTests(unittest.TestCase):
    @settings(max_examples=150, deadline=None)
    @given(
        environment=st.text(min_size=1, max_size=400),
        services=st.lists(st.text(min_size=1, max_size=300), max_size=600),
        keys=st.lists(st.from_regex(r"\A[A-Z][A-Z0-9]{0,5}-[1-9][0-9]{0,4}\Z"), max_size=120),
        results=st.sampled_from([None, SUCCESS, WARNINGS, FAILURE, EXCEPTION, CANCELLED]),
        state_string=st.text(max_size=400),
        started=st.one_of(st.none(), st.floats(min_value=0, max_value=2e9)),
        duration=st.floats(min_value=0, max_value=1e6),
    )
    def test_every_deployment_validates_against_the_contract(
        self,
        environment: str,
        services: list[str],
        keys: list[str],
        results: int | None,
        state_string: str,
        started: float | None,
        duration: float,
    ) -> None:
        target = DeploymentTarget(environment, environment, guess_environment_type(environment))
        data = deployment(
            keys=tuple(keys),
            target=target,
            mapping=DeploymentMapping(service_ids=tuple(services)),
            results=results,
            complete=results is not None,
            state_string=state_string,
            started_at=started,
            complete_at=None if started is None else started + duration,
        )
        if isinstance(data, Skip):
            self.assertFalse(keys or services)
            return
        self.assertEqual(validation_errors(entity_schema("deployments"), data.to_json()), [])


class ConfigTests(unittest.TestCase):
    def error(self, **arguments: object) -> str:
        try:
            JiraDeploymentReporter(**{**SITE, **arguments})
        except config.ConfigErrors as errors:
            return "; ".join(errors.errors)
        raise AssertionError(f"no configuration error for {arguments!r}")

    def test_environment_is_required_without_a_named_group(self) -> None:
        self.assertIn("environment_id", self.error())
        self.assertIn("environment_id", self.error(step_pattern="^deploy$"))
        JiraDeploymentReporter(step_pattern=r"^deploy to (?P<environment>.+)$", **SITE)

    def test_bad_arguments_are_named(self) -> None:
        self.assertIn("step_pattern", self.error(step_pattern="(unclosed"))
        self.assertIn(
            "environment_types", self.error(environment_id="x", environment_types={"a": "prod"})
        )
        self.assertIn("service_ids", self.error(environment_id="x", service_ids=5))
        self.assertIn("enable_gating", self.error(environment_id="x", enable_gating="yes"))
        self.assertIn(
            "result_states", self.error(environment_id="x", result_states={"failure": "boom"})
        )
