"""The issue view's feature flags: each flag linked to an issue, and its environments.

A flag shows by its display name and key (linking to its summary URL), as
on or off, with its rollout and default value; under it, each environment
of its details: name and type, on or off, rollout, default value and when
it last changed. The newest flags first, at most
:data:`~buildbot_jira.simulator.issue_view_html.SHOWN` of them, and as
many environments of each. Rendering only, by the rules of
:mod:`~buildbot_jira.simulator.issue_view_html`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from buildbot_jira.simulator.issue_view_html import (
    SHOWN,
    Entity,
    environment_chip,
    escape,
    field,
    first_line,
    latest_first,
    link,
    lozenge,
    moment,
    plural,
    row,
    section,
    time_tag,
)

__all__ = ["flags_moment", "flags_section"]

#: On or off -> the lozenge colour (the view's own classes).
_SWITCH_COLOURS: Final[Mapping[str, str]] = {"on": "green", "off": "grey"}
_SUMMARY_TIME: Final = ("summary", "lastUpdated")


def flags_moment(flags: Iterable[Entity]) -> float:
    """Epoch seconds of the latest change of these flags (0 for none)."""
    return max((moment(field(flag, *_SUMMARY_TIME)) for flag in flags), default=0.0)


def flags_section(flags: Sequence[Entity]) -> str:
    """The card's section of feature flags, the newest first; nothing without flags."""
    if not flags:
        return ""
    newest = latest_first(flags, when=_SUMMARY_TIME)
    rows = [_flag_row(flag) for flag in newest[:SHOWN]]
    return section("Feature flags", rows, "", total=len(flags))


def _switch(status: object) -> str:
    enabled = field(status, "enabled")
    state = "unknown" if not isinstance(enabled, bool) else "on" if enabled else "off"
    return lozenge(state, _SWITCH_COLOURS)


def _rollout(status: object) -> str:
    rollout = field(status, "rollout")
    percentage, text, rules = (field(rollout, name) for name in ("percentage", "text", "rules"))
    if isinstance(percentage, (int, float)) and not isinstance(percentage, bool):
        return f"rollout {escape(f'{percentage:g}')} %"
    if isinstance(text, str) and text:
        return f"rollout {escape(first_line(text, limit=80))}"
    if isinstance(rules, int) and not isinstance(rules, bool):
        return f"rollout by {plural(rules, 'rule')}"
    return ""


def _default(status: object) -> str:
    value = field(status, "defaultValue")
    if value is None or value == "":
        return ""
    return f"default <code>{escape(first_line(value, limit=80))}</code>"


def _flag_row(flag: Entity) -> str:
    summary = flag.get("summary")
    key = first_line(flag.get("key") or flag.get("id") or "?", limit=120)
    name = first_line(flag.get("displayName"), limit=120)
    title = link(name or key, field(summary, "url"), css="flag")
    if name and name != key:
        title += f' <code class="flag-key">{escape(key)}</code>'
    status = field(summary, "status")
    details = [d for d in flag.get("details") or () if isinstance(d, Mapping)]
    environments = "".join(_environment(detail) for detail in details[:SHOWN])
    if len(details) > SHOWN:
        environments += f'<li class="more">and {len(details) - SHOWN} more</li>'
    extra = f'<ul class="envs">{environments}</ul>' if environments else ""
    return row(
        title,
        [_rollout(status), _default(status), plural(len(details), "environment")],
        when=field(summary, "lastUpdated"),
        badge=_switch(status),
        extra=extra,
    )


def _environment(detail: Mapping[str, object]) -> str:
    environment = detail.get("environment")
    name = first_line(field(environment, "name") or "?", limit=120)
    kind = field(environment, "type")
    status = detail.get("status")
    parts = [
        f'<strong class="environment">{link(name, detail.get("url"))}</strong>'
        + (environment_chip(kind) if kind else ""),
        _switch(status),
        _rollout(status),
        _default(status),
        time_tag(detail.get("lastUpdated")),
    ]
    return f'<li class="env-row">{" ".join(part for part in parts if part)}</li>'
