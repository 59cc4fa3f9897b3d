"""The issue view's development information and feature flags: rendered alone, and served."""

from __future__ import annotations

import html
import re
from typing import Any

from twisted.trial import unittest

from buildbot_jira.simulator import RunningSimulator
from buildbot_jira.simulator.issue_view import (
    InRepository,
    IssueActivity,
    IssuePage,
    render_page,
)
from buildbot_jira.simulator.issue_view_html import SHOWN
from tests.support import build_payload, coroutine_test, make_client, start_simulator
from tests.test_issue_view import fetch

REPOSITORY = {"id": "r1", "name": "app", "url": "https://git.example.com/app"}


def at(minute: int) -> str:
    return f"2026-11-28T10:{minute:02d}:00.000Z"


def commit(
    number: int, *, minute: int = 0, keys: tuple[str, ...] = ("PROJ-1",), **extra: Any
) -> dict:
    """A valid commit of the devinfo contract."""
    digest = f"{number:040x}"
    return {
        "id": digest,
        "issueKeys": list(keys),
        "updateSequenceId": 1,
        "hash": digest,
        "displayId": digest[-7:],
        "message": f"PROJ-1 change {number}\n\nThe body of change {number}",
        "author": {"name": f"Author {number}"},
        "authorTimestamp": at(minute),
        "fileCount": number,
        "url": f"https://git.example.com/app/commit/{digest}",
        **extra,
    }


def branch(name: str, *, keys: tuple[str, ...] = ("PROJ-1",), **extra: Any) -> dict:
    """A valid branch of the devinfo contract."""
    return {
        "id": name,
        "issueKeys": list(keys),
        "updateSequenceId": 1,
        "name": name,
        "url": f"https://git.example.com/app/tree/{name}",
        "lastCommit": commit(99, minute=30),
        **extra,
    }


def pull_request(number: int, status: str, *, minute: int = 0, **extra: Any) -> dict:
    """A valid pull request of the devinfo contract."""
    return {
        "id": str(number),
        "issueKeys": ["PROJ-1"],
        "updateSequenceId": 1,
        "displayId": f"#{number}",
        "title": f"PROJ-1 review {number}",
        "status": status,
        "author": {"name": "Reviewer"},
        "commentCount": 2,
        "sourceBranch": "feature/PROJ-1",
        "destinationBranch": "main",
        "lastUpdate": at(minute),
        "url": f"https://git.example.com/app/pull/{number}",
        **extra,
    }


def flag(flag_id: str, *, keys: tuple[str, ...] = ("PROJ-1",), **extra: Any) -> dict:
    """A valid feature flag with one environment."""
    return {
        "schemaVersion": "1.0",
        "id": flag_id,
        "key": flag_id,
        "displayName": f"Flag {flag_id}",
        "issueKeys": list(keys),
        "updateSequenceId": 1,
        "summary": {
            "url": f"https://flags.example.com/{flag_id}",
            "status": {"enabled": True, "defaultValue": "off", "rollout": {"percentage": 25}},
            "lastUpdated": at(5),
        },
        "details": [
            {
                "url": f"https://flags.example.com/{flag_id}/production",
                "lastUpdated": at(6),
                "environment": {"name": "production", "type": "production"},
                "status": {"enabled": False, "rollout": {"rules": 3}},
            }
        ],
        **extra,
    }


def in_app(*entities: dict) -> tuple[InRepository, ...]:
    return tuple(InRepository(entity, REPOSITORY) for entity in entities)


def card(page: str, key: str) -> str:
    """The markup of one issue's card."""
    start = page.index(f'<article class="issue" data-issue="{key}">')
    return page[start : page.index("</article>", start)]


