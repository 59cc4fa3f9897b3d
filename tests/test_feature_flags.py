"""Feature flags -> Jira FeatureFlagData, and flags files -> declarations; within the contract."""

from __future__ import annotations

import string
import sys
import unittest
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from buildbot_jira.mapping.builds import Skip
from buildbot_jira.mapping.feature_flags import (
    EnvironmentDetail,
    FeatureFlag,
    FlagDeclaration,
    FlagState,
    FlagStatus,
    Rollout,
    environment_name,
    feature_flag,
    flag_environment_type,
    known_details,
    stable_flag_id,
)
from buildbot_jira.mapping.flags_file import (
    MAX_FLAGS_PER_FILE,
    FlagsFileError,
    decode_flags_file,
    parse_flags_file,
)
from buildbot_jira.mapping.keys import IssueKeyRules
from buildbot_jira.simulator.contract import entity_schema, request_schema, validation_errors

BUILD_URL = "http://buildbot.example.com:8010/#/builders/1/builds/7"
NOW = "2026-11-28T12:00:00.000Z"


def state(environment: str = "production", enabled: bool = True, **status: Any) -> FlagState:
    return FlagState(environment=environment, status=FlagStatus(enabled=enabled, **status))


def flag(*states: FlagState, key: str = "new-checkout", **arguments: Any) -> FeatureFlag:
    made = feature_flag(
        FlagDeclaration(key=key, states=states or (state(),)),
        issue_keys=arguments.pop("issue_keys", ("ABC-7",)),
        last_updated=arguments.pop("last_updated", NOW),
        update_sequence_id=arguments.pop("update_sequence_id", 1000),
        fallback_url=BUILD_URL,
        **arguments,
    )
    assert isinstance(made, FeatureFlag), made
    return made


def assert_valid(test: unittest.TestCase, data: dict[str, Any]) -> None:
    test.assertEqual(validation_errors(entity_schema("featureflags"), data), [])


