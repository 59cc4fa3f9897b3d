"""The simulator's issue view: what Jira would show on each issue, as one HTML page.

``GET /`` (and ``GET /_simulator/view``) of a running simulator answers a
page in the style of Jira's development panel: a card per issue key that the
simulator holds data for, with its builds and deployments, latest update
first, states as coloured lozenges, each linking back to Buildbot. The page
is self-contained (inline CSS and script, no external assets, no build
step), is complete as the server renders it, and keeps itself current with a
small script that fetches the page again every two seconds and swaps in the
parts that changed (or, without JavaScript, with a plain meta refresh).

This module only renders: the simulator builds the :class:`IssuePage` it
shows (see :mod:`buildbot_jira.simulator.views`), and nothing here reads the
simulator itself. Every value on the page comes from what reporters sent, so
every value is escaped, only ``http(s)`` URLs become links, and a
Content-Security-Policy with a per-page nonce keeps any script but the
page's own from running.
"""

from __future__ import annotations

import datetime
import html
import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final
from urllib.parse import urlsplit

import attrs

from buildbot_jira.jira.model import ENVIRONMENT_TYPES
from buildbot_jira.simulator.issue_view_assets import CSS, REFRESH_SECONDS, SCRIPT

__all__ = [
    "REFRESH_SECONDS",
    "IssueActivity",
    "IssuePage",
    "render_page",
]

#: State -> the lozenge colour class. Classes come from this table only, never
#: from the data, so a payload cannot smuggle markup in through a class name.
_STATE_COLOURS: Final[Mapping[str, str]] = {
    "successful": "green",
    "failed": "red",
    "in_progress": "blue",
    "pending": "purple",
    "cancelled": "grey",
    "unknown": "grey",
    "rolled_back": "orange",
}

#: An entity as Jira stores it: the JSON object that a reporter sent.
Entity = Mapping[str, Any]


@attrs.frozen
class IssueActivity:
    """One issue's card: the entities linked to it, each as stored."""

    key: str
    builds: tuple[Entity, ...] = ()
    deployments: tuple[Entity, ...] = ()
    feature_flags: tuple[Entity, ...] = ()
    #: Commits, branches and pull requests.
    development: tuple[Entity, ...] = ()

    def entities(self) -> tuple[Entity, ...]:
        """Every entity on the card."""
        return (*self.builds, *self.deployments, *self.feature_flags, *self.development)


@attrs.frozen
class IssuePage:
    """Everything the page shows.

    ``url`` is where the simulator answers (from the request's Host header);
    ``issues`` are the issues with data, in key order; ``builds`` and
    ``deployments`` count the stored ones (one linked to two issues counts
    once); ``unknown_keys`` counts, per issue key the site does not know,
    the builds and deployments that named it (each once, however many
    updates of it arrived): Jira stores nothing linked only to those.
    """

    url: str
    issues: tuple[IssueActivity, ...] = ()
    known_projects: tuple[str, ...] | None = None
    client_ids: tuple[str, ...] = ()
    requests: int = 0
    builds: int = 0
    deployments: int = 0
    unknown_keys: Mapping[str, int] = attrs.field(factory=dict)


# -- rendering ------------------------------------------------------------------


def _e(value: object) -> str:
    """``value`` as text, escaped for HTML text and attribute values."""
    return html.escape("" if value is None else str(value), quote=True)


def _moment(value: object) -> float:
    """Epoch seconds of an ISO 8601 timestamp; 0 for anything else."""
    if not isinstance(value, str):
        return 0.0
    text = value.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        return 0.0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


def _latest_first(entities: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    def order(entity: Mapping[str, Any]) -> tuple[float, int]:
        sequence = entity.get("updateSequenceNumber", entity.get("updateSequenceId", 0))
        return _moment(entity.get("lastUpdated")), sequence if isinstance(sequence, int) else 0

    return sorted(entities, key=order, reverse=True)


def _latest_update(issue: IssueActivity) -> float:
    return max((_moment(e.get("lastUpdated")) for e in issue.entities()), default=0.0)


def _time(value: object) -> str:
    seconds = _moment(value)
    if not seconds:
        return ""
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)
    shown = moment.strftime("%d %b %H:%M:%S UTC")
    return f'<time datetime="{_e(value)}">{_e(shown)}</time>'


def _link(text: object, url: object) -> str:
    """A link to ``url`` if it is an http(s) URL, else the text alone."""
    if isinstance(url, str) and urlsplit(url).scheme.lower() in ("http", "https"):
        return f'<a href="{_e(url)}" target="_blank" rel="noopener noreferrer">{_e(text)}</a>'
    return f"<span>{_e(text)}</span>"


