"""Tests for buildbot_jira.mapping.keys: finding Jira issue keys in text."""

from __future__ import annotations

import doctest
import re
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from buildbot_jira.jira.errors import JiraConfigError
from buildbot_jira.mapping import keys
from buildbot_jira.mapping.keys import (
    DEFAULT_IGNORED,
    DEFAULT_KEY_PATTERN,
    DEFAULT_RULES,
    MAX_ISSUE_KEYS,
    IssueKeyRules,
    ParsedIssueKeys,
    RejectedIssueKey,
    extract_issue_keys,
    parse_issue_keys_property,
)

# Jira's contract for an issue key, with Python's str semantics.
CONTRACT = r"^\w{1,255}-\d{1,255}$"


def assert_contract_keys(found: tuple[str, ...], rules: IssueKeyRules = DEFAULT_RULES) -> None:
    """Every key is well formed, none repeats, and there are not too many."""
    assert isinstance(found, tuple)
    for key in found:
        assert isinstance(key, str)
        assert re.match(CONTRACT, key), key
        assert re.fullmatch(CONTRACT, key), key  # no trailing newline either
    assert len(set(found)) == len(found)
    assert len(found) <= rules.max_keys


def numbered_keys(count: int) -> list[str]:
    """Distinct, valid keys that no default rule ignores."""
    return [f"K{index}-{index + 1}" for index in range(count)]


# --- the built-in rule: boundaries ------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "ABC-123",
        "feature/ABC-123-login",
        "feature/ABC-123",
        "ABC-123_fix",
        "hotfix_ABC-123",
        "_ABC-123_",
        "(ABC-123)",
        "[ABC-123]",
        "{ABC-123}",
        "ABC-123: fix the login",
        "fix ABC-123.",
        "fix ABC-123,",
        "fix ABC-123;",
        "see #ABC-123!",
        "'ABC-123'",
        '"ABC-123"',
        "\tABC-123\n",
        "first line\nABC-123\r\nlast line",
        "🎉ABC-123🎉",
        "\x00ABC-123\x07",
        "\ufffdABC-123\ufffd",
        "refs/heads/ABC-123",
        "release-1.2-ABC-123",
        "ABC-123-ABC-123",
    ],
)
def test_key_with_boundaries_is_found(text: str) -> None:
    assert extract_issue_keys([text]) == ("ABC-123",)


@pytest.mark.parametrize(
    "text",
    [
        "xABC-123",  # glued to a letter before
        "abcABC-123",
        "1ABC-123",  # glued to a digit before
        "éABC-123",  # letters of any script count
        "ABC-123x",  # glued to a letter after
        "ABC-123é",
        "ABC-123\u0663",  # ARABIC-INDIC DIGIT THREE is a digit too
        "ABC-1234567x",  # no shorter number is carved out of a longer word
        "ABC-0123",  # leading zero
        "ABC-0",
        "abc-123",  # lower case needs ignore_case
        "Abc-123",
        "1BC-123",  # a project starts with a letter
        "ABC 123",
        "ABC--123",
        "ABC-",
        "-123",
        "ABC-\u0661\u0662",  # only ASCII digits make a number
        "ÄBC-123",
    ],
)
def test_key_glued_or_malformed_is_not_found(text: str) -> None:
    assert extract_issue_keys([text]) == ()


def test_several_keys_in_one_text_keep_their_order() -> None:
    text = "Merge OPS-7 into main; fixes ABC-12 and (DEF-3), see [GHI-40]: done."
    assert extract_issue_keys([text]) == ("OPS-7", "ABC-12", "DEF-3", "GHI-40")


def test_underscore_separates_keys_in_branch_names() -> None:
    assert extract_issue_keys(["ABC-1_ABC-2_fix"]) == ("ABC-1", "ABC-2")
    assert extract_issue_keys(["A-1_B-2"]) == ("A-1", "B-2")


def test_project_keys_may_hold_digits_and_underscores() -> None:
    assert extract_issue_keys(["A1_B2-7 Z9-1"]) == ("A1_B2-7", "Z9-1")


