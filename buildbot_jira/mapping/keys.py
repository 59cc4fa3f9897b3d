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
built-in rule does not run that expression: it uses a scanner whose work grows
linearly with the text, whatever the text holds.

Bounded work
============

A build may carry huge commit messages, so extraction never reads more than
``max_chars_per_text`` characters of one text (a key that starts before that
point is still read to its end) and stops as soon as ``max_keys`` keys are
found. Bytes are decoded as UTF-8, and bytes that are not UTF-8 become
U+FFFD, which is a boundary like any other punctuation. A custom ``pattern``
is run as given: a pattern that backtracks catastrophically is slow on long
texts, so keep custom patterns simple.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Iterator
from typing import Any

import attrs

from buildbot_jira.jira.errors import JiraConfigError

__all__ = [
    "DEFAULT_IGNORED",
    "DEFAULT_KEY_PATTERN",
    "DEFAULT_MAX_CHARS_PER_TEXT",
    "DEFAULT_RULES",
    "ISSUE_KEYS_PROPERTY",
    "MAX_ISSUE_KEYS",
    "IssueKeyRules",
    "ParsedIssueKeys",
    "RejectedIssueKey",
    "extract_issue_keys",
    "parse_issue_keys_property",
]

MAX_ISSUE_KEYS = 100
"""Jira accepts at most this many issue keys for one build or deployment."""

DEFAULT_MAX_CHARS_PER_TEXT = 1 << 20
"""How many characters of one text are searched unless configured otherwise (1,048,576)."""

ISSUE_KEYS_PROPERTY = "jira_issue_keys"
"""The Buildbot property that lists issue keys explicitly."""

DEFAULT_IGNORED = frozenset(
    {
        "AES",  # AES-256
        "CVE",  # CVE-2021-44228
        "CWE",  # CWE-79
        "ECMA",  # ECMA-262
        "IEC",  # IEC-61508
        "IEEE",  # IEEE-754
        "ISO",  # ISO-8859
        "MR",  # MR-12, a merge request
        "PEP",  # PEP-8
        "PR",  # PR-24, a pull request
        "RFC",  # RFC-2616
        "RSA",  # RSA-2048
        "SHA",  # SHA-256
        "UTF",  # UTF-8
        "X",  # product names and placeholders
    }
)
"""Project prefixes of key-shaped words that are not Jira issues.

Extend or trim it with set operations, for a team whose Jira project really
is called ``PR``: ``IssueKeyRules(ignored=DEFAULT_IGNORED - {"PR"})``.
"""

DEFAULT_KEY_PATTERN = r"(?<![^\W_])(?a:[A-Z][A-Z0-9_]{0,254}-[1-9][0-9]{0,254})(?![^\W_])"
"""The built-in rule as a regular expression (case-sensitive form).

``(?<![^\\W_])`` and ``(?![^\\W_])`` say "not next to a letter or a digit":
``[^\\W_]`` is a word character other than ``_``. Passing it as ``pattern``
finds the same keys as the built-in rule, only more slowly on long words;
it does not retry a shorter reading when ``projects`` or ``ignored`` rules
out the longest one.
"""

_MAX_PART = 255
# A key is at most 255 + 1 + 255 characters, so reading this far past the
# scan limit is enough to see the end of any key that starts before it.
_LOOKAHEAD = 2 * _MAX_PART + 2
_UTF8_MAX_BYTES = 4

# ASCII on purpose: an ASCII key satisfies the contract's pattern under any
# regex dialect, and Jira project keys are ASCII anyway.
_CONTRACT_KEY = re.compile(r"[A-Za-z0-9_]{1,255}-[0-9]{1,255}")
_PROJECT_ENTRY = re.compile(r"[A-Za-z0-9_]{1,255}")
_JIRA_KEY = re.compile(r"[A-Z][A-Z0-9_]{0,254}-[1-9][0-9]{0,254}")
_JIRA_KEY_ANY_CASE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,254}-[1-9][0-9]{0,254}")

# A run of word characters holding a letter, a dash, and a number that is not
# glued to a letter or digit. Runs only start after a non-word character, so
# no character is scanned more than a few times: the work is linear. The
# number sits in a lookahead because it may begin the next run (``A-1_B-2``).
# Which part of the run is the project is decided in Python.
_UPPER_CASE_CANDIDATE = re.compile(r"(?<!\w)(?=\w*?[A-Z])\w+-(?=([0-9]+)(?![^\W_]))")
_ANY_CASE_CANDIDATE = re.compile(r"(?<!\w)(?=\w*?[A-Za-z])\w+-(?=([0-9]+)(?![^\W_]))")
# Which of these letters may start a project is up to the project characters:
# only they can be part of the tail of a run where projects start.
_LETTERS = frozenset(string.ascii_letters)
_UPPER_PROJECT_CHARS = string.ascii_uppercase + string.digits + "_"
_ANY_CASE_PROJECT_CHARS = string.ascii_letters + string.digits + "_"

