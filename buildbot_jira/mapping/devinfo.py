"""Buildbot changes -> Jira development information: commits, branches, pull requests (pure).

:func:`map_change` turns what the reporter reads of one change
(:class:`ChangeFacts`) into :class:`DevinfoEntity` values, one per commit,
branch or pull request, each a repository object carrying just that entity,
so that the outbox keeps and coalesces each entity on its own;
:func:`~buildbot_jira.jira.devinfo.devinfo_requests` merges them again into
requests. Everything it sends is within the contract's limits, whatever the
change holds (a 10 MB message, 10,000 files, control characters, binary).

Update sequence IDs
    Every entity of a change, and its repository, carries the change's
    ``changeid`` as ``updateSequenceId``. Buildbot numbers changes in its
    database in the order they arrive, so two masters that map the same
    change produce the same payload (no clock is read), and a later change
    of a branch or pull request always has a higher number than an earlier
    one: Jira keeps the newest.

Decisions where Buildbot does not say
    - A change without ``when_timestamp`` has an ``authorTimestamp`` (and
      pull-request ``lastUpdate``) of the epoch, 1970-01-01T00:00:00.000Z:
      the only time that every master gives the same change.
    - A file's ``changeType``, ``linesAdded`` and ``linesRemoved`` come from
      the change property ``jira_file_changes`` (:data:`FILE_CHANGES_PROPERTY`)
      when its source sets one, ``{path: "ADDED"}`` or ``{path: {"changeType":
      "MODIFIED", "linesAdded": 3, "linesRemoved": 1}}``; Buildbot itself does
      not record them, so they are otherwise ``UNKNOWN``, 0 and 0. Each
      file's ``url`` is the commit's.
    - A repository that is a local path (or has no URL at all) has the
      change's page in Buildbot as its ``url``, else ``file://localhost/<path>``.
    - Entity IDs use only what the contract allows (letters, digits,
      ``~ . - _``): an ID with other characters (a branch ``feature/ABC-1``)
      has each of them written ``~`` and two hex digits per UTF-8 byte
      (``feature~2fABC-1``), and one longer than 1,024 ends in a hash.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Final

import attrs

from buildbot_jira.jira.errors import JiraConfigError
from buildbot_jira.jira.model import clip
from buildbot_jira.mapping.builds import Skip
from buildbot_jira.mapping.devinfo_fields import (
    INT32_MAX,
    MAX_DEVINFO_ISSUE_KEYS,
    author,
    devinfo_issue_keys,
    display_id,
    entity_id,
    file_change,
    timestamp,
)
from buildbot_jira.mapping.keys import (
    DEFAULT_RULES,
    IssueKeyRules,
    extract_issue_keys,
    scan_issue_keys,
)
from buildbot_jira.mapping.repositories import (
    RepositoryLocation,
    locate,
    render_template,
    repository_id,
    repository_path,
    safe_url,
    template_problem,
    url_quote,
)
from buildbot_jira.mapping.reviews import find_review, moment

__all__ = [
    "FILE_CHANGES_PROPERTY",
    "MAX_DEVINFO_ISSUE_KEYS",
    "MAX_FILES",
    "ChangeFacts",
    "DevinfoEntity",
    "DevinfoMapping",
    "Skip",
    "entity_id",
    "map_change",
    "repository_id",
    "repository_path",
    "template_problem",
]

#: The change property that may give each file's change type and line counts.
FILE_CHANGES_PROPERTY: Final = "jira_file_changes"
#: The most files a commit lists (the contract's ``files`` maxItems).
MAX_FILES: Final = 10


def _text(value: object) -> str:
    """Any value of a change as text; bytes are decoded as UTF-8, None is ""."""
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def _value(value: object) -> object:
    """A property's value: Buildbot's data API gives ``(value, source)`` pairs."""
    if isinstance(value, tuple | list) and len(value) == 2 and isinstance(value[1], str):
        return value[0]
    return value


@attrs.frozen
class ChangeFacts:
    """What the reporter reads of one Buildbot change."""

    changeid: int
    revision: str | None
    repository: str
    branch: str | None
    codebase: str = ""
    project: str = ""
    author: str = ""
    comments: str = ""
    when_timestamp: float | None = None
    files: tuple[str, ...] = ()
    revlink: str | None = None
    category: str | None = None
    properties: Mapping[str, Any] = attrs.field(factory=dict)

    @classmethod
    def from_change(cls, change: Mapping[str, Any]) -> ChangeFacts:
        """From a change dict as Buildbot's data API gives it.

        That is ``master.data.get(("changes", changeid))``.

        Properties come as ``{name: (value, source)}`` (or lists); the time
        as a datetime or a number; any text may be bytes.
        """
        properties = change.get("properties")

        def optional(name: str) -> str | None:
            value = change.get(name)
            return None if value is None else _text(value)

        return cls(
            changeid=int(change["changeid"]),
            revision=optional("revision"),
            branch=optional("branch"),
            revlink=optional("revlink"),
            category=optional("category"),
            repository=_text(change.get("repository")),
            codebase=_text(change.get("codebase")),
            project=_text(change.get("project")),
            author=_text(change.get("author")),
            comments=_text(change.get("comments")),
            when_timestamp=moment(change.get("when_timestamp")),
            files=tuple(_text(f) for f in change.get("files") or ()),
            properties={
                str(k): _value(v)
                for k, v in (properties.items() if isinstance(properties, Mapping) else ())
            },
        )


def _max_files(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_FILES:
        raise JiraConfigError(
            f"{attribute.name} must be a whole number from 0 to {MAX_FILES} (the most files "
            f"Jira takes for one commit), not {value!r}"
        )


@attrs.frozen
class DevinfoMapping:
    """The reporter's devinfo options that shape the payload (plain values, already rendered).

    ``rules`` recognise issue keys; ``keys_from_branch``: a commit's issue
    keys also take those of its branch's name; ``commit_url``,
    ``branch_url`` and ``repository_url`` are templates with the
    placeholders of :data:`~buildbot_jira.mapping.repositories.PLACEHOLDERS`
    (check them with :func:`template_problem`); ``max_files`` is how many
    files a commit lists.
    """

    rules: IssueKeyRules = DEFAULT_RULES
    keys_from_branch: bool = True
    commit_url: str | None = None
    branch_url: str | None = None
    repository_url: str | None = None
    max_files: int = attrs.field(default=MAX_FILES, validator=_max_files)


@attrs.frozen
class DevinfoEntity:
    """One commit, branch or pull request, ready for the outbox.

    ``key`` is its outbox slot (``<repositoryId>/commits/<id>``, ``.../branches/<id>``
    or ``.../pullRequests/<id>``); ``sequence`` its ``updateSequenceId``;
    ``payload`` one repository object carrying just this entity in its list.
    """

    key: str
    sequence: int
    payload: dict[str, Any]
    issue_keys: tuple[str, ...]


@attrs.frozen
class _Change:
    """What every entity of one change shares: its repository and its URLs."""

    facts: ChangeFacts
    mapping: DevinfoMapping
    location: RepositoryLocation
    repository: dict[str, Any]
    values: dict[str, str]
    branch: str

    @classmethod
    def read(
        cls, facts: ChangeFacts, mapping: DevinfoMapping, revision: str, change_page: str | None
    ) -> _Change:
        source = facts.repository or facts.codebase or facts.project
        location = locate(source)
        name = clip(location.name or facts.codebase or facts.project, 255).strip() or "repository"
        branch = (facts.branch or "").removeprefix("refs/heads/")
        values = {
            "repository": url_quote(location.path, "/"),
            "revision": url_quote(revision),
            "short_revision": url_quote(display_id(revision)),
            "branch": url_quote(branch, "/"),
            "name": url_quote(name),
            "host": location.host,
            "project": url_quote(facts.project, "/"),
            "codebase": url_quote(facts.codebase, "/"),
            "changeid": str(facts.changeid),
        }
        local = f"file://localhost/{url_quote(location.path, '/')}"
        url = (
            render_template(mapping.repository_url, values)
            or location.web
            or safe_url(change_page)
            or safe_url(local)
            or "file://localhost/"
        )
        repository = {
            "id": repository_id(source),
            "name": name,
            "url": url,
            "updateSequenceId": facts.changeid,
        }
        return cls(facts, mapping, location, repository, values, branch)

    def entity(self, kind: str, item: dict[str, Any]) -> DevinfoEntity:
        """``item`` of ``kind`` as the outbox keeps it."""
        return DevinfoEntity(
            key=f"{self.repository['id']}/{kind}/{item['id']}",
            sequence=self.facts.changeid,
            payload={**self.repository, kind: [item]},
            issue_keys=tuple(item["issueKeys"]),
        )

    def branch_url(self) -> str:
        """The branch's page: the template's, else one the host is known to serve."""
        rendered = render_template(self.mapping.branch_url, self.values)
        if rendered or not self.location.web:
            return rendered or self.repository["url"]
        host, quoted = self.location.host, url_quote(self.branch, "/")
        if "gitlab" in host:
            suffix = f"/-/tree/{quoted}"
        elif host == "bitbucket.org":
            suffix = f"/branch/{quoted}"
        elif "gitea" in host or "codeberg" in host:
            suffix = f"/src/branch/{quoted}"
        else:
            suffix = f"/tree/{quoted}"
        return safe_url(self.location.web + suffix) or self.repository["url"]


def _commit(
    change: _Change, revision: str, keys: tuple[str, ...], page: str | None
) -> dict[str, Any]:
    """The commit object of ``change``, with ``keys`` as its issue keys."""
    facts = change.facts
    url = (
        safe_url(facts.revlink)
        or render_template(change.mapping.commit_url, change.values)
        or safe_url(page)
        or change.repository["url"]
    )
    declared = facts.properties.get(FILE_CHANGES_PROPERTY)
    changes = declared if isinstance(declared, Mapping) else {}
    files = []
    for path in facts.files[: change.mapping.max_files]:
        kind, added, removed = file_change(changes.get(path))
        files.append(
            {
                "path": clip(path, 1024),
                "changeType": kind,
                "linesAdded": added,
                "linesRemoved": removed,
                "url": url,
            }
        )
    commit: dict[str, Any] = {
        "id": entity_id(revision),
        "issueKeys": list(keys),
        "updateSequenceId": facts.changeid,
        "displayId": display_id(revision),
        "message": clip(facts.comments, 1024),
        "author": author(facts.author),
        "authorTimestamp": timestamp(facts.when_timestamp),
        "fileCount": min(len(facts.files), INT32_MAX),
        "url": url,
    }
    if len(revision) <= 255 and clip(revision, 255) == revision:
        commit["hash"] = revision
    if files:
        commit["files"] = files
    return commit


def map_change(
    change: ChangeFacts, mapping: DevinfoMapping, *, change_page: str | None
) -> list[DevinfoEntity] | Skip:
    """The devinfo entities of one change: its commit, branch and pull request.

    The commit is sent when it names issue keys (in its message, or its
    branch's name when ``keys_from_branch``); the branch when its name names
    keys; the pull request (see :mod:`~buildbot_jira.mapping.reviews`) when
    its title, source branch or the commit message name keys.
    ``change_page`` is the change's page in Buildbot's web UI, the last
    fallback for URLs. :class:`Skip` says why nothing is sent: the change
    has no revision, or it names no issue key.
    """
    revision = change.revision.strip() if change.revision else ""
    if not revision:
        return Skip(f"change {change.changeid} has no revision, so it is no commit for Jira")
    shared = _Change.read(change, mapping, revision, change_page)
    rules = mapping.rules
    message = scan_issue_keys([change.comments], rules, max_chars=rules.max_chars_per_build).keys
    branch_keys = (
        devinfo_issue_keys(extract_issue_keys([shared.branch], rules)) if shared.branch else ()
    )
    commit_keys = devinfo_issue_keys(branch_keys if mapping.keys_from_branch else (), message)
    commit = _commit(shared, revision, commit_keys or branch_keys, change_page)
    entities = [shared.entity("commits", commit)] if commit_keys else []
    if branch_keys:
        branch = {
            "id": entity_id(shared.branch),
            "issueKeys": list(branch_keys),
            "updateSequenceId": change.changeid,
            "name": clip(shared.branch, 512),
            "url": shared.branch_url(),
            "lastCommit": copy.deepcopy(commit),
        }
        entities.append(shared.entity("branches", branch))
    review = find_review(change)
    if review is not None:
        source = review.source_branch or shared.branch
        keys = devinfo_issue_keys(extract_issue_keys([review.title, source], rules), message)
        if keys:
            updated = review.updated if review.updated is not None else change.when_timestamp
            pull_request: dict[str, Any] = {
                "id": entity_id(review.review_id),
                "issueKeys": list(keys),
                "updateSequenceId": change.changeid,
                "status": review.status,
                "title": clip(review.title or f"Pull request {review.display_id}", 1024),
                "author": author(review.author or change.author),
                "commentCount": 0,
                "sourceBranch": clip(source, 255),
                "displayId": clip(review.display_id, 255),
                "lastUpdate": timestamp(updated),
                "url": safe_url(review.url) or commit["url"],
            }
            if review.destination_branch:
                pull_request["destinationBranch"] = clip(review.destination_branch, 255)
            entities.append(shared.entity("pullRequests", pull_request))
    if not entities:
        return Skip(
            f"change {change.changeid} names no Jira issue key in its commit message, "
            "branch or pull request"
        )
    return entities
