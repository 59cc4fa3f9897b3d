"""The simulator's issue view (server-rendered, and in a browser) and ``simulate``'s options."""

from __future__ import annotations

import html
import io
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from typing import Any

from buildbot.process.results import SUCCESS
from twisted.internet import defer, protocol, reactor
from twisted.python.failure import Failure
from twisted.trial import unittest

from buildbot_jira.jira.client import RetryPolicy
from buildbot_jira.jira.errors import JiraPermissionError
from buildbot_jira.jira.http import HttpResponse, HttpTransport
from buildbot_jira.reporters import JiraBuildReporter
from buildbot_jira.simulator import DEFAULT_CLIENT_ID, RunningSimulator
from buildbot_jira.simulator.issue_view import IssueActivity, IssuePage, render_page
from buildbot_jira.tools.cli import build_parser, make_simulator, print_banner
from tests.masters import JiraMasterTestCase, jira_arguments, shell
from tests.support import build_payload, coroutine_test, make_client, start_simulator


def deployment_payload(
    number: int, environment: str, state: str, minute: int, *, keys: tuple[str, ...]
) -> dict[str, Any]:
    """A valid DeploymentData dict."""
    return {
        "schemaVersion": "1.0",
        "deploymentSequenceNumber": number,
        "updateSequenceNumber": number,
        "displayName": f"release #{number} to {environment}",
        "url": f"https://ci.example.com/#/builders/2/builds/{number}",
        "description": f"deploy to {environment}",
        "lastUpdated": f"2026-11-28T10:{minute:02d}:00.000Z",
        "state": state,
        "pipeline": {"id": "release", "displayName": "release", "url": "https://ci.example.com/"},
        "environment": {"id": environment, "displayName": environment, "type": environment},
        "associations": [{"associationType": "issueIdOrKeys", "values": list(keys)}],
    }


def at(minute: int) -> str:
    return f"2026-11-28T10:{minute:02d}:00.000Z"


async def fetch(test: unittest.TestCase, url: str) -> HttpResponse:
    transport = HttpTransport(reactor=reactor)
    test.addCleanup(lambda: defer.Deferred.fromCoroutine(transport.close()))
    return await transport.request("GET", url, timeout=10)