_PROPERTY_SEPARATORS = re.compile(r"[\s,]+")


def _string_entries(value: object, name: str) -> list[str]:
    """Check that ``value`` is a collection of strings; return them stripped."""
    if isinstance(value, (str, bytes, bytearray)) or not isinstance(value, Iterable):
        raise JiraConfigError(
            f"{name} must be a collection of strings such as {{'ABC', 'OPS'}}, "
            f"not {type(value).__name__}"
        )
    entries = []
    for entry in value:
        if not isinstance(entry, str):
            raise JiraConfigError(
                f"{name} must hold strings only, but it holds {entry!r} ({type(entry).__name__})"
            )
        entries.append(entry.strip())
    return entries


def _ignored_entries(value: Iterable[str]) -> frozenset[str]:
    """Normalise ``ignored``: upper-case project prefixes and full issue keys."""
    entries = _string_entries(value, "ignored")
    for entry in entries:
        if not (_PROJECT_ENTRY.fullmatch(entry) or _CONTRACT_KEY.fullmatch(entry)):
            raise JiraConfigError(
                f"ignored: {entry!r} is neither a project prefix such as 'CVE' "
                "nor an issue key such as 'ABC-123'"
            )
    return frozenset(entry.upper() for entry in entries)


def _project_entries(value: Iterable[str] | None) -> frozenset[str] | None:
    """Normalise ``projects``: upper-case project keys, or None for every project."""
    if value is None:
        return None
    entries = _string_entries(value, "projects")
    if not entries:
        raise JiraConfigError(
            "projects is empty, so no issue key could ever be reported; name at "
            "least one project key such as {'ABC'}, or pass None to allow every project"
        )
    for entry in entries:
        if not _PROJECT_ENTRY.fullmatch(entry):
            raise JiraConfigError(
                f"projects: {entry!r} is not a project key; a project key is the "
                "part before the dash of an issue key, such as 'ABC' in 'ABC-123'"
            )
    return frozenset(entry.upper() for entry in entries)


