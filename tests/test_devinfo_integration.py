"""A real master with a real GitPoller on a local git repository sends devinfo to the simulator."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

from buildbot.changes.gitpoller import GitPoller
from twisted.internet import defer, reactor, task

from buildbot_jira.reporters import JiraDevInfoReporter
from buildbot_jira.simulator import JiraSimulator
from buildbot_jira.simulator.devinfo import devinfo_entity_problems
from tests.masters import JiraMasterTestCase, jira_arguments, shell
from tests.support import SECRET, captured_log, coroutine_test

AUTHOR = ("Ada Lovelace", "ada@example.com")
BRANCH = "feature/ABC-12-login"
FAST_RETRIES = {"min_backoff": 0.2, "max_backoff": 1.0, "timeout": 2.0}


class Repository:
    """A git repository on disk, written with plain git commands."""

    def __init__(self, path: str) -> None:
        self.path = path
        os.makedirs(path)
        self.git("init", "-q", "-b", "main")
        self.commit("initial commit", {"README": "app\n"})

    def git(self, *args: str) -> str:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        environment.update(
            HOME=self.path,
            GIT_AUTHOR_NAME=AUTHOR[0],
            GIT_AUTHOR_EMAIL=AUTHOR[1],
            GIT_COMMITTER_NAME=AUTHOR[0],
            GIT_COMMITTER_EMAIL=AUTHOR[1],
        )
        settings = ("-c", "commit.gpgsign=false", "-c", "core.hooksPath=/dev/null")
        return subprocess.run(
            ["git", *settings, *args],
            cwd=self.path,
            env=environment,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

    def commit(self, message: str, files: dict[str, str]) -> str:
        for name, text in files.items():
            with open(os.path.join(self.path, name), "a", encoding="utf-8") as handle:
                handle.write(text)
        self.git("add", *files)
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")


class DevinfoIntegrationTests(JiraMasterTestCase):
    def setUp(self) -> None:
        self.repository = Repository(os.path.abspath(self.mktemp()))

    def commits(self) -> dict[str, dict[str, Any]]:
        """The commits the simulator holds, by hash."""
        return {
            entity.current["hash"]: entity.current
            for (_, kind, _), entity in self.sim.simulator.devinfo_entities.items()
            if kind == "commits"
        }

    def branches(self) -> dict[str, dict[str, Any]]:
        return {
            entity.current["name"]: entity.current
            for (_, kind, _), entity in self.sim.simulator.devinfo_entities.items()
            if kind == "branches"
        }

    def sent_commit_ids(self) -> list[str]:
        """Every commit that reached the simulator in an accepted request, in order."""
        return [
            commit["id"]
            for request in self.sim.simulator.requests
            if request.status == 202 and isinstance(request.body, dict)
            for repository in request.body.get("repositories", [])
            for commit in repository.get("commits", [])
        ]

    def reporter(self, **extra: Any) -> JiraDevInfoReporter:
        return JiraDevInfoReporter(
            name="jira-devinfo",
            **jira_arguments(
                self.sim,
                commit_url="https://git.example.com/{repository}/commit/{revision}",
                **{**FAST_RETRIES, **extra},
            ),
        )

    def poller(self) -> GitPoller:
        return GitPoller(
            repourl=self.repository.path,
            branches=True,
            pollInterval=1,
            pollAtLaunch=True,
            workdir=os.path.abspath(self.mktemp()),
        )

    async def start(self, poller: GitPoller, **config: Any) -> None:
        await self.start_master(
            [self.reporter()], {"app": [shell("compile", "true")]}, change_source=[poller], **config
        )
        # The first poll only learns the branches: commits from then on are changes.
        await self.until(lambda: bool(poller.lastRev), seconds=30)

    def devinfo_reporter(self) -> JiraDevInfoReporter:
        return self.master.namedServices["services"].namedServices["jira-devinfo"]

    async def all_changes_handled(self, count: int, *, delivered: bool = True) -> None:
        """Wait until Buildbot has ``count`` changes, the reporter's job has passed them all,
        and (``delivered``) its outbox is empty."""
        reporter = self.devinfo_reporter()
        assert reporter._feed is not None
        for _ in range(600):
            latest = await self.master.db.changes.getLatestChangeid() or 0
            position = await reporter._feed.position()
            if (
                latest >= count
                and position >= latest
                and reporter.idle
                and (not delivered or not len(reporter.outbox))
            ):
                return
            await task.deferLater(reactor, 0.05, lambda: None)
        self.fail(f"the reporter did not pass {count} changes")

    @coroutine_test
    async def test_commits_of_a_polled_branch_arrive_as_commits_and_a_branch(self) -> None:
        await self.start_simulator()
        poller = self.poller()
        with captured_log() as lines:
            await self.start(poller)
            self.repository.git("checkout", "-q", "-b", BRANCH)
            login = self.repository.commit(
                "ABC-12: add the login form", {"login.sh": "login\n", "form.html": "<form>\n"}
            )
            check = self.repository.commit("Validate the password (ABC-13)", {"login.sh": "ok\n"})
            await self.until(lambda: {login, check} <= set(self.commits()), seconds=30)
            self.repository.git("checkout", "-q", "main")
            tidy = self.repository.commit("tidy up", {"README": "more\n"})
            await self.all_changes_handled(3)

        commits = self.commits()
        self.assertEqual(set(commits), {login, check})
        first_commit = commits[login]
        self.assertEqual(first_commit["id"], login)
        self.assertEqual(first_commit["displayId"], login[: len(first_commit["displayId"])])
        self.assertEqual(first_commit["message"], "ABC-12: add the login form")
        self.assertEqual(first_commit["author"]["name"], AUTHOR[0])
        self.assertEqual(first_commit["author"]["email"], AUTHOR[1])
        self.assertEqual(first_commit["fileCount"], 2)
        self.assertEqual(sorted(first_commit["issueKeys"]), ["ABC-12"])
        repository_path = self.repository.path.strip("/")
        self.assertEqual(
            first_commit["url"], f"https://git.example.com/{repository_path}/commit/{login}"
        )
        self.assertEqual(sorted(commits[check]["issueKeys"]), ["ABC-12", "ABC-13"])
        self.assertEqual(commits[check]["fileCount"], 1)
        # The branch names ABC-12: it is a branch entity whose last commit is the newest.
        branch = self.branches()[BRANCH]
        self.assertEqual(branch["issueKeys"], ["ABC-12"])
        self.assertEqual(branch["lastCommit"]["id"], check)
        # The commit that names no issue sent nothing, and every body was valid.
        self.assertNotIn(tidy, self.sent_commit_ids())
        for entity in self.sim.simulator.devinfo_entities.values():
            self.assertEqual(devinfo_entity_problems_for(entity.current), [])
        self.assertFalse(any(SECRET in line for line in lines))

    @coroutine_test
    async def test_commits_made_while_jira_is_down_arrive_once_after_a_restart(self) -> None:
        # A port where nothing listens: Jira is unreachable while the commits come.
        probe = await self.start_simulator()
        port = int(probe.url.rsplit(":", 1)[1])
        await probe.stop()
        db_url = "sqlite:///" + os.path.abspath(self.mktemp()) + ".sqlite"
        config = {"db_url": db_url, "basedir": os.path.abspath(self.mktemp())}
        original_stop = reactor.stop
        poller = self.poller()
        await self.start(poller, **config)
        self.repository.git("checkout", "-q", "-b", BRANCH)
        revisions = [
            self.repository.commit(f"ABC-12: step {n}", {"steps.txt": f"{n}\n"}) for n in range(3)
        ]
        await self.all_changes_handled(3, delivered=False)
        # Three commits and their branch wait in the outbox.
        self.assertEqual(len(self.devinfo_reporter().outbox), 4)
        await self.tested_master.shutdown()
        reactor.stop = original_stop

        # Jira is back on the same address; the master starts again on the same database.
        simulator = JiraSimulator()
        running = await simulator.listen(port=port)
        self.addCleanup(lambda: defer.Deferred.fromCoroutine(running.stop()))
        self.sim = running
        await self.start(self.poller(), **config)
        await self.until(lambda: set(revisions) <= set(self.commits()), seconds=30)
        await self.all_changes_handled(3)
        self.assertEqual(sorted(self.sent_commit_ids()), sorted(revisions))


def devinfo_entity_problems_for(entity: dict[str, Any]) -> list[str]:
    """What the contract finds wrong with a stored commit or branch."""
    kind = "branches" if "lastCommit" in entity else "commits"
    return devinfo_entity_problems(kind, entity)


def gerrit_properties(event: str, patchset: int) -> dict[str, Any]:
    """The properties GerritChangeSource gives a change of a stream event."""
    return {
        "event.type": event,
        "event.change.number": 4711,
        "event.change.id": "I0123456789abcdef0123456789abcdef01234567",
        "event.change.url": "https://gerrit.example.com/c/app/+/4711",
        "event.change.subject": "ABC-21: cache the session",
        "event.change.owner.name": "Grace Hopper",
        "event.change.owner.email": "grace@example.com",
        "event.change.branch": "main",
        "event.change.project": "app",
        "event.patchSet.number": patchset,
        "event.patchSet.ref": f"refs/changes/11/4711/{patchset}",
        "event.patchSet.createdOn": 1_790_000_000 + patchset,
    }


class GerritReviewTests(JiraMasterTestCase):
    @coroutine_test
    async def test_a_gerrit_change_is_a_pull_request_that_ends_merged(self) -> None:
        await self.start_simulator()
        reporter = JiraDevInfoReporter(name="jira-devinfo", **jira_arguments(self.sim))
        await self.start_master([reporter], {"app": [shell("compile", "true")]})
        await self.until(lambda: reporter.idle and bool(reporter._feed and reporter._feed.held))
        for event, patchset in (("patchset-created", 1), ("change-merged", 2)):
            await self.master.data.updates.addChange(
                author="Grace Hopper <grace@example.com>",
                comments="ABC-21: cache the session",
                revision=f"{patchset:040x}",
                branch="main",
                repository="ssh://buildbot@gerrit.example.com:29418/app",
                project="app",
                src="gerrit",
                properties=gerrit_properties(event, patchset),
            )
            await self.until(lambda: self._review_status() is not None)
            expected = "OPEN" if patchset == 1 else "MERGED"
            await self.until(lambda expected=expected: self._review_status() == expected)
        pull = self._reviews()[0]
        self.assertEqual(pull["displayId"], "4711")
        self.assertEqual(pull["title"], "ABC-21: cache the session")
        self.assertEqual(pull["url"], "https://gerrit.example.com/c/app/+/4711")
        self.assertEqual(pull["author"]["name"], "Grace Hopper")
        self.assertEqual(pull["destinationBranch"], "main")
        self.assertEqual(pull["issueKeys"], ["ABC-21"])
        self.assertEqual(devinfo_entity_problems("pullRequests", pull), [])
        # Both patch sets are commits of the one repository, whose URL has no user in it.
        repositories = [entity.current for entity in self.sim.simulator.repositories.values()]
        self.assertEqual(len(repositories), 1)
        self.assertNotIn("buildbot@", json.dumps(repositories))

    def _reviews(self) -> list[dict[str, Any]]:
        return [
            entity.current
            for (_, kind, _), entity in self.sim.simulator.devinfo_entities.items()
            if kind == "pullRequests"
        ]

    def _review_status(self) -> str | None:
        reviews = self._reviews()
        return reviews[0]["status"] if reviews else None
