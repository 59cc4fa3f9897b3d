"""Jira issue keys found in branch names, commit messages and build properties.

Jira links a build or a deployment to the issues whose keys it carries, so
this module decides which words of free text are issue keys. It is pure:
plain strings in, a tuple of keys out, no I/O and no reactor.

The built-in rule
=================

A key is ``PROJECT-NUMBER``, where

* ``PROJECT`` is an upper-case ASCII letter followed by upper-case ASCII
  letters, digits or underscores (Jira's own rule for project keys), at most
  255 characters in all;
* ``NUMBER`` is a decimal number without a leading zero (Jira numbers issues
  from 1), at most 255 digits;
* the character before ``PROJECT`` and the character after ``NUMBER`` are not
  letters or digits (of any script).

Whitespace, punctuation (``/ - . , : ; ( ) [ ] # ' "`` and so on), emoji, the
start and the end of a text are therefore boundaries, and so is ``_``: branch
names glue words with it (``ABC-123_fix``, ``hotfix_ABC-123``). A key glued to
a letter or a digit (``xABC-123``, ``ABC-123x``, ``ABC-1234`` inside
``ABC-12345``) is part of a longer word, not a key, and ``ABC-0123`` is not a
key either. The limits of 255 come from Jira's contract, which accepts keys
matching ``^\\w{1,255}-\\d{1,255}$``; a longer project or number is not a key
(it is never shortened into one).

>>> extract_issue_keys(["feature/ABC-123-login", "Fix ABC-124: crash (see [OPS-7])."])
('ABC-123', 'ABC-124', 'OPS-7')
>>> extract_issue_keys(["xABC-1 ABC-2x ABC-0123 CVE-2021-44228 UTF-8 SHA-256"])
()

Because ``_`` both belongs to project keys and separates words, ``FOO_ABC-1``
can be read as ``FOO_ABC-1`` or as ``ABC-1``. The longest reading wins unless
``projects`` or ``ignored`` rules it out, in which case the next one is tried:

>>> extract_issue_keys(["FOO_ABC-1"])
('FOO_ABC-1',)
>>> extract_issue_keys(["FOO_ABC-1"], IssueKeyRules(projects={"ABC"}))
('ABC-1',)

``DEFAULT_KEY_PATTERN`` spells the same rule as a regular expression. The
built-in rule does not run that expression: it uses a scanner
(:mod:`~buildbot_jira.mapping.key_scanner`) whose work grows linearly with
the text, whatever the text holds. :class:`IssueKeyRules` (defined in
:mod:`~buildbot_jira.mapping.key_rules`, importable from here) holds what a
``master.cfg`` may change about the rule.

Bounded work
============

A build may carry huge commit messages, so extraction never reads more than
``max_chars_per_text`` characters of one text (a key that starts before that
point is still read to its end) and stops as soon as ``max_keys`` keys are
found. A build may also carry a hundred of them: :func:`scan_issue_keys`
reads texts within a budget (``max_chars_per_build`` for a build) and says
whether it ran out, and :func:`find_source_keys` scans what cannot change
while a build runs (its branches and commit messages) once. Bytes are
decoded as UTF-8, and bytes that are not UTF-8 become U+FFFD, which is a
boundary like any other punctuation. A custom ``pattern``
is run as given: a pattern that backtracks catastrophically is slow on long
texts, so keep custom patterns simple.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import attrs

from buildbot_jira.jira.model import MAX_ISSUE_KEYS, shown
from buildbot_jira.mapping.key_rules import (
    DEFAULT_IGNORED,
    DEFAULT_MAX_CHARS_PER_BUILD,
    DEFAULT_MAX_CHARS_PER_TEXT,
    DEFAULT_RULES,
    IssueKeyRules,
)
from buildbot_jira.mapping.key_scanner import BUILTIN_KEY

__all__ = [
    "DEFAULT_IGNORED",
    "DEFAULT_KEY_PATTERN",
    "DEFAULT_MAX_CHARS_PER_BUILD",
    "DEFAULT_MAX_CHARS_PER_TEXT",
    "DEFAULT_RULES",
    "ISSUE_KEYS_PROPERTY",
    "MAX_ISSUE_KEYS",
    "IssueKeyRules",
    "KeyScan",
    "ParsedIssueKeys",
    "RejectedIssueKey",
    "SourceKeys",
    "extract_issue_keys",
    "find_source_keys",
    "parse_issue_keys_property",
    "scan_issue_keys",
    "scanned_length",
]

ISSUE_KEYS_PROPERTY = "jira_issue_keys"
"""The Buildbot property that lists issue keys explicitly."""

# The scanner's form of a key, between "not next to a letter or a digit".
DEFAULT_KEY_PATTERN = rf"(?<![^\W_])(?a:{BUILTIN_KEY.pattern})(?![^\W_])"
"""The built-in rule as a regular expression (case-sensitive form).