def _lozenge(state: object) -> str:
    colour = _STATE_COLOURS.get(state if isinstance(state, str) else "", "grey")
    words = str(state or "unknown").replace("_", " ")
    return f'<span class="lozenge {colour}" data-state="{_e(state)}">{_e(words)}</span>'


def _environment_chip(kind: object) -> str:
    css = kind if isinstance(kind, str) and kind in ENVIRONMENT_TYPES else "unmapped"
    return f'<span class="env env-{css}" title="environment type">{_e(kind or "unmapped")}</span>'


def _plural(count: int, word: str, plural: str | None = None) -> str:
    """``1 build``, ``2 builds``; ``plural`` for a word that does not just add an s."""
    return f"{count} {word}" if count == 1 else f"{count} {plural or word + 's'}"


def _details(parts: Iterable[str]) -> str:
    shown = [part for part in parts if part]
    return f'<div class="sub">{" · ".join(shown)}</div>' if shown else ""


def _build_row(build: Mapping[str, Any]) -> str:
    tests = build.get("testInfo") if isinstance(build.get("testInfo"), dict) else None
    refs = [r for r in build.get("references") or () if isinstance(r, dict)]
    branch = next((r["ref"].get("name") for r in refs if isinstance(r.get("ref"), dict)), None)
    commit = next((r["commit"].get("id") for r in refs if isinstance(r.get("commit"), dict)), None)
    parts = [
        f'<span class="branch">{_e(branch)}</span>' if branch else "",
        f"<code>{_e(str(commit)[:10])}</code>" if commit else "",
        _tests_text(tests) if tests else "",
        f"pipeline {_e(build.get('pipelineId'))}",
    ]
    name = build.get("displayName") or f"#{build.get('buildNumber')}"
    return _row(build.get("state"), _link(name, build.get("url")), parts, build)


def _tests_text(tests: Mapping[str, Any]) -> str:
    counts = [
        f"{_e(tests.get(field))} {label}"
        for field, label in (
            ("numberPassed", "passed"),
            ("numberFailed", "failed"),
            ("numberSkipped", "skipped"),
        )
        if isinstance(tests.get(field), int) and (tests.get(field) or label == "passed")
    ]
    return "tests: " + ", ".join(counts) if counts else ""


def _deployment_row(deployment: Mapping[str, Any]) -> str:
    environment = deployment.get("environment")
    environment = environment if isinstance(environment, dict) else {}
    pipeline = deployment.get("pipeline")
    pipeline = pipeline if isinstance(pipeline, dict) else {}
    target = environment.get("displayName") or environment.get("id") or "?"
    title = (
        f'<strong class="environment">{_e(target)}</strong>'
        f"{_environment_chip(environment.get('type'))}"
        f' <span class="to">·</span> '
        f"{_link(deployment.get('displayName') or 'deployment', deployment.get('url'))}"
    )
    parts = [
        _e(deployment.get("description")) if deployment.get("description") else "",
        f"deployment {_e(deployment.get('deploymentSequenceNumber'))}",
        f"pipeline {_link(pipeline.get('displayName') or pipeline.get('id'), pipeline.get('url'))}",
    ]
    return _row(deployment.get("state"), title, parts, deployment)


def _other_row(entity: Mapping[str, Any]) -> str:
    """A feature flag, commit, branch or pull request: its name and link."""
    name = next(
        (
            entity[field]
            for field in ("displayName", "title", "name", "message", "displayId", "id", "key")
            if isinstance(entity.get(field), str) and entity[field]
        ),
        "?",
    )
    return _row(None, _link(name, entity.get("url")), [], entity, lozenge=False)


def _row(
    state: object,
    title: str,
    parts: Sequence[str],
    entity: Mapping[str, Any],
    *,
    lozenge: bool = True,
) -> str:
    colour = _STATE_COLOURS.get(state if isinstance(state, str) else "", "grey")
    badge = _lozenge(state) if lozenge else ""
    return (
        f'<li class="row edge-{colour}">{badge}'
        f'<div class="what"><div class="title">{title}</div>{_details(parts)}</div>'
        f'<div class="when">{_time(entity.get("lastUpdated"))}</div></li>'
    )


def _section(title: str, rows: Sequence[str], empty: str) -> str:
    body = f'<ul class="rows">{"".join(rows)}</ul>' if rows else f'<p class="none">{empty}</p>'
    return (
        f'<section class="panel"><h3>{_e(title)} <span class="count">{len(rows)}</span></h3>'
        f"{body}</section>"
    )


