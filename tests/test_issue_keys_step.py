"""JiraIssueKeys: the keys are a property before the next step runs, in a real master."""

from __future__ import annotations

from typing import Any

from buildbot.plugins import steps
from buildbot.process.properties import Interpolate
from buildbot.process.results import SUCCESS, WARNINGS
from twisted.trial import unittest

from buildbot_jira.issue_keys_step import JiraIssueKeys, find_reporter
from buildbot_jira.reporters import JiraBuildReporter, JiraDeploymentReporter
from buildbot_jira.steps import JiraIssueKeys as ExportedJiraIssueKeys
from tests.masters import JiraMasterTestCase, jira_arguments, shell
from tests.support import coroutine_test, until

ECHO_KEYS = shell("show keys", Interpolate("echo keys=%(prop:jira_issue_keys)s"))


class FakeServices:
    """What find_reporter reads of a master: its services by name."""

    def __init__(self, *services: Any) -> None:
        self.namedServices = {service.name: service for service in services}


class FakeMaster:
    def __init__(self, *services: Any) -> None:
        self.namedServices = {"services": FakeServices(*services)}


def reporter(name: str) -> JiraBuildReporter:
    return JiraBuildReporter(
        name=name, site="example.atlassian.net", client_id="id", client_secret="secret"
    )


class FindReporterTests(unittest.TestCase):
    def test_the_only_jira_reporter_is_found_without_a_name(self) -> None:
        builds = reporter("jira-builds")
        other = FakeServices()  # not a Jira reporter
        other.name = "mail"  # type: ignore[attr-defined]
        self.assertIs(find_reporter(FakeMaster(builds, other), None), builds)

    def test_a_named_reporter_is_found_among_several(self) -> None:
        builds, more = reporter("jira-builds"), reporter("jira-more")
        self.assertIs(find_reporter(FakeMaster(builds, more), "jira-more"), more)

    def test_several_reporters_and_no_name_say_to_name_one(self) -> None:
        master = FakeMaster(reporter("jira-builds"), reporter("jira-more"))
        with self.assertRaisesRegex(LookupError, "'jira-builds', 'jira-more'.*reporter="):
            find_reporter(master, None)

    def test_an_unknown_name_lists_the_reporters_there_are(self) -> None:
        with self.assertRaisesRegex(LookupError, "'jira-bulds'.*has: 'jira-builds'"):
            find_reporter(FakeMaster(reporter("jira-builds")), "jira-bulds")

    def test_no_jira_reporter_at_all_is_said(self) -> None:
        with self.assertRaisesRegex(LookupError, "no Jira reporter"):
            find_reporter(FakeMaster(), None)

    def test_the_step_is_exported_from_steps(self) -> None:
        self.assertIs(ExportedJiraIssueKeys, JiraIssueKeys)


class IssueKeysStepTests(JiraMasterTestCase):
    async def start(self, build_steps: list[Any]) -> None:
        running = await self.start_simulator()
        await self.start_master(
            [JiraBuildReporter(name="jira-builds", **jira_arguments(running))],
            {"app": build_steps},
        )

    async def stdout_of(self, number: int, step: str) -> str:
        build = await self.master.data.get(("builders", "app", "builds", number))
        steps = await self.master.data.get(("builds", build["buildid"], "steps"))
        (shown,) = [s for s in steps if s["name"] == step]
        (stdio,) = await self.master.data.get(("steps", shown["stepid"], "logs"))
        contents = await self.master.data.get(("logs", stdio["logid"], "contents"))
        return "".join(line[1:] for line in contents["content"].splitlines(True))

    @coroutine_test
    async def test_every_build_shows_its_keys_in_the_first_step_after_it(self) -> None:
        await self.start([JiraIssueKeys(), ECHO_KEYS])
        for n in range(1, 13):
            build = await self.build_with_change(
                branch=f"feature/PROJ-{n}-work", comments=f"OPS-{n}: and more"
            )
            self.assertEqual(build["results"], SUCCESS)
            self.assertEqual(build["properties"]["jira_issue_keys"][0], [f"PROJ-{n}", f"OPS-{n}"])
            output = await self.stdout_of(build["number"], "show keys")
            self.assertIn(f"keys=['PROJ-{n}', 'OPS-{n}']", output)

    @coroutine_test
    async def test_a_build_without_keys_gets_no_property_and_still_succeeds(self) -> None:
        await self.start([JiraIssueKeys(), ECHO_KEYS])
        build = await self.build_with_change(branch="main", comments="tidy up")
        self.assertEqual(build["results"], SUCCESS)
        self.assertNotIn("jira_issue_keys", build["properties"])
        self.assertIn("keys=\n", await self.stdout_of(build["number"], "show keys"))

    @coroutine_test
    async def test_a_property_set_already_is_left_as_it_is(self) -> None:
        explicit = steps.SetProperty(property="jira_issue_keys", value="PROJ-7")
        await self.start([explicit, JiraIssueKeys(), ECHO_KEYS])
        build = await self.build_with_change(branch="PROJ-1")
        self.assertEqual(build["properties"]["jira_issue_keys"][0], "PROJ-7")

        # The reporter sends both with the final state: the branch's key and the property's.
        def final() -> list[dict[str, Any]]:
            stored = [entity.current for entity in self.sim.simulator.builds.values()]
            return [build for build in stored if build["state"] == "successful"]

        (stored,) = await until(final)
        self.assertEqual(stored["issueKeys"], ["PROJ-1", "PROJ-7"])

    @coroutine_test
    async def test_the_named_reporters_rules_find_the_keys(self) -> None:
        running = await self.start_simulator()
        deploy = JiraDeploymentReporter(
            name="jira-deploy",
            environment_id="prod",
            environment_name="prod",
            environment_type="production",
            **jira_arguments(running, projects=["PR"]),
        )
        await self.start_master(
            [JiraBuildReporter(name="jira-builds", **jira_arguments(running)), deploy],
            {"app": [JiraIssueKeys(reporter="jira-deploy"), ECHO_KEYS]},
        )
        # PR-24 is ignored as a pull-request number, unless PR is a project: the
        # build reporter's rules find no key here, the deployment reporter's do.
        build = await self.build_with_change(branch="main", comments="PR-24: patch")
        self.assertEqual(build["properties"]["jira_issue_keys"][0], ["PR-24"])

    @coroutine_test
    async def test_several_reporters_and_no_name_is_a_warning_not_a_failure(self) -> None:
        running = await self.start_simulator()
        await self.start_master(
            [
                JiraBuildReporter(name="jira-builds", **jira_arguments(running)),
                JiraBuildReporter(name="jira-more", **jira_arguments(running)),
            ],
            {"app": [JiraIssueKeys(), ECHO_KEYS]},
        )
        build = await self.build_with_change(branch="PROJ-1")
        self.assertEqual(build["results"], WARNINGS)
        steps = await self.master.data.get(("builds", build["buildid"], "steps"))
        (keys_step,) = [s for s in steps if s["name"] == "jira issue keys"]
        self.assertIn("name one with reporter=", keys_step["state_string"])