``(?<![^\\W_])`` and ``(?![^\\W_])`` say "not next to a letter or a digit":
``[^\\W_]`` is a word character other than ``_``. Passing it as ``pattern``
finds the same keys as the built-in rule, only more slowly on long words;
it does not retry a shorter reading when ``projects`` or ``ignored`` rules
out the longest one.
"""

_PROPERTY_SEPARATORS = re.compile(r"[\s,]+")


def extract_issue_keys(
    texts: Iterable[str | bytes | None] | bytes, rules: IssueKeyRules = DEFAULT_RULES
) -> tuple[str, ...]:
    """Return the issue keys in ``texts``, each once, in order of first appearance.

    Pass the most telling text first (the branch name, then commit messages,
    then a pull request title): when there are more than ``rules.max_keys``
    keys, the first ones are kept. ``None`` entries are skipped, bytes are
    decoded as UTF-8, and a single string is taken as one text. This never
    raises for any text, and every key it returns matches Jira's
    ``^\\w{1,255}-\\d{1,255}$``.

    >>> extract_issue_keys(["feature/ABC-12_login", None, b"ABC-12 and OPS-3\\xff"])
    ('ABC-12', 'OPS-3')
    >>> extract_issue_keys(["feature/abc-12-x"], IssueKeyRules(ignore_case=True))
    ('ABC-12',)
    """
    values: Iterable[object] = (texts,) if isinstance(texts, (str, bytes, bytearray)) else texts
    found: dict[str, None] = {}
    for value in values:
        for key in rules.keys_in(value):
            if key not in found:
                found[key] = None
                if len(found) >= rules.max_keys:
                    return tuple(found)
    return tuple(found)


@attrs.frozen
class KeyScan:
    """What :func:`scan_issue_keys` found, and whether its budget left text unread."""

    keys: tuple[str, ...] = ()
    cut: bool = False


def scanned_length(value: object, rules: IssueKeyRules = DEFAULT_RULES) -> int:
    """How much of ``value`` a scan reads at most: its length, up to ``max_chars_per_text``.

    Bytes count as they are (a byte decodes to at most one character).
    """
    if isinstance(value, (str, bytes, bytearray)):
        return min(len(value), rules.max_chars_per_text)
    return 0


def scan_issue_keys(
    texts: Iterable[str | bytes | None], rules: IssueKeyRules = DEFAULT_RULES, *, max_chars: int
) -> KeyScan:
    """The issue keys of ``texts`` (as :func:`extract_issue_keys`), reading ``max_chars`` in all.

    Each text is read up to ``max_chars_per_text`` and up to what the budget
    has left; ``cut`` says that the budget, not the per-text cap, left part
    of the texts unread.

    >>> scan_issue_keys(["ABC-1 ABC-2", "ABC-3"], max_chars=8)
    KeyScan(keys=('ABC-1', 'ABC-2'), cut=True)
    """
    found: dict[str, None] = {}
    left = max_chars
    for value in texts:
        length = scanned_length(value, rules)
        if not length:
            continue
        if left <= 0:
            return KeyScan(keys=tuple(found), cut=True)
        for key in rules.keys_in(value, max_chars=left):
            if key not in found:
                found[key] = None
                if len(found) >= rules.max_keys:
                    return KeyScan(keys=tuple(found))
        if length > left:
            return KeyScan(keys=tuple(found), cut=True)
        left -= length
    return KeyScan(keys=tuple(found))


@attrs.frozen
class SourceKeys:
    """The issue keys of what cannot change while a build runs, found once per build.

    ``branch_keys`` come from the branches of its sourcestamps and
    ``change_keys`` from the commit messages of its changes; ``cut`` says
    that the build's budget left part of those messages unread.
    """

    branch_keys: tuple[str, ...] = ()
    change_keys: tuple[str, ...] = ()
    cut: bool = False


def find_source_keys(
    branches: Iterable[str | None],
    comments: Iterable[str | bytes | None],
    rules: IssueKeyRules = DEFAULT_RULES,
    *,
    max_chars: int,
) -> SourceKeys:
    """The keys of a build's ``branches`` and of its commit ``comments``, within ``max_chars``.

    Branch names are short and always read; the commit messages share
    ``max_chars`` (what the build's budget leaves after its properties).

    >>> find_source_keys(["feature/ABC-1"], ["ABC-2: fix", "ABC-3: more"], max_chars=10)
    SourceKeys(branch_keys=('ABC-1',), change_keys=('ABC-2',), cut=True)
    """
    changes = scan_issue_keys(comments, rules, max_chars=max_chars)
    return SourceKeys(
        branch_keys=extract_issue_keys(branches, rules), change_keys=changes.keys, cut=changes.cut
    )


@attrs.frozen
class RejectedIssueKey:
    """An entry of the issue keys property that was dropped, and why.

    ``entry`` is the text as given; ``reason`` says what is wrong with it
    without repeating it, ready for a log line.
    """

    entry: str
    reason: str


@attrs.frozen
class ParsedIssueKeys:
    """The outcome of reading the issue keys property.

    ``keys`` are the accepted keys, each once, in the order given.
    ``rejected`` are the entries that were dropped, so that the caller can
    tell the user which ones and why instead of losing them silently.
    """

    keys: tuple[str, ...] = ()
    rejected: tuple[RejectedIssueKey, ...] = ()


def parse_issue_keys_property(
    value: object, rules: IssueKeyRules = DEFAULT_RULES, *, name: str = ISSUE_KEYS_PROPERTY
) -> ParsedIssueKeys:
    """Read a property that lists issue keys explicitly.

    ``value`` may be a list or tuple of strings, or one string; keys are
    separated by commas or whitespace, inside list items too. ``None`` (the
    property is not set) gives no keys. Each entry must be a whole key (see
    ``IssueKeyRules.entry_rejection_reason``); entries that are not, and entries
    beyond ``rules.max_keys``, are returned in ``rejected``.

    Raises ``ValueError`` naming the property (``name``) when ``value`` has a
    type that cannot hold keys: a number, a mapping, a nested list...

    >>> parse_issue_keys_property("ABC-1, ABC-2 ABC-1 oops")
    ParsedIssueKeys(keys=('ABC-1', 'ABC-2'), rejected=(RejectedIssueKey(entry='oops', \
reason='not an issue key: expected a project key, a dash and a number without leading \
zero, such as ABC-123'),))
    """
    keys: dict[str, None] = {}
    rejected: list[RejectedIssueKey] = []
    for entry in _property_entries(value, name):
        reason = rules.entry_rejection_reason(entry)
        key = entry.upper() if rules.ignore_case else entry
        if reason is None and key in keys:
            continue
        if reason is None and len(keys) >= rules.max_keys:
            reason = (
                f"more than {rules.max_keys} issue keys; Jira accepts at most "
                f"{MAX_ISSUE_KEYS} for one build"
            )
        if reason is None:
            keys[key] = None
        else:
            rejected.append(RejectedIssueKey(entry=entry, reason=reason))
    return ParsedIssueKeys(keys=tuple(keys), rejected=tuple(rejected))


def _property_entries(value: object, name: str) -> list[str]:
    """Split the property value into entries, or raise ValueError for a wrong type."""
    expected = "a list of strings or a string such as 'ABC-1, ABC-2'"
    if value is None:
        return []
    if isinstance(value, str):
        return _split_entries(value)
    if isinstance(value, (list, tuple)):
        entries: list[str] = []
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise ValueError(
                    f"property {name}[{index}] is {type(item).__name__} ({shown(item, 80)}); "
                    f"{name} must be {expected}"
                )
            entries.extend(_split_entries(item))
        return entries
    raise ValueError(
        f"property {name} is {type(value).__name__} ({shown(value, 80)}); it must be {expected}"
    )


def _split_entries(text: str) -> list[str]:
    """Split at commas and whitespace, dropping empty entries."""
    return [entry for entry in _PROPERTY_SEPARATORS.split(text) if entry]
