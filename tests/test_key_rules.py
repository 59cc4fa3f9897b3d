"""Tests for buildbot_jira.mapping.key_rules: ignored words, case, projects, config errors."""

from __future__ import annotations

import re
from typing import Any

import attrs
import pytest
from hypothesis import given

from buildbot_jira.jira.errors import JiraConfigError
from buildbot_jira.mapping.key_rules import DEFAULT_IGNORED, DEFAULT_RULES, IssueKeyRules
from buildbot_jira.mapping.keys import extract_issue_keys
from tests.key_strategies import key_like_text

# --- ignored tokens ------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["CVE-2021-44228", "UTF-8", "ISO-8859-1", "SHA-256", "RFC-2616", "PR-24", "X-1", "utf-8"],
)
def test_well_known_non_issue_tokens_are_ignored(text: str) -> None:
    assert extract_issue_keys([text]) == ()
    assert extract_issue_keys([text], IssueKeyRules(ignore_case=True)) == ()


def test_ignored_tokens_do_not_hide_real_keys() -> None:
    text = "ABC-7: patch CVE-2021-44228, read as UTF-8, hash with SHA-256 (PR-24)"
    assert extract_issue_keys([text]) == ("ABC-7",)


def test_default_ignored_holds_the_documented_prefixes() -> None:
    assert {"CVE", "UTF", "ISO", "SHA", "RFC", "PR", "X"} <= DEFAULT_IGNORED
    assert DEFAULT_RULES.ignored == DEFAULT_IGNORED


def test_empty_ignored_list_finds_everything() -> None:
    rules = IssueKeyRules(ignored=frozenset())
    assert extract_issue_keys(["UTF-8 and PR-24"], rules) == ("UTF-8", "PR-24")


def test_ignored_can_be_trimmed_for_a_project_named_like_a_token() -> None:
    rules = IssueKeyRules(ignored=DEFAULT_IGNORED - {"PR"})
    assert extract_issue_keys(["PR-24 CVE-1"], rules) == ("PR-24",)


def test_ignored_entry_with_a_number_drops_one_key_only() -> None:
    rules = IssueKeyRules(ignored={"ABC-1"})
    assert extract_issue_keys(["ABC-1 ABC-2 ABC-10"], rules) == ("ABC-2", "ABC-10")


def test_ignored_entries_compare_without_regard_to_case() -> None:
    rules = IssueKeyRules(ignored={" abc ", "def-2"})
    assert rules.ignored == frozenset({"ABC", "DEF-2"})
    assert extract_issue_keys(["ABC-1 DEF-2 DEF-3"], rules) == ("DEF-3",)


# --- ignore_case ---------------------------------------------------------------


def test_ignore_case_upper_cases_what_it_finds() -> None:
    rules = IssueKeyRules(ignore_case=True)
    assert extract_issue_keys(["feature/abc-12-x"], rules) == ("ABC-12",)
    assert extract_issue_keys(["Abc-1 aBC-1 ABC-1 ops-2"], rules) == ("ABC-1", "OPS-2")


def test_ignore_case_keeps_boundaries_and_number_rules() -> None:
    rules = IssueKeyRules(ignore_case=True)
    assert extract_issue_keys(["abc-12x 1abc-3 abc-04 éabc-5"], rules) == ()


def test_ignore_case_reads_lower_case_words_joined_by_underscore_as_project() -> None:
    assert extract_issue_keys(["hotfix_abc-1"], IssueKeyRules(ignore_case=True)) == (
        "HOTFIX_ABC-1",
    )
    rules = IssueKeyRules(ignore_case=True, projects={"ABC"})
    assert extract_issue_keys(["hotfix_abc-1"], rules) == ("ABC-1",)


def test_case_sensitive_rules_skip_lower_case() -> None:
    assert extract_issue_keys(["feature/abc-12-x"]) == ()


# --- projects allow-list -------------------------------------------------------


def test_projects_allow_list_keeps_only_named_projects() -> None:
    rules = IssueKeyRules(projects={"ABC", "ops"})
    assert rules.projects == frozenset({"ABC", "OPS"})
    assert extract_issue_keys(["ABC-1 DEF-2 OPS-3"], rules) == ("ABC-1", "OPS-3")


def test_allowed_project_is_not_dropped_by_an_ignored_prefix() -> None:
    rules = IssueKeyRules(projects={"PR"})
    assert extract_issue_keys(["PR-24 ABC-1"], rules) == ("PR-24",)


def test_allowed_project_still_obeys_ignored_full_keys() -> None:
    rules = IssueKeyRules(projects={"ABC"}, ignored={"ABC-1"})
    assert extract_issue_keys(["ABC-1 ABC-2"], rules) == ("ABC-2",)


# --- configuration errors ------------------------------------------------------


@pytest.mark.parametrize("pattern", ["(", "[A-Z", "(?P<key>A", "a{99999999999}", "*"])
def test_invalid_regex_is_a_config_error_naming_pattern(pattern: str) -> None:
    with pytest.raises(JiraConfigError, match=r"^pattern .* is not a valid regular expression"):
        IssueKeyRules(pattern=pattern)