class MappingTests(unittest.TestCase):
    def test_one_environment(self) -> None:
        data = flag(state(rollout=Rollout(percentage=25))).to_json()
        assert_valid(self, data)
        self.assertEqual(data["id"], "new-checkout")
        self.assertEqual(data["key"], "new-checkout")
        self.assertEqual(data["issueKeys"], ["ABC-7"])
        self.assertEqual(data["updateSequenceId"], 1000)
        (detail,) = data["details"]
        self.assertEqual(detail["environment"], {"name": "production", "type": "production"})
        self.assertEqual(detail["status"], {"enabled": True, "rollout": {"percentage": 25}})
        self.assertEqual(detail["url"], BUILD_URL)
        self.assertEqual(detail["lastUpdated"], NOW)
        self.assertEqual(data["summary"]["status"], detail["status"])

    def test_the_summary_is_the_most_relevant_environment(self) -> None:
        data = flag(
            state("dev", enabled=True),
            state("prod-us", enabled=False, default_value="Disabled"),
            state("staging", enabled=True, rollout=Rollout(text="beta users")),
        ).to_json()
        assert_valid(self, data)
        self.assertEqual(
            [d["environment"].get("type") for d in data["details"]],
            ["development", "production", "staging"],
        )
        self.assertEqual(data["summary"]["status"], {"enabled": False, "defaultValue": "Disabled"})

    def test_rollout_variants(self) -> None:
        for rollout, expected in (
            (Rollout(percentage=12.5), {"percentage": 12.5}),
            (Rollout(percentage=100.0), {"percentage": 100}),
            (Rollout(text="internal"), {"text": "internal"}),
            (Rollout(rules=3), {"rules": 3}),
        ):
            data = flag(state(rollout=rollout)).to_json()
            assert_valid(self, data)
            self.assertEqual(data["details"][0]["status"]["rollout"], expected)
        for wrong in ({"percentage": 101}, {"percentage": True}, {"rules": -1}, {"text": " "}):
            with self.assertRaises(ValueError, msg=wrong):
                Rollout(**wrong)
        with self.assertRaisesRegex(ValueError, "percentage and text"):
            Rollout(percentage=5, text="five")

    def test_missing_optional_fields_are_left_out(self) -> None:
        data = flag(state("preview")).to_json()
        assert_valid(self, data)
        # The flag schema has no "unmapped": the type is left out.
        self.assertEqual(data["details"][0]["environment"], {"name": "preview"})
        self.assertEqual(data["details"][0]["status"], {"enabled": True})
        self.assertEqual(data["displayName"], "new-checkout")

    def test_environment_types_are_given_guessed_or_left_out(self) -> None:
        self.assertEqual(flag_environment_type("prod-east"), "production")
        self.assertEqual(flag_environment_type("eu", "staging"), "staging")
        self.assertIsNone(flag_environment_type("preview"))
        self.assertIsNone(flag_environment_type("prod", "unmapped"))
        self.assertEqual(flag_environment_type("eu1", explicit={"eu1": "testing"}), "testing")

    def test_500_keys_are_cut_to_the_contracts_100(self) -> None:
        keys = [f"ABC-{n}" for n in range(1, 501)]
        data = flag(issue_keys=keys).to_json()
        assert_valid(self, data)
        self.assertEqual(data["issueKeys"], keys[:100])

    def test_a_flag_without_an_issue_is_not_sent(self) -> None:
        made = feature_flag(
            FlagDeclaration(key="orphan", states=(state(),)),
            issue_keys=(),
            last_updated=NOW,
            update_sequence_id=1,
            fallback_url=BUILD_URL,
        )
        self.assertIsInstance(made, Skip)
        assert isinstance(made, Skip)
        self.assertIn("'orphan' names no Jira issue", made.reason)

    def test_odd_flag_keys_get_a_stable_id_within_the_contract(self) -> None:
        for key in ("new checkout", "ünïcode/flag", "a" * 300, "~tilde", "!!!", "x\ny"):
            data = flag(key=key).to_json()
            assert_valid(self, data)
            self.assertIn("~", data["id"])
            self.assertEqual(data["id"], stable_flag_id(key))  # the same every time
            self.assertLessEqual(len(data["id"]), 255)
        self.assertNotEqual(stable_flag_id("a b"), stable_flag_id("a-b"))
        self.assertEqual(stable_flag_id("release.v2_new-ui"), "release.v2_new-ui")
        self.assertEqual(flag().id, "new-checkout")

    def test_an_explicit_flag_id_wins(self) -> None:
        declaration = FlagDeclaration(key="k", states=(state(),), flag_id="unleash-42")
        made = feature_flag(
            declaration,
            issue_keys=["A-1"],
            last_updated=NOW,
            update_sequence_id=1,
            fallback_url=BUILD_URL,
        )
        assert isinstance(made, FeatureFlag)
        self.assertEqual(made.to_json()["id"], "unleash-42")

    def test_environments_that_jira_holds_are_kept(self) -> None:
        earlier = flag(state("staging"), state("production", enabled=False)).to_json()
        known, last = known_details(earlier)
        self.assertEqual([d.name for d in known], ["staging", "production"])
        self.assertEqual(last, 1000)
        now = flag(state("production", rollout=Rollout(percentage=25)), known=known)
        data = now.to_json()
        assert_valid(self, data)
        self.assertEqual(
            [d["environment"]["name"] for d in data["details"]], ["staging", "production"]
        )
        self.assertEqual(data["details"][1]["status"]["rollout"], {"percentage": 25})
        self.assertEqual(known_details({"details": [{"environment": "?"}]}), ((), 0))
        self.assertEqual(known_details(None), ((), 0))

    def test_environment_names_are_as_jira_shows_them(self) -> None:
        data = flag(state("prod\x1bus"), state(" prod\x1bus ")).to_json()
        self.assertEqual([d["environment"]["name"] for d in data["details"]], ["prod us"])
        with self.assertRaises(ValueError):
            state("\x1b")

    def test_a_detail_of_an_odd_shape_is_dropped(self) -> None:
        self.assertIsNone(EnvironmentDetail.from_json({"url": "x"}))
        self.assertIsNone(EnvironmentDetail.from_json("nonsense"))


