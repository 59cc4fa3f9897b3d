"""What ``buildbot-jira demo`` reports at the end: what Jira holds, and what it lacks.

Builds, deployments, commits and the feature flag, per issue.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from buildbot_jira.simulator import JiraSimulator
from buildbot_jira.tools.demo_scenario import EXPECTED, FLAG_KEY, Expectation

__all__ = ["counts", "missing", "summary_lines"]


def missing(simulator: JiraSimulator, expected: Iterable[Expectation] = EXPECTED) -> list[str]:
    """The expected builds and deployments that the simulator does not hold, in words."""
    issues = simulator.issues()
    absent = []
    for want in expected:
        sections = issues.get(want.issue, {})
        if want.kind == "build":
            found = any(b.get("state") == want.state for b in sections.get("builds", ()))
        elif want.kind == "commit":
            found = bool(sections.get("commits"))
        elif want.kind == "flag":
            found = any(
                flag.get("key") == FLAG_KEY
                and any(
                    detail.get("environment", {}).get("name") == want.environment
                    and detail.get("status", {}).get("enabled") == (want.state == "on")
                    for detail in flag.get("details", ())
                )
                for flag in sections.get("featureFlags", ())
            )
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
        for commit in sections.get("commits", ()):
            message = str(commit.get("message", "")).split("\n", 1)[0]
            lines.append(f"  commit      {commit['displayId']:<28} {message}".rstrip())
        for flag in sections.get("featureFlags", ()):
            lines.extend(_flag_lines(flag))
    return lines


def _flag_lines(flag: Mapping[str, Any]) -> list[str]:
    """One line per environment of a feature flag."""
    lines = []
    for detail in flag.get("details", ()):
        status = detail.get("status", {})
        state = "on" if status.get("enabled") else "off"
        percentage = (status.get("rollout") or {}).get("percentage")
        rollout = f" at {percentage:g} %" if isinstance(percentage, int | float) else ""
        environment = detail.get("environment", {}).get("name", "?")
        lines.append(f"  flag        {flag['key']:<28} {state:<12} {environment}{rollout}")
    return lines


def counts(simulator: JiraSimulator) -> str:
    """How many builds and deployments (and commits and flags, if any) it holds, in words."""
    commits = sum(1 for (_, kind, _) in simulator.devinfo_entities if kind == "commits")
    numbers = [
        (len(simulator.builds), "build"),
        (len(simulator.deployments), "deployment"),
        *([(commits, "commit")] if commits else []),
        *([(len(simulator.feature_flags), "feature flag")] if simulator.feature_flags else []),
    ]
    words = [f"{count} {name}{'s' if count != 1 else ''}" for count, name in numbers]
    return ", ".join(words[:-1]) + " and " + words[-1]
