"""Nothing lost, nothing blocked: real masters under Jira faults and bad input."""

from __future__ import annotations

import itertools
import os
from typing import Any

from buildbot.plugins import steps
from buildbot.process.results import SUCCESS
from twisted.internet import defer, reactor, task

from buildbot_jira.reporters import JiraBuildReporter
from buildbot_jira.simulator import JiraSimulator
from buildbot_jira.simulator.contract import entity_schema, validation_errors
from tests.masters import JiraMasterTestCase, jira_arguments, shell
from tests.support import SECRET, captured_log, coroutine_test

CHANGE = {
    "comments": "a change",
    "revision": "0123456789abcdef0123456789abcdef01234567",
    "repository": "https://git.example.com/app.git",
    "author": "dev <dev@example.com>",
    "files": ["app.py"],
    "project": "app",
}
FAST_RETRIES = {"min_backoff": 0.2, "max_backoff": 1.0, "timeout": 2.0}


class ReliabilityTestCase(JiraMasterTestCase):
    def service(self, name: str) -> Any:
        """The running service ``name`` of the master."""
        return self.master.namedServices["services"].namedServices[name]

    def reporter(self, **extra: Any) -> JiraBuildReporter:
        return JiraBuildReporter(
            name="jira", **jira_arguments(self.sim, **{**FAST_RETRIES, **extra})
        )

    def final_builds(self) -> dict[tuple[str, int], dict]:
        """Builds whose final state Jira holds, by (pipeline ID, build number)."""
        return {
            key: entity.current
            for key, entity in self.sim.simulator.builds.items()
            if entity.current["state"] != "in_progress"
        }

    def final_numbers(self) -> list[int]:
        """The build numbers of :meth:`final_builds` (for one-builder masters)."""
        return sorted(number for _pipeline, number in self.final_builds())

    def assert_never_older_after_newer(self) -> None:
        """Per build, no update Jira accepted is older than one accepted before it.

        The same update may arrive twice (an answer slower than the timeout is
        sent again); Jira keeps one.
        """
        seen: dict[tuple[str, int], int] = {}
        for request in self.sim.simulator.requests:
            if request.status != 202 or not isinstance(request.body, dict):
                continue
            for build in request.body.get("builds", []):
                key = (build["pipelineId"], build["buildNumber"])
                self.assertGreaterEqual(build["updateSequenceNumber"], seen.get(key, 0), key)
                seen[key] = build["updateSequenceNumber"]
        for entity in self.sim.simulator.builds.values():
            states = [version["state"] for version in entity.history]
            regressions = [
                (a, b)
                for a, b in itertools.pairwise(states)
                if a != "in_progress" and b == "in_progress"
            ]
            self.assertFalse(regressions, states)


class OutageTests(ReliabilityTestCase):
    @coroutine_test
    async def test_builds_during_a_503_outage_all_arrive_after_it(self) -> None:
        await self.start_simulator()
        await self.start_master([self.reporter()], {"app": [shell("compile", "true")]})
        self.sim.simulator.fail_next(10_000, 503, retry_after=0.3)
        numbers = []
        for n in range(20):
            build = await self.build_with_change(branch=f"PROJ-{n + 1}")
            numbers.append(build["number"])
        self.assertFalse(self.final_builds())
        outbox = self.service("jira").outbox
        with captured_log() as lines:
            self.sim.simulator.clear_faults()
            await self.until(lambda: len(self.final_builds()) == 20 and not len(outbox), seconds=30)
        self.assertEqual(self.final_numbers(), sorted(numbers))
        self.assertTrue(all(b["state"] == "successful" for b in self.final_builds().values()))
        self.assert_never_older_after_newer()
        self.assertTrue(any("held during" in line for line in lines))

    @coroutine_test
    async def test_pending_updates_survive_a_master_restart(self) -> None:
        # A port where nothing listens: connections are refused, as when Jira is unreachable.
        probe = await self.start_simulator()
        port = int(probe.url.rsplit(":", 1)[1])
        await probe.stop()
        db_url = "sqlite:///" + os.path.abspath(self.mktemp()) + ".sqlite"
        original_stop = reactor.stop
        # A restarted master keeps its base directory, so its name and master ID.
        config = {"db_url": db_url, "basedir": os.path.abspath(self.mktemp())}
        await self.start_master([self.reporter()], {"app": [shell("compile", "true")]}, **config)
        numbers = [(await self.build_with_change(branch=f"PROJ-{n}"))["number"] for n in (1, 2, 3)]
        await self.tested_master.shutdown()
        # The harness patches reactor.stop for each master; give the next one the original.
        reactor.stop = original_stop

        # Jira is back on the same address; a new master process starts on the same database.
        simulator = JiraSimulator()
        running = await simulator.listen(port=port)
        self.addCleanup(lambda: defer.Deferred.fromCoroutine(running.stop()))
        self.sim = running
        await self.start_master([self.reporter()], {"app": [shell("compile", "true")]}, **config)
        await self.until(lambda: len(self.final_builds()) == 3, seconds=30)
        self.assertEqual(self.final_numbers(), sorted(numbers))

    @coroutine_test
    async def test_429_revoked_token_and_slow_answers_are_all_delivered(self) -> None:
        await self.start_simulator()
        await self.start_master([self.reporter()], {"app": [shell("compile", "true")]})
        sim = self.sim.simulator
        sim.fail_next(2, 429, retry_after=0.5)
        await self.build_with_change(branch="PROJ-1")
        await self.until(lambda: len(self.final_builds()) == 1)
        sim.revoke_tokens()
        await self.build_with_change(branch="PROJ-2")
        await self.until(lambda: len(self.final_builds()) == 2)
        sim.set_delay(3)  # slower than the 2 s timeout
        build = await self.build_with_change(branch="PROJ-3")
        sim.set_delay(0)
        await self.until(lambda: build["number"] in self.final_numbers(), seconds=30)
        self.assertEqual(len(self.final_builds()), 3)
        self.assertLessEqual(sim.token_requests, 4)
        self.assertLessEqual(sim.api_requests, 40)
        self.assert_never_older_after_newer()


