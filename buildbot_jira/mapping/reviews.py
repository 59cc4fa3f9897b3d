"""The pull request (or Gerrit change) a Buildbot change belongs to, from its properties (pure).

Buildbot's change sources and change hooks describe a review in the
properties and fields of the change they add; this module reads them into a
:class:`Review`, and :mod:`~buildbot_jira.mapping.devinfo` turns that into a
Jira pull request. What each source sets, as read in its code:

Gerrit (``buildbot.changes.gerritchangesource``)
    every field of the event as ``event.*`` properties: ``event.type``,
    ``event.change.number``, ``event.change.id``, ``event.change.url``,
    ``event.change.subject``, ``event.change.owner.name`` / ``.email`` /
    ``.username``, ``event.change.branch``, ``event.change.project`` (or
    ``event.change.project.name`` in the events-log format),
    ``event.change.status``, ``event.change.lastUpdated``,
    ``event.patchSet.number``, ``event.patchSet.ref``,
    ``event.patchSet.createdOn``.
GitHub (``buildbot.www.hooks.github``)
    ``pullrequesturl``, ``event`` (``pull_request``) and ``basename`` (the
    base branch); the branch is ``refs/pull/<number>/merge`` (or ``/head``);
    the comments are ``GitHub Pull Request #<number> (<n> commits)``, the
    title and the body; the fields of the pull request become ``github.*``
    properties (``github.number``, ``github.title``, ``github.head.ref``,
    ``github.state``, ``github.merged``...) where ``github_property_whitelist``
    lets them through. Only ``opened``, ``reopened`` and ``synchronize`` add
    changes.
GitLab (``buildbot.www.hooks.gitlab``)
    ``event`` (``merge_request`` or ``note``), ``source_branch``,
    ``target_branch``, ``source_repository``, ``target_repository``...; the
    comments are ``MR#<iid>: <title>`` and the description, the revlink is
    the merge request's page. Only open merge requests add changes.
Gitea (the ``buildbot-gitea`` plugin's ``gitea`` hook)
    ``event`` (``pull_request``), ``pr_number``, ``pr_id``, ``head_branch``,
    ``base_branch``, ``head_sha``...; the comments are ``PR#<number>:
    <title>`` and the body, the revlink is the pull request's page. Only
    ``opened``, ``synchronized``, ``edited`` and ``reopened`` add changes.
Bitbucket Server and Cloud (``buildbot.www.hooks.bitbucketserver``, ``bitbucketcloud``)
    the category ``pull-created``, ``pull-updated``, ``pull-fulfilled``
    (merged) or ``pull-rejected`` (declined); ``pullrequesturl``; the comments
    ``Bitbucket Server Pull Request #<id>`` (or ``Cloud``); the branch
    ``refs/pull-requests/<id>/merge``; the fields of the pull request as
    ``bitbucket.*`` properties (``bitbucket.title``,
    ``bitbucket.fromRef.branch.name``...) where ``bitbucket_property_whitelist``
    lets them through.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Callable, Mapping
from typing import Any, Final, Protocol

import attrs

__all__ = ["REVIEW_STATUSES", "ChangeFields", "Review", "find_review", "moment"]

#: The statuses of a Jira pull request.
REVIEW_STATUSES: Final = ("OPEN", "MERGED", "DECLINED", "UNKNOWN")

_GERRIT_EVENTS: Final[Mapping[str, str]] = {
    "patchset-created": "OPEN",
    "draft-published": "OPEN",
    "change-restored": "OPEN",
    "change-merged": "MERGED",
    "change-abandoned": "DECLINED",
}
_GERRIT_STATUSES: Final[Mapping[str, str]] = {
    "NEW": "OPEN",
    "DRAFT": "OPEN",
    "MERGED": "MERGED",
    "ABANDONED": "DECLINED",
}
_BITBUCKET_CATEGORIES: Final[Mapping[str, str]] = {
    "pull-created": "OPEN",
    "pull-updated": "OPEN",
    "pull-fulfilled": "MERGED",
    "pull-rejected": "DECLINED",
}
_NUMBER: Final = re.compile(r"[0-9]{1,18}")
_GITHUB_REF: Final = re.compile(r"refs/pull/([0-9]{1,18})/")
_GITHUB_URL: Final = re.compile(r"/pulls?/([0-9]{1,18})(?:[/?#]|$)")
_GITLAB_COMMENTS: Final = re.compile(r"MR#([0-9]{1,18}): ?([^\n]*)")
_GITLAB_URL: Final = re.compile(r"/merge_requests/([0-9]{1,18})(?:[/?#]|$)")
_GITEA_COMMENTS: Final = re.compile(r"PR#([0-9]{1,18}): ?([^\n]*)")
_BITBUCKET_COMMENTS: Final = re.compile(r"Bitbucket (?:Server|Cloud) Pull Request #([0-9]{1,18})")
_BITBUCKET_REF: Final = re.compile(r"refs/pull-requests/([0-9]{1,18})/")
# Epoch numbers above this are milliseconds (year 5138 in seconds).
_MILLISECONDS: Final = 1e11


class ChangeFields(Protocol):
    """What a review is read from: the fields of a
    :class:`~buildbot_jira.mapping.devinfo.ChangeFacts`."""

    @property
    def branch(self) -> str | None: ...
    @property
    def comments(self) -> str: ...
    @property
    def revlink(self) -> str | None: ...
    @property
    def category(self) -> str | None: ...
    @property
    def properties(self) -> Mapping[str, Any]: ...


@attrs.frozen
class Review:
    """A pull request, merge request or Gerrit change, as a change's properties describe it.

    ``review_id`` is stable for the review (its number); ``display_id`` is
    how its host shows it (``#12``, ``!12``, ``12``); ``status`` is one of
    :data:`REVIEW_STATUSES`; ``author`` is ``Name <email>`` or a name, as
    Buildbot's own ``author``; ``updated`` is in seconds since the epoch.
    Fields a source does not give are None: the caller falls back on the
    change's own (its branch, revlink, author and time).
    """

    review_id: str
    display_id: str
    status: str
    title: str | None = None
    url: str | None = None
    source_branch: str | None = None
    destination_branch: str | None = None
    author: str | None = None
    updated: float | None = None


def moment(value: object) -> float | None:
    """Seconds since the epoch from a number (seconds or milliseconds), ISO text or a datetime."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return value.timestamp()
    if isinstance(value, str):
        try:
            return moment(datetime.datetime.fromisoformat(value.strip().replace("Z", "+00:00")))
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return value / 1000 if abs(value) > _MILLISECONDS else float(value)


def _text(value: object) -> str | None:
    """A property value as text, or None when it is not a non-empty string or number."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | str):
        return str(value) or None
    return None


def _first(regex: re.Pattern[str], *texts: str | None) -> str | None:
    """The first group of the first text that ``regex`` finds something in."""
    for text in texts:
        found = regex.search(text) if text else None
        if found is not None:
            return found.group(1)
    return None


def _person(name: object, email: object, username: object = None) -> str | None:
    """``Name <email>`` from account fields, as Buildbot's own authors are written."""
    shown = _text(name) or _text(username)
    address = _text(email)
    if shown and address:
        return f"{shown} <{address}>"
    return shown or address


def _gerrit(change: ChangeFields) -> Review | None:
    props = change.properties
    number = _text(props.get("event.change.number")) or _text(props.get("event.change.id"))
    if number is None:
        return None
    event = _text(props.get("event.type")) or ""
    status = _GERRIT_EVENTS.get(event) or _GERRIT_STATUSES.get(
        _text(props.get("event.change.status")) or "", "UNKNOWN"
    )
    return Review(
        review_id=number,
        display_id=number,
        status=status,
        title=_text(props.get("event.change.subject")),
        url=_text(props.get("event.change.url")),
        source_branch=_text(props.get("event.patchSet.ref")) or change.branch,
        destination_branch=_text(props.get("event.change.branch")),
        author=_person(
            props.get("event.change.owner.name"),
            props.get("event.change.owner.email"),
            props.get("event.change.owner.username"),
        ),
        updated=moment(props.get("event.change.lastUpdated"))
        or moment(props.get("event.patchSet.createdOn")),
    )


def _github(change: ChangeFields) -> Review | None:
    props = change.properties
    if props.get("event") != "pull_request" and "github.number" not in props:
        return None
    url = _text(props.get("github.html_url")) or _text(props.get("pullrequesturl"))
    number = (
        _text(props.get("github.number"))
        or _first(_GITHUB_REF, change.branch)
        or _first(_GITHUB_URL, url, change.revlink)
    )
    if number is None or not _NUMBER.fullmatch(number):
        return None  # not GitHub's: Gitea's hook sets event too
    if props.get("github.merged") is True:
        status = "MERGED"
    elif props.get("github.state") == "closed":
        status = "DECLINED"
    else:
        status = "OPEN"  # the hook adds changes of open pull requests only
    lines = change.comments.split("\n", 2)
    title = _text(props.get("github.title")) or (lines[1] if len(lines) > 1 else None)
    return Review(
        review_id=number,
        display_id=f"#{number}",
        status=status,
        title=title,
        url=url,
        source_branch=_text(props.get("github.head.ref")),
        destination_branch=_text(props.get("basename")) or _text(props.get("github.base.ref")),
        author=_text(props.get("github.user.login")),
        updated=moment(props.get("github.updated_at")),
    )


def _gitlab(change: ChangeFields) -> Review | None:
    props = change.properties
    if props.get("event") not in ("merge_request", "note") or "source_branch" not in props:
        return None
    found = _GITLAB_COMMENTS.match(change.comments)
    number = found.group(1) if found else _first(_GITLAB_URL, change.revlink)
    if number is None:
        return None
    return Review(
        review_id=number,
        display_id=f"!{number}",
        status="OPEN",  # the hook ignores closed and merged merge requests
        title=found.group(2) if found else None,
        url=change.revlink,
        source_branch=_text(props.get("source_branch")),
        destination_branch=_text(props.get("target_branch")),
    )


def _gitea(change: ChangeFields) -> Review | None:
    # The buildbot-gitea plugin (its ``gitea`` hook), which models its
    # pull-request changes on GitHub's: only open pull requests add changes.
    props = change.properties
    number = _text(props.get("pr_number"))
    if number is None or "head_branch" not in props:
        return None
    found = _GITEA_COMMENTS.match(change.comments)
    return Review(
        review_id=number,
        display_id=f"#{number}",
        status="OPEN",
        title=found.group(2) if found else None,
        url=change.revlink,
        source_branch=_text(props.get("head_branch")),
        destination_branch=_text(props.get("base_branch")),
    )


def _bitbucket(change: ChangeFields) -> Review | None:
    props = change.properties
    status = _BITBUCKET_CATEGORIES.get(change.category or "")
    if status is None:
        return None
    url = _text(props.get("pullrequesturl")) or change.revlink
    number = (
        _text(props.get("bitbucket.id"))
        or _first(_BITBUCKET_COMMENTS, change.comments)
        or _first(_BITBUCKET_REF, change.branch)
    )
    if number is None:
        return None
    branch = (change.branch or "").removeprefix("refs/heads/")
    # A merged pull request's change is on its target branch, a declined one's on its source.
    return Review(
        review_id=number,
        display_id=f"#{number}",
        status=status,
        title=_text(props.get("bitbucket.title")),
        url=url,
        source_branch=_text(props.get("bitbucket.fromRef.branch.name"))
        or _text(props.get("bitbucket.fromRef.displayId"))
        or (branch if change.category == "pull-rejected" else None),
        destination_branch=_text(props.get("bitbucket.toRef.branch.name"))
        or _text(props.get("bitbucket.toRef.displayId"))
        or (branch if change.category == "pull-fulfilled" else None),
        author=_person(
            props.get("bitbucket.author.user.displayName"),
            props.get("bitbucket.author.user.emailAddress"),
        ),
        updated=moment(props.get("bitbucket.updatedDate")),
    )


_READERS: Final[tuple[Callable[[ChangeFields], Review | None], ...]] = (
    _gerrit,
    _bitbucket,
    _gitlab,
    _gitea,
    _github,
)


def find_review(change: ChangeFields) -> Review | None:
    """The review ``change`` belongs to, from what its source set; None when it names none.

    Never raises: properties of an unexpected type are taken as not given.
    """
    for reader in _READERS:
        review = reader(change)
        if review is not None:
            return review
    return None
