"""A deployment names every issue it ships: a real master and worker, against the simulator.

Changes are built on ``release`` by one builder; a second builder deploys
to production when forced on a revision (or rebuilt), as many teams
promote a build.
"""

from __future__ import annotations

import os
from typing import Any

from buildbot.plugins import schedulers
from buildbot.process.results import SUCCESS
from twisted.internet import reactor

from buildbot_jira.reporters import JiraDeploymentReporter
from buildbot_jira.simulator.contract import entity_schema, validation_errors
from tests.masters import JiraMasterTestCase, jira_arguments, shell
from tests.support import coroutine_test

REPOSITORY = "https://git.example.com/app.git"


def revision(n: int) -> str:
    return f"{n:040x}"


class DeployedIssuesTests(JiraMasterTestCase):
    async def start(self, config: dict[str, Any] | None = None, **arguments: Any) -> None:
        """A master whose changes build ``build`` and whose ``deploy`` runs only when forced.

        ``config``: more of the master's configuration; ``arguments``: the reporter's.
        """
        if not hasattr(self, "sim"):
            await self.start_simulator()
        reporter = JiraDeploymentReporter(
            name="jira-deploy",
            builders=["deploy"],
            environment_id="production",
            **jira_arguments(self.sim, **arguments),
        )
        await self.start_master(
            [reporter],
            {"build": [shell("compile", "true")], "deploy": [shell("deploy", "true")]},
            schedulers=[
                schedulers.AnyBranchScheduler(name="changes", builderNames=["build"]),
                schedulers.ForceScheduler(name="force", builderNames=["build", "deploy"]),
            ],
            **(config or {}),
        )

    async def push(self, first: int, last: int) -> None:
        """Changes ``ABC-first`` to ``ABC-last`` on ``release``, each built."""
        for n in range(first, last + 1):
            build = await self.build_with_change(
                branch="release",
                comments=f"ABC-{n}: change {n}",
                revision=revision(n),
                repository=REPOSITORY,
            )
            self.assertEqual(build["results"], SUCCESS)

    async def deploy(self, n: int) -> dict[str, Any]:
        """Force ``deploy`` on the revision of change ``n``; its final Jira deployment."""
        build = await self.doForceBuild(
            forceParams={
                "builderNames": ["deploy"],
                "branch": "release",
                "revision": revision(n),
                "repository": REPOSITORY,
                "project": "app",
                "reason": "promote",
            }
        )
        return await self.deployed(build)

    async def rebuild(self, build: dict[str, Any]) -> dict[str, Any]:
        """Buildbot's "Rebuild" of ``build``; its final Jira deployment."""
        rebuilt = await self.doForceBuild(
            triggerCallback=lambda: self.master.data.control(
                "rebuild", {}, ("builds", build["buildid"])
            )
        )
        return await self.deployed(rebuilt)

    async def deployed(self, build: dict[str, Any]) -> dict[str, Any]:
        self.assertEqual(build["results"], SUCCESS)
        number = build["number"] * 1000

        def final() -> dict[str, Any] | None:
            for (_pipeline, environment, sequence), entity in self.stored.items():
                done = entity.current["state"] != "in_progress"
                if (environment, sequence) == ("production", number) and done:
                    return entity.current
            return None

        await self.until(final)
        stored = final()
        assert stored is not None
        stored["_build"] = build
        return stored

    @property
    def stored(self) -> dict[tuple[str, str, int], Any]:
        """The simulator's deployments by (pipeline, environment, sequence number)."""
        return self.sim.simulator.deployments

    def keys(self, deployment: dict[str, Any]) -> list[str]:
        return next(
            (
                a["values"]
                for a in deployment.get("associations", [])
                if a["associationType"] == "issueIdOrKeys"
            ),
            [],
        )

    def assert_every_payload_valid(self) -> None:
        sent = [
            deployment
            for request in self.sim.simulator.requests
            if request.path.endswith("/bulk") and isinstance(request.body, dict)
            for deployment in request.body.get("deployments", [])
        ]
        self.assertTrue(sent)
        for payload in sent:
            self.assertEqual(validation_errors(entity_schema("deployments"), payload), [])

    @coroutine_test
    async def test_a_forced_deploy_names_every_change_since_the_last_one(self) -> None:
        await self.start(first_deployment_lookback=50)
        await self.push(1, 10)
        first = await self.deploy(10)
        # The newest first: the deployed change, then the ones before it.
        self.assertEqual(self.keys(first), [f"ABC-{n}" for n in range(10, 0, -1)])
        self.assertEqual(first["state"], "successful")
        await self.push(11, 12)
        second = await self.deploy(12)
        self.assertEqual(self.keys(second), ["ABC-12", "ABC-11"])
        rebuilt = await self.rebuild(second["_build"])
        self.assertEqual(self.keys(rebuilt), ["ABC-12", "ABC-11"])
        self.assertEqual(rebuilt["state"], "successful")
        self.assert_every_payload_valid()

    @coroutine_test
    async def test_a_first_deployment_names_its_own_change_and_a_rollback_what_it_undoes(
        self,
    ) -> None:
        await self.start()
        await self.push(1, 3)
        first = await self.deploy(3)
        self.assertEqual(self.keys(first), ["ABC-3"])
        await self.push(4, 6)
        self.assertEqual(self.keys(await self.deploy(6)), ["ABC-6", "ABC-5", "ABC-4"])
        back = await self.deploy(4)
        self.assertEqual(back["state"], "rolled_back")
        self.assertEqual(self.keys(back), ["ABC-6", "ABC-5"])
        # From the revision rolled back to, forward again.
        self.assertEqual(self.keys(await self.deploy(6)), ["ABC-6", "ABC-5"])
        self.assert_every_payload_valid()

    @coroutine_test
    async def test_build_mode_names_the_builds_own_issues_only(self) -> None:
        await self.start(deployed_issues="build")
        await self.push(1, 2)
        await self.deploy(1)
        await self.push(3, 4)
        self.assertEqual(self.keys(await self.deploy(4)), ["ABC-4"])

    @coroutine_test
    async def test_after_a_master_restart_the_next_deploy_knows_where_the_last_stopped(
        self,
    ) -> None:
        db_url = "sqlite:///" + os.path.abspath(self.mktemp()) + ".sqlite"
        # A restarted master keeps its database and base directory.
        config = {"db_url": db_url, "basedir": os.path.abspath(self.mktemp())}
        original_stop = reactor.stop
        await self.start(config)
        await self.push(1, 2)
        self.assertEqual(self.keys(await self.deploy(2)), ["ABC-2"])
        await self.push(3, 5)
        await self.tested_master.shutdown()
        # The harness patches reactor.stop for each master; give the next one the original.
        reactor.stop = original_stop  # type: ignore[method-assign]
        await self.start(config)
        self.assertEqual(self.keys(await self.deploy(5)), ["ABC-5", "ABC-4", "ABC-3"])
        self.assert_every_payload_valid()