def test_longest_reading_wins_unless_ruled_out() -> None:
    assert extract_issue_keys(["FOO_ABC-1"]) == ("FOO_ABC-1",)
    assert extract_issue_keys(["FOO_ABC-1"], IssueKeyRules(projects={"ABC"})) == ("ABC-1",)
    assert extract_issue_keys(["FOO_ABC-1"], IssueKeyRules(ignored={"FOO_ABC"})) == ("ABC-1",)
    # A lower-case prefix is never part of a project.
    assert extract_issue_keys(["bugfix_ABC-1"]) == ("ABC-1",)


# --- the 255 limits of the contract ---------------------------------------------


def test_project_and_number_of_255_characters_are_keys() -> None:
    key = "P" * 255 + "-" + "9" * 255
    assert extract_issue_keys([f"x {key} y"]) == (key,)


def test_project_longer_than_255_is_not_shortened_into_a_key() -> None:
    assert extract_issue_keys(["P" * 256 + "-1"]) == ()


def test_number_longer_than_255_is_not_shortened_into_a_key() -> None:
    assert extract_issue_keys(["ABC-" + "1" * 256]) == ()


def test_long_run_still_yields_a_project_after_an_underscore() -> None:
    # The whole run is too long to be a project, but what follows "_" is not.
    project = "B" * 255
    assert extract_issue_keys([f"FOO_{project}-1"]) == (f"{project}-1",)
    # Without the "_", the same 255 characters are glued to a letter.
    assert extract_issue_keys([f"FOOA{project}-1 FOO_{project}-1"]) == (f"{project}-1",)


# --- ignored tokens ----------------------------------------------------------


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


# --- ignore_case ----------------------------------------------------------------


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


# --- projects allow-list ---------------------------------------------------------


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


# --- order, repeats, cap ------------------------------------------------------


def test_repeats_are_dropped_in_order_of_first_appearance_across_texts() -> None:
    texts = ["feature/OPS-2-login", "ABC-1 OPS-2 ABC-1", None, "DEF-3 ABC-1"]
    assert extract_issue_keys(texts) == ("OPS-2", "ABC-1", "DEF-3")


def test_texts_are_read_in_the_order_given() -> None:
    assert extract_issue_keys(["DEF-3", "ABC-1"]) == ("DEF-3", "ABC-1")
    assert extract_issue_keys(["ABC-1", "DEF-3"]) == ("ABC-1", "DEF-3")


def test_cap_keeps_the_branch_key_first() -> None:
    message = " ".join(numbered_keys(150))
    found = extract_issue_keys(["feature/OPS-1", message])
    assert len(found) == MAX_ISSUE_KEYS
    assert found[0] == "OPS-1"
    assert found[1:] == tuple(numbered_keys(99))


def test_five_thousand_keys_in_one_message_give_exactly_100() -> None:
    message = "\n".join(f"Fixes {key}." for key in numbered_keys(5000))
    found = extract_issue_keys([message])
    assert found == tuple(numbered_keys(100))


def test_max_keys_is_configurable() -> None:
    rules = IssueKeyRules(max_keys=3)
    assert extract_issue_keys([" ".join(numbered_keys(10))], rules) == tuple(numbered_keys(3))


def test_a_text_repeating_one_key_gives_it_once() -> None:
    assert extract_issue_keys(["ABC-1 " * 10_000]) == ("ABC-1",)
    assert list(DEFAULT_RULES.keys_in("ABC-1 DEF-2 ABC-1")) == ["ABC-1", "DEF-2"]


# --- input that is not a tidy string -----------------------------------------


def test_a_single_string_is_one_text_not_a_list_of_characters() -> None:
    assert extract_issue_keys("ABC-1 DEF-2") == ("ABC-1", "DEF-2")
    assert extract_issue_keys(b"ABC-1") == ("ABC-1",)


def test_none_and_empty_texts_hold_no_keys() -> None:
    assert extract_issue_keys([None, "", b""]) == ()
    assert extract_issue_keys([]) == ()


def test_values_that_are_not_text_are_skipped() -> None:
    texts: list[Any] = [42, ["ABC-1"], {"ABC-2": 1}, "DEF-3"]
    assert extract_issue_keys(texts) == ("DEF-3",)


