"""What ``buildbot-jira demo`` reports at the end: what Jira holds, and what it lacks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from buildbot_jira.simulator import JiraSimulator
from buildbot_jira.tools.demo_scenario import EXPECTED, Expectation

__all__ = ["counts", "missing", "summary_lines"]


def missing(simulator: JiraSimulator, expected: Iterable[Expectation] = EXPECTED) -> list[str]:
    """The expected builds and deployments that the simulator does not hold, in words."""
    issues = simulator.issues()
    absent = []
    for want in expected:
        sections = issues.get(want.issue, {})
        if want.kind == "build":
            found = any(b.get("state") == want.state for b in sections.get("builds", ()))
        else:
            found = any(
                d.get("state") == want.state
                and d.get("environment", {}).get("id") == want.environment
                for d in sections.get("deployments", ())
            )
        if not found:
            absent.append(want.describe())
    return absent


def summary_lines(issues: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]]) -> list[str]:
    """What Jira holds per issue, one line per build and deployment."""
    lines = []
    for issue, sections in issues.items():
        lines.append(issue)
        for build in sections.get("builds", ()):
            branch = next(
                (
                    ref["ref"]["name"]
                    for ref in build.get("references", ())
                    if isinstance(ref.get("ref"), dict)
                ),
                "",
            )
            lines.append(
                f"  build       {build['displayName']:<28} {build['state']:<12} {branch}".rstrip()
            )
        for deployment in sections.get("deployments", ()):
            environment = deployment["environment"]
            lines.append(
                f"  deployment  {deployment['displayName']:<28} {deployment['state']:<12} "
                f"{environment['displayName']} ({environment['type']})"
            )
    return lines


def counts(simulator: JiraSimulator) -> str:
    """How many builds and deployments the simulator holds, in words."""
    builds, deployments = len(simulator.builds), len(simulator.deployments)
    return (
        f"{builds} build{'s' if builds != 1 else ''} and "
        f"{deployments} deployment{'s' if deployments != 1 else ''}"
    )