def _check_pattern(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Reject a ``pattern`` that is not a non-empty string or None."""
    if value is None:
        return
    if not isinstance(value, str):
        raise JiraConfigError(
            f"{attribute.name} must be a regular expression (a string) or None "
            f"for the built-in rule, not {type(value).__name__}"
        )
    if not value:
        raise JiraConfigError(f"{attribute.name} is empty; pass None for the built-in rule")


def _check_bool(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Reject anything but True or False (a string such as 'no' is truthy)."""
    if not isinstance(value, bool):
        raise JiraConfigError(
            f"{attribute.name} must be True or False, not {value!r} ({type(value).__name__})"
        )


def _check_positive_int(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Reject anything but a whole number of at least 1."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise JiraConfigError(
            f"{attribute.name} must be a whole number, not {value!r} ({type(value).__name__})"
        )
    if value < 1:
        raise JiraConfigError(f"{attribute.name} must be at least 1, not {value}")


def _check_max_keys(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Reject a cap that Jira's limit of 100 keys per build does not allow."""
    _check_positive_int(instance, attribute, value)
    if isinstance(value, int) and value > MAX_ISSUE_KEYS:
        raise JiraConfigError(
            f"{attribute.name} must be at most {MAX_ISSUE_KEYS}, the most issue keys "
            f"Jira accepts for one build, not {value}"
        )


@attrs.frozen(kw_only=True)
class IssueKeyRules:
    """How issue keys are recognised; checked when built, so mistakes show at startup.

    ``pattern``
        None for the built-in rule (see the module documentation), or a
        regular expression. If it has a group named ``key``, that group is the
        key (``r"#(?P<key>[A-Z]+-[0-9]+)"`` finds ``ABC-1`` in ``#ABC-1`` but
        not in ``ABC-1``); otherwise the whole match is. Whatever it finds must
        still look like ``PROJECT-NUMBER`` in ASCII word characters and digits
        (at most 255 of each), or it is dropped: Jira rejects anything else.
    ``ignored``
        Key-shaped words that are not issues. An entry with a dash and a number
        (``ABC-123``) drops that one key; any other entry (``CVE``) is a project
        prefix and drops every key of that project (``CVE-2021-44228``). Entries
        compare without regard to case. Defaults to ``DEFAULT_IGNORED``.
    ``ignore_case``
        Also accept lower-case keys (``feature/abc-12-x``) and report them in
        upper case (``ABC-12``), which is how Jira spells keys. Lower-case
        words joined by ``_`` then read as part of the project
        (``hotfix_abc-1`` gives ``HOTFIX_ABC-1``); naming ``projects`` picks
        the right reading (``ABC-1``).
    ``projects``
        None to accept every project, or the project keys to accept. A project
        named here is never dropped by a prefix in ``ignored``: naming it is the
        stronger statement.
    ``max_keys``
        The most keys reported for one build, 1 to 100 (Jira's limit).
    ``max_chars_per_text``
        How many characters of each text are searched, so that a huge commit
        message costs a bounded amount of work.

    >>> IssueKeyRules(pattern="(")
    Traceback (most recent call last):
    ...
    buildbot_jira.jira.errors.JiraConfigError: pattern '(' is not a valid regular expression \
(missing ), unterminated subpattern at position 0)
    """

    pattern: str | None = attrs.field(default=None, validator=_check_pattern)
    ignored: frozenset[str] = attrs.field(default=DEFAULT_IGNORED, converter=_ignored_entries)
    ignore_case: bool = attrs.field(default=False, validator=_check_bool)
    projects: frozenset[str] | None = attrs.field(default=None, converter=_project_entries)
    max_keys: int = attrs.field(default=MAX_ISSUE_KEYS, validator=_check_max_keys)
    max_chars_per_text: int = attrs.field(
        default=DEFAULT_MAX_CHARS_PER_TEXT, validator=_check_positive_int
    )
    _compiled: re.Pattern[str] | None = attrs.field(init=False, default=None, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        """Compile ``pattern`` once, turning a bad expression into a config error."""
        if self.pattern is None:
            return
        flags = re.IGNORECASE if self.ignore_case else 0
        try:
            compiled = re.compile(self.pattern, flags)
        except (re.error, OverflowError, RecursionError, ValueError) as error:
            raise JiraConfigError(
                f"pattern {self.pattern!r} is not a valid regular expression ({error})"
            ) from None
        object.__setattr__(self, "_compiled", compiled)

    def rejection_reason(self, key: str) -> str | None:
        """Say why ``projects`` or ``ignored`` rule out a well-formed ``key``, or None.

        >>> print(DEFAULT_RULES.rejection_reason("CVE-2021"))
        project CVE is in the ignored list (key-shaped words that are not Jira issues); \
remove it from ignored if it is a Jira project
        >>> DEFAULT_RULES.rejection_reason("ABC-1") is None
        True
        """
        key = key.upper()
        project = key.partition("-")[0]
        if key in self.ignored:
            return f"{key} is in the ignored list"
        if self.projects is not None:
            if project in self.projects:
                return None
            return f"project {project} is not one of the allowed projects"
        if project in self.ignored:
            return (
                f"project {project} is in the ignored list (key-shaped words that "
                "are not Jira issues); remove it from ignored if it is a Jira project"
            )
        return None

    def keys_in(self, value: object) -> Iterator[str]:
        """Yield the keys of one text, each once, in order of first appearance.

        Most callers want ``extract_issue_keys``, which works across texts and
        applies ``max_keys``. ``None`` and values that are neither text nor
        bytes hold no keys.
        """
        text, truncated = self._readable_part(value)
        if not text:
            return
        if self._compiled is None:
            yield from self._builtin_keys(text)
        else:
            yield from self._pattern_keys(self._compiled, text, truncated)

    def _readable_part(self, value: object) -> tuple[str, bool]:
        """Return the part of ``value`` that is searched, and whether it was cut."""
        span = self.max_chars_per_text + _LOOKAHEAD
        if isinstance(value, str):
            return value[:span], len(value) > span
        if isinstance(value, (bytes, bytearray)):
            head = value[: span * _UTF8_MAX_BYTES]
            # Every byte decodes to at most one character, and every character
            # needs at most four bytes, so ``head`` holds at least ``span``
            # characters whenever ``value`` was cut.
            text = head.decode("utf-8", errors="replace")
            return text[:span], len(head) < len(value) or len(text) > span
        return "", False

    def _builtin_keys(self, text: str) -> Iterator[str]:
        """Find keys with the built-in rule in linear time."""
        limit = self.max_chars_per_text
        candidates = _ANY_CASE_CANDIDATE if self.ignore_case else _UPPER_CASE_CANDIDATE
        # A text that repeats one key thousands of times should cost a
        # dictionary lookup per repeat, not a full check. The outcome of a
        # candidate depends only on its ``source``: the characters from which
        # a project may start (up to 256 before the dash, counting the one
        # before the earliest possible start) to the end of the number.
        # An outcome of "" means "no key".
        outcomes: dict[str, str] = {}
        yielded: set[str] = set()
        for match in candidates.finditer(text):
            run_start, number_start = match.span()
            if run_start >= limit:
                return
            number_end = match.end(1)
            if number_end - number_start > _MAX_PART:
                continue
            run_end = number_start - 1
            source = text[max(run_start, run_end - _MAX_PART - 1) : number_end]
            key = outcomes.get(source)
            if key is None:
                # Reused only by later candidates, which all start after this
                # one's dash: if that is past the limit, the scan stops first.
                key = outcomes[source] = self._builtin_key(text, run_start, run_end, number_end)
            if key and key not in yielded:
                yielded.add(key)
                yield key

    def _builtin_key(self, text: str, run_start: int, run_end: int, number_end: int) -> str:
        """Return the key that ends at ``number_end``, or "" if there is none.

        ``text[run_start:run_end]`` is the run of word characters before the
        dash; the number starts right after the dash.
        """
        number = text[run_end + 1 : number_end]
        if number.startswith("0"):
            return ""
        project_chars = _ANY_CASE_PROJECT_CHARS if self.ignore_case else _UPPER_PROJECT_CHARS
        for start in _project_starts(text, run_start, run_end, project_chars):
            if start >= self.max_chars_per_text:
                break
            key = f"{text[start:run_end]}-{number}"
            if self.ignore_case:
                key = key.upper()
            if self.rejection_reason(key) is None:
                return key
        return ""

    def _pattern_keys(self, compiled: re.Pattern[str], text: str, truncated: bool) -> Iterator[str]:
        """Find keys with a custom ``pattern``."""
        limit = self.max_chars_per_text
        use_group = "key" in compiled.groupindex
        yielded: set[str] = set()
        for match in compiled.finditer(text):
            if match.start() >= limit:
                return
            start, end = match.span("key") if use_group else match.span()
            # A group that took no part in the match spans (-1, -1); a match
            # that reaches the end of a cut text may be cut short itself.
            if start < 0 or start >= limit or (truncated and match.end() >= len(text)):
                continue
            key = text[start:end]
            if not _CONTRACT_KEY.fullmatch(key):
                continue
            if self.ignore_case:
                key = key.upper()
            if key not in yielded and self.rejection_reason(key) is None:
                yielded.add(key)
                yield key

    def entry_rejection_reason(self, entry: str) -> str | None:
        """Say why ``entry``, given as a key on its own, is not acceptable, or None.

        An explicit key needs no boundaries, but it must have the form that
        these rules look for (the built-in form, or ``PROJECT-NUMBER`` for a
        custom pattern) and pass ``projects`` and ``ignored``.
        """
        if self._compiled is not None:
            form = _CONTRACT_KEY
        elif self.ignore_case:
            form = _JIRA_KEY_ANY_CASE
        else:
            form = _JIRA_KEY
        if not form.fullmatch(entry):
            return (
                "not an issue key: expected a project key, a dash and a number "
                "without leading zero, such as ABC-123"
            )
        return self.rejection_reason(entry)


def _project_starts(text: str, run_start: int, run_end: int, project_chars: str) -> Iterator[int]:
    """Yield where a project may start in ``text[run_start:run_end]``, longest first.

    A project ends the run, is at most 255 characters, starts with a letter,
    and starts either the run or right after a ``_``.
    """
    lowest = max(run_start, run_end - _MAX_PART)
    tail_start = lowest + len(text[lowest:run_end].rstrip(project_chars))
    if tail_start == run_start and text[run_start] in _LETTERS:
        yield run_start
    # The character before the tail may be the "_" that a project follows.
    underscore = text.find("_", max(run_start, tail_start - 1), run_end)
    while underscore != -1:
        start = underscore + 1
        if start < run_end and text[start] in _LETTERS:
            yield start
        underscore = text.find("_", start, run_end)


DEFAULT_RULES = IssueKeyRules()
"""The built-in rule, ``DEFAULT_IGNORED``, every project, up to 100 keys."""


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
                    f"property {name}[{index}] is {type(item).__name__} ({item!r:.80}); "
                    f"{name} must be {expected}"
                )
            entries.extend(_split_entries(item))
        return entries
    raise ValueError(
        f"property {name} is {type(value).__name__} ({value!r:.80}); it must be {expected}"
    )


def _split_entries(text: str) -> list[str]:
    """Split at commas and whitespace, dropping empty entries."""
    return [entry for entry in _PROPERTY_SEPARATORS.split(text) if entry]