def test_bytes_that_are_not_utf8_are_decoded_with_replacement() -> None:
    assert extract_issue_keys([b"\xffABC-1\xfe DEF-2\xc3"]) == ("ABC-1", "DEF-2")
    assert extract_issue_keys([b"\xc3ABC-1"]) == ("ABC-1",)  # a broken sequence is a boundary
    byte_arrays: list[Any] = [bytearray(b"fix ABC-1\xff")]
    assert extract_issue_keys(byte_arrays) == ("ABC-1",)


def test_utf8_bytes_give_the_same_keys_as_text() -> None:
    text = "Résumé ✓ ABC-1 — 修复 DEF-2 🎉"
    assert extract_issue_keys([text.encode("utf-8")]) == extract_issue_keys([text])
    assert extract_issue_keys([text]) == ("ABC-1", "DEF-2")


def test_lone_surrogates_and_control_characters_do_not_break_extraction() -> None:
    assert extract_issue_keys(["\ud800ABC-1\udfff\x1b[0m DEF-2\x7f"]) == ("ABC-1", "DEF-2")


# --- bounded work ------------------------------------------------------------


def test_ten_megabyte_text_is_cut_at_the_scan_limit() -> None:
    text = "ABC-1 " + "x" * 10_000_000 + " DEF-2"
    assert extract_issue_keys([text]) == ("ABC-1",)
    assert extract_issue_keys([text.encode("ascii")]) == ("ABC-1",)


@pytest.mark.parametrize(
    ("head", "unit", "count", "tail"),
    [
        pytest.param("", "A_", 5_000_000, "", id="many places where a project could start"),
        pytest.param("", "A", 10_000_000, "-1", id="one huge word"),
        pytest.param("", "-1", 5_000_000, "", id="many dashes and numbers, no project"),
        pytest.param("ABC-", "1", 10_000_000, "", id="one huge number"),
        pytest.param("", "ABC-01 ", 1_500_000, "", id="many candidates with a leading zero"),
    ],
)
def test_adversarial_ten_megabyte_texts_give_no_keys(
    head: str, unit: str, count: int, tail: str
) -> None:
    assert extract_issue_keys([head + unit * count + tail]) == ()


def test_many_repeats_of_one_key_in_ten_megabytes() -> None:
    assert extract_issue_keys(["ABC-1 " * 1_700_000 + "DEF-2"]) == ("ABC-1",)


def test_scan_limit_is_configurable() -> None:
    rules = IssueKeyRules(max_chars_per_text=10)
    assert extract_issue_keys(["ABC-1 " + "x" * 20 + " DEF-2"], rules) == ("ABC-1",)


def test_key_starting_before_the_limit_is_read_to_its_end() -> None:
    rules = IssueKeyRules(max_chars_per_text=10)
    assert extract_issue_keys(["x" * 9 + " ABC-123456"], rules) == ()  # starts at 10
    assert extract_issue_keys(["x" * 8 + " ABC-123456"], rules) == ("ABC-123456",)
    # Its end is checked too: a number glued to a letter past the limit is no key.
    assert extract_issue_keys(["x" * 8 + " ABC-123456x"], rules) == ()
    assert extract_issue_keys([b"x" * 8 + b" ABC-123456"], rules) == ("ABC-123456",)


def test_key_inside_a_word_that_starts_before_the_limit_obeys_the_limit() -> None:
    # The word starts before the limit, but the key after its "_" does not.
    assert extract_issue_keys(["abcd_ABC-1"], IssueKeyRules(max_chars_per_text=5)) == ()
    assert extract_issue_keys(["abcd_ABC-1"], IssueKeyRules(max_chars_per_text=6)) == ("ABC-1",)
    custom = r"#\s*(?P<key>[A-Z]+-[0-9]+)"
    late_key = IssueKeyRules(pattern=custom, max_chars_per_text=3)
    assert extract_issue_keys(["#   ABC-1"], late_key) == ()  # the key starts at 4
    assert extract_issue_keys(["# ABC-1"], late_key) == ("ABC-1",)  # the key starts at 2


