"""JiraEventGenerator and BuildCache: what a generator reads of a build, and when."""

from __future__ import annotations

import re
from typing import Any

from buildbot.process.results import SKIPPED, SUCCESS
from buildbot.test import fakedb
from buildbot.test.fake.fakemaster import make_master
from buildbot.test.reactor import TestReactorMixin
from twisted.internet import defer
from twisted.trial import unittest

from buildbot_jira.events import (
    BuildCache,
    BuildEvent,
    JiraEventGenerator,
    KnownBuild,
    read_change_records,
)
from buildbot_jira.jira.model import TestInfo
from buildbot_jira.mapping.builds import BuildMapping, BuildSnapshot, SourceStamp
from buildbot_jira.mapping.keys import IssueKeyRules
from tests.support import coroutine_test

MASTER = 1
REPOSITORY = "https://git.example.com/app.git"


class FakeData:
    """The master's data API: answers from ``answers`` and remembers every path read."""

    def __init__(self, answers: dict[tuple[Any, ...], Any]) -> None:
        self.answers = answers
        self.reads: list[tuple[Any, ...]] = []
        #: Paths whose read waits until the test fires the Deferred.
        self.held: dict[tuple[Any, ...], defer.Deferred[None]] = {}

    async def get(self, path: tuple[Any, ...]) -> Any:
        self.reads.append(path)
        if path in self.held:
            await self.held[path]
        answer = self.answers.get(path)
        if isinstance(answer, Exception):
            raise answer
        return answer


class FakeConfig:
    buildbotURL = "http://ci.example.com/"


class FakeMaster:
    masterid = MASTER
    config = FakeConfig()
    #: The master's database, for the reads that go to it (change records).
    db: Any = None

    def __init__(self, answers: dict[tuple[Any, ...], Any]) -> None:
        self.data = FakeData(answers)


def build_message(buildid: int = 10, **fields: Any) -> dict[str, Any]:
    """A build's data as its "new" event carries it."""
    return {
        "buildid": buildid,
        "number": buildid + 100,
        "builderid": 2,
        "buildrequestid": buildid + 1000,
        "masterid": MASTER,
        "state_string": "created",
        "results": None,
        "complete": False,
        "started_at": 1_700_000_000,
        "complete_at": None,
        **fields,
    }


def answers_for(
    buildid: int = 10,
    *,
    branch: str = "feature/PROJ-1-login",
    comments: str = "PROJ-2: fix",
    builder: str = "app",
) -> dict[tuple[Any, ...], Any]:
    """What the data API holds of one build."""
    ssid = buildid + 500
    return {
        ("builders", 2): {"builderid": 2, "name": builder},
        ("buildrequests", buildid + 1000): {"buildsetid": buildid + 2000},
        ("buildsets", buildid + 2000): {
            "sourcestamps": [
                {
                    "ssid": ssid,
                    "codebase": "",
                    "repository": "https://git.example.com/app.git",
                    "branch": branch,
                    "revision": "abc123",
                }
            ]
        },
        ("sourcestamps", ssid, "changes"): [{"comments": comments}],
        ("builds", buildid, "properties"): {"title": ("PROJ-3 in a title", "change")},
        ("builds", buildid, "test_result_sets"): [{"tests_passed": 4, "tests_failed": 1}],
        ("builds", buildid): build_message(buildid),
    }


def step_message(buildid: int = 10, **fields: Any) -> dict[str, Any]:
    return {
        "stepid": 77,
        "number": 1,
        "name": "tests",
        "buildid": buildid,
        "started_at": 1_700_000_001,
        "complete": True,
        "results": SUCCESS,
        **fields,
    }


NEW = ("builds", "10", "new")
FINISHED = ("builds", "10", "finished")
STEP = ("steps", "77", "finished")