def _issue_card(issue: IssueActivity) -> str:
    builds = _latest_first(issue.builds)
    deployments = _latest_first(issue.deployments)
    others = _latest_first([*issue.feature_flags, *issue.development])
    latest = _latest_first([*builds, *deployments])
    headline = _lozenge(latest[0].get("state")) if latest else ""
    parts = [
        _section("Builds", [_build_row(b) for b in builds], "No builds."),
        _section("Deployments", [_deployment_row(d) for d in deployments], "No deployments."),
    ]
    if others:
        parts.append(_section("Other development data", [_other_row(o) for o in others], ""))
    return (
        f'<article class="issue" data-issue="{_e(issue.key)}">'
        f'<header><h2><span class="key">{_e(issue.key)}</span></h2>'
        f'<span class="latest">latest {headline}</span></header>'
        f"{''.join(parts)}</article>"
    )


def _summary(page: IssuePage) -> str:
    return (
        f'<p id="summary" class="summary" data-live>{_plural(len(page.issues), "issue")} · '
        f"{_plural(page.builds, 'build')} · {_plural(page.deployments, 'deployment')} · "
        f"{_plural(page.requests, 'request')} received</p>"
    )


def _unknown_notice(page: IssuePage) -> str:
    if not page.unknown_keys:
        return '<div id="unknown" data-live></div>'
    keys = ", ".join(
        f"<code>{_e(key)}</code> ({_plural(count, 'entity', 'entities')})"
        for key, count in page.unknown_keys.items()
    )
    projects = sorted({key.rpartition("-")[0] for key in page.unknown_keys})
    known = ", ".join(page.known_projects or ())
    hint = " ".join(f"--project {_e(p)}" for p in projects)
    return (
        '<div id="unknown" class="notice" data-live><strong>Not linked to any issue:</strong> '
        f"reports named issue keys this site does not know: {keys}. Jira stores nothing "
        f"linked only to unknown issues. Known projects: {_e(known)}. To accept these, start "
        f"the simulator with <code>{hint}</code> (or <code>--any-project</code>).</div>"
    )


def _empty_state(page: IssuePage) -> str:
    client_id = page.client_ids[0] if page.client_ids else "sim-client-id"
    return (
        '<div class="empty"><h2>Nothing reported yet</h2>'
        "<p>Point a reporter at this simulator; its builds and deployments show here "
        "within two seconds. In <code>master.cfg</code>:</p>"
        "<pre>c['services'].append(reporters.JiraBuildReporter(\n"
        '    site="example.atlassian.net",\n'
        f'    client_id="{_e(client_id)}",\n'
        '    client_secret="...",  # the simulator\'s secret\n'
        f'    api_url="{_e(page.url)}",\n'
        f'    site_url="{_e(page.url)}",\n'
        "))</pre>"
        "<p>Or run <code>buildbot-jira demo</code> to watch a real master do it.</p></div>"
    )


def render_page(page: IssuePage, *, nonce: str | None = None) -> str:
    """The HTML of ``page``, the issue with the latest activity first.

    ``nonce`` is the Content-Security-Policy nonce of the page's own style
    and script (a fresh random one by default).
    """
    nonce = nonce or secrets.token_urlsafe(16)
    ordered = sorted(page.issues, key=_latest_update, reverse=True)
    cards = "".join(_issue_card(issue) for issue in ordered)
    body = cards or _empty_state(page)
    policy = (
        f"default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; "
        "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'"
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta http-equiv="Content-Security-Policy" content="{_e(policy)}">'
        f'<noscript><meta http-equiv="refresh" content="{int(REFRESH_SECONDS * 2.5)}"></noscript>'
        '<link rel="icon" href="data:,">'
        "<title>Jira Cloud simulator · issues</title>"
        f'<style nonce="{_e(nonce)}">{CSS}</style></head>'
        '<body data-refreshes="0">'
        '<header class="top"><div class="brand"><span class="logo" aria-hidden="true"></span>'
        'Jira Cloud simulator <span class="faint">· development panel</span></div>'
        '<span id="live" class="live">server-rendered</span></header>'
        f"<main>{_summary(page)}{_unknown_notice(page)}"
        f'<div id="issues" class="issues" data-live>{body}</div></main>'
        '<footer>JSON: <a href="/_simulator/issues">issues</a> · '
        '<a href="/_simulator/state">everything received</a> · this page refreshes every '
        f"{REFRESH_SECONDS:g} s</footer>"
        f'<script nonce="{_e(nonce)}">{SCRIPT}</script>'
        "</body></html>\n"
    )