def test_each_text_gets_its_own_scan_limit() -> None:
    rules = IssueKeyRules(max_chars_per_text=10)
    long_text = "x" * 100 + " LATE-1"
    assert extract_issue_keys([long_text, "ABC-1"], rules) == ("ABC-1",)


# --- custom patterns ---------------------------------------------------------


def test_custom_pattern_without_key_group_uses_the_whole_match() -> None:
    rules = IssueKeyRules(pattern=r"[A-Z]+-[0-9]+")
    # No boundary rules of its own: the pattern decides.
    assert extract_issue_keys(["xABC-0123y DEF-4"], rules) == ("ABC-0123", "DEF-4")


def test_custom_pattern_with_key_group_uses_the_group() -> None:
    rules = IssueKeyRules(pattern=r"(?:^|\s)#(?P<key>[A-Z]+-[0-9]+)\b")
    assert extract_issue_keys(["fix #ABC-1 and ABC-2, see #DEF-3"], rules) == ("ABC-1", "DEF-3")


def test_custom_pattern_key_group_that_took_no_part_is_skipped() -> None:
    rules = IssueKeyRules(pattern=r"(?P<key>[A-Z]+-[0-9]+)?!")
    assert extract_issue_keys(["! ABC-1!"], rules) == ("ABC-1",)


def test_custom_pattern_results_must_still_look_like_keys() -> None:
    rules = IssueKeyRules(pattern=r"[A-Z]+[ :][0-9]+|[A-Z]+-[0-9]+")
    assert extract_issue_keys(["ABC 1, ABC:2, ABC-3"], rules) == ("ABC-3",)
    too_long = IssueKeyRules(pattern=r"[A-Z]+-[0-9]+")
    assert extract_issue_keys(["A-" + "1" * 256], too_long) == ()


def test_custom_pattern_obeys_ignored_projects_and_ignore_case() -> None:
    pattern = r"[A-Za-z]+-[0-9]+"
    assert extract_issue_keys(["CVE-1 ABC-2"], IssueKeyRules(pattern=pattern)) == ("ABC-2",)
    rules = IssueKeyRules(pattern=r"[A-Z]+-[0-9]+", ignore_case=True, projects={"ABC"})
    assert extract_issue_keys(["abc-2 def-3 ABC-2"], rules) == ("ABC-2",)


def test_custom_pattern_match_that_runs_into_the_cut_is_dropped() -> None:
    # "$" would match where the text was cut, which is not the end of the text.
    rules = IssueKeyRules(pattern=r"(?P<key>[A-Z]+-[0-9]+) *$", max_chars_per_text=10)
    text = "ABC-1" + " " * 1000 + "more"
    assert extract_issue_keys([text], rules) == ()
    assert extract_issue_keys([text.encode("ascii")], rules) == ()
    # Within reach of the cut (the limit plus the length of a key), the text's
    # real end is seen.
    assert extract_issue_keys(["ABC-1" + " " * 500], rules) == ("ABC-1",)
    assert extract_issue_keys([b"ABC-1" + b" " * 500], rules) == ("ABC-1",)


def test_custom_pattern_gives_each_key_once_per_text() -> None:
    rules = IssueKeyRules(pattern=r"[A-Z]+-[0-9]+")
    assert list(rules.keys_in("ABC-1 ABC-1 DEF-2 ABC-1")) == ["ABC-1", "DEF-2"]


def test_default_key_pattern_spells_the_built_in_rule() -> None:
    rules = IssueKeyRules(pattern=DEFAULT_KEY_PATTERN)
    text = "feature/ABC-123-login xABC-1 ABC-0123 ABC-9_fix (OPS-7) CVE-2021-44228"
    assert extract_issue_keys([text], rules) == extract_issue_keys([text])
    assert extract_issue_keys([text]) == ("ABC-123", "ABC-9", "OPS-7")


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
        ({"ignored": "CVE"}, "ignored"),
        ({"ignored": None}, "ignored"),
        ({"ignored": {1}}, "ignored"),
        ({"ignored": {"A B"}}, "ignored"),
        ({"ignored": {""}}, "ignored"),
        ({"ignored": {"ABC-1-2"}}, "ignored"),
        ({"projects": "ABC"}, "projects"),
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


# --- the explicit issue keys property -------------------------------------------