class GeneratorTests(unittest.TestCase):
    def setUp(self) -> None:
        self.master = FakeMaster(answers_for())
        self.generator = JiraEventGenerator(step_events=("finished",))

    @property
    def reads(self) -> list[tuple[Any, ...]]:
        return self.master.data.reads

    async def event(
        self,
        key: tuple[str, ...],
        message: dict[str, Any],
        generator: JiraEventGenerator | None = None,
    ) -> BuildEvent | None:
        return await (generator or self.generator).generate(self.master, None, key, message)

    @coroutine_test
    async def test_a_new_build_is_read_once_without_walking_history(self) -> None:
        event = await self.event(NEW, build_message())
        assert event is not None
        snapshot = event.snapshot
        self.assertEqual(snapshot.builder_name, "app")
        self.assertEqual(snapshot.sourcestamps[0].branch, "feature/PROJ-1-login")
        self.assertEqual(snapshot.url, "http://ci.example.com/#/builders/2/builds/110")
        self.assertEqual(snapshot.properties, {"title": "PROJ-3 in a title"})
        self.assertEqual(BuildMapping().issue_keys(snapshot).keys, ("PROJ-1", "PROJ-3", "PROJ-2"))
        self.assertEqual(
            self.reads,
            [
                ("builders", 2),
                ("buildrequests", 1010),
                ("buildsets", 2010),
                ("sourcestamps", 510, "changes"),
                ("builds", 10, "properties"),
            ],
        )
        # The commit messages were searched and are not kept.
        self.assertEqual(snapshot.change_comments, ())
        assert snapshot.source_keys is not None
        self.assertEqual(snapshot.source_keys.change_keys, ("PROJ-2",))
        self.assertIsNone(snapshot.test_counts)

    @coroutine_test
    async def test_later_events_read_only_what_can_change(self) -> None:
        await self.event(NEW, build_message())
        del self.reads[:]
        step = await self.event(STEP, step_message())
        assert step is not None
        self.assertEqual(step.snapshot.test_counts, TestInfo(passed=4, failed=1))
        self.assertEqual(step.step, step_message())
        self.assertEqual(
            self.reads, [("builds", 10, "test_result_sets"), ("builds", 10, "properties")]
        )
        del self.reads[:]
        done = build_message(results=SUCCESS, complete=True, state_string="finished")
        finished = await self.event(FINISHED, done)
        assert finished is not None
        self.assertTrue(finished.snapshot.complete)
        self.assertEqual(finished.snapshot.state_string, "finished")
        self.assertEqual(BuildMapping().issue_keys(finished.snapshot).keys[-1], "PROJ-2")
        self.assertEqual(
            self.reads, [("builds", 10, "test_result_sets"), ("builds", 10, "properties")]
        )
        self.assertEqual(len(self.generator.builds), 0)  # dropped when it finished

    @coroutine_test
    async def test_a_step_event_may_read_the_test_results_alone(self) -> None:
        generator = JiraEventGenerator(step_events=("finished",), step_properties=False)
        await self.event(NEW, build_message(), generator)
        del self.reads[:]
        step = await self.event(STEP, step_message(), generator)
        skipped = await self.event(STEP, step_message(results=SKIPPED), generator)
        self.assertEqual(self.reads, [("builds", 10, "test_result_sets")])
        for event in (step, skipped):
            assert event is not None
            self.assertEqual(event.snapshot.properties, {"title": "PROJ-3 in a title"})
            self.assertEqual(event.snapshot.test_counts, TestInfo(passed=4, failed=1))
        # The properties as last read: a running snapshot reads them afresh.
        self.master.data.answers[("builds", 10, "properties")] = {"tests_passed": (9, "step")}
        await generator.running_snapshot(self.master, 10)
        later = await self.event(STEP, step_message(), generator)
        assert later is not None
        self.assertEqual(later.snapshot.properties, {"tests_passed": 9})

    @coroutine_test
    async def test_a_skipped_step_reads_no_test_results(self) -> None:
        await self.event(NEW, build_message())
        del self.reads[:]
        await self.event(STEP, step_message(results=SKIPPED))
        await self.event(STEP, step_message(started_at=None))
        self.assertEqual(self.reads, [("builds", 10, "properties")] * 2)

    @coroutine_test
    async def test_without_test_results_none_are_read(self) -> None:
        generator = JiraEventGenerator(step_events=("finished",), test_results=False)
        await self.event(NEW, build_message(), generator)
        await self.event(STEP, step_message(), generator)
        await self.event(FINISHED, build_message(complete=True, results=SUCCESS), generator)
        self.assertNotIn(("builds", 10, "test_result_sets"), self.reads)

    @coroutine_test
    async def test_the_builder_name_is_read_once_per_builder(self) -> None:
        self.master.data.answers.update(answers_for(11))
        await self.event(NEW, build_message())
        await self.event(("builds", "11", "new"), build_message(11))
        self.assertEqual(self.reads.count(("builders", 2)), 1)

    @coroutine_test
    async def test_other_masters_builds_cost_no_reads_at_all(self) -> None:
        other = build_message(masterid=2)
        self.assertIsNone(await self.event(NEW, other))
        self.assertIsNone(await self.event(STEP, step_message()))
        self.assertIsNone(await self.event(FINISHED, {**other, "complete": True}))
        self.assertEqual(self.reads, [])
        self.assertEqual(len(self.generator.builds), 0)

    @coroutine_test
    async def test_a_step_of_an_unknown_build_of_another_master_is_read_once(self) -> None:
        self.master.data.answers[("builds", 10)] = build_message(masterid=2)
        self.assertIsNone(await self.event(STEP, step_message()))
        self.assertIsNone(await self.event(STEP, step_message()))
        self.assertEqual(self.reads, [("builds", 10)])

    @coroutine_test
    async def test_builds_of_builders_and_branches_not_reported_are_read_no_further(self) -> None:
        cases = {
            "builder": JiraEventGenerator(builders=["other"], step_events=("finished",)),
            "branch": JiraEventGenerator(
                branches=[re.compile("^release/")], step_events=("finished",)
            ),
        }
        for name, generator in cases.items():
            del self.reads[:]
            self.assertIsNone(await self.event(NEW, build_message(), generator), name)
            deciding = list(self.reads)
            self.assertNotIn(("sourcestamps", 510, "changes"), deciding, name)
            self.assertIsNone(await self.event(STEP, step_message(), generator), name)
            self.assertEqual(self.reads, deciding, name)  # the step cost nothing

    @coroutine_test
    async def test_a_build_that_was_forgotten_is_read_again_on_its_next_event(self) -> None:
        # After a reconfig (a new generator) or when the cache dropped it.
        step = await self.event(STEP, step_message())
        assert step is not None
        self.assertEqual(step.snapshot.test_counts, TestInfo(passed=4, failed=1))
        self.assertIn(("builds", 10), self.reads)
        self.assertEqual(self.reads.count(("builds", 10, "test_result_sets")), 1)
        self.assertEqual(self.reads.count(("sourcestamps", 510, "changes")), 1)
        # A skipped step still reads the build's results once: earlier steps count.
        generator = JiraEventGenerator(step_events=("finished",))
        del self.reads[:]
        skipped = await self.event(STEP, step_message(results=SKIPPED), generator)
        assert skipped is not None
        self.assertEqual(skipped.snapshot.test_counts, TestInfo(passed=4, failed=1))
        self.assertEqual(self.reads.count(("builds", 10, "test_result_sets")), 1)

    @coroutine_test
    async def test_events_that_arrive_while_a_build_is_read_wait_for_that_read(self) -> None:
        held: defer.Deferred[None] = defer.Deferred()
        self.master.data.held[("sourcestamps", 510, "changes")] = held
        new = defer.ensureDeferred(self.event(NEW, build_message()))
        step = defer.ensureDeferred(self.event(STEP, step_message()))
        held.callback(None)
        new_event, step_event = await new, await step
        assert new_event is not None
        assert step_event is not None
        self.assertEqual(self.reads.count(("sourcestamps", 510, "changes")), 1)
        self.assertEqual(step_event.snapshot.source_keys, new_event.snapshot.source_keys)

    @coroutine_test
    async def test_a_failed_read_is_not_remembered(self) -> None:
        self.master.data.answers[("buildsets", 2010)] = RuntimeError("database gone")
        with self.assertRaises(RuntimeError):
            await self.event(NEW, build_message())
        self.assertEqual(len(self.generator.builds), 0)
        self.master.data.answers.update(answers_for())
        event = await self.event(STEP, step_message())
        assert event is not None
        self.assertEqual(event.snapshot.builder_name, "app")

    @coroutine_test
    async def test_a_running_snapshot_reads_the_build_and_its_properties(self) -> None:
        await self.event(NEW, build_message())
        await self.event(STEP, step_message())
        del self.reads[:]
        self.master.data.answers[("builds", 10)] = build_message(state_string="building")
        snapshot = await self.generator.running_snapshot(self.master, 10)
        assert snapshot is not None
        self.assertEqual(snapshot.state_string, "building")
        self.assertEqual(snapshot.test_counts, TestInfo(passed=4, failed=1))
        self.assertEqual(self.reads, [("builds", 10), ("builds", 10, "properties")])
        self.master.data.answers[("builds", 10)] = build_message(complete=True)
        self.assertIsNone(await self.generator.running_snapshot(self.master, 10))

    @coroutine_test
    async def test_the_keys_follow_the_generators_rules(self) -> None:
        rules = IssueKeyRules(projects={"OPS"})
        self.master.data.answers[("sourcestamps", 510, "changes")] = [{"comments": "OPS-4 PROJ-5"}]
        generator = JiraEventGenerator(mapping=BuildMapping(rules=rules))
        event = await self.event(NEW, build_message(), generator)
        assert event is not None
        assert event.snapshot.source_keys is not None
        self.assertEqual(event.snapshot.source_keys.change_keys, ("OPS-4",))


