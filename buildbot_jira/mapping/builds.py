"""Buildbot builds -> Jira BuildData (pure).

:mod:`buildbot_jira.events` gathers what Buildbot knows of a build into a
:class:`BuildSnapshot` (the only part that needs the master); everything
here is plain data in, plain data out: the build's issue keys, its Jira
state, test counts, label and references, and the pipeline ID scheme.
:mod:`~buildbot_jira.mapping.deployments` builds on the same snapshot.
"""

from __future__ import annotations

import datetime
import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import attrs
from buildbot.process import results as buildbot_results

from buildbot_jira.jira.model import (
    MAX_ISSUE_KEYS,
    MAX_REFERENCES,
    BuildData,
    BuildReference,
    TestInfo,
    clip,
)
from buildbot_jira.mapping.keys import (
    ISSUE_KEYS_PROPERTY,
    IssueKeyRules,
    SourceKeys,
    find_source_keys,
    parse_issue_keys_property,
    scan_issue_keys,
    scanned_length,
)
from buildbot_jira.mapping.test_counts import property_count

__all__ = [
    "DEFAULT_RESULT_STATES",
    "DEFAULT_TEXT_PROPERTIES",
    "RETRY_DESCRIPTION",
    "BuildMapping",
    "BuildSnapshot",
    "IssueKeys",
    "Skip",
    "SourceStamp",
    "branch_uri",
    "build_label",
    "build_test_info",
    "default_pipeline_id",
    "epoch",
    "final_state",
    "find_issue_keys",
    "find_snapshot_source_keys",
    "instance_name",
    "references",
]

#: Buildbot result name -> Jira state; None sends no final state. A build
#: that ends with RETRY (its worker was lost, or its master died) is over:
#: Buildbot runs it again as a new build, and Jira must not show it in
#: progress for ever.
DEFAULT_RESULT_STATES: Mapping[str, str | None] = {
    "success": "successful",
    "warnings": "successful",
    "failure": "failed",
    "exception": "failed",
    "cancelled": "cancelled",
    "skipped": None,
    "retry": "cancelled",
}

#: The description of a build (or deployment) that ended with RETRY.
RETRY_DESCRIPTION = "interrupted: Buildbot retries it as a new build"

#: Build properties whose text may name issues: pull-request titles and head
#: branches as Buildbot's GitHub, GitLab and Bitbucket hooks set them.
DEFAULT_TEXT_PROPERTIES = (
    "github.title",
    "github.head.ref",
    "source_branch",
    "title",
    "pullrequest_title",
)


@attrs.frozen
class Skip:
    """Nothing is sent, for ``reason`` (logged so an administrator can tell why)."""

    reason: str


@attrs.frozen
class SourceStamp:
    """What Buildbot knows of one codebase of a build."""

    codebase: str = ""
    repository: str = ""
    branch: str | None = None
    revision: str | None = None


@attrs.frozen
class BuildSnapshot:
    """Everything the mapping needs to know of a Buildbot build.

    ``results`` is None while the build runs. ``properties`` holds the
    property values only (not their sources). ``source_keys`` holds the keys
    of the branches and commit messages once they have been found (they
    cannot change while the build runs, so they are searched once per
    build); ``change_comments`` are then left empty.
    """

    buildid: int
    number: int
    builderid: int
    builder_name: str
    masterid: int
    url: str
    state_string: str = ""
    results: int | None = None
    complete: bool = False
    started_at: float | None = None
    complete_at: float | None = None
    properties: Mapping[str, Any] = attrs.field(factory=dict)
    sourcestamps: tuple[SourceStamp, ...] = ()
    change_comments: tuple[str, ...] = ()
    test_counts: TestInfo | None = None
    source_keys: SourceKeys | None = None


@attrs.frozen
class IssueKeys:
    """The issue keys of a build, and the notes to log about how they were found."""

    keys: tuple[str, ...]
    notes: tuple[str, ...] = ()


