"""The issue view's development information: an issue's commits, branches and pull requests.

Each kind is a section of the issue's card, the newest first, at most
:data:`~buildbot_jira.simulator.issue_view_html.SHOWN` of them with a count
of the rest: a commit by its short hash (linking to the commit), the first
line of its message, author, file count and repository; a branch by its
name, repository and last commit; a pull request by its status, ID and
title, source and destination branches and author. Rendering only, by the
rules of :mod:`~buildbot_jira.simulator.issue_view_html`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Final

import attrs

from buildbot_jira.simulator.issue_view_html import (
    SHOWN,
    Entity,
    escape,
    field,
    first_line,
    link,
    lozenge,
    moment,
    plural,
    row,
    section,
)

__all__ = ["InRepository", "development_moment", "development_sections"]

#: Pull request status -> the lozenge colour (the view's own classes).
_STATUS_COLOURS: Final[Mapping[str, str]] = {
    "OPEN": "blue",
    "MERGED": "green",
    "DECLINED": "red",
    "UNKNOWN": "grey",
}

# Where each kind keeps the time it shows and is ordered by.
_COMMIT_TIME: Final = ("authorTimestamp",)
_BRANCH_TIME: Final = ("lastCommit", "authorTimestamp")
_PULL_REQUEST_TIME: Final = ("lastUpdate",)


@attrs.frozen
class InRepository:
    """A commit, branch or pull request as stored, and the repository that holds it."""

    entity: Entity
    #: The repository's own fields as stored (``id``, ``name``, ``url``...).
    repository: Entity = attrs.field(factory=dict)


def development_moment(
    commits: Iterable[InRepository],
    branches: Iterable[InRepository],
    pull_requests: Iterable[InRepository],
) -> float:
    """Epoch seconds of the latest of these entities' times (0 for none)."""
    times = [
        *(moment(field(c.entity, *_COMMIT_TIME)) for c in commits),
        *(moment(field(b.entity, *_BRANCH_TIME)) for b in branches),
        *(moment(field(p.entity, *_PULL_REQUEST_TIME)) for p in pull_requests),
    ]
    return max(times, default=0.0)


def development_sections(
    commits: Sequence[InRepository],
    branches: Sequence[InRepository],
    pull_requests: Sequence[InRepository],
) -> list[str]:
    """A section for each kind that the issue has, pull requests first, as Jira's panel."""
    sections = []
    for title, items, when, render in (
        ("Pull requests", pull_requests, _PULL_REQUEST_TIME, _pull_request_row),
        ("Branches", branches, _BRANCH_TIME, _branch_row),
        ("Commits", commits, _COMMIT_TIME, _commit_row),
    ):
        if items:
            newest = _newest(items, when)
            rows = [render(item) for item in newest[:SHOWN]]
            sections.append(section(title, rows, "", total=len(items)))
    return sections


def _newest(items: Sequence[InRepository], when: Sequence[str]) -> list[InRepository]:
    def order(item: InRepository) -> tuple[float, int]:
        sequence = item.entity.get("updateSequenceId", 0)
        return moment(field(item.entity, *when)), sequence if isinstance(sequence, int) else 0

    return sorted(items, key=order, reverse=True)


def _repository(item: InRepository) -> str:
    repository = item.repository
    name = repository.get("name") or repository.get("id")
    if not name:
        return ""
    return f"in {link(name, repository.get('url'), css='repository')}"


def _author(entity: object) -> str:
    name = field(entity, "author", "name") or field(entity, "author", "username")
    return f"by {escape(first_line(name))}" if name else ""


def _short_hash(commit: object) -> str:
    shown = field(commit, "displayId") or field(commit, "hash") or field(commit, "id") or "?"
    return first_line(shown, limit=12)


def _commit_row(item: InRepository) -> str:
    commit = item.entity
    title = (
        f"{link(_short_hash(commit), commit.get('url'), css='hash')} "
        f'<span class="message">{escape(first_line(commit.get("message")))}</span>'
    )
    files = commit.get("fileCount")
    parts = [
        _author(commit),
        plural(files, "file") if isinstance(files, int) and not isinstance(files, bool) else "",
        _repository(item),
    ]
    return row(title, parts, when=field(commit, *_COMMIT_TIME))


def _branch_row(item: InRepository) -> str:
    branch = item.entity
    last = branch.get("lastCommit")
    last_commit = ""
    if isinstance(last, Mapping):
        last_commit = (
            f"last commit {link(_short_hash(last), last.get('url'), css='hash')} "
            f"{escape(first_line(last.get('message'), limit=80))}"
        )
    name = first_line(branch.get("name") or branch.get("id") or "?")
    title = link(name, branch.get("url"), css="branch")
    return row(title, [_repository(item), last_commit], when=field(branch, *_BRANCH_TIME))


def _pull_request_row(item: InRepository) -> str:
    pull_request = item.entity
    status = pull_request.get("status")
    shown_id = first_line(pull_request.get("displayId") or pull_request.get("id") or "", limit=40)
    title = link(
        f"{shown_id} {first_line(pull_request.get('title'))}".strip(), pull_request.get("url")
    )
    source = pull_request.get("sourceBranch")
    target = pull_request.get("destinationBranch")
    branches = (
        f'<span class="branch">{escape(first_line(source, limit=80))}</span>' if source else ""
    )
    if source and target:
        branches += (
            f' <span class="to">\u2192</span> '
            f'<span class="branch">{escape(first_line(target, limit=80))}</span>'
        )
    comments = pull_request.get("commentCount")
    parts = [
        branches,
        _author(pull_request),
        _repository(item),
        plural(comments, "comment")
        if isinstance(comments, int) and not isinstance(comments, bool) and comments > 0
        else "",
    ]
    return row(
        title,
        parts,
        when=field(pull_request, *_PULL_REQUEST_TIME),
        badge=lozenge(status, _STATUS_COLOURS),
        edge=_STATUS_COLOURS.get(status if isinstance(status, str) else "", "grey"),
    )