def known(buildid: int) -> KnownBuild:
    return KnownBuild(
        base=BuildSnapshot(
            buildid=buildid, number=1, builderid=1, builder_name="app", masterid=1, url="u"
        )
    )


class BuildCacheTests(unittest.TestCase):
    def test_it_holds_at_most_size_builds_and_forgets_the_least_recently_used(self) -> None:
        cache = BuildCache(size=2)
        first, second, third = known(1), known(2), known(3)
        cache.put(1, first)
        cache.put(2, second)
        self.assertIs(cache.get(1), first)  # used: now the most recent
        cache.put(3, third)
        self.assertEqual(len(cache), 2)
        self.assertIsNone(cache.get(2))
        self.assertIs(cache.get(1), first)
        self.assertIs(cache.get(3), third)

    def test_a_dropped_build_is_forgotten(self) -> None:
        cache = BuildCache()
        cache.put(1, known(1))
        cache.drop(1)
        cache.drop(2)  # unknown: nothing happens
        self.assertIsNone(cache.get(1))
        self.assertEqual(len(cache), 0)

    @coroutine_test
    async def test_a_generator_stays_within_its_cache_and_refills_what_it_lost(self) -> None:
        answers: dict[tuple[Any, ...], Any] = {}
        for buildid in (10, 11, 12):
            answers.update(answers_for(buildid))
        master = FakeMaster(answers)
        generator = JiraEventGenerator(step_events=("finished",), cache=BuildCache(size=2))
        for buildid in (10, 11, 12):  # builds whose "finished" never comes
            await generator.generate(
                master, None, ("builds", str(buildid), "new"), build_message(buildid)
            )
        self.assertEqual(len(generator.builds), 2)
        self.assertIsNone(generator.builds.get(10))
        event = await generator.generate(master, None, STEP, step_message(10))
        assert event is not None
        self.assertEqual(event.snapshot.buildid, 10)
        self.assertEqual(master.data.reads.count(("sourcestamps", 510, "changes")), 2)
        self.assertEqual(len(generator.builds), 2)


