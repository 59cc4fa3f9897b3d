"""Where each environment's last successful deployment stopped, in the master's database.

One small JSON value per pipeline and environment in Buildbot's state table
(``master.db.state``), under one object that every master of a cluster
shares, so that a restart, or the next deployment on another master, knows
which changes the environment already has. The value names, per codebase,
the deployed revision and the change records that bound what it shipped
(:class:`~buildbot_jira.mapping.deployed_issues.DeployedRevision`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from buildbot_jira.mapping.deployed_issues import DeployedRevision

__all__ = ["HISTORY_CLASS", "HISTORY_NAME", "DeploymentHistory", "state_name"]

#: The object whose state holds the history: one per cluster, whatever the
#: reporters are called, since a pipeline ID names the same pipeline for all.
HISTORY_NAME = "deployments"
HISTORY_CLASS = "buildbot_jira.DeploymentHistory"

# Buildbot's state names are at most 255 characters.
_MAX_NAME = 255


def state_name(pipeline_id: str, environment_id: str) -> str:
    """The state name of a pipeline's environment; a long one ends with a hash of the whole."""
    name = f"last:{pipeline_id}#{environment_id}"
    if len(name) <= _MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode("utf-8", "replace")).hexdigest()[:32]
    return f"{name[: _MAX_NAME - 33]}~{digest}"


class DeploymentHistory:
    """The last successful deployment per pipeline and environment, kept in ``master.db.state``."""

    def __init__(self, master: Any) -> None:
        self.master = master
        self._objectid: int | None = None

    async def _object(self) -> int:
        if self._objectid is None:
            self._objectid = await self.master.db.state.getObjectId(HISTORY_NAME, HISTORY_CLASS)
        return self._objectid

    async def last(self, pipeline_id: str, environment_id: str) -> dict[str, DeployedRevision]:
        """Per codebase, where the last successful deployment left the environment."""
        value = await self.master.db.state.getState(
            await self._object(), state_name(pipeline_id, environment_id), None
        )
        return from_json(value)

    async def remember(
        self, pipeline_id: str, environment_id: str, codebases: Mapping[str, DeployedRevision]
    ) -> None:
        """Record a successful deployment; the codebases it did not deploy keep theirs."""
        objectid = await self._object()
        name = state_name(pipeline_id, environment_id)
        # Read again just before writing: another master may have deployed
        # another codebase of the environment meanwhile.
        known = from_json(await self.master.db.state.getState(objectid, name, None))
        known.update(codebases)
        await self.master.db.state.setState(objectid, name, to_json(known))


def to_json(codebases: Mapping[str, DeployedRevision]) -> dict[str, Any]:
    """The stored form: ``{"codebases": {codebase: {revision, changeid, shipped_after}}}``."""
    return {
        "codebases": {
            codebase: {
                "revision": point.revision,
                "changeid": point.changeid,
                "shipped_after": point.shipped_after,
            }
            for codebase, point in codebases.items()
        }
    }


def from_json(value: object) -> dict[str, DeployedRevision]:
    """What :func:`to_json` stored; anything else (nothing, an older form) is no history."""
    codebases = value.get("codebases") if isinstance(value, dict) else None
    if not isinstance(codebases, dict):
        return {}
    found = {}
    for codebase, point in codebases.items():
        if not isinstance(point, dict):
            continue
        revision = point.get("revision")
        found[str(codebase)] = DeployedRevision(
            revision=revision if isinstance(revision, str) else None,
            changeid=_changeid(point.get("changeid")),
            shipped_after=_changeid(point.get("shipped_after")),
        )
    return found


def _changeid(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