class BurstTests(ReliabilityTestCase):
    """A real master's burst; ``tests/test_outbox.py`` sends 200 builds on a fake clock."""

    @coroutine_test
    async def test_a_burst_of_builds_needs_far_fewer_requests_than_builds(self) -> None:
        await self.start_simulator()
        # Steps that run on the master: the burst measures the reporter, not the worker.
        builders = {f"b{n}": [steps.SetProperty(property="x", value="y")] for n in range(8)}
        await self.start_master([self.reporter()], builders)
        # Jira Cloud answers in a few hundred milliseconds; while a request is
        # in flight, the updates of other builds collect for the next one.
        self.sim.simulator.set_delay(1.0)
        changes = [
            self.master.data.updates.addChange(
                **{**CHANGE, "revision": f"{n:040x}"}, branch=f"PROJ-{n + 1}"
            )
            for n in range(3)
        ]
        await defer.gatherResults(changes)  # 3 changes x 8 builders = 24 builds
        await self.until(lambda: len(self.final_builds()) == 24, seconds=60)
        posts = [r for r in self.sim.simulator.requests if r.path.endswith("/bulk")]
        # 48 updates (start and end of 24 builds); coalescing and batching
        # send them in far fewer requests than there are builds.
        print(f"\nburst: 24 builds, {len(posts)} requests")
        self.assertLess(len(posts), 12)
        self.assert_never_older_after_newer()


class CapTests(ReliabilityTestCase):
    """A real master's outage; ``tests/test_outbox.py`` fills a cap of 50 on a fake clock."""

    @coroutine_test
    async def test_the_cap_keeps_every_final_state_and_drops_only_in_progress(self) -> None:
        await self.start_simulator()
        marker = os.path.abspath(self.mktemp())
        wait = f"while [ ! -f {marker} ]; do sleep 0.05; done"
        builders = {f"quick{n}": [shell("compile", "true")] for n in range(9)}
        builders.update({f"slow{n}": [shell("wait", wait)] for n in range(7)})
        self.sim.simulator.fail_next(1_000_000, 503)
        await self.start_master([self.reporter(outbox_size=10)], builders)
        reporter = self.service("jira")
        with captured_log() as lines:
            # One change starts a build on each of the 16 builders.
            await self.master.data.updates.addChange(**CHANGE, branch="PROJ-1")
            await self.until(lambda: reporter.outbox.dropped >= 6, seconds=30)
        drops = [line for line in lines if line.startswith("jira: more than 10 updates")]
        self.assertTrue(drops)
        self.assertTrue(all("(0 of them final states)" in line for line in drops), drops)
        # The 9 quick builds have all finished before Jira comes back: their
        # final states wait within the cap, and the 7 slow ones fit later.
        await self.until(lambda: self.waiting_finals(reporter) == 9, seconds=30)
        self.sim.simulator.clear_faults()
        await self.until(lambda: not len(reporter.outbox), seconds=30)
        with open(marker, "w"):  # the slow builds may finish now
            pass
        await self.until(lambda: len(self.final_builds()) == 16, seconds=30)
        # 16 builds in 10 places: at least 6 in-progress updates had to go.
        self.assertGreaterEqual(reporter.outbox.dropped, 6)

    @staticmethod
    def waiting_finals(reporter: JiraBuildReporter) -> int:
        """How many final states wait in the reporter's outbox (pending or in flight)."""
        assert reporter.outbox is not None
        waiting = [*reporter.outbox.pending.values(), *reporter.outbox.in_flight.values()]
        return sum(1 for update in waiting if update.final)


