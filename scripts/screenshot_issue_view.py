"""Make docs/issue-view.png: the simulator's issue view with a few builds and deployments.

Usage: .venv/bin/python scripts/screenshot_issue_view.py [OUTPUT.png]

Starts a simulator on a free loopback port, sends it a fixed set of builds
and deployments through the project's own client (so the picture shows what
the contract lets through), and has headless Chromium (``chromium``, or
``$CHROMIUM``) take a 1200x800 screenshot. The data and its timestamps are
fixed, so the picture changes only when the page does.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from typing import Any

from twisted.internet import defer, task
from twisted.internet.utils import getProcessOutputAndValue

from buildbot_jira.jira.auth import ClientCredentials, TokenCache
from buildbot_jira.jira.client import JiraCloud
from buildbot_jira.jira.http import HttpTransport
from buildbot_jira.jira.model import (
    BuildData,
    BuildReference,
    DeploymentData,
    Environment,
    Pipeline,
    TestInfo,
)
from buildbot_jira.simulator import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, JiraSimulator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUTPUT = os.path.join(ROOT, "docs", "issue-view.png")
BUILDBOT = "https://buildbot.example.com"
REPOSITORY = "https://git.example.com/shop.git"


def _at(minute: int) -> str:
    return f"2026-11-28T10:{minute:02d}:00.000Z"


def _build(
    builder: str,
    number: int,
    state: str,
    minute: int,
    keys: tuple[str, ...],
    branch: str,
    tests: TestInfo | None = None,
) -> dict[str, Any]:
    return BuildData(
        pipeline_id=f"buildbot.example.com/{builder}",
        build_number=number,
        update_sequence_number=minute + 1,
        display_name=f"{builder} #{number}",
        url=f"{BUILDBOT}/#/builders/1/builds/{number}",
        state=state,
        last_updated=_at(minute),
        issue_keys=keys,
        test_info=tests,
        references=(
            BuildReference(
                revision=f"{number:03d}e1f2a9c4b7d", repository=REPOSITORY, branch=branch
            ),
        ),
    ).to_json()


def _deployment(
    number: int, environment: str, state: str, minute: int, keys: tuple[str, ...], text: str
) -> dict[str, Any]:
    return DeploymentData(
        pipeline=Pipeline(
            id="buildbot.example.com/release",
            display_name="release",
            url=f"{BUILDBOT}/#/builders/2",
        ),
        environment=Environment(id=environment, display_name=environment, type=environment),
        deployment_sequence_number=number * 1000 + (3 if environment == "production" else 2),
        update_sequence_number=minute + 1,
        display_name=f"release #{number} to {environment}",
        url=f"{BUILDBOT}/#/builders/2/builds/{number}",
        description=text,
        state=state,
        last_updated=_at(minute),
        issue_keys=keys,
    ).to_json()


# SHOP-15 has the latest update, so it comes first and shows most states at a glance.
BUILDS = [
    _build("shop", 45, "in_progress", 14, ("SHOP-15",), "feature/SHOP-15-coupons"),
    _build(
        "shop",
        43,
        "failed",
        8,
        ("SHOP-15",),
        "feature/SHOP-15-coupons",
        TestInfo(passed=96, failed=4, skipped=1),
    ),
    _build(
        "shop",
        44,
        "successful",
        9,
        ("SHOP-12",),
        "bugfix/SHOP-12-empty-cart",
        TestInfo(passed=121, failed=0, skipped=2),
    ),
    _build(
        "shop",
        41,
        "failed",
        2,
        ("SHOP-12",),
        "bugfix/SHOP-12-empty-cart",
        TestInfo(passed=118, failed=2, skipped=3),
    ),
    _build("shop", 39, "cancelled", 1, ("SHOP-9",), "feature/SHOP-9-search"),
]
DEPLOYMENTS = [
    _deployment(6, "production", "rolled_back", 11, ("SHOP-15",), "rolled back: health check"),
    _deployment(6, "staging", "successful", 7, ("SHOP-15",), "deploy to staging"),
    _deployment(7, "staging", "successful", 13, ("SHOP-12",), "deploy to staging"),
]


def chromium() -> str:
    """The Chromium executable: ``$CHROMIUM`` or the first one on the PATH."""
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name) if name else None
        if found:
            return found
    raise SystemExit("no Chromium found: install it (apt-get install chromium) or set $CHROMIUM")


async def fill(url: str, reactor: Any) -> None:
    """Send the fixed builds and deployments to the simulator at ``url``."""
    transport = HttpTransport(reactor=reactor)
    tokens = TokenCache(
        credentials=ClientCredentials(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET),
        transport=transport,
        api_url=url,
    )
    client = JiraCloud(
        site="shop.atlassian.net",
        token_cache=tokens,
        transport=transport,
        api_url=url,
        site_url=url,
    )
    try:
        for result in (
            await client.submit_builds(BUILDS),
            await client.submit_deployments(DEPLOYMENTS),
        ):
            if result.rejected or result.unknown_issue_keys:
                raise SystemExit(f"the simulator did not take the sample data: {result}")
    finally:
        await transport.close()


async def screenshot(reactor: Any, output: str) -> None:
    """Serve the sample data and photograph its issue view into ``output``."""
    simulator = JiraSimulator(known_projects=("SHOP",))
    running = await simulator.listen(reactor)
    profile = tempfile.mkdtemp(prefix="issue-view-chromium-")
    try:
        await fill(running.url, reactor)
        os.makedirs(os.path.dirname(output), exist_ok=True)
        arguments = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--window-size=1200,800",
            f"--screenshot={output}",
            f"{running.url}/",
        ]
        # Chromium runs as a child process while this reactor keeps serving the page.
        _output, stderr, code = await getProcessOutputAndValue(
            chromium(), arguments, env=dict(os.environ), reactor=reactor
        )
        if code != 0 or not os.path.exists(output):
            raise SystemExit(f"Chromium failed ({code}): {stderr.decode(errors='replace')[-800:]}")
        print(f"wrote {output}")
    finally:
        shutil.rmtree(profile, ignore_errors=True)
        await running.stop()


def main() -> None:
    """Make the screenshot (the first argument, or docs/issue-view.png)."""
    output = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_OUTPUT)
    task.react(lambda reactor: defer.ensureDeferred(screenshot(reactor, output)))


if __name__ == "__main__":
    main()