class RenderDevelopmentTests(unittest.TestCase):
    """``render_page`` alone, with commits, branches, pull requests and flags."""

    def test_commits_branches_and_pull_requests_show_their_facts(self) -> None:
        issue = IssueActivity(
            "PROJ-1",
            commits=in_app(commit(3, minute=3)),
            branches=in_app(branch("feature/PROJ-1")),
            pull_requests=in_app(
                pull_request(7, "MERGED"), pull_request(8, "DECLINED"), pull_request(9, "OPEN")
            ),
        )
        page = card(render_page(IssuePage(url="http://sim", issues=(issue,))), "PROJ-1")
        digest = f"{3:040x}"
        self.assertIn(f'href="https://git.example.com/app/commit/{digest}"', page)
        self.assertIn(f">{digest[-7:]}</a>", page)
        self.assertIn("PROJ-1 change 3</span>", page)  # the first line only
        self.assertNotIn("The body of change 3", page)
        self.assertIn("by Author 3", page)
        self.assertIn("3 files", page)
        self.assertIn('href="https://git.example.com/app"', page)
        self.assertIn(">app</a>", page)
        self.assertIn('<time datetime="2026-11-28T10:03:00.000Z">', page)
        # A branch: its name linking to it, and its last commit.
        self.assertIn('href="https://git.example.com/app/tree/feature/PROJ-1"', page)
        self.assertIn("last commit", page)
        self.assertIn(">" + f"{99:040x}"[-7:] + "</a> PROJ-1 change 99", page)
        # Pull requests: the status as a lozenge, ID and title as the link, the branches.
        self.assertIn('<span class="lozenge green" data-state="MERGED">MERGED</span>', page)
        self.assertIn('<span class="lozenge red" data-state="DECLINED">DECLINED</span>', page)
        self.assertIn('<span class="lozenge blue" data-state="OPEN">OPEN</span>', page)
        self.assertIn(">#7 PROJ-1 review 7</a>", page)
        self.assertIn(
            '<span class="branch">feature/PROJ-1</span> <span class="to">\u2192</span> '
            '<span class="branch">main</span>',
            page,
        )
        self.assertIn("by Reviewer", page)
        titles = re.findall(r"<h3>([^<]+) <span", page)
        expected = ["Builds", "Deployments", "Pull requests", "Branches", "Commits"]
        self.assertEqual(titles, expected)

    def test_the_newest_commits_show_and_a_count_tells_of_the_rest(self) -> None:
        commits = in_app(*(commit(n, minute=n) for n in range(1, SHOWN + 3)))
        page = render_page(
            IssuePage(url="http://sim", issues=(IssueActivity("PROJ-1", commits=commits),))
        )
        shown = [int(n) for n in re.findall(r"PROJ-1 change (\d+)</span>", page)]
        self.assertEqual(shown, list(range(SHOWN + 2, 2, -1)))  # newest first, ten of them
        self.assertIn(f'Commits <span class="count">{SHOWN + 2}</span>', page)
        self.assertIn('<li class="more">and 2 more</li>', page)

    def test_feature_flags_show_each_environment(self) -> None:
        off = flag("dark-mode", summary={"status": {"enabled": False}, "lastUpdated": at(1)})
        issue = IssueActivity("PROJ-1", feature_flags=(flag("new-ui"), off))
        page = card(render_page(IssuePage(url="http://sim", issues=(issue,))), "PROJ-1")
        self.assertIn('Feature flags <span class="count">2</span>', page)
        self.assertIn('href="https://flags.example.com/new-ui"', page)
        self.assertIn(">Flag new-ui</a>", page)
        self.assertIn('<code class="flag-key">new-ui</code>', page)
        self.assertIn('<span class="lozenge green" data-state="on">on</span>', page)
        self.assertIn("rollout 25 %", page)
        self.assertIn("default <code>off</code>", page)
        # The environment: name (linking to its details), type, off, rules, when.
        self.assertIn('href="https://flags.example.com/new-ui/production"', page)
        self.assertIn('<span class="env env-production" title="environment type">', page)
        self.assertIn('<span class="lozenge grey" data-state="off">off</span>', page)
        self.assertIn("rollout by 3 rules", page)
        self.assertIn('<time datetime="2026-11-28T10:06:00.000Z">', page)
        # A flag without a summary URL is named, not linked; the newest comes first.
        self.assertLess(page.index("Flag new-ui"), page.index("Flag dark-mode"))
        self.assertIn('<span class="flag">Flag dark-mode</span>', page)

    def test_hostile_values_are_escaped_and_only_web_links_are_links(self) -> None:
        script = '<script>alert("x")</script>'
        hostile_commit = commit(
            1, message=script + "x" * 100_000, url="javascript:alert(1)", author={"name": script}
        )
        hostile_flag = flag(
            "f1",
            displayName=script,
            summary={
                "url": "javascript:alert(2)",
                "status": {"enabled": True, "defaultValue": script, "rollout": {"text": script}},
                "lastUpdated": "<img src=x onerror=alert(3)>",
            },
        )
        repository = {"id": "r1", "name": script, "url": "JavaScript:alert(4)"}
        issue = IssueActivity(
            "PROJ-1",
            commits=(InRepository(hostile_commit, repository),),
            branches=(InRepository(branch(script, url="data:text/html,x"), repository),),
            pull_requests=(
                InRepository(
                    pull_request(1, script, title=script, sourceBranch=script), repository
                ),
            ),
            feature_flags=(hostile_flag,),
        )
        page = render_page(IssuePage(url="http://sim", issues=(issue,)))
        self.assertEqual(page.count("<script"), 1)  # the page's own
        self.assertNotIn(" style=", page)  # the policy allows no inline style attribute
        self.assertNotIn("<img", page)
        self.assertNotIn("javascript:", page.lower())
        self.assertNotIn('href="data:text', page)
        self.assertIn("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;", page)
        # An unknown status is a grey lozenge whose class comes from the view, not the data.
        self.assertIn('<span class="lozenge grey" data-state="&lt;script&gt;', page)
        # A huge message is cut to its first line's first 200 characters.
        self.assertLess(len(page), 40_000)
        self.assertIn("x\u2026</span>", page)

    def test_an_issue_with_only_flags_or_only_devinfo_is_ordered_by_their_times(self) -> None:
        flags_only = IssueActivity("PROJ-2", feature_flags=(flag("f1"),))  # minute 5
        devinfo_only = IssueActivity(
            "PROJ-3", pull_requests=in_app(pull_request(1, "OPEN", minute=9))
        )
        builds_only = IssueActivity("PROJ-1", builds=(build_payload(1, lastUpdated=at(7)),))
        page = render_page(
            IssuePage(
                url="http://sim",
                issues=(builds_only, flags_only, devinfo_only),
                pull_requests=1,
                feature_flags=1,
            )
        )
        order = [page.index(f'data-issue="{key}"') for key in ("PROJ-3", "PROJ-1", "PROJ-2")]
        self.assertEqual(order, sorted(order))
        self.assertIn("3 issues · 0 builds · 0 deployments · 1 pull request · 1 feature flag", page)
        # No build nor deployment: no headline state.
        self.assertNotIn('class="latest"', card(page, "PROJ-2"))


