"""Which issues a deployment ships: the changes since the last deployment (pure).

A deployment of ``release`` that follows ten merged changes ships all ten,
not only the last commit. Buildbot numbers its change records (``changeid``)
in the order it saw them, so the changes that reached an environment are
those recorded on the deployed repository, branch and codebase after the
change of the last successfully deployed revision, up to and including the
change of the revision deployed now. Deploying an older revision than the
last one rolls back the changes in between.

:func:`plan_range` decides which changes to read, :func:`collect_range`
picks them out of what was read, :func:`shipped_keys` finds their issue
keys (newest first) and :func:`cap_keys` keeps a deployment within the
contract's 500 association values. :mod:`buildbot_jira.events` reads the
change records; :mod:`buildbot_jira.deployment_history` remembers where
each environment's last deployment stopped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs

from buildbot_jira.jira.model import MAX_ASSOCIATION_VALUES
from buildbot_jira.mapping.key_rules import IssueKeyRules

__all__ = [
    "DEPLOYED_ISSUES",
    "MAX_RANGE_CHANGES",
    "CappedKeys",
    "ChangeRange",
    "ChangeRecord",
    "DeployedRevision",
    "RangePlan",
    "cap_keys",
    "collect_range",
    "key_budget",
    "plan_range",
    "shipped_keys",
]

#: The choices of ``deployed_issues``: every change since the last deployment
#: of the environment, or the build's own changes only.
DEPLOYED_ISSUES = ("since-last", "build")

#: The most change records read for one deployment: the cost of a deployment
#: stays bounded however long ago the environment was last deployed to.
MAX_RANGE_CHANGES = 1000


@attrs.frozen
class ChangeRecord:
    """What a deployment needs of one of Buildbot's change records."""

    changeid: int
    revision: str | None
    comments: str = ""
    repository: str = ""
    branch: str | None = None
    codebase: str = ""


@attrs.frozen
class DeployedRevision:
    """Where a successful deployment left one codebase of an environment.

    ``changeid``: the newest change record of ``revision`` on its branch
    (None: Buildbot had not seen the revision). ``shipped_after``: the
    change after which the changes it shipped begin (None: it shipped only
    its build's own, or a look-back), so that deploying the same revision
    again (a rebuild, a redeploy) ships the same issues.
    """

    revision: str | None
    changeid: int | None = None
    shipped_after: int | None = None


@attrs.frozen
class RangePlan:
    """Which change records to read: after ``after`` (None: any), up to ``upto``.

    Records of ``repository`` (empty: any), ``branch`` and ``codebase``, at
    most ``limit`` of them, the newest first. ``rolled_back``: the changes
    are those a deployment of an older revision undoes.
    """

    upto: int
    after: int | None = None
    limit: int = MAX_RANGE_CHANGES
    rolled_back: bool = False
    repository: str = ""
    branch: str | None = None
    codebase: str = ""


@attrs.frozen
class ChangeRange:
    """The changes a deployment ships (or rolls back), the newest first.

    ``truncated``: more changes were in range than the plan's limit.
    """

    changes: tuple[ChangeRecord, ...] = ()
    rolled_back: bool = False
    truncated: bool = False


def plan_range(
    *,
    deployed: int | None,
    last: DeployedRevision | None,
    lookback: int = 0,
    rolling_back: bool = False,
    limit: int = MAX_RANGE_CHANGES,
    repository: str = "",
    branch: str | None = None,
    codebase: str = "",
) -> RangePlan | None:
    """The change records to read for a deployment; None: its build's own changes only.

    ``deployed``: the change ID of the deployed revision (None: Buildbot
    never saw it, so nothing says what it contains). ``last``: the last
    successful deployment of the environment (None: this is its first);
    ``lookback`` changes are then taken (0: none). ``rolling_back``: the
    deployment's state is ``rolled_back``, so a redeploy of the last
    revision undoes what that deployment shipped.
    """
    if deployed is None:
        return None
    base = RangePlan(
        upto=deployed, limit=limit, repository=repository, branch=branch, codebase=codebase
    )
    first = attrs.evolve(base, limit=min(lookback, limit)) if lookback > 0 else None
    if last is None or last.changeid is None:
        return first
    if deployed > last.changeid:
        return attrs.evolve(base, after=last.changeid)
    if deployed < last.changeid:
        return attrs.evolve(base, upto=last.changeid, after=deployed, rolled_back=True)
    # The revision deployed last, again: a rebuild or a redeploy ships what
    # the deployment that first shipped it did.
    if last.shipped_after is None:
        return None if first is None else attrs.evolve(first, rolled_back=rolling_back)
    return attrs.evolve(base, after=last.shipped_after, rolled_back=rolling_back)


def collect_range(records: Iterable[ChangeRecord], plan: RangePlan) -> ChangeRange:
    """The records of ``plan``'s range, the newest first, each revision once.

    A revision recorded twice (pushed again, or to the branch after another
    branch) counts once, at its newest record. Records of other branches,
    codebases or repositories are left out: merged branches reach the
    deployed branch through the merge's own record.
    """
    chosen: dict[str | int, ChangeRecord] = {}
    for record in sorted(records, key=lambda r: r.changeid, reverse=True):
        if not _in_plan(record, plan):
            continue
        identity: str | int = record.revision if record.revision else record.changeid
        chosen.setdefault(identity, record)
    changes = tuple(chosen.values())
    return ChangeRange(
        changes=changes[: plan.limit],
        rolled_back=plan.rolled_back,
        truncated=len(changes) > plan.limit,
    )


def _in_plan(record: ChangeRecord, plan: RangePlan) -> bool:
    if record.changeid > plan.upto or (plan.after is not None and record.changeid <= plan.after):
        return False
    if plan.repository and record.repository != plan.repository:
        return False
    return record.branch == plan.branch and record.codebase == plan.codebase


def shipped_keys(changes: Sequence[ChangeRecord], rules: IssueKeyRules) -> tuple[str, ...]:
    """The issue keys of ``changes`` (the newest first), each once, in that order."""
    found: dict[str, None] = {}
    for change in changes:
        for key in rules.keys_in(change.comments):
            found.setdefault(key, None)
    return tuple(found)


def key_budget(*, services: int, commits: int) -> int:
    """How many issue keys a deployment may carry beside its services and commits.

    The contract allows 500 association values in all, issue keys,
    services and commits together.
    """
    return max(0, MAX_ASSOCIATION_VALUES - services - commits)


@attrs.frozen
class CappedKeys:
    """A deployment's issue keys within its budget, and how many did not fit."""

    keys: tuple[str, ...]
    dropped: int = 0


def cap_keys(own: Sequence[str], shipped: Sequence[str], budget: int) -> CappedKeys:
    """The build's own keys, then the shipped ones (newest first), at most ``budget``.

    The newest win: the build's own keys name the deployed change, and the
    shipped ones come newest first.
    """
    keys = tuple(dict.fromkeys((*own, *shipped)))
    return CappedKeys(keys=keys[:budget], dropped=max(0, len(keys) - budget))
