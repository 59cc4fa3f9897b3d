"""JiraBuildReporter in a real master with a real local worker, against the simulator."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from buildbot.plugins import steps
from buildbot.process import buildstep
from buildbot.process.results import FAILURE, SUCCESS
from twisted.internet import defer

from buildbot_jira.reporters import JiraBuildReporter
from buildbot_jira.simulator.contract import entity_schema, validation_errors
from tests.masters import BUILDBOT_URL, JiraMasterTestCase, jira_arguments, shell
from tests.support import coroutine_test


class RecordTestResults(buildstep.BuildStep):
    """A step that records a test result set, as a test-running step would."""

    def __init__(self, *, passed: int, failed: int, **kwargs: object) -> None:
        super().__init__(name="tests", **kwargs)
        self.passed = passed
        self.failed = failed

    @defer.inlineCallbacks
    def run(self) -> Generator[defer.Deferred[Any], Any, int]:
        setid = yield self.addTestResultSet("unit tests", "pass_fail", "boolean")
        for number in range(self.passed + self.failed):
            self.addTestResult(setid, "1" if number < self.passed else "0", test_name=f"t{number}")
        return SUCCESS


class BuildReporterTests(JiraMasterTestCase):
    async def start(self, builders: dict | None = None, **reporter: object) -> None:
        running = await self.start_simulator()
        await self.start_master(
            [JiraBuildReporter(name="jira", **jira_arguments(running, **reporter))],
            builders or {"app": [shell("compile", "true")]},
        )

    def stored_builds(self) -> list[dict]:
        return [entity.current for entity in self.sim.simulator.builds.values()]

    def received_builds(self) -> list[dict]:
        """Every build payload the simulator received, in order."""
        return [
            build
            for request in self.sim.simulator.requests
            if request.path.endswith("/bulk") and isinstance(request.body, dict)
            for build in request.body.get("builds", [])
        ]

    @coroutine_test
    async def test_build_is_sent_in_progress_then_successful(self) -> None:
        await self.start()
        build = await self.build_with_change(
            branch="feature/PROJ-123-login", comments="PROJ-124: fix"
        )
        self.assertEqual(build["results"], SUCCESS)
        await self.until(lambda: any(b["state"] == "successful" for b in self.stored_builds()))
        states = [b["state"] for b in self.received_builds()]
        self.assertEqual(states[0], "in_progress")
        self.assertEqual(states[-1], "successful")
        (stored,) = self.stored_builds()
        self.assertEqual(stored["issueKeys"], ["PROJ-123", "PROJ-124"])
        self.assertEqual(stored["buildNumber"], build["number"])
        self.assertEqual(stored["displayName"], f"app #{build['number']}")
        self.assertEqual(stored["pipelineId"], "buildbot.example.com:8010/app")
        self.assertTrue(stored["url"].startswith(BUILDBOT_URL + "#/builders/"))
        self.assertTrue(stored["url"].endswith(f"/builds/{build['number']}"))
        (reference,) = stored["references"]
        self.assertEqual(reference["commit"]["id"], "0123456789abcdef0123456789abcdef01234567")
        self.assertEqual(reference["commit"]["repositoryUri"], "https://git.example.com/app.git")
        self.assertEqual(reference["ref"]["name"], "feature/PROJ-123-login")
        for payload in self.received_builds():
            self.assertEqual(validation_errors(entity_schema("builds"), payload), [])
        sequence = [b["updateSequenceNumber"] for b in self.received_builds()]
        self.assertEqual(sequence, sorted(set(sequence)))
        # The keys show on the build in Buildbot too.
        self.assertEqual(build["properties"]["jira_issue_keys"][0], ["PROJ-123", "PROJ-124"])

    @coroutine_test
    async def test_failing_build_arrives_as_failed(self) -> None:
        await self.start({"app": [shell("compile", "exit 1")]})
        build = await self.build_with_change(branch="PROJ-7-broken")
        self.assertEqual(build["results"], FAILURE)
        await self.until(lambda: any(b["state"] == "failed" for b in self.stored_builds()))
        (stored,) = self.stored_builds()
        self.assertEqual(stored["issueKeys"], ["PROJ-7"])

    @coroutine_test
    async def test_build_without_keys_sends_nothing(self) -> None:
        await self.start(debug=True)
        build = await self.build_with_change(branch="main", comments="tidy up")
        self.assertEqual(build["results"], SUCCESS)
        # A second, keyed build proves the reporter works and has sent what it had.
        await self.build_with_change(branch="PROJ-9")
        await self.until(lambda: any(b["state"] == "successful" for b in self.stored_builds()))
        numbers = {b["buildNumber"] for b in self.received_builds()}
        self.assertNotIn(build["number"], numbers)

    @coroutine_test
    async def test_test_result_sets_are_carried_in_test_info(self) -> None:
        await self.start({"app": [RecordTestResults(passed=40, failed=2)]})
        build = await self.build_with_change(branch="PROJ-5")
        await self.until(lambda: any(b["state"] == "successful" for b in self.stored_builds()))
        (stored,) = self.stored_builds()
        self.assertEqual(stored["buildNumber"], build["number"])
        self.assertEqual(
            stored["testInfo"],
            {"totalNumber": 42, "numberPassed": 40, "numberFailed": 2, "numberSkipped": 0},
        )

    @coroutine_test
    async def test_a_running_build_is_updated_when_a_step_records_tests(self) -> None:
        await self.start(
            {"app": [RecordTestResults(passed=3, failed=1), shell("package", "sleep 1")]},
            test_update_interval=0,
        )
        await self.build_with_change(branch="PROJ-8")
        await self.until(lambda: any(b["state"] == "successful" for b in self.stored_builds()))
        running = [b for b in self.received_builds() if b["state"] == "in_progress"]
        with_tests = [b for b in running if "testInfo" in b]
        self.assertTrue(with_tests, running)
        self.assertEqual(with_tests[0]["testInfo"]["numberFailed"], 1)
        self.assertNotIn("testInfo", running[0])  # the start carried no counts yet

    @coroutine_test
    async def test_test_count_properties_are_carried_in_test_info(self) -> None:
        counts = {"tests_passed": 7, "tests_failed": 1, "tests_skipped": 3}
        await self.start({"app": [steps.SetProperties(properties=counts)]})
        await self.build_with_change(branch="PROJ-6")
        await self.until(lambda: any(b["state"] == "successful" for b in self.stored_builds()))
        (stored,) = self.stored_builds()
        self.assertEqual(
            stored["testInfo"],
            {"totalNumber": 11, "numberPassed": 7, "numberFailed": 1, "numberSkipped": 3},
        )