def test_property_as_a_list() -> None:
    assert parse_issue_keys_property(["ABC-1", "DEF-2"]) == ParsedIssueKeys(keys=("ABC-1", "DEF-2"))
    assert parse_issue_keys_property(("ABC-1",)).keys == ("ABC-1",)


def test_property_as_a_string_with_commas_and_spaces() -> None:
    parsed = parse_issue_keys_property(" ABC-1, DEF-2  GHI-3,JKL-4\nMNO-5,, ")
    assert parsed == ParsedIssueKeys(keys=("ABC-1", "DEF-2", "GHI-3", "JKL-4", "MNO-5"))


def test_property_list_items_may_hold_several_keys() -> None:
    assert parse_issue_keys_property(["ABC-1, DEF-2", "GHI-3"]).keys == ("ABC-1", "DEF-2", "GHI-3")


def test_property_repeats_are_dropped_silently() -> None:
    assert parse_issue_keys_property("ABC-1 DEF-2 ABC-1") == ParsedIssueKeys(
        keys=("ABC-1", "DEF-2")
    )


def test_property_unset_or_empty_gives_no_keys() -> None:
    assert parse_issue_keys_property(None) == ParsedIssueKeys()
    assert parse_issue_keys_property("") == ParsedIssueKeys()
    assert parse_issue_keys_property([]) == ParsedIssueKeys()


def test_property_entries_that_are_not_keys_are_reported_with_a_reason() -> None:
    parsed = parse_issue_keys_property(["ABC-1", "oops", "ABC-0123", "feature/DEF-2", "abc-3"])
    assert parsed.keys == ("ABC-1",)
    assert [rejected.entry for rejected in parsed.rejected] == [
        "oops",
        "ABC-0123",
        "feature/DEF-2",
        "abc-3",
    ]
    for rejected in parsed.rejected:
        assert isinstance(rejected, RejectedIssueKey)
        assert "not an issue key" in rejected.reason
        assert "ABC-123" in rejected.reason  # shows what is expected


def test_rejection_reason_explains_ignored_and_projects() -> None:
    assert DEFAULT_RULES.rejection_reason("ABC-1") is None
    assert "ignored" in (DEFAULT_RULES.rejection_reason("cve-1") or "")
    rules = IssueKeyRules(projects={"ABC"})
    assert rules.rejection_reason("DEF-1") == "project DEF is not one of the allowed projects"
    assert rules.entry_rejection_reason("ABC-01") is not None
    assert rules.entry_rejection_reason("ABC-1") is None


def test_property_applies_ignored_and_projects_with_reasons() -> None:
    parsed = parse_issue_keys_property("CVE-2021 ABC-1")
    assert parsed.keys == ("ABC-1",)
    assert parsed.rejected[0].entry == "CVE-2021"
    assert "ignored" in parsed.rejected[0].reason
    assert "CVE" in parsed.rejected[0].reason

    parsed = parse_issue_keys_property("ABC-1 DEF-2", IssueKeyRules(projects={"ABC"}))
    assert parsed.keys == ("ABC-1",)
    assert parsed.rejected == (
        RejectedIssueKey(entry="DEF-2", reason="project DEF is not one of the allowed projects"),
    )


def test_property_with_ignore_case_upper_cases_entries() -> None:
    parsed = parse_issue_keys_property("abc-1 ABC-1 Def-2", IssueKeyRules(ignore_case=True))
    assert parsed == ParsedIssueKeys(keys=("ABC-1", "DEF-2"))


def test_property_with_custom_pattern_accepts_any_contract_key() -> None:
    rules = IssueKeyRules(pattern=r"#(?P<key>[A-Z]+-[0-9]+)")
    parsed = parse_issue_keys_property("ABC-1 ABC-0123 ABC 2", rules)
    assert parsed.keys == ("ABC-1", "ABC-0123")
    assert [rejected.entry for rejected in parsed.rejected] == ["ABC", "2"]


def test_property_keys_beyond_the_cap_are_reported() -> None:
    entries = numbered_keys(150)
    parsed = parse_issue_keys_property(entries)
    assert parsed.keys == tuple(entries[:100])
    assert [rejected.entry for rejected in parsed.rejected] == entries[100:]
    assert all("100" in rejected.reason for rejected in parsed.rejected)