class FlagsFileTests(unittest.TestCase):
    def test_the_documented_format(self) -> None:
        data = decode_flags_file(
            b"""
flags:
  new-checkout:
    enabled: true
    rollout_percentage: 25
    issue_keys: [ABC-7]
    display_name: New checkout
  dark-mode: false
  search-v2:
    url: https://flags.example.com/search-v2
    environments:
      staging: true
      production: {enabled: true, rollout_text: beta users, environment_type: production}
""",
            "flags.yaml",
        )
        checkout, dark, search = parse_flags_file(data, environment="production")
        self.assertEqual(checkout.issue_keys, ("ABC-7",))
        self.assertEqual(checkout.display_name, "New checkout")
        self.assertEqual(checkout.states[0].status.rollout, Rollout(percentage=25))
        self.assertEqual(dark.states, (state("production", enabled=False),))
        self.assertEqual([s.environment for s in search.states], ["staging", "production"])
        self.assertEqual(search.url, "https://flags.example.com/search-v2")

    def test_json_and_a_list_of_entries(self) -> None:
        data = decode_flags_file(
            b'{"flags": [{"key": "a", "enabled": true, "environment": "qa"}]}', "flags.json"
        )
        (only,) = parse_flags_file(data)
        self.assertEqual((only.key, only.states[0].environment), ("a", "qa"))

    def test_the_steps_environment_type_goes_with_the_steps_environment(self) -> None:
        data = {"flags": {"a": True, "b": {"enabled": True, "environment": "eu"}}}
        a, b = parse_flags_file(data, environment="eu-main", environment_type="staging")
        self.assertEqual(a.states[0].type, "staging")
        self.assertIsNone(b.states[0].type)

    def test_every_mistake_is_listed(self) -> None:
        data = {
            "flags": {
                "a": "yes",
                "b": {"enabld": True},
                "c": {"enabled": True, "rollout_percentage": 200, "environment": "x"},
                "d": {"enabled": True},
                "e": {"enabled": True, "environment": "x", "url": "not a url"},
                "f": {"environments": {"x": True}, "enabled": True},
            }
        }
        with self.assertRaises(FlagsFileError) as caught:
            parse_flags_file(data)
        problems = caught.exception.problems
        self.assertEqual(len(problems), 6, problems)
        self.assertIn("flag 'a': must be true, false or a mapping, not 'yes'", problems)
        self.assertIn("flag 'b': unknown field 'enabld' (did you mean enabled?)", problems)
        self.assertIn("0 to 100", problems[2])
        self.assertIn("no environment", problems[3])
        self.assertIn("url must be", problems[4])
        self.assertIn("enabled then go in it", problems[5])

    def test_files_of_the_wrong_shape_are_refused(self) -> None:
        for data, said in (
            (None, "a mapping with a 'flags' entry"),
            ([1, 2], "a mapping with a 'flags' entry"),
            ({"flags": {}}, "lists no flags"),
            ({"flags": "a"}, "mapping of flag key"),
            ({"flags": {}, "flag": 1}, "unknown field 'flag'"),
            ({"flags": [{"enabled": True}]}, "the key must be a non-empty string"),
            ({"flags": {str(n): True for n in range(MAX_FLAGS_PER_FILE + 1)}}, "at most 500"),
        ):
            with self.assertRaisesRegex(FlagsFileError, said, msg=repr(data)[:80]):
                parse_flags_file(data, environment="production")

    def test_undecodable_files_say_so(self) -> None:
        with self.assertRaisesRegex(FlagsFileError, "not UTF-8 YAML"):
            decode_flags_file(b"flags: [unclosed", "flags.yml")
        with self.assertRaisesRegex(FlagsFileError, "not UTF-8 JSON"):
            decode_flags_file(b"\xff{}", "flags.json")

    def test_a_flags_url_beside_environments_must_be_a_web_url(self) -> None:
        data = {"flags": {"a": {"url": "javascript:alert(1)", "environments": {"qa": True}}}}
        with self.assertRaises(FlagsFileError) as caught:
            parse_flags_file(data)
        self.assertEqual(
            caught.exception.problems,
            ("flag 'a': url must be an http:// or https:// URL, not 'javascript:alert(1)'",),
        )

    def test_nesting_too_deep_to_read_is_refused(self) -> None:
        for content, name in ((b"[" * 100_000, "flags.json"), (b"a: " + b"[" * 100_000, "f.yaml")):
            with self.assertRaisesRegex(FlagsFileError, "nested too deeply to read"):
                decode_flags_file(content, name)

    def test_values_in_messages_are_short_whatever_they_hold(self) -> None:
        bomb: list[object] = ["x"] * 9
        for _ in range(12):  # what YAML's aliases make: 9**12 items, if expanded
            bomb = [bomb] * 9
        huge = 10**5000 if hasattr(sys, "set_int_max_str_digits") else 10**100
        data = {
            "flags": {
                "a": bomb,
                "b": {"enabled": True, "environment": "qa", "rollout_text": bomb},
                "c": {"enabled": True, "environment": "qa", "issue_keys": [bomb]},
                "d": {"enabled": True, "environment": "qa", "rollout_percentage": huge},
                "e": {"enabled": "x" * 1_000_000, "environment": "qa"},
            }
        }
        with self.assertRaises(FlagsFileError) as caught:
            parse_flags_file(data)
        problems = caught.exception.problems
        self.assertEqual(len(problems), 5, problems)
        self.assertTrue(all(len(problem) < 300 for problem in problems), problems)
        self.assertIn("flag 'a': must be true, false or a mapping, not [[[[...]", problems[0])

    def test_issue_keys_of_a_file_follow_the_rules(self) -> None:
        data = {"flags": {"a": {"enabled": True, "issue_keys": "abc-1, OPS-2"}}}
        (a,) = parse_flags_file(data, environment="p", rules=IssueKeyRules(ignore_case=True))
        self.assertEqual(a.issue_keys, ("ABC-1", "OPS-2"))


