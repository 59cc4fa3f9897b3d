"""Tests for buildbot_jira.mapping.key_scanner: the shape of keys, limits and bounded work."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from buildbot_jira.mapping.key_rules import DEFAULT_IGNORED, IssueKeyRules
from buildbot_jira.mapping.key_scanner import builtin_keys, pattern_keys, readable_part
from buildbot_jira.mapping.keys import DEFAULT_KEY_PATTERN, extract_issue_keys
from tests.key_strategies import key_like_text

boundary_before = st.sampled_from([*" \t\n/([{:.,;#'\"-", "🎉", "\x00", "\ufffd"])
boundary_after = st.sampled_from([*" \t\n/)]}:.,;!'\"-_", "🎉", "\x00", "\ufffd"])
project_strategy = st.from_regex(r"[A-Z][A-Z0-9_]{0,11}", fullmatch=True).filter(
    lambda project: project not in DEFAULT_IGNORED
)
number_strategy = st.integers(min_value=1, max_value=10**12).map(str)


# --- the scanner's interface -----------------------------------------------------


def test_refused_reading_gives_way_to_a_shorter_one() -> None:
    offered: list[str] = []

    def accept(key: str) -> bool:
        offered.append(key)
        return not key.startswith("FOO")

    found = list(builtin_keys("FOO_ABC-1", limit=100, ignore_case=False, accept=accept))
    assert found == ["ABC-1"]
    assert offered == ["FOO_ABC-1", "ABC-1"]  # longest first


def test_a_word_accept_refuses_in_every_reading_gives_no_key() -> None:
    text = "FOO_ABC-1 DEF-2"
    assert list(builtin_keys(text, limit=100, ignore_case=False, accept=lambda key: False)) == []
    assert list(builtin_keys(text, limit=100, ignore_case=False, accept=bool)) == [
        "FOO_ABC-1",
        "DEF-2",
    ]


def test_ignore_case_upper_cases_before_asking_accept() -> None:
    offered: list[str] = []

    def accept(key: str) -> bool:
        offered.append(key)
        return True

    assert list(builtin_keys("abc-1", limit=100, ignore_case=True, accept=accept)) == ["ABC-1"]
    assert offered == ["ABC-1"]


def test_pattern_keys_only_offers_contract_shaped_keys() -> None:
    offered: list[str] = []

    def accept(key: str) -> bool:
        offered.append(key)
        return True

    found = pattern_keys(
        re.compile(r"\S+"),
        "ABC-1 ABC:2 A-" + "1" * 256 + " DEF-3",
        limit=1000,
        truncated=False,
        ignore_case=False,
        accept=accept,
    )
    assert list(found) == ["ABC-1", "DEF-3"]
    assert offered == ["ABC-1", "DEF-3"]


def test_readable_part_cuts_past_the_limit_and_says_so() -> None:
    assert readable_part("ABC-1", 10) == ("ABC-1", False)
    text, cut = readable_part("x" * 10_000, 10)
    assert cut
    assert 10 < len(text) < 10_000  # the limit, plus room for a key to end
    assert readable_part(b"ABC-1\xff", 10) == ("ABC-1\ufffd", False)
    data, cut = readable_part(b"x" * 10_000, 10)
    assert cut
    assert len(data) == len(text)
    assert readable_part(None, 10) == ("", False)
    assert readable_part(42, 10) == ("", False)


# --- the built-in rule: boundaries ---------------------------------------------


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


# --- the 255 limits of the contract --------------------------------------------


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


# --- bounded work --------------------------------------------------------------


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


# --- custom patterns -----------------------------------------------------------


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


# --- properties ----------------------------------------------------------------


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


@given(key_like_text, st.integers(min_value=1, max_value=40))
def test_scan_limit_only_drops_later_keys(text: str, limit: int) -> None:
    everything = extract_issue_keys([text])
    limited = extract_issue_keys([text], IssueKeyRules(max_chars_per_text=limit))
    assert limited == everything[: len(limited)]


@given(st.text())
def test_utf8_bytes_and_text_agree(text: str) -> None:
    assert extract_issue_keys([text.encode("utf-8")]) == extract_issue_keys([text])