class IssueViewTests(unittest.TestCase):
    running: RunningSimulator

    async def page(self, path: str = "/") -> str:
        response = await fetch(self, self.running.url + path)
        self.assertEqual(response.status, 200)
        self.assertEqual(response.header("Content-Type"), "text/html; charset=utf-8")
        text: str = response.body.decode("utf-8")
        return text

    async def report(self, builds: list[dict], deployments: Sequence[dict] = ()) -> None:
        client = make_client(self, self.running)
        result = await client.submit_builds(builds)
        self.assertEqual(result.rejected, ())
        if deployments:
            result = await client.submit_deployments(list(deployments))
            self.assertEqual(result.rejected, ())

    @coroutine_test
    async def test_payload_text_is_escaped_and_only_web_links_are_links(self) -> None:
        self.running = await start_simulator(self)
        await self.report(
            [
                build_payload(
                    1,
                    displayName='<script>alert("x")</script>',
                    url="javascript://ci/%0aalert(1)",
                    issueKeys=["PROJ-1"],
                    references=[{"ref": {"name": "<b>main</b>", "uri": "https://git/x"}}],
                )
            ]
        )
        page = await self.page()
        self.assertNotIn("<script>alert", page)
        self.assertNotIn("<b>main</b>", page)
        self.assertIn("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;", page)
        self.assertIn("&lt;b&gt;main&lt;/b&gt;", page)
        self.assertNotIn("javascript:", page)
        # The page's own script is the only one, and the policy allows no other.
        self.assertEqual(page.count("<script"), 1)
        nonce = re.search(r'<script nonce="([^"]+)">', page)
        assert nonce is not None
        self.assertIn(f"script-src 'nonce-{nonce.group(1)}'", html.unescape(page))

    @coroutine_test
    async def test_states_are_coloured_lozenges_latest_first(self) -> None:
        self.running = await start_simulator(self)
        await self.report(
            [
                build_payload(1, displayName="app #1", state="failed", lastUpdated=at(1)),
                build_payload(2, displayName="app #2", state="successful", lastUpdated=at(5)),
                build_payload(3, displayName="app #3", state="in_progress", lastUpdated=at(3)),
                build_payload(
                    4,
                    displayName="old #4",
                    state="cancelled",
                    lastUpdated=at(0),
                    issueKeys=["ABC-9"],
                ),
            ],
            [deployment_payload(7, "production", "rolled_back", 4, keys=("PROJ-1",))],
        )
        page = await self.page()
        self.assertIn('<span class="lozenge red" data-state="failed">failed</span>', page)
        self.assertIn('<span class="lozenge green" data-state="successful">successful</span>', page)
        self.assertIn(
            '<span class="lozenge blue" data-state="in_progress">in progress</span>', page
        )
        self.assertIn('<span class="lozenge grey" data-state="cancelled">cancelled</span>', page)
        self.assertIn(
            '<span class="lozenge orange" data-state="rolled_back">rolled back</span>', page
        )
        positions = [page.index(name) for name in ("app #2", "app #3", "app #1")]
        self.assertEqual(positions, sorted(positions))
        # The issue with the latest update comes first.
        self.assertLess(page.index('data-issue="PROJ-1"'), page.index('data-issue="ABC-9"'))
        # A deployment shows its environment and the environment's type, and links to Buildbot.
        self.assertIn('<strong class="environment">production</strong>', page)
        self.assertIn('<span class="env env-production"', page)
        self.assertIn('href="https://ci.example.com/#/builders/2/builds/7"', page)
        self.assertIn('href="https://ci.example.com/#/builders/1/builds/2"', page)
        self.assertIn("2 issues · 4 builds · 1 deployment", page)

    @coroutine_test
    async def test_view_is_served_at_both_paths_and_never_faulted_or_recorded(self) -> None:
        self.running = await start_simulator(self)
        self.running.simulator.fail_next(5, 503, scope="any")
        empty = await self.page("/")
        self.assertIn("Nothing reported yet", empty)
        self.assertIn(f'api_url="{self.running.url}"', empty)
        self.assertIn("Nothing reported yet", await self.page("/_simulator/view"))
        self.assertEqual(self.running.simulator.requests, [])

    @coroutine_test
    async def test_unknown_issue_keys_are_pointed_out(self) -> None:
        self.running = await start_simulator(self, known_projects=("PROJ",))
        await self.report([build_payload(1, issueKeys=["OPS-4"])])
        page = await self.page()
        self.assertIn("<code>OPS-4</code> (1 entity)", page)
        self.assertIn("<code>--project OPS</code>", page)


class RenderPageTests(unittest.TestCase):
    """``render_page`` alone: the page of plain values, without a simulator."""

    def test_the_issue_with_the_latest_activity_comes_first(self) -> None:
        older = IssueActivity("PROJ-1", builds=(build_payload(1, lastUpdated=at(1)),))
        flag = {
            "id": "f1",
            "key": "new-ui",
            "summary": {"lastUpdated": at(2), "url": "https://flags/f1", "status": {}},
        }
        newer = IssueActivity(
            "PROJ-2",
            deployments=(deployment_payload(3, "staging", "failed", 5, keys=("PROJ-2",)),),
            feature_flags=(flag,),
        )
        page = render_page(
            IssuePage(url="http://sim", issues=(older, newer), builds=1, deployments=1)
        )
        self.assertLess(page.index('data-issue="PROJ-2"'), page.index('data-issue="PROJ-1"'))
        self.assertIn('Feature flags <span class="count">1</span>', page)
        self.assertIn('href="https://flags/f1"', page)
        self.assertIn("2 issues · 1 build · 1 deployment · 0 requests received", page)

    def test_an_empty_page_tells_how_to_point_a_reporter_here(self) -> None:
        page = render_page(IssuePage(url="http://127.0.0.1:9", client_ids=("me",)))
        self.assertIn("Nothing reported yet", page)
        self.assertIn('client_id="me"', page)
        self.assertIn('api_url="http://127.0.0.1:9"', page)

    def test_the_nonce_and_the_unknown_keys_are_the_pages_own(self) -> None:
        page = render_page(
            IssuePage(url="http://sim", known_projects=("PROJ",), unknown_keys={"OPS-4": 2}),
            nonce="n0nce",
        )
        self.assertIn('<script nonce="n0nce">', page)
        self.assertIn('<style nonce="n0nce">', page)
        self.assertIn("<code>OPS-4</code> (2 entities)", page)
        self.assertIn("Known projects: PROJ.", page)
        self.assertIn("<code>--project OPS</code>", page)


