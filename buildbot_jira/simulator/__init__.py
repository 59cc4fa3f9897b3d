"""A local stand-in for Jira Software Cloud that speaks the DevOps contract exactly.

It validates every payload against the contract's JSON schemas, stores
what it accepts and shows it per issue, and can be told to fail in the
ways Jira does. The plugin never imports it.
"""

from buildbot_jira.simulator.core import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_CLOUD_ID,
    DEFAULT_PROJECTS,
    GATING_STATUSES,
    Answer,
    FaultScope,
    GatingStatus,
    IssuedToken,
    JiraSimulator,
    ReceivedRequest,
    RunningSimulator,
    StoredEntity,
)

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_CLOUD_ID",
    "DEFAULT_PROJECTS",
    "GATING_STATUSES",
    "Answer",
    "FaultScope",
    "GatingStatus",
    "IssuedToken",
    "JiraSimulator",
    "ReceivedRequest",
    "RunningSimulator",
    "StoredEntity",
]
