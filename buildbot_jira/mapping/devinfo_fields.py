"""The fields of development information entities, each within the contract (pure).

:mod:`~buildbot_jira.mapping.devinfo` builds commits, branches and pull
requests from these: IDs in the contract's alphabet, authors, timestamps,
file changes and issue keys, whatever the change gives.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from typing import Final

from buildbot_jira.jira.model import clip, iso_timestamp

__all__ = [
    "CHANGE_TYPES",
    "INT32_MAX",
    "MAX_DEVINFO_ISSUE_KEYS",
    "author",
    "devinfo_issue_keys",
    "display_id",
    "entity_id",
    "file_change",
    "timestamp",
]

#: The most issue keys of one entity (the contract's ``issueKeys`` maxItems).
MAX_DEVINFO_ISSUE_KEYS: Final = 500
#: The largest ``int32`` (``fileCount``, ``linesAdded``, ``linesRemoved``).
INT32_MAX: Final = 2**31 - 1
#: A file's change types.
CHANGE_TYPES: Final = frozenset({"ADDED", "COPIED", "DELETED", "MODIFIED", "MOVED", "UNKNOWN"})

_MAX_ID: Final = 1024
_LATEST: Final = 253402300799.0  # 9999-12-31T23:59:59Z
# The contract's ^\p{L}[\p{L}\p{Digit}_]{1,255}-\p{Digit}{1,255}$, as the simulator reads it.
_DEVINFO_KEY: Final = re.compile(r"[^\W\d_](?:[^\W\d_]|[0-9_]){1,255}-[0-9]{1,255}")
_ID_SAFE: Final = re.compile(r"[A-Za-z0-9._-]+")
_ID_ESCAPED: Final = re.compile(r"[^A-Za-z0-9._-]")
_HASH: Final = re.compile(r"[0-9a-fA-F]{12,}")
_AUTHOR: Final = re.compile(r"(.*?)\s*<([^<>]*)>", re.DOTALL)


def entity_id(value: str) -> str:
    """``value`` as an entity ID in the contract's alphabet (letters, digits, ``~ . - _``).

    A value of those characters (but ``~``) and at most 1,024 of them is its
    own ID; any other has each other character written ``~`` and two hex
    digits per UTF-8 byte, and one that would be longer than 1,024 ends in
    ``~~`` and a hash of the whole value. Different values give different IDs.

    >>> entity_id("feature/ABC-1")
    'feature~2fABC-1'
    """
    if len(value) <= _MAX_ID and _ID_SAFE.fullmatch(value):
        return value
    escaped = _ID_ESCAPED.sub(
        lambda m: "".join(f"~{b:02x}" for b in m.group().encode("utf-8", "surrogatepass")),
        value[: _MAX_ID + 1],
    )
    if len(value) <= _MAX_ID and len(escaped) <= _MAX_ID:
        return escaped
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{escaped[: _MAX_ID - 34]}~~{digest}"


def devinfo_issue_keys(*groups: tuple[str, ...]) -> tuple[str, ...]:
    """The keys of ``groups`` that the devinfo API accepts, each once, at most 500.

    Its pattern is stricter than that of builds: the project has at least
    two characters and begins with a letter.
    """
    found = dict.fromkeys(k for group in groups for k in group if _DEVINFO_KEY.fullmatch(k))
    return tuple(found)[:MAX_DEVINFO_ISSUE_KEYS]


def timestamp(seconds: float | None) -> str:
    """ISO 8601 of ``seconds`` (within years 1970 to 9999); the epoch when unknown."""
    if seconds is None or not math.isfinite(seconds):
        seconds = 0.0
    return iso_timestamp(min(max(seconds, 0.0), _LATEST))


def author(text: str) -> dict[str, str]:
    """Jira's author from Buildbot's ``Name <email>`` (or a bare name, or an address).

    What is between ``<>`` is the ``email`` when it has an ``@``, else the
    ``username`` (Bitbucket Cloud's hook puts a nickname there); an empty
    author is ``unknown``.
    """
    text = text[:4096].strip()
    found = _AUTHOR.match(text)
    name, address = (found[1], found[2].strip()) if found else (text, "")
    if not address and "@" in name and not any(c.isspace() for c in name):
        address = name
    person = {"name": clip(name.strip() or address, 255).strip() or "unknown"}
    address = clip(address, 1000)
    if address and len(address) <= 255:
        person["email" if "@" in address else "username"] = address
    return person


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        return 0
    return min(max(value, 0), INT32_MAX)


def file_change(info: object) -> tuple[str, int, int]:
    """Change type, lines added and lines removed from what a change source says of a file.

    ``info`` is a change type (``"ADDED"``) or ``{"changeType": ...,
    "linesAdded": ..., "linesRemoved": ...}``; anything else is ``UNKNOWN``.
    """
    if isinstance(info, Mapping):
        kind, added, removed = (
            info.get("changeType"),
            info.get("linesAdded"),
            info.get("linesRemoved"),
        )
    else:
        kind, added, removed = info, 0, 0
    kind = kind.upper() if isinstance(kind, str) and kind.upper() in CHANGE_TYPES else "UNKNOWN"
    return kind, _count(added), _count(removed)


def display_id(revision: str) -> str:
    """A commit's short form: 7 hex digits of a hash, else the revision as it is."""
    return revision[:7] if _HASH.fullmatch(revision[:64]) else clip(revision, 255)