# -- in a browser ---------------------------------------------------------------


def find_chromium() -> str | None:
    """Chromium (or Chrome): ``$CHROMIUM`` or the first one on the PATH."""
    names = (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome")
    return next((shutil.which(n) for n in names if n and shutil.which(n)), None)


class _Collect(protocol.ProcessProtocol):
    def __init__(self) -> None:
        self.output: list[bytes] = []
        self.ended: defer.Deferred[int | None] = defer.Deferred()

    def outReceived(self, data: bytes) -> None:
        self.output.append(data)

    def processEnded(self, reason: Failure) -> None:
        self.ended.callback(getattr(reason.value, "exitCode", None))


async def dump_dom(url: str, *, seconds: float = 60) -> str:
    """The page's DOM after headless Chromium loaded it and ran its script for 5 s.

    Chromium is a child process: this reactor keeps serving the simulator
    meanwhile. It is killed if it takes longer than ``seconds``.
    """
    chromium = find_chromium()
    assert chromium is not None
    profile = tempfile.mkdtemp(prefix="issue-view-test-")
    collect = _Collect()
    arguments = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        # Virtual time: the page's 2 s refresh timer fires without a real wait.
        "--virtual-time-budget=5000",
        "--dump-dom",
        url,
    ]
    process = reactor.spawnProcess(collect, chromium, arguments, env=dict(os.environ))
    timer = reactor.callLater(seconds, process.signalProcess, "KILL")
    try:
        code = await collect.ended
    finally:
        if timer.active():
            timer.cancel()
        shutil.rmtree(profile, ignore_errors=True)
    assert code == 0, f"Chromium exited with {code}"
    return b"".join(collect.output).decode("utf-8", "replace")


class IssueViewBrowserTests(JiraMasterTestCase):
    @coroutine_test
    async def test_a_reported_build_shows_in_the_browser(self) -> None:
        if find_chromium() is None:
            raise unittest.SkipTest(
                "no Chromium: install it (apt-get install chromium) or set $CHROMIUM"
            )
        running = await self.start_simulator()
        await self.start_master(
            [JiraBuildReporter(name="jira", **jira_arguments(running))],
            {"app": [shell("compile", "true")]},
        )
        build = await self.build_with_change(
            branch="feature/PROJ-42-browser", comments="PROJ-42: <script>alert(1)</script>"
        )
        self.assertEqual(build["results"], SUCCESS)
        await self.until(
            lambda: any(
                e.current["state"] == "successful" for e in running.simulator.builds.values()
            )
        )
        # Development information and a feature flag for the same issue, under the same policy.
        from tests.test_issue_view_devinfo import REPOSITORY, commit, flag, pull_request

        client = make_client(self, running)
        hostile = "PROJ-42 <script>alert(2)</script>"
        repository = {
            **REPOSITORY,
            "updateSequenceId": 1,
            "commits": [commit(1, keys=("PROJ-42",), message=hostile)],
            "pullRequests": [pull_request(3, "MERGED", issueKeys=["PROJ-42"])],
        }
        self.assertEqual((await client.submit_development_information([repository])).rejected, ())
        self.assertEqual(
            (await client.submit_feature_flags([flag("f1", keys=("PROJ-42",))])).rejected, ()
        )
        dom = await dump_dom(running.url + "/")
        self.assertIn('data-issue="PROJ-42"', dom)
        self.assertIn('data-state="MERGED"', dom)
        self.assertIn("PROJ-42 &lt;script&gt;alert(2)&lt;/script&gt;", dom)
        self.assertIn("Flag f1</a>", dom)
        self.assertIn(f"app #{build['number']}</a>", dom)
        self.assertIn('data-state="successful"', dom)
        self.assertIn("feature/PROJ-42-browser", dom)
        # The inline script ran under the page's policy and refreshed the page.
        refreshes = re.search(r'<body data-refreshes="(\d+)"', dom)
        assert refreshes is not None, dom[:500]
        self.assertGreaterEqual(int(refreshes.group(1)), 1)
        self.assertIn('class="live on"', dom)
        self.assertIn('data-issue="PROJ-42"', dom.split('id="issues"')[1])
        self.assertIn('data-state="on"', dom.split('id="issues"')[1])


