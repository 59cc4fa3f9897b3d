"""JiraFeatureFlag in a real master with a real local worker, against the simulator on loopback."""

from __future__ import annotations

from typing import Any

from buildbot.plugins import steps
from buildbot.process.results import SUCCESS, WARNINGS

from buildbot_jira.simulator import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from buildbot_jira.steps import JiraFeatureFlag
from tests.masters import JiraMasterTestCase, jira_arguments, shell
from tests.support import coroutine_test

FLAGS_FILE = """\
flags:
  new-checkout: {enabled: true, rollout_percentage: 25}
  dark-mode: false
  search-v2:
    issue_keys: [ABC-8]
    environments:
      staging: true
      production: {enabled: true, rollout_text: beta users}
"""


class FeatureFlagStepTests(JiraMasterTestCase):
    def flag_arguments(self, **extra: Any) -> dict[str, Any]:
        return jira_arguments(self.sim, environment="production", **extra)

    async def deploy(self, branch: str = "feature/ABC-7-checkout") -> dict[str, Any]:
        return await self.doForceBuild(
            useChange={
                "branch": branch,
                "comments": "a change",
                "revision": "0123456789abcdef0123456789abcdef01234567",
                "repository": "https://git.example.com/app.git",
                "author": "dev <dev@example.com>",
                "files": ["app.py"],
                "project": "app",
            },
            wantSteps=True,
            wantLogs=True,
        )

    @staticmethod
    def log_text(build: dict[str, Any], step_name: str) -> str:
        (step,) = [s for s in build["steps"] if s["name"] == step_name]
        (log,) = [log for log in step["logs"] if log["name"] == "jira feature flags"]
        return "\n".join(line[1:] for line in log["contents"]["content"].splitlines())

    def stored(self) -> dict[str, dict[str, Any]]:
        return {key: entity.current for key, entity in self.sim.simulator.feature_flags.items()}

    async def start_with_the_flag(self) -> None:
        await self.start_simulator()
        flag = JiraFeatureFlag(
            **self.flag_arguments(flag_key="new-checkout", enabled=True, rollout_percentage=25)
        )
        await self.start_master([], {"deploy": [shell("deploy", "true"), flag]})

    @coroutine_test
    async def test_the_flag_is_linked_to_the_issue_its_branch_names(self) -> None:
        await self.start_with_the_flag()
        build = await self.deploy()
        self.assertEqual(build["results"], SUCCESS)
        stored = self.stored()
        self.assertEqual(list(stored), ["new-checkout"])
        flag = stored["new-checkout"]
        self.assertEqual(flag["issueKeys"], ["ABC-7"])
        (detail,) = flag["details"]
        self.assertEqual(detail["environment"], {"name": "production", "type": "production"})
        self.assertEqual(detail["status"], {"enabled": True, "rollout": {"percentage": 25}})
        self.assertTrue(detail["url"].startswith("http://buildbot.example.com:8010/#/builders/"))
        self.assertEqual(self.sim.simulator.feature_flags_for_issue("ABC-7"), [flag])
        text = self.log_text(build, "jira-feature-flag")
        self.assertIn("Jira accepted: new-checkout", text)
        self.assertNotIn(DEFAULT_CLIENT_SECRET, text)

    @coroutine_test
    async def test_a_second_build_keeps_the_first_ones_environment(self) -> None:
        await self.start_simulator()
        staging = JiraFeatureFlag(
            **{
                **self.flag_arguments(flag_key="new-checkout", enabled=True),
                "environment": "staging",
                "name": "staging",
            }
        )
        production = JiraFeatureFlag(
            **self.flag_arguments(flag_key="new-checkout", enabled=False, name="production")
        )
        await self.start_master([], {"deploy": [staging, production]})
        build = await self.deploy()
        self.assertEqual(build["results"], SUCCESS)
        flag = self.stored()["new-checkout"]
        self.assertEqual(
            [(d["environment"]["name"], d["status"]["enabled"]) for d in flag["details"]],
            [("staging", True), ("production", False)],
        )
        # The summary is the most relevant environment's: production.
        self.assertEqual(flag["summary"]["status"], {"enabled": False})

    @coroutine_test
    async def test_a_flags_file_reports_all_its_flags(self) -> None:
        await self.start_simulator()
        await self.start_master(
            [],
            {
                "deploy": [
                    steps.StringDownload(FLAGS_FILE, workerdest="flags.yaml"),
                    JiraFeatureFlag(**self.flag_arguments(flags_file="flags.yaml")),
                ]
            },
        )
        build = await self.deploy()
        self.assertEqual(build["results"], SUCCESS)
        stored = self.stored()
        self.assertEqual(sorted(stored), ["dark-mode", "new-checkout", "search-v2"])
        self.assertEqual(stored["new-checkout"]["issueKeys"], ["ABC-7"])
        self.assertEqual(stored["search-v2"]["issueKeys"], ["ABC-8"])
        self.assertEqual(
            [d["environment"]["name"] for d in stored["search-v2"]["details"]],
            ["staging", "production"],
        )
        self.assertEqual(stored["dark-mode"]["details"][0]["status"], {"enabled": False})
        # One request carried all three.
        posts = [r for r in self.sim.simulator.requests if r.path.endswith("/bulk")]
        self.assertEqual([len(r.body["flags"]) for r in posts], [3])

    @coroutine_test
    async def test_jira_refusing_the_permission_warns_and_the_build_goes_on(self) -> None:
        await self.start_simulator(permissions={DEFAULT_CLIENT_ID: frozenset({"builds"})})
        flag = JiraFeatureFlag(**self.flag_arguments(flag_key="new-checkout", enabled=True))
        await self.start_master([], {"deploy": [flag, shell("after", "true")]})
        build = await self.deploy()
        self.assertEqual(build["results"], WARNINGS)
        self.assertEqual(self.stored(), {})
        (after,) = [s for s in build["steps"] if s["name"] == "after"]
        self.assertEqual(after["results"], SUCCESS)
        self.assertIn(
            "feature flags (write:feature-flag:jira)", self.log_text(build, "jira-feature-flag")
        )
