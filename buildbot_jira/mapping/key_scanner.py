"""The scanner behind the built-in issue-key rule, and the runner of custom patterns.

:mod:`~buildbot_jira.mapping.keys` documents the rule; this module finds
the words of a text that have its shape, in time that grows linearly with
the text whatever it holds. Which of those words are keys (``projects``,
``ignored``) is not decided here: callers pass an ``accept`` function, so
that a reading ruled out by it can give way to a shorter one (``FOO_ABC-1``
read as ``ABC-1``).
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterator

from buildbot_jira.jira.model import ISSUE_KEY_RE, MAX_ISSUE_KEY_PART

__all__ = [
    "BUILTIN_KEY",
    "BUILTIN_KEY_ANY_CASE",
    "builtin_keys",
    "pattern_keys",
    "readable_part",
]

#: A whole key in the built-in form: upper-case project, number without leading zero.
BUILTIN_KEY = re.compile(
    rf"[A-Z][A-Z0-9_]{{0,{MAX_ISSUE_KEY_PART - 1}}}-[1-9][0-9]{{0,{MAX_ISSUE_KEY_PART - 1}}}"
)
#: The built-in form when ``ignore_case`` is on.
BUILTIN_KEY_ANY_CASE = re.compile(
    rf"[A-Za-z][A-Za-z0-9_]{{0,{MAX_ISSUE_KEY_PART - 1}}}-[1-9][0-9]{{0,{MAX_ISSUE_KEY_PART - 1}}}"
)

# A key is at most 255 + 1 + 255 characters, so reading this far past the
# scan limit is enough to see the end of any key that starts before it.
_LOOKAHEAD = 2 * MAX_ISSUE_KEY_PART + 2
_UTF8_MAX_BYTES = 4

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


def readable_part(value: object, max_chars: int) -> tuple[str, bool]:
    """Return the part of ``value`` that is searched, and whether it was cut.

    That is the first ``max_chars`` characters and enough beyond them to read
    a key that starts before the limit to its end. Bytes are decoded as UTF-8
    with U+FFFD for what is not UTF-8; a value that is neither text nor bytes
    reads as ``""``.
    """
    span = max_chars + _LOOKAHEAD
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


def builtin_keys(
    text: str, *, limit: int, ignore_case: bool, accept: Callable[[str], bool]
) -> Iterator[str]:
    """Yield the keys of ``text`` under the built-in rule, each once, in linear time.

    Keys that start at ``limit`` or later are not read. With ``ignore_case``
    lower-case keys count too and every key is upper-cased. ``accept(key)``
    says whether a well-formed key may be reported; when it refuses the
    longest reading of a word, shorter readings are tried.
    """
    candidates = _ANY_CASE_CANDIDATE if ignore_case else _UPPER_CASE_CANDIDATE
    project_chars = _ANY_CASE_PROJECT_CHARS if ignore_case else _UPPER_PROJECT_CHARS
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
        if number_end - number_start > MAX_ISSUE_KEY_PART:
            continue
        run_end = number_start - 1
        source = text[max(run_start, run_end - MAX_ISSUE_KEY_PART - 1) : number_end]
        key = outcomes.get(source)
        if key is None:
            # Reused only by later candidates, which all start after this
            # one's dash: if that is past the limit, the scan stops first.
            number = text[run_end + 1 : number_end]
            key = outcomes[source] = _builtin_key(
                text,
                run_start,
                run_end,
                number,
                limit=limit,
                ignore_case=ignore_case,
                project_chars=project_chars,
                accept=accept,
            )
        if key and key not in yielded:
            yielded.add(key)
            yield key


def _builtin_key(
    text: str,
    run_start: int,
    run_end: int,
    number: str,
    *,
    limit: int,
    ignore_case: bool,
    project_chars: str,
    accept: Callable[[str], bool],
) -> str:
    """Return the key with ``number`` whose project ends the run, or "" if there is none.

    ``text[run_start:run_end]`` is the run of word characters before the
    dash; ``number`` follows the dash.
    """
    if number.startswith("0"):
        return ""
    for start in _project_starts(text, run_start, run_end, project_chars):
        if start >= limit:
            break
        key = f"{text[start:run_end]}-{number}"
        if ignore_case:
            key = key.upper()
        if accept(key):
            return key
    return ""


def _project_starts(text: str, run_start: int, run_end: int, project_chars: str) -> Iterator[int]:
    """Yield where a project may start in ``text[run_start:run_end]``, longest first.

    A project ends the run, is at most 255 characters, starts with a letter,
    and starts either the run or right after a ``_``.
    """
    lowest = max(run_start, run_end - MAX_ISSUE_KEY_PART)
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


def pattern_keys(
    pattern: re.Pattern[str],
    text: str,
    *,
    limit: int,
    truncated: bool,
    ignore_case: bool,
    accept: Callable[[str], bool],
) -> Iterator[str]:
    """Yield the keys that a custom ``pattern`` finds in ``text``, each once.

    The group named ``key`` is the key if the pattern has one, else the whole
    match. Matches that start at ``limit`` or later are not read, nor, when
    the text was ``truncated``, one that runs into the cut. What is found must
    still match the contract's issue-key pattern, and ``accept`` it.
    """
    use_group = "key" in pattern.groupindex
    yielded: set[str] = set()
    for match in pattern.finditer(text):
        if match.start() >= limit:
            return
        start, end = match.span("key") if use_group else match.span()
        # A group that took no part in the match spans (-1, -1); a match
        # that reaches the end of a cut text may be cut short itself.
        if start < 0 or start >= limit or (truncated and match.end() >= len(text)):
            continue
        key = text[start:end]
        if not ISSUE_KEY_RE.fullmatch(key):
            continue
        if ignore_case:
            key = key.upper()
        if key not in yielded and accept(key):
            yielded.add(key)
            yield key