# -- simulate's options ---------------------------------------------------------


class SimulateOptionsTests(unittest.TestCase):
    def simulate(self, *argv: str) -> Any:
        return build_parser().parse_args(["simulate", *argv])

    def test_banner_shows_the_issue_view_and_the_faults(self) -> None:
        args = self.simulate(
            "--fail-next", "2", "--fail-status", "429", "--retry-after", "3", "--delay", "1.5",
            "--deny", "deployments",
        )  # fmt: skip
        simulator = make_simulator(args)
        unused: Any = None
        running = RunningSimulator(
            simulator=simulator, url="http://127.0.0.1:1", port=unused, connections=unused
        )
        out = io.StringIO()
        print_banner(running, args, out)
        text = out.getvalue()
        self.assertIn("issue view:           http://127.0.0.1:1/\n", text)
        self.assertIn("the next 2 API requests answer HTTP 429 with Retry-After: 3", text)
        self.assertIn("every answer waits 1.5 s", text)
        self.assertIn("deployments: permission denied (HTTP 403)", text)
        self.assertEqual(simulator.delay, 1.5)
        self.assertEqual(simulator.state()["pendingFaults"][0]["status"], 429)

    def test_bad_fault_options_are_usage_errors(self) -> None:
        for argv in (["--fail-status", "200"], ["--delay", "-1"], ["--deny", "issues"]):
            with self.assertRaises(SystemExit):
                self.simulate(*argv)

    @coroutine_test
    async def test_fail_every_fails_every_nth_api_request(self) -> None:
        simulator = make_simulator(self.simulate("--fail-every", "2", "--retry-after", "0"))
        running = await simulator.listen(reactor)
        self.addCleanup(lambda: defer.Deferred.fromCoroutine(running.stop()))
        client = make_client(self, running, retry=RetryPolicy(max_attempts=2, initial_delay=0))
        for number in range(3):
            result = await client.submit_builds([build_payload(number + 1)])
            self.assertEqual(len(result.accepted), 1)
        statuses = [r.status for r in simulator.requests if r.path.startswith("/jira/")]
        self.assertEqual(statuses, [202, 503, 202, 503, 202])

    @coroutine_test
    async def test_deny_refuses_that_entity_only(self) -> None:
        simulator = make_simulator(self.simulate("--deny", "builds"))
        running = await simulator.listen(reactor)
        self.addCleanup(lambda: defer.Deferred.fromCoroutine(running.stop()))
        client = make_client(self, running)
        with self.assertRaises(JiraPermissionError):
            await client.submit_builds([build_payload(1)])
        result = await client.submit_deployments(
            [deployment_payload(1, "staging", "successful", 1, keys=("PROJ-1",))]
        )
        self.assertEqual(len(result.accepted), 1)
        self.assertEqual(simulator.permissions, {DEFAULT_CLIENT_ID: frozenset(
            {"deployments", "devinfo", "featureflags"})})  # fmt: skip
