"""Tests for buildbot_jira.mapping.keys: finding Jira issue keys in text."""

from __future__ import annotations

import doctest
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from buildbot_jira.jira import model
from buildbot_jira.mapping import key_rules, keys
from buildbot_jira.mapping.keys import (
    DEFAULT_IGNORED,
    DEFAULT_KEY_PATTERN,
    DEFAULT_RULES,
    MAX_ISSUE_KEYS,
    IssueKeyRules,
    KeyScan,
    ParsedIssueKeys,
    RejectedIssueKey,
    SourceKeys,
    extract_issue_keys,
    find_source_keys,
    parse_issue_keys_property,
    scan_issue_keys,
)
from tests.key_strategies import key_like_text

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


rules_strategy = st.builds(
    IssueKeyRules,
    ignore_case=st.booleans(),
    max_keys=st.integers(min_value=1, max_value=MAX_ISSUE_KEYS),
    ignored=st.sampled_from([DEFAULT_IGNORED, frozenset()]),
)


# --- order, repeats, cap -------------------------------------------------------


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


# --- input that is not a tidy string -------------------------------------------


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


# --- the documented pattern ---------------------------------------------------


def test_default_key_pattern_spells_the_built_in_rule() -> None:
    rules = IssueKeyRules(pattern=DEFAULT_KEY_PATTERN)
    text = "feature/ABC-123-login xABC-1 ABC-0123 ABC-9_fix (OPS-7) CVE-2021-44228"
    assert extract_issue_keys([text], rules) == extract_issue_keys([text])
    assert extract_issue_keys([text]) == ("ABC-123", "ABC-9", "OPS-7")


# --- the explicit issue keys property ------------------------------------------


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


# --- a budget across texts -------------------------------------------------------


def test_a_scan_reads_its_budget_across_texts_and_says_when_it_ran_out() -> None:
    texts = ["ABC-1 " + "x" * 94, "DEF-2 " + "x" * 94, "GHI-3"]
    assert scan_issue_keys(texts, max_chars=300) == KeyScan(keys=("ABC-1", "DEF-2", "GHI-3"))
    assert scan_issue_keys(texts, max_chars=200) == KeyScan(keys=("ABC-1", "DEF-2"), cut=True)
    assert scan_issue_keys(texts, max_chars=100) == KeyScan(keys=("ABC-1",), cut=True)
    # A key that starts within the budget is read to its end, as within a text.
    assert scan_issue_keys(texts, max_chars=101) == KeyScan(keys=("ABC-1", "DEF-2"), cut=True)
    assert scan_issue_keys(texts, max_chars=0) == KeyScan(cut=True)


def test_the_per_text_cap_still_applies_and_is_not_a_cut_of_the_budget() -> None:
    rules = IssueKeyRules(max_chars_per_text=10)
    texts = ["ABC-1 " + "x" * 50 + " LATE-1", "DEF-2"]
    assert scan_issue_keys(texts, rules, max_chars=20) == KeyScan(keys=("ABC-1", "DEF-2"))
    assert scan_issue_keys(texts, rules, max_chars=15) == KeyScan(keys=("ABC-1", "DEF-2"))
    assert scan_issue_keys(texts, rules, max_chars=9) == KeyScan(keys=("ABC-1",), cut=True)


def test_empty_texts_cost_nothing_and_the_scan_stops_at_max_keys() -> None:
    assert scan_issue_keys([None, "", b"ABC-1"], max_chars=5) == KeyScan(keys=("ABC-1",))
    rules = IssueKeyRules(max_keys=2)
    many = ["ABC-1 ABC-2 ABC-3", "x" * 100]
    assert scan_issue_keys(many, rules, max_chars=10) == KeyScan(keys=("ABC-1", "ABC-2"))


def test_a_hundred_huge_commit_messages_cost_one_budget() -> None:
    # Each message alone is within the per-text cap; together they are 100 MB.
    message = "x" * (1 << 20) + " LATE-1"
    found = scan_issue_keys(["EARLY-1 " + message] + [message] * 99, max_chars=1 << 20)
    assert found == KeyScan(keys=("EARLY-1",), cut=True)


def test_source_keys_read_every_branch_and_the_commit_messages_within_the_budget() -> None:
    found = find_source_keys(
        ["feature/ABC-1", None, "OPS-2"], ["DEF-3: fix", "GHI-4: more"], max_chars=10
    )
    assert found == SourceKeys(branch_keys=("ABC-1", "OPS-2"), change_keys=("DEF-3",), cut=True)
    rules = IssueKeyRules(projects={"DEF"})
    found = find_source_keys(["ABC-1"], ["DEF-3 GHI-4"], rules, max_chars=100)
    assert found == SourceKeys(change_keys=("DEF-3",))


@given(
    st.lists(st.text(alphabet="AB- 12_x", max_size=30), max_size=6),
    st.integers(min_value=0, max_value=200),
)
def test_a_scan_finds_a_prefix_of_what_an_unbounded_one_finds(
    texts: list[str], budget: int
) -> None:
    everything = extract_issue_keys(texts)
    found = scan_issue_keys(texts, max_chars=budget)
    assert set(found.keys) <= set(everything)
    assert found.keys == tuple(k for k in everything if k in found.keys)
    if budget >= sum(len(text) for text in texts):
        assert found == KeyScan(keys=everything)


# --- documentation -------------------------------------------------------------


def test_examples_in_docstrings_hold() -> None:
    # The rules' own examples moved to key_rules with IssueKeyRules; both
    # modules' examples are what a reader of the keys documentation follows.
    attempted = 0
    for module in (keys, key_rules):
        results = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert results.failed == 0, module.__name__
        attempted += results.attempted
    assert attempted >= 10


def test_default_key_pattern_is_the_published_expression() -> None:
    # Built from the scanner's form and the contract's limit, it must still
    # read exactly as documented, for users who copy it into master.cfg.
    assert DEFAULT_KEY_PATTERN == (
        r"(?<![^\W_])(?a:[A-Z][A-Z0-9_]{0,254}-[1-9][0-9]{0,254})(?![^\W_])"
    )


def test_contract_limits_and_property_name_have_one_definition() -> None:
    assert keys.MAX_ISSUE_KEYS is model.MAX_ISSUE_KEYS == 100
    assert DEFAULT_RULES.max_keys == model.MAX_ISSUE_KEYS
    assert keys.ISSUE_KEYS_PROPERTY == "jira_issue_keys"
    # Every public name of the module is importable from it.
    for name in keys.__all__:
        assert hasattr(keys, name), name


# --- properties ----------------------------------------------------------------


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


@given(st.text(), st.text(), rules_strategy)
def test_texts_are_read_in_order_and_keys_counted_once(
    first: str, second: str, rules: IssueKeyRules
) -> None:
    combined: dict[str, None] = dict.fromkeys(
        extract_issue_keys([first], rules) + extract_issue_keys([second], rules)
    )
    assert extract_issue_keys([first, second], rules) == tuple(combined)[: rules.max_keys]


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
