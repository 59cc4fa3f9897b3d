"""The outbox on a fake clock: batching, coalescing, saving, shutdown, the cap, bursts.

Every test drives an :class:`Outbox` with a :class:`~twisted.internet.task.Clock`
and the in-memory :class:`~buildbot_jira.delivery.testing.FakeJira`: no
sockets, no real reactor, no waits. Failures are in ``test_outbox_failures.py``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from twisted.internet import defer

from buildbot_jira.delivery.outbox import MemoryStore, Outbox, Update
from buildbot_jira.delivery.store import Change
from buildbot_jira.jira.client import SubmitResult
from tests.outboxes import KEY, OutboxTestCase, unavailable, update
from tests.support import build_payload, captured_log


class DeliveryTests(OutboxTestCase):
    def test_an_idle_outbox_sends_after_the_current_turn(self) -> None:
        outbox = self.make()
        outbox.put(update(1, 100))
        outbox.put(update(2, 100))
        self.assertEqual(self.jira.submissions, [])  # nothing during the turn itself
        self.clock.advance(0)
        self.assertEqual(self.sizes(), [2])  # both updates of the turn in one request
        self.assertEqual(self.states(), {1: ["successful"], 2: ["successful"]})
        self.assertEqual((outbox.requests_sent, outbox.delivered, len(outbox)), (1, 2, 0))

    def test_an_update_is_saved_before_it_is_sent(self) -> None:
        saved_when_sent: list[list[str]] = []

        class Store(MemoryStore):
            async def write(self, changes: Sequence[Change]) -> None:
                await super().write(changes)
                saved_when_sent.append([u["key"] for u in self.saved])

        outbox = self.make(store=Store())
        original = self.jira.submit

        async def submit(entity: Any, payloads: Any) -> SubmitResult:
            saved_when_sent.append(["sent"])
            return await original(entity, payloads)

        self.jira.submit = submit  # type: ignore[method-assign]
        outbox.put(update(1, 100))
        self.drain(outbox)
        self.assertEqual(saved_when_sent[:2], [[KEY.format(1)], ["sent"]])
        self.assertEqual(self.store.saved, [])  # delivered: nothing left saved

    def test_a_newer_update_replaces_an_unsent_one(self) -> None:
        outbox = self.make()
        outbox.put(update(1, 100, state="in_progress"))
        outbox.put(update(1, 101, state="successful"))
        self.assertEqual(len(outbox), 1)
        self.drain(outbox)
        self.assertEqual(self.states(), {1: ["successful"]})

    def test_an_older_update_never_overtakes_a_newer_one(self) -> None:
        outbox = self.make()
        outbox.put(update(1, 200, state="in_progress"))
        outbox.put(update(1, 150, state="successful"))
        self.drain(outbox)
        outbox.put(update(1, 199, state="failed"))
        self.assertEqual(len(outbox), 0)
        self.drain(outbox)
        self.assertEqual(self.states(), {1: ["in_progress"]})
        self.assertEqual(len(self.jira.submissions), 1)

    def test_a_final_state_is_never_followed_by_in_progress(self) -> None:
        outbox = self.make()
        outbox.put(update(1, 100, state="failed"))
        self.drain(outbox)
        outbox.put(update(1, 101, state="in_progress"))
        self.assertEqual(len(outbox), 0)
        self.assertEqual(self.states(), {1: ["failed"]})

    def test_updates_made_while_a_request_is_in_flight_go_together(self) -> None:
        outbox = self.make(delay=1)
        outbox.put(update(0, 100))
        self.clock.advance(0)
        self.assertEqual(list(outbox.in_flight), [("builds", KEY.format(0))])
        for number in range(1, 251):
            outbox.put(update(number, 1000 + number))
        self.drain(outbox)
        self.assertEqual(self.sizes(), [1, 100, 100, 50])
        self.assertEqual([s.time for s in self.jira.submissions], [0, 1, 2, 3])
        self.assertEqual(len(self.states()), 251)

    def test_one_request_carries_one_entity_type(self) -> None:
        outbox = self.make()
        deployment = build_payload(1)
        deployment.update(pipeline={"id": "p"}, environment={"id": "prod"})
        deployment["deploymentSequenceNumber"] = 1
        outbox.put(update(1, 100))
        outbox.put(Update("deployments", "p#prod#1", deployment, 100, True, "deploy #1"))
        self.drain(outbox)
        self.assertEqual([s.entity for s in self.jira.submissions], ["builds", "deployments"])

    def test_a_dry_run_logs_what_it_would_send_and_sends_nothing(self) -> None:
        outbox = self.make()
        outbox.dry_run = True
        with captured_log() as lines:
            outbox.put(update(1, 100))
            self.drain(outbox)
        self.assertEqual(self.jira.submissions, [])
        self.assertEqual((outbox.requests_sent, outbox.delivered), (0, 1))
        self.assertTrue(any("dry run, not sent: builds" in line for line in lines))

    def test_each_result_is_handed_to_on_result(self) -> None:
        results: list[SubmitResult] = []
        outbox = self.make(on_result=results.append)
        outbox.put(update(1, 100))
        self.drain(outbox)
        self.assertEqual([r.accepted for r in results], [(KEY.format(1),)])

    def test_the_repr_names_the_site_and_the_pending_count(self) -> None:
        outbox = self.make()
        outbox.put(update(1, 100))
        self.assertEqual(repr(outbox), "<Outbox 'jira' site='example.atlassian.net' pending=1>")


class CapTests(OutboxTestCase):
    def test_the_cap_drops_the_oldest_in_progress_updates_first(self) -> None:
        outbox = self.make(cap=5)
        with captured_log() as lines:
            # All in one turn: nothing is sent before the cap applies.
            for number in range(1, 4):
                outbox.put(update(number, 100 + number, state="successful"))
            for number in range(4, 10):
                outbox.put(update(number, 100 + number, state="in_progress"))
        self.assertEqual(len(outbox), 5)
        kept = sorted(u.payload["buildNumber"] for u in outbox.pending.values())
        self.assertEqual(kept, [1, 2, 3, 8, 9])
        self.assertEqual(outbox.dropped, 4)
        drops = [line for line in lines if line.startswith("jira: more than 5 updates")]
        self.assertEqual(len(drops), 4)
        self.assertTrue(all("(0 of them final states)" in line for line in drops))

    def test_final_states_go_only_when_nothing_else_is_left(self) -> None:
        outbox = self.make(cap=2)
        with captured_log() as lines:
            for number in range(1, 4):
                outbox.put(update(number, 100))
        self.assertEqual(outbox.dropped, 1)
        self.assertTrue(any("dropped the 1 oldest (1 of them final states)" in x for x in lines))

    def test_during_an_outage_the_cap_keeps_every_final_state(self) -> None:
        """80 builds (45 quick, 35 slow) in 50 places while Jira fails, then it answers."""
        outbox = self.make(cap=50)
        self.jira.failing = unavailable()
        quick, slow = range(45), range(45, 80)
        with captured_log() as lines:
            for number in (*quick, *slow):  # every build starts ...
                outbox.put(update(number, 1000 + number, state="in_progress"))
                self.clock.advance(0.1)
            for number in quick:  # ... and the quick ones finish
                outbox.put(update(number, 2000 + number))
                self.clock.advance(0.1)
        drops = [line for line in lines if line.startswith("jira: more than 50 updates")]
        self.assertTrue(drops)
        self.assertTrue(all("(0 of them final states)" in line for line in drops), drops)
        # 80 builds in 50 places: at least 30 in-progress updates had to go.
        self.assertGreaterEqual(outbox.dropped, 30)
        self.assertLessEqual(len(outbox), 50)
        self.jira.failing = None
        self.drain(outbox)
        for number in slow:  # the slow builds finish after Jira is back
            outbox.put(update(number, 3000 + number))
        self.drain(outbox)
        states = self.states()
        self.assertEqual(sorted(states), list(range(80)))
        self.assertTrue(all(versions[-1] == "successful" for versions in states.values()))


class BurstTests(OutboxTestCase):
    def test_a_burst_of_builds_needs_far_fewer_requests_than_builds(self) -> None:
        """200 builds (5 changes x 40 builders), 400 updates; Jira answers after 1 s."""
        outbox = self.make(delay=1.0)
        sequence = iter(range(1, 10_000))
        ends = []
        for builder in range(40):
            start = 0.0
            for change in range(5):
                # Builds of one builder follow each other; they last 0.2 to 1.1 s.
                length = 0.2 + (builder * 7 + change * 3) % 10 / 10
                number = builder * 5 + change
                self.clock.callLater(start, self.start_and_finish, outbox, number, length, sequence)
                start += length
            ends.append(start)
        self.drain(outbox)
        states = self.states()
        self.assertEqual(len(states), 200)
        self.assertTrue(all(versions[-1] == "successful" for versions in states.values()))
        # 400 updates; coalescing and batching send them in far fewer requests:
        # while one is in flight (1 s), the rest collect for the next one.
        requests = len(self.jira.submissions)
        print(f"\nburst on a fake clock: 200 builds, {requests} requests")
        self.assertLess(requests, 100)
        self.assertLessEqual(requests, math.ceil(max(ends)) + 2)
        self.assert_never_older_after_newer()

    def start_and_finish(self, outbox: Outbox, number: int, length: float, sequence: Any) -> None:
        outbox.put(update(number, next(sequence), state="in_progress"))
        self.clock.callLater(length, lambda: outbox.put(update(number, next(sequence))))

    def assert_never_older_after_newer(self) -> None:
        seen: dict[int, int] = {}
        for submission in self.jira.submissions:
            for payload in submission.payloads:
                number = payload["buildNumber"]
                self.assertGreater(payload["updateSequenceNumber"], seen.get(number, 0))
                seen[number] = payload["updateSequenceNumber"]


class SavingTests(OutboxTestCase):
    def test_pending_updates_are_saved_and_sent_after_a_restart(self) -> None:
        store = MemoryStore()
        outbox = self.make(store=store)
        self.jira.failing = unavailable()
        outbox.put(update(1, 100))
        outbox.put(update(2, 200, state="in_progress"))
        self.clock.advance(0)
        self.successResultOf(defer.Deferred.fromCoroutine(outbox.stop()))
        self.assertEqual(sorted(u["key"] for u in store.saved), [KEY.format(1), KEY.format(2)])
        self.jira.failing = None
        second = Outbox(client=self.jira, store=store, clock=self.clock)
        with captured_log() as lines:
            self.successResultOf(defer.Deferred.fromCoroutine(second.start()))
        self.assertTrue(any("2 updates left pending by the last run" in x for x in lines))
        self.drain(second)
        self.successResultOf(defer.Deferred.fromCoroutine(second.stop()))
        self.assertEqual(self.states(), {1: ["successful"], 2: ["in_progress"]})
        self.assertEqual(store.saved, [])

    def test_an_unreadable_saved_update_is_skipped(self) -> None:
        store = MemoryStore()
        store.saved = [{"key": "no entity"}, update(1, 100).to_json()]
        with captured_log() as lines:
            outbox = self.make(store=store)
        self.assertTrue(any("skipped an unreadable saved update" in x for x in lines))
        self.drain(outbox)
        self.assertEqual(self.states(), {1: ["successful"]})

    def test_stop_waits_the_grace_period_then_keeps_the_rest(self) -> None:
        store = MemoryStore()
        outbox = self.make(store=store, delay=3600)  # Jira never answers in time
        outbox.put(update(1, 100))
        self.clock.advance(0)
        self.assertTrue(outbox.in_flight)
        with captured_log() as lines:
            stopping = defer.Deferred.fromCoroutine(outbox.stop())
            self.clock.advance(9.9)
            self.assertNoResult(stopping)
            self.clock.advance(0.1)
        self.successResultOf(stopping)
        self.assertEqual([u["key"] for u in store.saved], [KEY.format(1)])
        self.assertTrue(any("did not finish within 10 s" in line for line in lines))
        self.assertEqual(self.clock.getDelayedCalls(), [])  # the answer's wait was cancelled

    def test_stop_lets_a_request_that_answers_within_the_grace_period_finish(self) -> None:
        store = MemoryStore()
        outbox = self.make(store=store, delay=3)
        outbox.put(update(1, 100))
        self.clock.advance(0)
        stopping = defer.Deferred.fromCoroutine(outbox.stop())
        self.clock.advance(3)
        self.successResultOf(stopping)
        self.assertEqual(store.saved, [])
        self.assertEqual(outbox.delivered, 1)