def find_issue_keys(
    snapshot: BuildSnapshot,
    rules: IssueKeyRules,
    *,
    issue_keys_property: str = ISSUE_KEYS_PROPERTY,
    text_properties: Sequence[str] = DEFAULT_TEXT_PROPERTIES,
) -> IssueKeys:
    """The issue keys of a build, branch keys first, at most ``rules.max_keys``.

    Sources, in order: the branch of every sourcestamp, the explicit
    ``issue_keys_property``, pull-request properties, and the commit messages
    of the build's changes (``snapshot.source_keys`` once they were found).
    At most ``rules.max_chars_per_build`` characters of the properties and
    commit messages are read, the properties first.
    """
    notes: list[str] = []
    explicit: tuple[str, ...] = ()
    value = snapshot.properties.get(issue_keys_property)
    if value is not None:
        try:
            parsed = parse_issue_keys_property(value, rules, name=issue_keys_property)
        except ValueError as problem:
            notes.append(f"property {issue_keys_property!r} ignored: {problem}")
        else:
            explicit = parsed.keys
            notes.extend(
                f"property {issue_keys_property!r}: dropped {clip(r.entry, 60)!r}: {r.reason}"
                for r in parsed.rejected
            )
    texts = _property_texts(snapshot, text_properties)
    found = scan_issue_keys(texts, rules, max_chars=rules.max_chars_per_build)
    source = snapshot.source_keys
    if source is None:
        source = find_snapshot_source_keys(snapshot, rules, text_properties)
    if found.cut or source.cut:
        notes.append(
            f"only the first {rules.max_chars_per_build:,} characters of its properties "
            "and commit messages were searched for issue keys"
        )
    keys = tuple(dict.fromkeys(source.branch_keys + explicit + found.keys + source.change_keys))
    limit = min(rules.max_keys, MAX_ISSUE_KEYS)
    if len(keys) > limit:
        notes.append(f"{len(keys)} issue keys found; the first {limit} are sent")
    return IssueKeys(keys=keys[:limit], notes=tuple(notes))


def find_snapshot_source_keys(
    snapshot: BuildSnapshot,
    rules: IssueKeyRules,
    text_properties: Sequence[str] = DEFAULT_TEXT_PROPERTIES,
) -> SourceKeys:
    """The keys of the build's branches and commit messages, searched once per build.

    The commit messages get what the build's budget leaves after the
    pull-request properties, which are searched first.
    """
    spent = sum(scanned_length(text, rules) for text in _property_texts(snapshot, text_properties))
    return find_source_keys(
        [ss.branch for ss in snapshot.sourcestamps],
        snapshot.change_comments,
        rules,
        max_chars=max(0, rules.max_chars_per_build - spent),
    )


def _property_texts(snapshot: BuildSnapshot, names: Sequence[str]) -> list[str | None]:
    return [_text(snapshot.properties.get(name)) for name in names]


def _text(value: object) -> str | None:
    """A property value if it is text; numbers, lists and the like name no issues."""
    return value if isinstance(value, str) else None


def epoch(value: object) -> float | None:
    """Seconds since the epoch from Buildbot's datetimes (or numbers)."""
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    if isinstance(value, int | float):
        return float(value)
    return None


def final_state(
    results: int | None, result_states: Mapping[str, str | None] = DEFAULT_RESULT_STATES
) -> str | None:
    """The Jira state for a finished build's Buildbot ``results``; None: send nothing."""
    if results is None:
        return "in_progress"
    name = buildbot_results.statusToString(results)
    return result_states.get(name, "unknown")


def build_test_info(snapshot: BuildSnapshot) -> TestInfo | None:
    """Test counts from test result sets, overridden by ``tests_*`` properties."""
    counts = snapshot.test_counts
    passed = property_count(snapshot.properties.get("tests_passed"))
    failed = property_count(snapshot.properties.get("tests_failed"))
    skipped = property_count(snapshot.properties.get("tests_skipped"))
    if counts is None and passed is None and failed is None:
        return None
    base = counts or TestInfo(passed=0, failed=0)
    return TestInfo(
        passed=base.passed if passed is None else passed,
        failed=base.failed if failed is None else failed,
        skipped=base.skipped if skipped is None else skipped,
    )


_UNSAFE_ID = re.compile(r"[^\w.:@/ +-]+")


def default_pipeline_id(instance: str, builder_name: str) -> str:
    """``<instance>/<builder>``: the pipeline ID of a builder, stable across releases.

    ``instance`` is the host and path of the master's ``buildbotURL`` (say
    ``ci.example.com``), so that the same builder name on two Buildbot
    installations are two pipelines. An ID longer than the contract's 255
    characters is cut and ends with a hash of the whole, so that it stays
    unique. This format is a promise: changing it would split every
    builder's history in Jira in two.
    """
    full = f"{instance}/{builder_name}"
    if len(full) <= 255:
        return full
    digest = hashlib.sha256(full.encode("utf-8", "replace")).hexdigest()[:16]
    return f"{full[:238]}~{digest}"


def instance_name(buildbot_url: str) -> str:
    """The part of ``buildbotURL`` that names a Buildbot installation."""
    parts = urlsplit(buildbot_url)
    path = parts.path.strip("/")
    name = parts.netloc + (f"/{path}" if path else "")
    return _UNSAFE_ID.sub("-", name) or "buildbot"