class SlowJiraTests(ReliabilityTestCase):
    @coroutine_test
    async def test_a_build_finishes_while_jira_holds_the_reporters_request(self) -> None:
        await self.start_simulator()
        marker = os.path.abspath(self.mktemp())
        wait = f"while [ ! -f {marker} ]; do sleep 0.05; done"
        # A long request timeout: the request stays unanswered as long as Jira holds it.
        await self.start_master([self.reporter(timeout=600)], {"app": [shell("wait", wait)]})
        open(marker, "w").close()
        first = await self.build_with_change(branch="PROJ-1")  # a token and the cloud ID
        await self.until(lambda: first["number"] in self.final_numbers())
        os.remove(marker)

        # From now on Jira holds every answer until this clock moves, and it never
        # moves by itself.
        answers = task.Clock()
        sim = self.sim.simulator
        sim.clock = answers
        sim.set_delay(1)
        building = self.build_with_change(branch="PROJ-2")
        await self.until(lambda: self.sent_states(first["number"] + 1) == ["in_progress"])
        open(marker, "w").close()  # the build may finish now
        build = await building
        self.assertEqual(build["results"], SUCCESS)
        # The build has finished while Jira still holds the answer to the
        # reporter's request: nothing of the build waited for Jira.
        self.assertEqual(len(answers.getDelayedCalls()), 1)
        self.assertEqual(self.sent_states(build["number"]), ["in_progress"])
        sim.set_delay(0)
        answers.advance(1)
        await self.until(lambda: self.sent_states(build["number"]) == ["in_progress", "successful"])
        self.assertEqual(self.final_numbers(), [first["number"], build["number"]])

    def sent_states(self, number: int) -> list[str]:
        """The states of build ``number`` that the reporter sent to Jira, in order."""
        return [
            build["state"]
            for request in self.sim.simulator.requests
            if request.path.endswith("/bulk") and isinstance(request.body, dict)
            for build in request.body.get("builds", [])
            if build["buildNumber"] == number
        ]


class BadInputTests(ReliabilityTestCase):
    @coroutine_test
    async def test_bad_input_is_reported_validly_or_skipped_and_the_reporter_keeps_working(
        self,
    ) -> None:
        await self.start_simulator()
        await self.start_master([self.reporter(debug=True)], {"app": [shell("compile", "true")]})
        cases = [
            {"branch": "PROJ-1-" + "x" * 10_000},
            # Undecodable bytes reach Buildbot as U+FFFD (its change sources decode with
            # errors="replace"); surrogates cannot even be stored in its database.
            {
                "branch": "PROJ-2-\ufffd\ufffd",
                "comments": "fix \ufffd\x00\x1b[31m PROJ-3 \U0001f525",
            },
            {
                "branch": "emoji-\U0001f680",
                "comments": " ".join(f"KEY-{n}" for n in range(1, 5001)),
            },
            {"branch": "main", "properties": {"jira_issue_keys": {"not": "a list"}}},
            {"branch": "\x00\x01\x02", "comments": "\ufffd" * 100_000},
        ]
        with captured_log() as lines:
            for case in cases:
                build = await self.build_with_change(**case)
                self.assertEqual(build["results"], SUCCESS)
            after = await self.build_with_change(branch="PROJ-99")
            await self.until(lambda: after["number"] in self.final_numbers(), seconds=30)
        received = [
            b
            for r in self.sim.simulator.requests
            if r.path.endswith("/bulk") and isinstance(r.body, dict)
            for b in r.body.get("builds", [])
        ]
        for payload in received:
            self.assertEqual(validation_errors(entity_schema("builds"), payload), [])
        numbers = {b["buildNumber"] for b in received}
        self.assertTrue({1, 2, 3, 6}.issubset(numbers))
        self.assertTrue(any("is not sent" in line for line in lines))  # the keyless builds
        self.assertTrue(any("jira_issue_keys" in line and "ignored" in line for line in lines))
        self.assertFalse([line for line in lines if "Traceback" in line])


class SecretTests(ReliabilityTestCase):
    @coroutine_test
    async def test_no_secret_or_token_in_the_log_of_a_master_run(self) -> None:
        await self.start_simulator()
        with captured_log() as lines:
            reporter = self.reporter(debug=True)
            await self.start_master([reporter], {"app": [shell("compile", "true")]})
            self.sim.simulator.fail_next(1, 503)
            await self.build_with_change(branch="PROJ-1")
            await self.until(lambda: len(self.final_builds()) == 1)
            self.sim.simulator.revoke_tokens()
            await self.build_with_change(branch="PROJ-2")
            await self.until(lambda: len(self.final_builds()) == 2)
        tokens = [t.access_token for t in self.sim.simulator.issued_tokens]
        self.assertTrue(tokens)
        texts = [*lines, repr(reporter), repr(reporter.options), repr(reporter.getConfigDict())]
        texts += [
            repr(reporter.outbox),
            repr(reporter.outbox.client),
            repr(reporter.outbox.client.tokens),
        ]
        for text in texts:
            for secret in (SECRET, *tokens):
                self.assertNotIn(secret, text)