def test_property_repeat_of_a_kept_key_is_not_reported_past_the_cap() -> None:
    entries = numbered_keys(100)
    parsed = parse_issue_keys_property([*entries, entries[0], "LATE-1"])
    assert parsed.keys == tuple(entries)
    assert [rejected.entry for rejected in parsed.rejected] == ["LATE-1"]


@pytest.mark.parametrize(
    ("value", "type_name"),
    [
        (42, "int"),
        (1.5, "float"),
        (True, "bool"),
        ({"ABC-1": True}, "dict"),
        ({"ABC-1"}, "set"),
        (b"ABC-1", "bytes"),
        (["ABC-1", ["DEF-2"]], "list"),
        (["ABC-1", None], "NoneType"),
        ([{"key": "ABC-1"}], "dict"),
        ([7], "int"),
    ],
)
def test_property_of_the_wrong_type_is_a_clear_value_error(value: object, type_name: str) -> None:
    with pytest.raises(ValueError, match=r"jira_issue_keys") as caught:
        parse_issue_keys_property(value)
    message = str(caught.value)
    assert f" is {type_name} " in message
    assert "list of strings" in message


def test_property_error_names_the_item_of_a_list() -> None:
    with pytest.raises(ValueError, match=r"^property jira_issue_keys\[1\] is int"):
        parse_issue_keys_property(["ABC-1", 2])


def test_property_error_names_a_custom_property() -> None:
    with pytest.raises(ValueError, match=r"^property my_keys is int"):
        parse_issue_keys_property(3, name="my_keys")


# --- documentation ------------------------------------------------------------


def test_examples_in_docstrings_hold() -> None:
    results = doctest.testmod(keys, optionflags=doctest.ELLIPSIS)
    assert results.attempted >= 8
    assert results.failed == 0


# --- properties ---------------------------------------------------------------

rules_strategy = st.builds(
    IssueKeyRules,
    ignore_case=st.booleans(),
    max_keys=st.integers(min_value=1, max_value=MAX_ISSUE_KEYS),
    ignored=st.sampled_from([DEFAULT_IGNORED, frozenset()]),
)

# Text dense in the characters that matter to the rule, with long runs to
# reach the 255 limits.
key_like_text = st.lists(
    st.sampled_from([*"ABZa_-019 /x", "é", "\u0663", "_A", "CVE", "PR", "A" * 200, "1" * 200]),
    max_size=40,
).map("".join)

boundary_before = st.sampled_from([*" \t\n/([{:.,;#'\"-", "🎉", "\x00", "\ufffd"])
boundary_after = st.sampled_from([*" \t\n/)]}:.,;!'\"-_", "🎉", "\x00", "\ufffd"])
project_strategy = st.from_regex(r"[A-Z][A-Z0-9_]{0,11}", fullmatch=True).filter(
    lambda project: project not in DEFAULT_IGNORED
)
number_strategy = st.integers(min_value=1, max_value=10**12).map(str)


@given(st.text(), rules_strategy)
def test_any_text_gives_well_formed_keys(text: str, rules: IssueKeyRules) -> None:
    assert_contract_keys(extract_issue_keys([text], rules), rules)


@given(st.binary(), rules_strategy)
def test_any_bytes_give_well_formed_keys(data: bytes, rules: IssueKeyRules) -> None:
    assert_contract_keys(extract_issue_keys([data], rules), rules)


@given(st.lists(st.one_of(st.none(), st.text(), st.binary(), key_like_text)), rules_strategy)
def test_any_mix_of_texts_gives_well_formed_keys(
    texts: list[str | bytes | None], rules: IssueKeyRules
) -> None:
    assert_contract_keys(extract_issue_keys(texts, rules), rules)


@given(key_like_text, rules_strategy)
def test_key_like_text_gives_well_formed_keys(text: str, rules: IssueKeyRules) -> None:
    assert_contract_keys(extract_issue_keys([text], rules), rules)


