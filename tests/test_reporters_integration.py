"""JiraBuildReporter in a real master with a real local worker, against the simulator."""

from __future__ import annotations

import itertools
import os
from collections import Counter
from collections.abc import Generator
from typing import Any

import attrs
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


@attrs.frozen
class Read:
    """One data-API read of a generator: for which event (a number), of what kind, which build."""

    event: int
    kind: str
    buildid: int
    path: tuple[Any, ...]


class RecordingMaster:
    """The master as a generator sees it, with every data-API read added to ``reads``."""

    def __init__(
        self, master: Any, reads: list[Read], *, event: int, kind: str, buildid: int
    ) -> None:
        self._master = master

        class Data:
            async def get(self, path: tuple[Any, ...]) -> Any:
                reads.append(Read(event=event, kind=kind, buildid=buildid, path=path))
                return await master.data.get(path)

        self.data = Data()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._master, name)


class ReadCostTests(JiraMasterTestCase):
    """What the build reporter reads of the master per build, and that it stays flat."""

    async def start(self) -> JiraBuildReporter:
        running = await self.start_simulator()
        reporter = JiraBuildReporter(name="jira", test_update_interval=0, **jira_arguments(running))
        steps = [
            RecordTestResults(passed=2, failed=0),
            shell("compile", "true"),
            RecordTestResults(passed=3, failed=1),
            shell("skipped", "true", doStepIf=False),
            shell("package", "true"),
        ]
        await self.start_master([reporter], {"app": steps})
        return reporter

    def record_reads(self, reporter: JiraBuildReporter) -> list[Read]:
        """Every read the reporter's generator makes, by event ("new", "steps", ...) and build."""
        reads: list[Read] = []
        generator = reporter.events
        assert generator is not None
        generate, running_snapshot = generator.generate, generator.running_snapshot
        events = itertools.count(1)

        def recorded_generate(master: Any, owner: Any, key: tuple[str, ...], message: dict) -> Any:
            kind = "steps" if key[0] == "steps" else key[-1]
            proxy = RecordingMaster(
                master, reads, event=next(events), kind=kind, buildid=message["buildid"]
            )
            return generate(proxy, owner, key, message)

        async def recorded_refresh(master: Any, buildid: int) -> Any:
            proxy = RecordingMaster(
                master, reads, event=next(events), kind="refresh", buildid=buildid
            )
            return await running_snapshot(proxy, buildid)

        generator.generate = recorded_generate  # type: ignore[method-assign]
        generator.running_snapshot = recorded_refresh  # type: ignore[method-assign]
        return reads

    def final_build(self, number: int) -> dict | None:
        return next(
            (
                entity.current
                for entity in self.sim.simulator.builds.values()
                if entity.current["buildNumber"] == number
                and entity.current["state"] != "in_progress"
            ),
            None,
        )

    async def run_build(self, branch: str, comments: str = "a change") -> dict[str, Any]:
        change = {
            "branch": branch,
            "comments": comments,
            "revision": "0123456789abcdef0123456789abcdef01234567",
            "repository": "https://git.example.com/app.git",
            "author": "dev <dev@example.com>",
            "files": ["app.py"],
            "project": "app",
        }
        return await self.doForceBuild(useChange=change, wantSteps=True)

    @coroutine_test
    async def test_a_build_is_read_once_and_a_finished_step_reads_only_its_test_results(
        self,
    ) -> None:
        reads = self.record_reads(await self.start())
        keyed = [await self.run_build(f"feature/PROJ-{n}") for n in (1, 2)]
        unkeyed = await self.run_build("main", "tidy up")
        for build in keyed:
            await self.until(lambda build=build: self.final_build(build["number"]) is not None)
            stored = self.final_build(build["number"])
            assert stored is not None
            self.assertEqual(stored["testInfo"]["numberPassed"], 5)
            self.assertEqual(stored["testInfo"]["numberFailed"], 1)
        for build in [*keyed, unkeyed]:
            mine = [read for read in reads if read.buildid == build["buildid"]]
            paths = [read.path for read in mine]
            # Never Buildbot's history walk; the change of the build's sourcestamp, once.
            self.assertNotIn(("builds", build["buildid"], "changes"), paths)
            fixed = [p for p in paths if p[0] in ("buildrequests", "buildsets", "sourcestamps")]
            self.assertEqual(len(fixed), 3, mine)
            self.assertEqual(len(set(fixed)), 3, mine)
            on_steps = [read for read in mine if read.kind == "steps"]
            self.assertEqual([read for read in on_steps if "changes" in read.path], [])
            # A finished step reads the test results and nothing else.
            self.assertEqual([r for r in on_steps if r.path[-1] != "test_result_sets"], [])
            test_reads = Counter(r.event for r in on_steps if r.path[-1] == "test_result_sets")
            self.assertLessEqual(max(test_reads.values(), default=0), 1, mine)
            finished_steps = [s for s in build["steps"] if s["complete"] and s["started_at"]]
            self.assertLessEqual(sum(test_reads.values()), len(finished_steps), mine)
        # A build that names no issue is never sent: its steps cost no read at all.
        self.assertEqual(
            [r for r in reads if r.buildid == unkeyed["buildid"] and r.kind == "steps"], []
        )
        # The builder's name is read once, for the first build.
        self.assertEqual([r.path for r in reads if r.path[0] == "builders"], [reads[0].path])

    @coroutine_test
    async def test_the_database_calls_per_build_stay_flat_as_branches_pile_up(self) -> None:
        await self.start()
        calls = [0]
        pool = self.master.db.pool
        for name in ("do", "do_with_transaction"):
            original = getattr(pool, name)

            def counting(work: Any, *args: Any, original: Any = original, **kwargs: Any) -> Any:
                # The outbox's own saves go to the state table; everything else
                # is a read or write of builds, steps, changes and the like.
                if not work.__code__.co_filename.endswith(os.path.join("db", "state.py")):
                    calls[0] += 1
                return original(work, *args, **kwargs)

            setattr(pool, name, counting)
        windows = []
        number = 0
        for _window in range(3):
            before = calls[0]
            for _build in range(4):
                number += 1  # a new branch for every build: the feature-branch workflow
                build = await self.run_build(f"feature/PROJ-{number}-work")
                await self.until(lambda build=build: self.final_build(build["number"]) is not None)
            windows.append((calls[0] - before) / 4)
        print(f"\ndatabase calls per build, by window of 4 builds: {windows}")
        self.assertLessEqual(max(windows), windows[0] * 1.1 + 1, windows)
