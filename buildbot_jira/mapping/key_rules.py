"""How issue keys are recognised: :class:`IssueKeyRules`, checked when it is built.

The rules are what a ``master.cfg`` configures (a custom pattern, the
ignored words, the allowed projects, the caps), checked here once so that a
mistake shows when the master starts, not as keys silently missed later.
:mod:`~buildbot_jira.mapping.keys` documents the built-in rule and is where
callers import these names from.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

import attrs

from buildbot_jira.jira.errors import JiraConfigError
from buildbot_jira.jira.model import ISSUE_KEY_RE, MAX_ISSUE_KEY_PART, MAX_ISSUE_KEYS
from buildbot_jira.mapping.key_scanner import (
    BUILTIN_KEY,
    BUILTIN_KEY_ANY_CASE,
    builtin_keys,
    pattern_keys,
    readable_part,
)

__all__ = [
    "DEFAULT_IGNORED",
    "DEFAULT_MAX_CHARS_PER_BUILD",
    "DEFAULT_MAX_CHARS_PER_TEXT",
    "DEFAULT_RULES",
    "IssueKeyRules",
]

DEFAULT_MAX_CHARS_PER_TEXT = 1 << 20
"""How many characters of one text are searched unless configured otherwise (1,048,576)."""

DEFAULT_MAX_CHARS_PER_BUILD = 1 << 20
"""How many characters of a build's properties and commit messages are searched in all (1 MiB)."""

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

_PROJECT_ENTRY = re.compile(rf"[A-Za-z0-9_]{{1,{MAX_ISSUE_KEY_PART}}}")


def _string_entries(value: object, name: str) -> list[str]:
    """Check that ``value`` is a collection of strings; return them stripped.

    A lone string stands for a collection of one, as in every list argument.
    """
    if isinstance(value, str):
        value = [value]
    if isinstance(value, (bytes, bytearray)) or not isinstance(value, Iterable):
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
        if not (_PROJECT_ENTRY.fullmatch(entry) or ISSUE_KEY_RE.fullmatch(entry)):
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


# Texts that name ABC-123 the ways builds do; a pattern that matches in them
# but never a whole key would make every key it finds one that Jira rejects.
_KEY_SAMPLES = (
    "ABC-123",
    "feature/ABC-123-coupons",
    "ABC-123: apply coupons",
    "[ABC-123] apply coupons",
    "#ABC-123",
    "fix(ABC-123): apply coupons",
)


def _pattern_problem(compiled: re.Pattern[str], ignore_case: bool) -> str | None:
    """Why a custom pattern can never give a Jira key, or None when it may."""
    found = []
    for sample in _KEY_SAMPLES:
        for match in compiled.finditer(sample):
            text = match.group("key") if "key" in compiled.groupindex else match.group(0)
            if text is None:
                continue
            candidate = text.upper() if ignore_case else text
            if ISSUE_KEY_RE.fullmatch(candidate):
                return None
            found.append((text, sample))
    if not found:
        return None  # it looks for a form of its own; nothing shows it wrong
    text, sample = found[0]
    return (
        f"cannot give a Jira issue key: in {sample!r} it matches {text!r}, which is not "
        "PROJECT-NUMBER, so Jira would refuse every key it finds; match the whole key "
        r"(or mark it with a group named key), such as r'(?P<key>[A-Z][A-Z0-9]+-[0-9]+)'"
    )


@attrs.frozen(kw_only=True)
class IssueKeyRules:
    """How issue keys are recognised; checked when built, so mistakes show at startup.

    ``pattern``
        None for the built-in rule (see :mod:`buildbot_jira.mapping.keys`), or a
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
    ``max_chars_per_build``
        How many characters of one build's texts (its pull-request properties,
        then its commit messages) are searched in all, so that a build of a
        hundred huge commits costs no more than one.

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
    max_chars_per_build: int = attrs.field(
        default=DEFAULT_MAX_CHARS_PER_BUILD, validator=_check_positive_int
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
        problem = _pattern_problem(compiled, self.ignore_case)
        if problem is not None:
            raise JiraConfigError(f"pattern {self.pattern!r} {problem}")
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

    def keys_in(self, value: object, max_chars: int | None = None) -> Iterator[str]:
        """Yield the keys of one text, each once, in order of first appearance.

        Most callers want ``extract_issue_keys``, which works across texts and
        applies ``max_keys``. ``None`` and values that are neither text nor
        bytes hold no keys. ``max_chars`` searches less than
        ``max_chars_per_text`` (what a build's budget has left).
        """
        limit = (
            self.max_chars_per_text
            if max_chars is None
            else min(max_chars, self.max_chars_per_text)
        )
        if limit < 1:
            return
        text, truncated = readable_part(value, limit)
        if not text:
            return
        if self._compiled is None:
            yield from builtin_keys(
                text,
                limit=limit,
                ignore_case=self.ignore_case,
                accept=self._accepts,
            )
        else:
            yield from pattern_keys(
                self._compiled,
                text,
                limit=limit,
                truncated=truncated,
                ignore_case=self.ignore_case,
                accept=self._accepts,
            )

    def _accepts(self, key: str) -> bool:
        """Whether ``projects`` and ``ignored`` let a well-formed ``key`` through."""
        return self.rejection_reason(key) is None

    def entry_rejection_reason(self, entry: str) -> str | None:
        """Say why ``entry``, given as a key on its own, is not acceptable, or None.

        An explicit key needs no boundaries, but it must have the form that
        these rules look for (the built-in form, or ``PROJECT-NUMBER`` for a
        custom pattern) and pass ``projects`` and ``ignored``.
        """
        if self._compiled is not None:
            form = ISSUE_KEY_RE
        elif self.ignore_case:
            form = BUILTIN_KEY_ANY_CASE
        else:
            form = BUILTIN_KEY
        if not form.fullmatch(entry):
            return (
                "not an issue key: expected a project key, a dash and a number "
                "without leading zero, such as ABC-123"
            )
        return self.rejection_reason(entry)


DEFAULT_RULES = IssueKeyRules()
"""The built-in rule, ``DEFAULT_IGNORED``, every project, up to 100 keys."""