@pytest.mark.parametrize(
    ("arguments", "name"),
    [
        ({"pattern": 123}, "pattern"),
        ({"pattern": re.compile("A-1")}, "pattern"),
        ({"pattern": ""}, "pattern"),
        ({"ignore_case": "yes"}, "ignore_case"),
        ({"ignore_case": 1}, "ignore_case"),
        ({"max_keys": 0}, "max_keys"),
        ({"max_keys": 101}, "max_keys"),
        ({"max_keys": True}, "max_keys"),
        ({"max_keys": "5"}, "max_keys"),
        ({"max_keys": 2.5}, "max_keys"),
        ({"max_chars_per_text": 0}, "max_chars_per_text"),
        ({"max_chars_per_text": None}, "max_chars_per_text"),
        ({"max_chars_per_build": 0}, "max_chars_per_build"),
        ({"max_chars_per_build": 1.5}, "max_chars_per_build"),
        ({"ignored": b"CVE"}, "ignored"),
        ({"ignored": None}, "ignored"),
        ({"ignored": {1}}, "ignored"),
        ({"ignored": {"A B"}}, "ignored"),
        ({"ignored": {""}}, "ignored"),
        ({"ignored": {"ABC-1-2"}}, "ignored"),
        ({"projects": b"ABC"}, "projects"),
        ({"projects": set()}, "projects"),
        ({"projects": {"ABC-1"}}, "projects"),
        ({"projects": [None]}, "projects"),
        ({"projects": 7}, "projects"),
    ],
)
def test_wrong_argument_is_a_config_error_naming_it(arguments: dict[str, Any], name: str) -> None:
    with pytest.raises(JiraConfigError) as caught:
        IssueKeyRules(**arguments)
    assert str(caught.value).startswith(name), str(caught.value)


def test_a_lone_string_is_a_list_of_one() -> None:
    # As for every list argument of the reporters: projects="SHOP" means {"SHOP"}.
    rules = IssueKeyRules(projects="shop", ignored="ops")
    assert rules.projects == frozenset({"SHOP"})
    assert rules.ignored == frozenset({"OPS"})


@pytest.mark.parametrize("pattern", [r"\d+", r"[A-Z]+", r"(?P<key>\d+)", r"x*", r"-"])
def test_a_pattern_that_cannot_give_a_key_is_a_config_error(pattern: str) -> None:
    with pytest.raises(JiraConfigError) as caught:
        IssueKeyRules(pattern=pattern)
    message = str(caught.value)
    assert message.startswith(f"pattern {pattern!r} cannot give a Jira issue key"), message
    assert "PROJECT-NUMBER" in message
    assert "(?P<key>" in message


@pytest.mark.parametrize(
    "pattern",
    [
        r"[A-Z]+-\d+",
        r"#(?P<key>[A-Z]+-[0-9]+)",
        r"\b[a-z]+-\d+",  # lower case: valid once ignore_case upper-cases it, or as is
        r"JIRA:(?P<key>\w+-\d+)",  # a form of its own: nothing shows it wrong
    ],
)
def test_a_pattern_that_can_give_a_key_is_accepted(pattern: str) -> None:
    rules = IssueKeyRules(pattern=pattern, ignore_case=True)
    assert rules.pattern == pattern


def test_arguments_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        IssueKeyRules(r"[A-Z]+-[0-9]+")  # type: ignore[call-arg]


def test_rules_are_frozen_comparable_values() -> None:
    rules = IssueKeyRules(pattern=r"[A-Z]+-[0-9]+", projects=["ABC"])
    assert rules == IssueKeyRules(pattern=r"[A-Z]+-[0-9]+", projects={"abc"})
    assert hash(rules) == hash(IssueKeyRules(pattern=r"[A-Z]+-[0-9]+", projects={"ABC"}))
    assert rules != DEFAULT_RULES
    assert IssueKeyRules() == DEFAULT_RULES
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        rules.max_keys = 5  # type: ignore[misc]


def test_evolved_rules_recompile_the_pattern() -> None:
    rules = attrs.evolve(IssueKeyRules(pattern=r"[A-Z]+-[0-9]+"), ignore_case=True)
    assert extract_issue_keys(["abc-1"], rules) == ("ABC-1",)
    with pytest.raises(JiraConfigError, match=r"^pattern"):
        attrs.evolve(rules, pattern="(")


# --- the explicit issue keys property ------------------------------------------


def test_rejection_reason_explains_ignored_and_projects() -> None:
    assert DEFAULT_RULES.rejection_reason("ABC-1") is None
    assert "ignored" in (DEFAULT_RULES.rejection_reason("cve-1") or "")
    rules = IssueKeyRules(projects={"ABC"})
    assert rules.rejection_reason("DEF-1") == "project DEF is not one of the allowed projects"
    assert rules.entry_rejection_reason("ABC-01") is not None
    assert rules.entry_rejection_reason("ABC-1") is None


# --- properties ----------------------------------------------------------------


@given(key_like_text.filter(str.isascii))
def test_ignore_case_does_not_depend_on_the_case_of_the_text(text: str) -> None:
    rules = IssueKeyRules(ignore_case=True)
    found = extract_issue_keys([text], rules)
    assert extract_issue_keys([text.lower()], rules) == found
    assert extract_issue_keys([text.swapcase()], rules) == found
    assert all(key == key.upper() for key in found)