class ServedDevelopmentTests(unittest.TestCase):
    """Devinfo and flags sent through the API show on the simulator's ``GET /``."""

    running: RunningSimulator

    @coroutine_test
    async def test_what_was_sent_shows_on_the_page_and_in_the_reads(self) -> None:
        self.running = await start_simulator(self, known_projects=("PROJ",))
        client = make_client(self, self.running)
        repository = {
            **REPOSITORY,
            "name": "<b>app</b>",
            "updateSequenceId": 1,
            "commits": [commit(1, minute=1), commit(2, minute=2, keys=("PROJ-2",))],
            "branches": [branch("feature/PROJ-1")],
            "pullRequests": [pull_request(5, "OPEN", minute=4)],
        }
        result = await client.submit_development_information([repository])
        self.assertEqual(result.rejected, ())
        result = await client.submit_feature_flags([flag("new-ui", keys=("PROJ-3",))])
        self.assertEqual(result.rejected, ())

        response = await fetch(self, self.running.url + "/")
        self.assertEqual(response.status, 200)
        page = response.body.decode("utf-8")
        self.assertIn(
            "3 issues · 0 builds · 0 deployments · 2 commits · 1 branch · 1 pull request · "
            "1 feature flag",
            page,
        )
        first = card(page, "PROJ-1")
        self.assertIn("PROJ-1 change 1</span>", first)
        self.assertNotIn("PROJ-1 change 2", first)  # linked to PROJ-2 alone
        self.assertIn("&lt;b&gt;app&lt;/b&gt;</a>", first)  # the repository, by its name
        self.assertIn('data-state="OPEN"', first)
        self.assertIn(">feature/PROJ-1</a>", first)
        self.assertIn("PROJ-1 change 2</span>", card(page, "PROJ-2"))
        self.assertIn('href="https://flags.example.com/new-ui"', card(page, "PROJ-3"))
        policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
        assert policy is not None
        self.assertIn("script-src 'nonce-", html.unescape(policy.group(1)))

        # What the simulator holds, per kind and per issue.
        simulator = self.running.simulator
        self.assertEqual(
            [c["id"] for c in simulator.devinfo_entities_for_issue("proj-1", "commits")],
            [f"{1:040x}"],
        )
        self.assertEqual(
            sorted(e["id"] for e in simulator.devinfo_entities_for_issue("PROJ-1")),
            sorted([f"{1:040x}", "feature/PROJ-1", "5"]),
        )
        self.assertEqual(simulator.devinfo_entities_for_issue("PROJ-3"), [])
        self.assertEqual(simulator.devinfo_entities_for_issue("OPS-1"), [])
        with self.assertRaises(ValueError):
            simulator.devinfo_entities_for_issue("PROJ-1", "commit")
        issues = (await fetch(self, self.running.url + "/_simulator/issues")).json_or_none()
        assert isinstance(issues, dict)
        self.assertEqual(list(issues), ["PROJ-1", "PROJ-2", "PROJ-3"])
        self.assertEqual(
            {kind: len(entities) for kind, entities in issues["PROJ-1"].items()},
            {
                "builds": 0,
                "deployments": 0,
                "featureFlags": 0,
                "commits": 1,
                "branches": 1,
                "pullRequests": 1,
            },
        )
        self.assertEqual(issues["PROJ-3"]["featureFlags"][0]["key"], "new-ui")
        self.assertEqual(simulator.requests[-1].method, "POST")  # the views are not recorded
