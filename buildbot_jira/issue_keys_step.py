"""``JiraIssueKeys``: a build's Jira issue keys as a property, before the next step runs.

A Jira reporter learns of a build from Buildbot's message queue, after the
build has started: the ``jira_issue_keys`` property that it sets on a running
build may come after the first steps have rendered their arguments. This
step, put first in a factory, finds the keys itself (with the reporter's own
rules: its projects, ignored keys, pattern and properties) and sets the
property before it finishes, so every later step can use it.
"""

from __future__ import annotations

from typing import Any

import attrs
from buildbot import config
from buildbot.process import buildstep
from buildbot.process.results import SUCCESS, WARNINGS

from buildbot_jira.reporter_base import JiraReporterBase

__all__ = ["JiraIssueKeys", "find_reporter"]


def find_reporter(master: Any, name: str | None) -> JiraReporterBase:
    """The Jira reporter named ``name`` on ``master`` (None: its only one).

    :raises LookupError: with a message that says what to name instead.
    """
    services = master.namedServices["services"].namedServices
    reporters = {
        service.name: service
        for service in services.values()
        if isinstance(service, JiraReporterBase)
    }
    if name is not None:
        if name in reporters:
            return reporters[name]
        known = ", ".join(repr(n) for n in sorted(reporters)) or "none"
        raise LookupError(f"no Jira reporter named {name!r} (the master has: {known})")
    if len(reporters) == 1:
        return next(iter(reporters.values()))
    if not reporters:
        raise LookupError("the master has no Jira reporter whose keys it could set")
    known = ", ".join(repr(n) for n in sorted(reporters))
    raise LookupError(f"the master has several Jira reporters ({known}): name one with reporter=")


class JiraIssueKeys(buildstep.BuildStep):
    """Sets the build's issue-keys property to the keys a Jira reporter finds in it.

    :param reporter: the ``name`` of the Jira reporter whose rules find the
        keys; may be left out when the master has one Jira reporter.

    The property (``jira_issue_keys``, or the reporter's
    ``issue_keys_property``) is a list of keys, set when the build names an
    issue and the property is not set already, as the reporter itself does.
    The step runs on the master, needs no worker command, and never fails
    the build: a reporter that cannot be found makes it WARNINGS, with the
    reason in its summary.
    """

    name = "jira issue keys"
    # A build goes on without its keys: this step never stops or fails it.
    haltOnFailure = False
    flunkOnFailure = False
    warnOnWarnings = True

    _summary: str = "Jira issue keys"

    def __init__(self, *, reporter: str | None = None, **kwargs: Any) -> None:
        if reporter is not None and not isinstance(reporter, str):
            config.error(
                f"{type(self).__name__}: reporter must be the name of a Jira reporter "
                f"(a string), not {type(reporter).__name__}"
            )
            reporter = None
        self.reporter = reporter
        super().__init__(**kwargs)

    def getResultSummary(self) -> dict[str, str]:
        """What the step found, shown on the build's page."""
        return {"step": self._summary}

    async def run(self) -> int:
        """Find the build's keys with the reporter's rules and set the property."""
        try:
            reporter = find_reporter(self.master, self.reporter)
        except LookupError as problem:
            self._summary = f"Jira issue keys: {problem}"
            return WARNINGS
        if reporter.events is None or reporter.options is None:
            self._summary = f"Jira issue keys: reporter {reporter.name!r} is not configured"
            return WARNINGS
        snapshot = await reporter.events.running_snapshot(self.master, self.build.buildid)
        if snapshot is None:
            # The reporter's builders or branches leave this build out.
            self._summary = f"Jira issue keys: {reporter.name!r} does not report this build"
            return SUCCESS
        # The build's own properties are newer than the database's copy.
        current = {name: value for name, (value, _) in self.build.getProperties().asDict().items()}
        keys = reporter.issue_keys(attrs.evolve(snapshot, properties=current))
        name = reporter.options.mapping.issue_keys_property
        if not keys:
            self._summary = "Jira issue keys: none"
            return SUCCESS
        if not self.hasProperty(name):
            self.setProperty(name, list(keys), reporter.name, runtime=True)
        self._summary = f"Jira issue keys: {', '.join(keys)}"
        return SUCCESS
