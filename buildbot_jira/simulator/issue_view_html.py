"""The issue view's markup pieces: escaping, links, times, lozenges, rows and sections.

Every card of the issue view is built from these, so the page's rules hold
in one place: each value is escaped (text and attribute alike), only
``http(s)`` URLs become links, and colour classes come from the view's own
tables, never from the data. Nothing here reads the simulator.
"""

from __future__ import annotations

import datetime
import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final
from urllib.parse import urlsplit

from buildbot_jira.jira.model import ENVIRONMENT_TYPES

__all__ = [
    "SHOWN",
    "Entity",
    "environment_chip",
    "escape",
    "field",
    "first_line",
    "latest_first",
    "link",
    "lozenge",
    "moment",
    "plural",
    "row",
    "section",
    "time_tag",
]

#: An entity as Jira stores it: the JSON object that a reporter sent.
Entity = Mapping[str, Any]

#: How many entities of one kind a card shows, the newest; a count tells of the rest.
SHOWN: Final = 10

#: The most characters of one value that a row shows: the rest is cut off with an ellipsis.
_LONGEST: Final = 200


def escape(value: object) -> str:
    """``value`` as text, escaped for HTML text and attribute values."""
    return html.escape("" if value is None else str(value), quote=True)


def field(entity: object, *names: str) -> Any:
    """The value at the path ``names`` in nested JSON objects; ``None`` where one is missing."""
    value = entity
    for name in names:
        if not isinstance(value, Mapping):
            return None
        value = value.get(name)
    return value


def first_line(text: object, *, limit: int = _LONGEST) -> str:
    """The first line of ``text``, cut to ``limit`` characters (unescaped)."""
    line = str(text or "").strip().split("\n", 1)[0].strip()
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "\u2026"


def moment(value: object) -> float:
    """Epoch seconds of an ISO 8601 timestamp; 0 for anything else."""
    if not isinstance(value, str):
        return 0.0
    text = value.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.datetime.fromisoformat(text)
    except ValueError:
        return 0.0
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed.timestamp()


def latest_first(
    entities: Iterable[Entity], *, when: Sequence[str] = ("lastUpdated",)
) -> list[Entity]:
    """``entities``, the latest first: by the timestamp at the path ``when``, then by sequence."""

    def order(entity: Entity) -> tuple[float, int]:
        sequence = entity.get("updateSequenceNumber", entity.get("updateSequenceId", 0))
        return moment(field(entity, *when)), sequence if isinstance(sequence, int) else 0

    return sorted(entities, key=order, reverse=True)


def time_tag(value: object) -> str:
    """A ``<time>`` element for an ISO 8601 timestamp; nothing for anything else."""
    seconds = moment(value)
    if not seconds:
        return ""
    shown = datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)
    return f'<time datetime="{escape(value)}">{escape(shown.strftime("%d %b %H:%M:%S UTC"))}</time>'


def link(text: object, url: object, *, css: str = "") -> str:
    """A link to ``url`` if it is an http(s) URL, else the text alone.

    ``css`` is a class of the view's own (never a value from the data).
    """
    classes = f' class="{css}"' if css else ""
    if isinstance(url, str) and urlsplit(url).scheme.lower() in ("http", "https"):
        return (
            f'<a{classes} href="{escape(url)}" target="_blank" rel="noopener noreferrer">'
            f"{escape(text)}</a>"
        )
    return f"<span{classes}>{escape(text)}</span>"


def lozenge(state: object, colours: Mapping[str, str], *, words: object = None) -> str:
    """A coloured lozenge for ``state``; its colour from ``colours``, grey if not listed."""
    colour = colours.get(state if isinstance(state, str) else "", "grey")
    shown = words if words is not None else str(state or "unknown").replace("_", " ")
    return f'<span class="lozenge {colour}" data-state="{escape(state)}">{escape(shown)}</span>'


def environment_chip(kind: object) -> str:
    """The chip of an environment type; ``unmapped`` for one that Jira does not define."""
    css = kind if isinstance(kind, str) and kind in ENVIRONMENT_TYPES else "unmapped"
    return (
        f'<span class="env env-{css}" title="environment type">{escape(kind or "unmapped")}</span>'
    )


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 build``, ``2 builds``; ``many`` for a word that does not just add an s."""
    return f"{count} {word}" if count == 1 else f"{count} {many or word + 's'}"


def row(
    title: str,
    parts: Iterable[str] = (),
    *,
    when: object = None,
    badge: str = "",
    edge: str = "grey",
    extra: str = "",
) -> str:
    """One row of a section: ``badge``, then ``title`` (markup) over its details.

    ``parts`` are markup, joined with dots; ``when`` an ISO 8601 timestamp;
    ``edge`` the colour of the row's edge (a class of the view's own);
    ``extra`` markup under the details, such as a nested list.
    """
    shown = [part for part in parts if part]
    sub = f'<div class="sub">{" · ".join(shown)}</div>' if shown else ""
    return (
        f'<li class="row edge-{edge}">{badge}'
        f'<div class="what"><div class="title">{title}</div>{sub}{extra}</div>'
        f'<div class="when">{time_tag(when)}</div></li>'
    )


def section(title: str, rows: Sequence[str], empty: str, *, total: int | None = None) -> str:
    """A titled panel of ``rows``; ``empty`` says what is missing when there are none.

    ``total`` counts the rows there are, when only the first of them are shown.
    """
    count = len(rows) if total is None else total
    more = count - len(rows)
    tail = f'<li class="more">and {escape(more)} more</li>' if more > 0 else ""
    body = (
        f'<ul class="rows">{"".join(rows)}{tail}</ul>' if rows else f'<p class="none">{empty}</p>'
    )
    return (
        f'<section class="panel"><h3>{escape(title)} <span class="count">{count}</span></h3>'
        f"{body}</section>"
    )
