"""What ``buildbot-jira demo`` stages: its site, its issues, and what Jira must end up with.

The repository (:mod:`~buildbot_jira.tools.demo_repository`), the master
(:mod:`~buildbot_jira.tools.demo_master`) and the summary
(:mod:`~buildbot_jira.tools.demo_summary`) all follow this one script.
"""

from __future__ import annotations

from typing import Final

import attrs

__all__ = [
    "AUTHOR",
    "BUILDBOT_URL",
    "DEMO_SITE",
    "EXPECTED",
    "FLAG_KEY",
    "STEP_PATTERN",
    "DemoFailed",
    "Expectation",
    "RepositoryChange",
]

DEMO_SITE: Final = "demo.atlassian.net"
#: Where the build links in Jira point. The demo runs no web UI, so they are
#: examples of what a real master's links look like.
BUILDBOT_URL: Final = "http://localhost:8010/"
#: The steps that are deployments, and the environment each names.
STEP_PATTERN: Final = r"^deploy to (?P<environment>.+)$"
#: The author and committer of every commit and change of the demo.
AUTHOR: Final = "Ada Lovelace <ada@example.com>"


class DemoFailed(Exception):
    """The demo could not go on; the message says why and what to try."""


#: The feature flag that the release build reports, on in production at 25 %.
FLAG_KEY: Final = "new-checkout"


@attrs.frozen
class Expectation:
    """Something that Jira must hold at the end of the demo.

    ``kind``: ``build`` or ``deployment`` (in ``state``, to ``environment``),
    ``commit`` (one naming ``issue``; ``state`` is ``stored``) or ``flag``
    (``FLAG_KEY``, ``state`` ``on`` or ``off`` in ``environment``).
    """

    issue: str
    kind: str
    state: str
    environment: str | None = None

    def describe(self) -> str:
        """The expectation in words."""
        if self.kind == "commit":
            return f"a commit on {self.issue}"
        if self.kind == "flag":
            return f"feature flag {FLAG_KEY} {self.state} in {self.environment} on {self.issue}"
        where = f" to {self.environment}" if self.environment else ""
        return f"{self.state} {self.kind}{where} on {self.issue}"


EXPECTED: Final = (
    Expectation("DEMO-1", "build", "successful"),
    Expectation("DEMO-2", "build", "failed"),
    Expectation("DEMO-3", "build", "successful"),
    Expectation("DEMO-3", "deployment", "successful", "staging"),
    Expectation("DEMO-3", "deployment", "successful", "production"),
    Expectation("DEMO-1", "commit", "stored"),
    Expectation("DEMO-2", "commit", "stored"),
    Expectation("DEMO-3", "commit", "stored"),
    Expectation("DEMO-3", "flag", "on", "production"),
)


@attrs.frozen
class RepositoryChange:
    """A commit at a branch tip, as the master is told of it."""

    branch: str
    revision: str
    comments: str
    files: tuple[str, ...]
