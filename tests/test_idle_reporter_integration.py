"""A reporter whose secret is missing stays idle; the master starts, builds and stops."""

from __future__ import annotations

import os
from typing import Any

from buildbot.plugins import secrets, util
from buildbot.process.results import SUCCESS
from twisted.internet import reactor

from buildbot_jira.reporters import JiraBuildReporter
from buildbot_jira.simulator import DEFAULT_CLIENT_SECRET
from tests.masters import JiraMasterTestCase, jira_arguments, shell
from tests.support import captured_log, coroutine_test, until

SECRET_NAME = "jira-client-secret"
BUILDERS = {"app": [shell("compile", "true")]}


class MissingSecretTests(JiraMasterTestCase):
    def secrets_dir(self) -> str:
        """A secrets directory for SecretInAFile that lacks the client secret."""
        path = os.path.abspath(self.mktemp())
        os.makedirs(path)
        return path

    def add_secret(self, directory: str) -> None:
        path = os.path.join(directory, SECRET_NAME)
        with open(path, "w", encoding="utf-8") as secret_file:
            secret_file.write(DEFAULT_CLIENT_SECRET + "\n")
        os.chmod(path, 0o600)  # SecretInAFile refuses a file that others can read

    def reporter(self, name: str = "jira-builds") -> JiraBuildReporter:
        arguments = jira_arguments(self.sim, client_secret=util.Secret(SECRET_NAME))
        return JiraBuildReporter(name=name, **arguments)

    def service(self, name: str) -> Any:
        return self.master.namedServices["services"].namedServices[name]

    def final_builds(self) -> list[dict[str, Any]]:
        return [
            entity.current
            for entity in self.sim.simulator.builds.values()
            if entity.current["state"] != "in_progress"
        ]

    @coroutine_test
    async def test_a_missing_secret_at_start_leaves_the_master_up_and_a_restart_heals_it(
        self,
    ) -> None:
        probe = await self.start_simulator()
        directory = self.secrets_dir()
        original_stop = reactor.stop
        config = {
            "db_url": "sqlite:///" + os.path.abspath(self.mktemp()) + ".sqlite",
            "basedir": os.path.abspath(self.mktemp()),
        }
        providers = [secrets.SecretInAFile(dirname=directory)]
        with captured_log() as lines:
            # The harness fails the test if the master's start stopped the reactor.
            await self.start_master(
                [self.reporter()], BUILDERS, secretsProviders=providers, **config
            )
            build = await self.build_with_change(branch="PROJ-1")
        self.assertEqual(build["results"], SUCCESS)
        (error,) = [line for line in lines if "cannot render" in line and "{" not in line]
        self.assertIn("jira-builds: cannot render client_secret=", error)
        self.assertIn(f"util.Secret('{SECRET_NAME}')", error)
        self.assertIn("is not found in any provider", error)
        self.assertIn("stays idle", error)
        self.assertIn("restart the master", error)
        self.assertIn("jira-builds", self.service("jira-builds").idle_reason)
        # Idle: nothing was asked of Jira, not even a token.
        self.assertEqual(self.sim.simulator.requests, [])
        self.assertEqual(self.sim.simulator.issued_tokens, [])
        # The master stops (Buildbot's own reporters leave it hanging here).
        await self.tested_master.shutdown()
        reactor.stop = original_stop

        # The secret exists now; the restarted master's reporter works.
        self.add_secret(directory)
        self.sim = probe
        providers = [secrets.SecretInAFile(dirname=directory)]
        await self.start_master([self.reporter()], BUILDERS, secretsProviders=providers, **config)
        self.assertIsNone(self.service("jira-builds").idle_reason)
        await self.build_with_change(branch="PROJ-2")
        (stored,) = await until(self.final_builds)
        self.assertEqual(stored["issueKeys"], ["PROJ-2"])

    @coroutine_test
    async def test_a_reporter_with_a_missing_secret_added_on_reconfig_stays_idle(self) -> None:
        await self.start_simulator()
        directory = self.secrets_dir()
        self.add_secret(directory)
        providers = [secrets.SecretInAFile(dirname=directory)]
        await self.start_master([self.reporter()], BUILDERS, secretsProviders=providers)
        await self.build_with_change(branch="PROJ-1")
        await until(self.final_builds)

        # A second reporter names a secret that no file holds.
        missing_secret = "jira-more-secret"
        missing = JiraBuildReporter(
            name="jira-more",
            **jira_arguments(self.sim, client_secret=util.Secret(missing_secret)),
        )
        config = dict(self.master_config_dict, services=[self.reporter(), missing])
        with captured_log() as lines:
            self.master.config_loader.config_dict = config
            await self.master.doReconfig()
        expected = f"jira-more: cannot render client_secret=util.Secret('{missing_secret}')"
        self.assertTrue([line for line in lines if expected in line])
        self.assertTrue([line for line in lines if "configuration update complete" in line])
        self.assertIsNotNone(self.service("jira-more").idle_reason)
        # The first reporter goes on working; the master stops cleanly.
        await self.build_with_change(branch="PROJ-2")
        await until(lambda: len(self.final_builds()) == 2)
        await self.tested_master.shutdown()
        self.assertTrue(self.tested_master.is_master_shutdown)

    @coroutine_test
    async def test_a_working_reporter_whose_secret_goes_stays_idle_after_a_reconfig(self) -> None:
        await self.start_simulator()
        directory = self.secrets_dir()
        self.add_secret(directory)
        providers = [secrets.SecretInAFile(dirname=directory)]
        # A witness reporter with a secret of its own, on a pipeline of its own.
        witness_secret = os.path.join(directory, "witness-secret")
        with open(witness_secret, "w", encoding="utf-8") as secret_file:
            secret_file.write(DEFAULT_CLIENT_SECRET)
        os.chmod(witness_secret, 0o600)
        witness = JiraBuildReporter(
            name="witness",
            pipeline_id="witness",
            **jira_arguments(self.sim, client_secret=util.Secret("witness-secret")),
        )
        await self.start_master([self.reporter(), witness], BUILDERS, secretsProviders=providers)
        await self.build_with_change(branch="PROJ-1")
        await until(lambda: len(self.final_builds()) == 2)

        # Another directory, with the witness's secret only (SecretInAFile reads
        # its files again on a reconfig only when its arguments change).
        moved = self.secrets_dir()
        os.rename(witness_secret, os.path.join(moved, "witness-secret"))
        config = dict(
            self.master_config_dict,
            services=[self.reporter(), witness],
            secretsProviders=[secrets.SecretInAFile(dirname=moved)],
        )
        self.master.config_loader.config_dict = config
        # Buildbot reconfigures the services before the secrets providers: the
        # first reconfig still renders the secrets as they were, the next does not.
        await self.master.doReconfig()
        self.assertIsNone(self.service("jira-builds").idle_reason)
        await self.master.doReconfig()
        self.assertIn("stays idle", self.service("jira-builds").idle_reason)
        build = await self.build_with_change(branch="PROJ-2")
        self.assertEqual(build["results"], SUCCESS)

        def pipelines_of_build_2() -> list[str]:
            return [
                b["pipelineId"] for b in self.final_builds() if b["buildNumber"] == build["number"]
            ]

        # The witness reports the build; the idle reporter took no event.
        self.assertEqual(await until(pipelines_of_build_2), ["witness"])
        await self.tested_master.shutdown()
        self.assertEqual(pipelines_of_build_2(), ["witness"])