class ChangeRecordTests(TestReactorMixin, unittest.TestCase):
    """The change records of a revision or a range, from a real (in-memory) database."""

    async def make_master(self) -> Any:
        self.setup_test_reactor()
        master = await make_master(self, wantDb=True)
        rows: list[Any] = [fakedb.SourceStamp(id=1)]
        for changeid, branch, codebase, repository in (
            (1, "release", "", REPOSITORY),
            (2, "feature/X", "", REPOSITORY),
            (3, "release", "docs", REPOSITORY),
            (4, "release", "", "https://git.example.com/other.git"),
            (5, "release", "", REPOSITORY),
            (6, "release", "", REPOSITORY),
        ):
            rows.append(
                fakedb.Change(
                    changeid=changeid,
                    branch=branch,
                    codebase=codebase,
                    repository=repository,
                    revision=f"r{changeid}",
                    comments=f"PROJ-{changeid}: change",
                    sourcestampid=1,
                )
            )
        await master.db.insert_test_data(rows)
        return master

    @coroutine_test
    async def test_records_of_a_branch_codebase_and_repository_newest_first(self) -> None:
        master = await self.make_master()
        stamp = SourceStamp(repository=REPOSITORY, branch="release")
        records = await read_change_records(master, stamp, limit=10)
        self.assertEqual([r.changeid for r in records], [6, 5, 1])
        self.assertEqual(records[0].comments, "PROJ-6: change")
        ranged = await read_change_records(master, stamp, after=1, upto=5, limit=10)
        self.assertEqual([r.changeid for r in ranged], [5])
        self.assertEqual(len(await read_change_records(master, stamp, limit=1)), 1)
        one = await read_change_records(master, stamp, revision="r5", limit=10)
        self.assertEqual([r.changeid for r in one], [5])
        # A forced build whose form leaves the repository blank matches any.
        blank = SourceStamp(branch="release")
        everywhere = await read_change_records(master, blank, limit=10)
        self.assertEqual([r.changeid for r in everywhere], [6, 5, 4, 1])

    @coroutine_test
    async def test_a_forced_build_of_a_revision_takes_the_keys_of_its_change(self) -> None:
        database = await self.make_master()
        answers = answers_for(branch="release")
        answers[("buildsets", 2010)]["sourcestamps"][0]["revision"] = "r5"
        answers[("sourcestamps", 510, "changes")] = []  # what a forced build carries
        master = FakeMaster(answers)
        master.db = database.db
        generator = JiraEventGenerator()
        event = await generator.generate(master, None, NEW, build_message())
        assert event is not None
        assert event.snapshot.source_keys is not None
        self.assertEqual(event.snapshot.source_keys.change_keys, ("PROJ-5",))
        # A revision Buildbot never saw names nothing.
        answers[("buildsets", 2010)]["sourcestamps"][0]["revision"] = "unseen"
        event = await JiraEventGenerator().generate(master, None, NEW, build_message())
        assert event is not None
        assert event.snapshot.source_keys is not None
        self.assertEqual(event.snapshot.source_keys.change_keys, ())
