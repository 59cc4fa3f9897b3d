"""The Buildbot reporters that a ``master.cfg`` names to report to Jira.

Thin wiring: a generator (:mod:`buildbot_jira.events`) picks the events
(for development information, the change feed of
:mod:`buildbot_jira.change_feed` reads the changes), :mod:`buildbot_jira.mapping`
turns them into Jira data, and an
:class:`~buildbot_jira.delivery.outbox.Outbox` delivers it in the background.
Nothing here waits for Jira, so nothing here can slow a build down or fail
it. Each reporter lives in a module of its own; this one is where Buildbot's
plugin entry points find them.
"""

from __future__ import annotations

from buildbot_jira.build_reporter import JiraBuildReporter
from buildbot_jira.deployment_reporter import JiraDeploymentReporter
from buildbot_jira.devinfo_reporter import JiraDevInfoReporter
from buildbot_jira.reporter_base import JiraReporterBase

__all__ = [
    "JiraBuildReporter",
    "JiraDeploymentReporter",
    "JiraDevInfoReporter",
    "JiraReporterBase",
]
