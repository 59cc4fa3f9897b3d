"""Builds -> Jira BuildData: result mapping, keys, fields, and the contract's limits."""

from __future__ import annotations

import string

from buildbot.process.results import (
    CANCELLED,
    EXCEPTION,
    FAILURE,
    RETRY,
    SKIPPED,
    SUCCESS,
    WARNINGS,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.trial import unittest

from buildbot_jira.jira.model import BuildData, TestInfo, iso_timestamp
from buildbot_jira.mapping.builds import (
    DEFAULT_RESULT_STATES,
    RETRY_DESCRIPTION,
    BuildMapping,
    BuildSnapshot,
    Skip,
    SourceStamp,
    branch_uri,
    build_test_info,
    default_pipeline_id,
    final_state,
    instance_name,
)
from buildbot_jira.mapping.keys import IssueKeyRules, SourceKeys
from buildbot_jira.simulator.contract import entity_schema, validation_errors


def snapshot(**fields: object) -> BuildSnapshot:
    values: dict = {
        "buildid": 10,
        "number": 7,
        "builderid": 2,
        "builder_name": "app",
        "masterid": 1,
        "url": "http://ci.example.com/#/builders/2/builds/7",
        "state_string": "build successful",
        "results": SUCCESS,
        "complete": True,
        "sourcestamps": (
            SourceStamp(
                codebase="",
                repository="https://github.com/org/app.git",
                branch="feature/PROJ-123-login",
                revision="0123456789abcdef",
            ),
        ),
        "change_comments": ("PROJ-124: fix the login",),
    }
    values.update(fields)
    return BuildSnapshot(**values)


def build_data(snap: BuildSnapshot, mapping: BuildMapping | None = None) -> BuildData | Skip:
    mapping = mapping or BuildMapping()
    return mapping.build_data(
        snap,
        keys=mapping.issue_keys(snap).keys,
        pipeline_id="ci.example.com/app",
        update_sequence_number=1234,
        last_updated=iso_timestamp(1_700_000_000.5),
    )


class ResultMappingTests(unittest.TestCase):
    def test_every_buildbot_result(self) -> None:
        expected = {
            SUCCESS: "successful",
            WARNINGS: "successful",
            FAILURE: "failed",
            EXCEPTION: "failed",
            CANCELLED: "cancelled",
            SKIPPED: None,
            RETRY: "cancelled",
        }
        for result, state in expected.items():
            self.assertEqual(final_state(result), state, result)
        self.assertEqual(final_state(None), "in_progress")

    def test_warnings_can_be_mapped_to_failed(self) -> None:
        states = {**DEFAULT_RESULT_STATES, "warnings": "failed"}
        self.assertEqual(final_state(WARNINGS, states), "failed")

    def test_running_build_is_in_progress(self) -> None:
        data = build_data(snapshot(complete=False, results=None))
        assert isinstance(data, BuildData)
        self.assertEqual(data.state, "in_progress")

    def test_skipped_builds_send_nothing(self) -> None:
        data = build_data(snapshot(results=SKIPPED))
        self.assertIsInstance(data, Skip)
        assert isinstance(data, Skip)
        self.assertIn("not reported", data.reason)

    def test_a_retried_build_is_cancelled_saying_it_is_retried(self) -> None:
        data = build_data(snapshot(results=RETRY, state_string="retry"))
        assert isinstance(data, BuildData)
        self.assertEqual((data.state, data.description), ("cancelled", RETRY_DESCRIPTION))
        self.assertIn("retries it as a new build", data.to_json()["description"])
        self.assertEqual(validation_errors(entity_schema("builds"), data.to_json()), [])

    def test_retry_can_still_send_nothing(self) -> None:
        states = {**DEFAULT_RESULT_STATES, "retry": None}
        data = build_data(snapshot(results=RETRY), BuildMapping(result_states=states))
        assert isinstance(data, Skip)
        self.assertIn("'retry' is not reported", data.reason)


class FieldTests(unittest.TestCase):
    def test_fields_of_a_finished_build(self) -> None:
        data = build_data(snapshot())
        assert isinstance(data, BuildData)
        payload = data.to_json()
        self.assertEqual(payload["issueKeys"], ["PROJ-123", "PROJ-124"])
        self.assertEqual(payload["displayName"], "app #7")
        self.assertEqual(payload["buildNumber"], 7)
        self.assertEqual(payload["description"], "build successful")
        self.assertEqual(payload["label"], "feature/PROJ-123-login @ 0123456789ab")
        self.assertEqual(payload["lastUpdated"], "2023-11-14T22:13:20.500Z")
        self.assertEqual(
            payload["references"],
            [
                {
                    "commit": {
                        "id": "0123456789abcdef",
                        "repositoryUri": "https://github.com/org/app.git",
                    },
                    "ref": {
                        "name": "feature/PROJ-123-login",
                        "uri": "https://github.com/org/app/tree/feature/PROJ-123-login",
                    },
                }
            ],
        )
        self.assertNotIn("testInfo", payload)
        self.assertEqual(validation_errors(entity_schema("builds"), payload), [])

    def test_no_keys_is_a_skip_with_a_reason(self) -> None:
        data = build_data(snapshot(sourcestamps=(SourceStamp(branch="main"),), change_comments=()))
        self.assertIsInstance(data, Skip)
        assert isinstance(data, Skip)
        self.assertIn("no Jira issue keys", data.reason)

    def test_explicit_property_keys_come_after_branch_keys(self) -> None:
        snap = snapshot(properties={"jira_issue_keys": "ABC-1, ABC-2"}, change_comments=())
        keys = BuildMapping().issue_keys(snap)
        self.assertEqual(keys.keys, ("PROJ-123", "ABC-1", "ABC-2"))

    def test_wrong_property_type_is_noted_not_fatal(self) -> None:
        snap = snapshot(properties={"jira_issue_keys": {"a": 1}})
        keys = BuildMapping().issue_keys(snap)
        self.assertEqual(keys.keys, ("PROJ-123", "PROJ-124"))
        self.assertTrue(any("jira_issue_keys" in note for note in keys.notes))

    def test_pull_request_title_property_names_issues(self) -> None:
        snap = snapshot(
            sourcestamps=(SourceStamp(branch="refs/pull/12/merge"),),
            change_comments=(),
            properties={"github.title": "DEMO-5 Faster login"},
        )
        self.assertEqual(BuildMapping().issue_keys(snap).keys, ("DEMO-5",))

    def test_thousands_of_keys_are_capped_at_100_branch_first(self) -> None:
        message = " ".join(f"MSG-{n}" for n in range(1, 5001))
        snap = snapshot(change_comments=(message,))
        keys = BuildMapping().issue_keys(snap)
        self.assertEqual(len(keys.keys), 100)
        self.assertEqual(keys.keys[0], "PROJ-123")
        data = build_data(snap)
        assert isinstance(data, BuildData)
        self.assertEqual(validation_errors(entity_schema("builds"), data.to_json()), [])

    def test_keys_found_once_per_build_stand_in_for_the_commit_messages(self) -> None:
        mapping = BuildMapping()
        snap = snapshot(properties={"title": "OPS-9 title"}, change_comments=("PROJ-124 OPS-9",))
        found = mapping.source_keys(snap)
        self.assertEqual(
            found, SourceKeys(branch_keys=("PROJ-123",), change_keys=("PROJ-124", "OPS-9"))
        )
        kept = snapshot(properties={"title": "OPS-9 title"}, change_comments=(), source_keys=found)
        self.assertEqual(mapping.issue_keys(kept), mapping.issue_keys(snap))
        self.assertEqual(mapping.issue_keys(kept).keys, ("PROJ-123", "OPS-9", "PROJ-124"))

    def test_the_text_searched_per_build_is_capped_properties_first(self) -> None:
        rules = IssueKeyRules(max_chars_per_build=100)
        mapping = BuildMapping(rules=rules)
        title = "TITLE-1 " + "x" * 52  # 60 characters: the commit messages get 40
        comments = ("EARLY-2 " + "x" * 30, "LATE-3", "LATER-4")
        snap = snapshot(properties={"title": title}, change_comments=comments)
        keys = mapping.issue_keys(snap)
        self.assertEqual(keys.keys, ("PROJ-123", "TITLE-1", "EARLY-2", "LATE-3"))
        self.assertIn(
            "only the first 100 characters of its properties and commit messages "
            "were searched for issue keys",
            keys.notes,
        )
        found = mapping.source_keys(snap)
        self.assertTrue(found.cut)
        self.assertEqual(found.change_keys, ("EARLY-2", "LATE-3"))
        kept = snapshot(properties={"title": title}, source_keys=found, change_comments=())
        self.assertEqual(mapping.issue_keys(kept), keys)
        # Within the cap, nothing is noted.
        self.assertEqual(BuildMapping().issue_keys(snap).notes, ())

    def test_the_default_cap_is_one_mebibyte_per_build(self) -> None:
        message = "x" * 600_000 + " LATE-1"
        snap = snapshot(change_comments=("EARLY-1 " + message, message))
        keys = BuildMapping().issue_keys(snap)
        self.assertEqual(keys.keys, ("PROJ-123", "EARLY-1", "LATE-1"))  # the first, whole
        self.assertEqual(len(keys.notes), 1)
        self.assertEqual(IssueKeyRules().max_chars_per_build, 1 << 20)

    def test_test_counts_from_sets_and_properties(self) -> None:
        self.assertIsNone(build_test_info(snapshot()))
        from_sets = snapshot(test_counts=TestInfo(passed=5, failed=1))
        self.assertEqual(build_test_info(from_sets), TestInfo(passed=5, failed=1))
        both = snapshot(
            test_counts=TestInfo(passed=5, failed=1),
            properties={"tests_failed": "3", "tests_skipped": 2},
        )
        self.assertEqual(build_test_info(both), TestInfo(passed=5, failed=3, skipped=2))
        junk = snapshot(properties={"tests_passed": "many", "tests_failed": True})
        self.assertIsNone(build_test_info(junk))
        odd = snapshot(properties={"tests_passed": "\u00b2", "tests_failed": "\u0663"})
        self.assertIsNone(build_test_info(odd))  # digits, but not ASCII ones

    def test_huge_test_counts_stay_within_int64(self) -> None:
        big = 2**63
        data = build_data(
            snapshot(properties={"tests_passed": big, "tests_failed": big, "tests_skipped": big})
        )
        assert isinstance(data, BuildData)
        self.assertEqual(validation_errors(entity_schema("builds"), data.to_json()), [])

    def test_references_are_at_most_five(self) -> None:
        stamps = tuple(
            SourceStamp(codebase=f"c{n}", repository=f"r{n}", branch="PROJ-1", revision=f"{n:040x}")
            for n in range(8)
        )
        data = build_data(snapshot(sourcestamps=stamps))
        assert isinstance(data, BuildData)
        self.assertEqual(len(data.to_json()["references"]), 5)


class PipelineIdTests(unittest.TestCase):
    def test_pipeline_id_is_instance_and_builder(self) -> None:
        self.assertEqual(instance_name("https://ci.example.com/"), "ci.example.com")
        self.assertEqual(instance_name("http://ci.example.com:8010/bb/"), "ci.example.com:8010/bb")
        self.assertEqual(default_pipeline_id("ci.example.com", "app"), "ci.example.com/app")

    def test_long_pipeline_ids_stay_unique_within_255(self) -> None:
        a = default_pipeline_id("ci", "x" * 300 + "a")
        b = default_pipeline_id("ci", "x" * 300 + "b")
        self.assertLessEqual(len(a), 255)
        self.assertNotEqual(a, b)
        self.assertEqual(a, default_pipeline_id("ci", "x" * 300 + "a"))

    def test_branch_uri(self) -> None:
        self.assertEqual(
            branch_uri("https://gitlab.com/g/p.git", "refs/heads/main"),
            "https://gitlab.com/g/p/tree/main",
        )
        self.assertEqual(branch_uri("/srv/git/app", "dev"), "/srv/git/app#dev")


printable_branch = st.text(alphabet=string.ascii_letters + string.digits + "/-_.", max_size=300)


class PropertyBasedTests(unittest.TestCase):
    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        branch=st.one_of(st.none(), printable_branch, st.text(max_size=2000)),
        comments=st.lists(st.text(max_size=3000), max_size=4),
        key_in_branch=st.booleans(),
        state_string=st.text(max_size=600),
        builder_name=st.text(min_size=1, max_size=400),
        revision=st.one_of(st.none(), st.text(max_size=300)),
        repository=st.text(max_size=2500),
        number=st.integers(min_value=0, max_value=2**40),
        results=st.sampled_from([None, SUCCESS, WARNINGS, FAILURE, EXCEPTION, CANCELLED]),
        passed=st.integers(min_value=0, max_value=10**9),
    )
    def test_every_payload_validates_against_the_contract(
        self,
        branch: str | None,
        comments: list[str],
        key_in_branch: bool,
        state_string: str,
        builder_name: str,
        revision: str | None,
        repository: str,
        number: int,
        results: int | None,
        passed: int,
    ) -> None:
        if key_in_branch:
            branch = f"{branch or ''}/PROJ-1"
        snap = snapshot(
            number=number,
            builder_name=builder_name,
            state_string=state_string,
            results=results,
            complete=results is not None,
            sourcestamps=(SourceStamp(repository=repository, branch=branch, revision=revision),),
            change_comments=tuple(comments),
            properties={"tests_passed": passed},
        )
        mapping = BuildMapping(rules=IssueKeyRules())
        data = mapping.build_data(
            snap,
            keys=mapping.issue_keys(snap).keys,
            pipeline_id=default_pipeline_id("ci.example.com", builder_name),
            update_sequence_number=number + 1,
            last_updated=iso_timestamp(0),
        )
        if isinstance(data, Skip):
            self.assertFalse(mapping.issue_keys(snap).keys)
            return
        self.assertEqual(validation_errors(entity_schema("builds"), data.to_json()), [])