flag_keys = st.one_of(
    st.text(alphabet=string.ascii_letters + string.digits + "._-", min_size=1, max_size=300),
    st.text(min_size=1, max_size=400).filter(str.strip),
)
rollouts = st.one_of(
    st.none(),
    st.builds(Rollout, percentage=st.floats(min_value=0, max_value=100)),
    st.builds(Rollout, text=st.text(min_size=1, max_size=400).filter(environment_name)),
    st.builds(Rollout, rules=st.integers(min_value=0, max_value=2**63 - 1)),
)
states = st.builds(
    FlagState,
    environment=st.text(min_size=1, max_size=400).filter(environment_name),
    status=st.builds(
        FlagStatus,
        enabled=st.booleans(),
        default_value=st.one_of(st.none(), st.text(max_size=400)),
        rollout=rollouts,
    ),
    type=st.sampled_from([None, "unmapped", "production", "testing"]),
)


class PropertyBasedTests(unittest.TestCase):
    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        key=flag_keys,
        environments=st.lists(states, min_size=1, max_size=5, unique_by=lambda s: s.environment),
        keys=st.lists(st.from_regex(r"[A-Z]{1,5}-[1-9][0-9]{0,4}", fullmatch=True), max_size=150),
        display_name=st.one_of(st.none(), st.text(max_size=400)),
        sequence=st.integers(min_value=0, max_value=2**63 - 1),
    )
    def test_every_payload_validates_against_the_contract(
        self,
        key: str,
        environments: list[FlagState],
        keys: list[str],
        display_name: str | None,
        sequence: int,
    ) -> None:
        declaration = FlagDeclaration(
            key=key, states=tuple(environments), display_name=display_name
        )
        made = feature_flag(
            declaration,
            issue_keys=keys,
            last_updated=NOW,
            update_sequence_id=sequence,
            fallback_url=BUILD_URL,
        )
        if not keys:
            self.assertIsInstance(made, Skip)
            return
        assert isinstance(made, FeatureFlag)
        data = made.to_json()
        assert_valid(self, data)
        self.assertEqual(validation_errors(request_schema("featureflags"), {"flags": [data]}), [])
        # Read back as Jira would answer it, the flag keeps every environment.
        known, last = known_details(data)
        self.assertEqual(len(known), len({s.environment for s in environments}))
        self.assertEqual(last, sequence)
