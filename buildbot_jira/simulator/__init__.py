"""A local stand-in for Jira Software Cloud that speaks the DevOps contract exactly.

It validates every payload against the contract's JSON schemas, stores
what it accepts and shows it per issue, can enforce Jira's burst rate
limit, and can be told to fail in the ways Jira does. The plugin never
imports it. :class:`JiraSimulator` is the entry point; see
:mod:`buildbot_jira.simulator.core`.
"""

from buildbot_jira.simulator.burst import BurstLimit
from buildbot_jira.simulator.core import JiraSimulator, RunningSimulator
from buildbot_jira.simulator.exchange import Answer
from buildbot_jira.simulator.faults import FaultScope
from buildbot_jira.simulator.rate_limits import RATE_LIMIT_REASONS, RateLimitReason, RetryAfterForm
from buildbot_jira.simulator.state import (
    GATING_STATUSES,
    GatingStatus,
    IssuedToken,
    ReceivedRequest,
    StoredEntity,
)
from buildbot_jira.simulator.tenant import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_CLOUD_ID,
    DEFAULT_PROJECTS,
)

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_CLOUD_ID",
    "DEFAULT_PROJECTS",
    "GATING_STATUSES",
    "RATE_LIMIT_REASONS",
    "Answer",
    "BurstLimit",
    "FaultScope",
    "GatingStatus",
    "IssuedToken",
    "JiraSimulator",
    "RateLimitReason",
    "ReceivedRequest",
    "RetryAfterForm",
    "RunningSimulator",
    "StoredEntity",
]
