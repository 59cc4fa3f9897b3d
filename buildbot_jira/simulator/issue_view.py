"""The simulator's issue view: what Jira would show on each issue, as one HTML page.

``GET /`` (and ``GET /_simulator/view``) of a running simulator answers a
page in the style of Jira's development panel: a card per issue key that the
simulator holds data for, with its builds and deployments, latest update
first, states as coloured lozenges, each linking back to Buildbot; and its
pull requests, branches and commits
(:mod:`~buildbot_jira.simulator.issue_view_devinfo`) and feature flags
(:mod:`~buildbot_jira.simulator.issue_view_flags`). The page is
self-contained (inline CSS and script, no external assets, no build step),
is complete as the server renders it, and keeps itself current with a small
script that fetches the page again every two seconds and swaps in the parts
that changed (or, without JavaScript, with a plain meta refresh).

This module and its parts only render: the simulator builds the
:class:`IssuePage` it shows (see :mod:`buildbot_jira.simulator.views`), and
nothing here reads the simulator itself. The markup pieces that hold the
page's rules are :mod:`~buildbot_jira.simulator.issue_view_html`. Every
value on the page comes from what reporters sent, so every value is
escaped, only ``http(s)`` URLs become links, and a Content-Security-Policy
with a per-page nonce keeps any script but the page's own from running.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any, Final

import attrs

from buildbot_jira.simulator.issue_view_assets import CSS, REFRESH_SECONDS, SCRIPT
from buildbot_jira.simulator.issue_view_devinfo import (
    InRepository,
    development_moment,
    development_sections,
)
from buildbot_jira.simulator.issue_view_flags import flags_moment, flags_section
from buildbot_jira.simulator.issue_view_html import (
    Entity,
    environment_chip,
    escape,
    latest_first,
    link,
    lozenge,
    moment,
    plural,
    row,
    section,
)

__all__ = [
    "REFRESH_SECONDS",
    "InRepository",
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


@attrs.frozen
class IssueActivity:
    """One issue's card: the entities linked to it, each as stored.

    Commits, branches and pull requests come with the repository that holds
    each (:class:`InRepository`).
    """

    key: str
    builds: tuple[Entity, ...] = ()
    deployments: tuple[Entity, ...] = ()
    feature_flags: tuple[Entity, ...] = ()
    commits: tuple[InRepository, ...] = ()
    branches: tuple[InRepository, ...] = ()
    pull_requests: tuple[InRepository, ...] = ()

    def latest_update(self) -> float:
        """Epoch seconds of the latest change of any entity on the card (0 for none)."""
        return max(
            flags_moment(self.feature_flags),
            development_moment(self.commits, self.branches, self.pull_requests),
            *(moment(e.get("lastUpdated")) for e in (*self.builds, *self.deployments)),
        )


@attrs.frozen
class IssuePage:
    """Everything the page shows.

    ``url`` is where the simulator answers (from the request's Host header);
    ``issues`` are the issues with data, in key order; ``builds`` and
    ``deployments`` count the stored ones (one linked to two issues counts
    once), as do ``feature_flags``, ``commits``, ``branches`` and
    ``pull_requests``; ``unknown_keys`` counts, per issue key the site does
    not know, the builds and deployments that named it (each once, however
    many updates of it arrived): Jira stores nothing linked only to those.
    """

    url: str
    issues: tuple[IssueActivity, ...] = ()
    known_projects: tuple[str, ...] | None = None
    client_ids: tuple[str, ...] = ()
    requests: int = 0
    builds: int = 0
    deployments: int = 0
    unknown_keys: Mapping[str, int] = attrs.field(factory=dict)
    feature_flags: int = 0
    commits: int = 0
    branches: int = 0
    pull_requests: int = 0


# -- rendering ------------------------------------------------------------------


def _state_row(state: object, title: str, parts: Sequence[str], entity: Mapping[str, Any]) -> str:
    """A build's or deployment's row: its state as a lozenge and as the row's edge."""
    colour = _STATE_COLOURS.get(state if isinstance(state, str) else "", "grey")
    return row(
        title,
        parts,
        when=entity.get("lastUpdated"),
        badge=lozenge(state, _STATE_COLOURS),
        edge=colour,
    )


def _build_row(build: Mapping[str, Any]) -> str:
    tests = build.get("testInfo") if isinstance(build.get("testInfo"), dict) else None
    refs = [r for r in build.get("references") or () if isinstance(r, dict)]
    branch = next((r["ref"].get("name") for r in refs if isinstance(r.get("ref"), dict)), None)
    commit = next((r["commit"].get("id") for r in refs if isinstance(r.get("commit"), dict)), None)
    parts = [
        f'<span class="branch">{escape(branch)}</span>' if branch else "",
        f"<code>{escape(str(commit)[:10])}</code>" if commit else "",
        _tests_text(tests) if tests else "",
        f"pipeline {escape(build.get('pipelineId'))}",
    ]
    name = build.get("displayName") or f"#{build.get('buildNumber')}"
    return _state_row(build.get("state"), link(name, build.get("url")), parts, build)


def _tests_text(tests: Mapping[str, Any]) -> str:
    counts = [
        f"{escape(tests.get(name))} {label}"
        for name, label in (
            ("numberPassed", "passed"),
            ("numberFailed", "failed"),
            ("numberSkipped", "skipped"),
        )
        if isinstance(tests.get(name), int) and (tests.get(name) or label == "passed")
    ]
    return "tests: " + ", ".join(counts) if counts else ""


def _deployment_row(deployment: Mapping[str, Any]) -> str:
    environment = deployment.get("environment")
    environment = environment if isinstance(environment, dict) else {}
    pipeline = deployment.get("pipeline")
    pipeline = pipeline if isinstance(pipeline, dict) else {}
    target = environment.get("displayName") or environment.get("id") or "?"
    title = (
        f'<strong class="environment">{escape(target)}</strong>'
        f"{environment_chip(environment.get('type'))}"
        f' <span class="to">·</span> '
        f"{link(deployment.get('displayName') or 'deployment', deployment.get('url'))}"
    )
    parts = [
        escape(deployment.get("description")) if deployment.get("description") else "",
        f"deployment {escape(deployment.get('deploymentSequenceNumber'))}",
        f"pipeline {link(pipeline.get('displayName') or pipeline.get('id'), pipeline.get('url'))}",
    ]
    return _state_row(deployment.get("state"), title, parts, deployment)


def _issue_card(issue: IssueActivity) -> str:
    builds = latest_first(issue.builds)
    deployments = latest_first(issue.deployments)
    latest = latest_first([*builds, *deployments])
    headline = (
        f'<span class="latest">latest {lozenge(latest[0].get("state"), _STATE_COLOURS)}</span>'
        if latest
        else ""
    )
    parts = [
        section("Builds", [_build_row(b) for b in builds], "No builds."),
        section("Deployments", [_deployment_row(d) for d in deployments], "No deployments."),
        *development_sections(issue.commits, issue.branches, issue.pull_requests),
        flags_section(issue.feature_flags),
    ]
    return (
        f'<article class="issue" data-issue="{escape(issue.key)}">'
        f'<header><h2><span class="key">{escape(issue.key)}</span></h2>'
        f"{headline}</header>"
        f"{''.join(parts)}</article>"
    )


def _summary(page: IssuePage) -> str:
    counts = [
        plural(len(page.issues), "issue"),
        plural(page.builds, "build"),
        plural(page.deployments, "deployment"),
    ]
    # The kinds that a build reporter alone never sends show once there are some.
    for count, word, many in (
        (page.commits, "commit", None),
        (page.branches, "branch", "branches"),
        (page.pull_requests, "pull request", None),
        (page.feature_flags, "feature flag", None),
    ):
        if count:
            counts.append(plural(count, word, many))
    counts.append(f"{plural(page.requests, 'request')} received")
    return f'<p id="summary" class="summary" data-live>{" · ".join(counts)}</p>'


def _unknown_notice(page: IssuePage) -> str:
    if not page.unknown_keys:
        return '<div id="unknown" data-live></div>'
    keys = ", ".join(
        f"<code>{escape(key)}</code> ({plural(count, 'entity', 'entities')})"
        for key, count in page.unknown_keys.items()
    )
    projects = sorted({key.rpartition("-")[0] for key in page.unknown_keys})
    known = ", ".join(page.known_projects or ())
    hint = " ".join(f"--project {escape(p)}" for p in projects)
    return (
        '<div id="unknown" class="notice" data-live><strong>Not linked to any issue:</strong> '
        f"reports named issue keys this site does not know: {keys}. Jira stores nothing "
        f"linked only to unknown issues. Known projects: {escape(known)}. To accept these, start "
        f"the simulator with <code>{hint}</code> (or <code>--any-project</code>).</div>"
    )


def _empty_state(page: IssuePage) -> str:
    client_id = page.client_ids[0] if page.client_ids else "sim-client-id"
    return (
        '<div class="empty"><h2>Nothing reported yet</h2>'
        "<p>Point a reporter at this simulator; what it sends shows here "
        "within two seconds. In <code>master.cfg</code>:</p>"
        "<pre>c['services'].append(reporters.JiraBuildReporter(\n"
        '    site="example.atlassian.net",\n'
        f'    client_id="{escape(client_id)}",\n'
        '    client_secret="...",  # the simulator\'s secret\n'
        f'    api_url="{escape(page.url)}",\n'
        f'    site_url="{escape(page.url)}",\n'
        "))</pre>"
        "<p>Or run <code>buildbot-jira demo</code> to watch a real master do it.</p></div>"
    )


def render_page(page: IssuePage, *, nonce: str | None = None) -> str:
    """The HTML of ``page``, the issue with the latest activity first.

    ``nonce`` is the Content-Security-Policy nonce of the page's own style
    and script (a fresh random one by default).
    """
    nonce = nonce or secrets.token_urlsafe(16)
    ordered = sorted(page.issues, key=IssueActivity.latest_update, reverse=True)
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
        f'<meta http-equiv="Content-Security-Policy" content="{escape(policy)}">'
        f'<noscript><meta http-equiv="refresh" content="{int(REFRESH_SECONDS * 2.5)}"></noscript>'
        '<link rel="icon" href="data:,">'
        "<title>Jira Cloud simulator · issues</title>"
        f'<style nonce="{escape(nonce)}">{CSS}</style></head>'
        '<body data-refreshes="0">'
        '<header class="top"><div class="brand"><span class="logo" aria-hidden="true"></span>'
        'Jira Cloud simulator <span class="faint">· development panel</span></div>'
        '<span id="live" class="live">server-rendered</span></header>'
        f"<main>{_summary(page)}{_unknown_notice(page)}"
        f'<div id="issues" class="issues" data-live>{body}</div></main>'
        '<footer>JSON: <a href="/_simulator/issues">issues</a> · '
        '<a href="/_simulator/state">everything received</a> · this page refreshes every '
        f"{REFRESH_SECONDS:g} s</footer>"
        f'<script nonce="{escape(nonce)}">{SCRIPT}</script>'
        "</body></html>\n"
    )