@given(
    prefix=st.text(max_size=30),
    before=boundary_before,
    project=project_strategy,
    number=number_strategy,
    after=boundary_after,
    suffix=st.text(max_size=30),
)
def test_key_between_boundaries_in_any_text_is_found(
    prefix: str, before: str, project: str, number: str, after: str, suffix: str
) -> None:
    key = f"{project}-{number}"
    text = f"{prefix}{before}{key}{after}{suffix}"
    assert key in extract_issue_keys([text])
    assert key in extract_issue_keys([text.encode("utf-8")])
    assert key in extract_issue_keys([f"{key}{after}{suffix}"])  # at the start
    assert key in extract_issue_keys([f"{prefix}{before}{key}"])  # at the end


@given(st.one_of(key_like_text, st.text(max_size=60)))
def test_scanner_agrees_with_the_documented_pattern(text: str) -> None:
    # Without filters, the built-in rule and its regular expression agree.
    scanner = IssueKeyRules(ignored=frozenset())
    reference = IssueKeyRules(pattern=DEFAULT_KEY_PATTERN, ignored=frozenset())
    assert extract_issue_keys([text], scanner) == extract_issue_keys([text], reference)


@given(
    head=st.text(alphabet="Aa1_-", max_size=6),
    joint=st.sampled_from(["", "_", "a", "-", "1"]),
    project_length=st.integers(min_value=250, max_value=260),
    number_length=st.integers(min_value=250, max_value=260),
)
def test_scanner_agrees_with_the_documented_pattern_at_the_255_limits(
    head: str, joint: str, project_length: int, number_length: int
) -> None:
    text = f"{head}{joint}{'B' * project_length}-{'7' * number_length}"
    scanner = IssueKeyRules(ignored=frozenset())
    reference = IssueKeyRules(pattern=DEFAULT_KEY_PATTERN, ignored=frozenset())
    assert extract_issue_keys([text], scanner) == extract_issue_keys([text], reference)


@given(key_like_text.filter(str.isascii))
def test_ignore_case_does_not_depend_on_the_case_of_the_text(text: str) -> None:
    rules = IssueKeyRules(ignore_case=True)
    found = extract_issue_keys([text], rules)
    assert extract_issue_keys([text.lower()], rules) == found
    assert extract_issue_keys([text.swapcase()], rules) == found
    assert all(key == key.upper() for key in found)


@given(st.text(), st.text(), rules_strategy)
def test_texts_are_read_in_order_and_keys_counted_once(
    first: str, second: str, rules: IssueKeyRules
) -> None:
    combined: dict[str, None] = dict.fromkeys(
        extract_issue_keys([first], rules) + extract_issue_keys([second], rules)
    )
    assert extract_issue_keys([first, second], rules) == tuple(combined)[: rules.max_keys]


@given(key_like_text, st.integers(min_value=1, max_value=40))
def test_scan_limit_only_drops_later_keys(text: str, limit: int) -> None:
    everything = extract_issue_keys([text])
    limited = extract_issue_keys([text], IssueKeyRules(max_chars_per_text=limit))
    assert limited == everything[: len(limited)]


@given(st.text())
def test_utf8_bytes_and_text_agree(text: str) -> None:
    assert extract_issue_keys([text.encode("utf-8")]) == extract_issue_keys([text])


@given(st.lists(st.one_of(st.text(max_size=20), key_like_text)), st.booleans())
def test_property_entries_are_either_kept_or_reported(
    entries: list[str], ignore_case: bool
) -> None:
    rules = IssueKeyRules(ignore_case=ignore_case)
    parsed = parse_issue_keys_property(entries, rules)
    assert_contract_keys(parsed.keys, rules)
    split = [entry for item in entries for entry in re.split(r"[\s,]+", item) if entry]
    normalised = [entry.upper() if ignore_case else entry for entry in split]
    rejected = [rejected.entry for rejected in parsed.rejected]
    # Every entry is accounted for: kept (maybe as a repeat) or reported.
    assert set(normalised) - set(parsed.keys) <= {
        entry.upper() if ignore_case else entry for entry in rejected
    }
    assert all(rejected_entry in split for rejected_entry in rejected)
    # A key accepted on its own is also found in text.
    for key in parsed.keys:
        assert extract_issue_keys([key], rules) == (key,)