def _description(snapshot: BuildSnapshot) -> str | None:
    """Buildbot's state string; for a retried build, that it is retried."""
    if snapshot.complete and snapshot.results == buildbot_results.RETRY:
        return RETRY_DESCRIPTION
    return clip(snapshot.state_string) or None


def build_label(snapshot: BuildSnapshot) -> str | None:
    """``<branch> @ <short revision>`` of the first sourcestamp that has either."""
    for ss in snapshot.sourcestamps:
        if ss.branch or ss.revision:
            parts = [ss.branch or "", f"@ {ss.revision[:12]}" if ss.revision else ""]
            return " ".join(p for p in parts if p)
    return None


def references(snapshot: BuildSnapshot) -> tuple[BuildReference, ...]:
    """One reference per sourcestamp (commit and branch), at most five."""
    found = []
    for ss in snapshot.sourcestamps:
        if not (ss.revision or ss.branch):
            continue
        found.append(
            BuildReference(
                revision=ss.revision,
                repository=ss.repository or ss.codebase or None,
                branch=ss.branch,
                branch_uri=branch_uri(ss.repository, ss.branch) if ss.branch else None,
            )
        )
    return tuple(found[:MAX_REFERENCES])


def branch_uri(repository: str, branch: str) -> str:
    """A URI for a branch: its web page on GitHub/GitLab/Bitbucket, else repository#branch."""
    repo = repository.removesuffix(".git").rstrip("/")
    name = branch.removeprefix("refs/heads/")
    host = urlsplit(repo).hostname or ""
    if repo.startswith("https://") and host in ("github.com", "gitlab.com"):
        return f"{repo}/tree/{name}"
    if repo.startswith("https://") and host == "bitbucket.org":
        return f"{repo}/branch/{name}"
    return f"{repository}#{name}" if repository else name


@attrs.frozen
class BuildMapping:
    """How a reporter turns a :class:`BuildSnapshot` into a :class:`BuildData`.

    ``rules`` recognise issue keys, ``result_states`` map Buildbot result
    names to Jira states (None: send nothing), ``issue_keys_property`` names
    the property that lists keys explicitly and ``text_properties`` the
    properties whose text may name issues. What is rendered per build (the
    pipeline ID, the display name, the label) is passed to
    :meth:`build_data` instead.
    """

    rules: IssueKeyRules = attrs.field(factory=IssueKeyRules)
    result_states: Mapping[str, str | None] = DEFAULT_RESULT_STATES
    issue_keys_property: str = ISSUE_KEYS_PROPERTY
    text_properties: tuple[str, ...] = DEFAULT_TEXT_PROPERTIES

    def issue_keys(self, snapshot: BuildSnapshot) -> IssueKeys:
        """The issue keys of ``snapshot``."""
        return find_issue_keys(
            snapshot,
            self.rules,
            issue_keys_property=self.issue_keys_property,
            text_properties=self.text_properties,
        )

    def source_keys(self, snapshot: BuildSnapshot) -> SourceKeys:
        """The keys of ``snapshot``'s branches and commit messages, to keep for its life."""
        return find_snapshot_source_keys(snapshot, self.rules, self.text_properties)

    def build_data(
        self,
        snapshot: BuildSnapshot,
        *,
        keys: Sequence[str],
        pipeline_id: str,
        update_sequence_number: int,
        last_updated: str,
        display_name: str | None = None,
        label: str | None = None,
    ) -> BuildData | Skip:
        """The BuildData to send for ``snapshot`` now, or why nothing is sent.

        ``keys`` come from :meth:`issue_keys`; ``display_name`` and ``label``
        are the reporter's rendered overrides (None: ``<builder> #<number>``
        and :func:`build_label`).
        """
        if not keys:
            return Skip("no Jira issue keys in its branch, changes or properties")
        state = final_state(snapshot.results if snapshot.complete else None, self.result_states)
        if state is None:
            result = buildbot_results.statusToString(snapshot.results)
            return Skip(f"its result {result!r} is not reported to Jira")
        return BuildData(
            pipeline_id=pipeline_id,
            build_number=snapshot.number,
            update_sequence_number=update_sequence_number,
            display_name=display_name or f"{snapshot.builder_name} #{snapshot.number}",
            url=snapshot.url,
            state=state,
            last_updated=last_updated,
            issue_keys=tuple(keys),
            description=_description(snapshot),
            label=label if label is not None else build_label(snapshot),
            test_info=build_test_info(snapshot),
            references=references(snapshot),
        )
