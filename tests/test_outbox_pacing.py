"""The outbox's pace on a fake clock: at once when idle, one request per interval when busy,
and Jira's rate limits by reason (burst, per issue, quota) and NearLimit, with nothing lost.
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet import defer, task

from buildbot_jira.delivery.outbox import MemoryStore, Outbox, Update
from buildbot_jira.delivery.testing import FakeJira
from buildbot_jira.jira.client import RetryPolicy
from buildbot_jira.simulator import JiraSimulator
from tests.outboxes import OutboxTestCase, update
from tests.support import build_payload, drive_until, flush, memory_client


def deployment(number: int, sequence: int) -> Update:
    payload = build_payload(number, updateSequenceNumber=sequence)
    del payload["buildNumber"]
    payload.update(pipeline={"id": "p"}, environment={"id": "prod"})
    payload["deploymentSequenceNumber"] = number
    return Update("deployments", f"p#prod#{number}", payload, sequence, True, f"deploy #{number}")


class PacingTestCase(OutboxTestCase):
    def at(self, time: float, outbox: Outbox, *updates: Update) -> None:
        """Put ``updates`` when the clock reaches ``time``."""
        self.clock.callLater(time - self.clock.seconds(), lambda: [outbox.put(u) for u in updates])

    def requests(self, entity: str = "builds") -> list[tuple[float, list[int]]]:
        """Each request of ``entity``: its time, and the numbers it carried."""
        field = "buildNumber" if entity == "builds" else "deploymentSequenceNumber"
        return [
            (round(s.time, 6), [p[field] for p in s.payloads])
            for s in self.jira.submissions
            if s.entity == entity
        ]


class IdleAndBusyTests(PacingTestCase):
    def test_an_idle_outbox_sends_at_once(self) -> None:
        outbox = self.make(min_request_interval=1.0)
        outbox.put(update(1, 100))
        self.clock.advance(0)
        self.at(7.5, outbox, update(2, 100))  # after a quiet spell
        self.drain(outbox)
        self.assertEqual(self.requests(), [(0, [1]), (7.5, [2])])

    def test_a_busy_outbox_sends_one_request_per_interval_with_everything_pending(self) -> None:
        """400 updates (200 builds) over 10 s of fake time, Jira answering at once."""
        outbox = self.make(min_request_interval=1.0)
        put_at: dict[tuple[int, int], float] = {}
        for index in range(400):
            number, sequence = index // 2, 1000 + index
            state = "in_progress" if index % 2 == 0 else "successful"
            time = index * 0.025
            put_at[(number, sequence)] = time
            self.at(time, outbox, update(number, sequence, state=state))
        self.drain(outbox)
        times = [time for time, _ in self.requests()]
        self.assertLessEqual(len(times), 11)
        self.assertTrue(all(b - a >= 1.0 for a, b in itertools.pairwise(times)), times)
        # Each request carried every update waiting when it went.
        sent_up_to = -1.0
        for submission in self.jira.submissions:
            sent = {(p["buildNumber"], p["updateSequenceNumber"]) for p in submission.payloads}
            waiting = {k for k, t in put_at.items() if sent_up_to < t <= submission.time}
            newest = {(n, s) for n, s in waiting if (n, s + 1) not in waiting}
            self.assertEqual(sent, newest, submission.time)
            sent_up_to = submission.time
        self.assertEqual(len(self.states()), 200)
        self.assertTrue(all(v[-1] == "successful" for v in self.states().values()))
        self.assertEqual(self.jira.too_early, [])

    def test_each_entity_type_is_paced_on_its_own(self) -> None:
        outbox = self.make(min_request_interval=1.0)
        outbox.put(update(1, 100))
        outbox.put(deployment(1, 100))
        self.at(0.5, outbox, update(2, 100), deployment(2, 100))
        self.drain(outbox)
        self.assertEqual(self.requests(), [(0, [1]), (1, [2])])
        self.assertEqual(self.requests("deployments"), [(0, [1]), (1, [2])])

    def test_an_update_held_by_the_pace_is_saved_before_its_turn(self) -> None:
        outbox = self.make(min_request_interval=1.0)
        outbox.put(update(1, 100))
        self.clock.advance(0.5)
        outbox.put(update(2, 100))
        self.clock.advance(0)
        self.assertEqual([u["payload"]["buildNumber"] for u in self.store.saved], [2])
        self.assertEqual(len(self.jira.submissions), 1)

    def test_the_pace_holds_on_a_clock_of_epoch_seconds(self) -> None:
        """Sums of large and small floats fall a hair short: no spin, no skipped turn."""
        start = 1_772_445_600.0  # 2026-03-02T10:00Z, as the real reactor's clock reads
        outbox = self.make(min_request_interval=0.3, start=start)
        for tick in range(30):
            self.at(start + tick * 0.1, outbox, update(tick, 100))
        self.drain(outbox, limit=100)
        times = [time - start for time, _ in self.requests()]
        self.assertEqual(len(times), 11)  # 0, 0.3, ... 3.0 s
        self.assertTrue(all(b - a >= 0.3 - 1e-6 for a, b in itertools.pairwise(times)), times)
        self.assertEqual(len(self.states()), 30)

    def test_pacing_off_sends_as_soon_as_the_last_request_is_answered(self) -> None:
        outbox = self.make(min_request_interval=0, delay=0.2)
        outbox.put(update(1, 100))
        self.at(0.1, outbox, update(2, 100))
        self.drain(outbox)
        self.assertEqual(self.requests(), [(0, [1]), (0.2, [2])])


class RateLimitTests(PacingTestCase):
    def test_a_burst_limit_holds_that_endpoint_only(self) -> None:
        outbox = self.make(min_request_interval=1.0)
        self.jira.rate_limit_next(retry_after=3, reason="jira-burst-based")
        outbox.put(update(1, 100))
        self.at(0.5, outbox, deployment(1, 100))
        self.at(1.0, outbox, update(2, 100))
        self.drain(outbox)
        # Builds wait Jira's 3 s (no backoff of the outbox's own), then go together.
        self.assertEqual(self.requests(), [(0, [1]), (3, [1, 2])])
        self.assertEqual(self.requests("deployments"), [(0.5, [1])])
        self.assertEqual(self.jira.too_early, [])

    def test_a_per_issue_limit_holds_only_the_updates_of_those_issues(self) -> None:
        outbox = self.make(min_request_interval=1.0)
        self.jira.rate_limit_next(retry_after=4, reason="jira-per-issue-on-write")
        outbox.put(update(1, 100, issues=("HOT-1",)))
        self.at(0.5, outbox, update(2, 100, issues=("COLD-1",)))
        self.at(2.0, outbox, update(3, 100, issues=("HOT-1", "COLD-2")), update(4, 100))
        self.drain(outbox)
        self.assertEqual(self.requests(), [(0, [1]), (1, [2]), (2, [4]), (4, [1, 3])])
        self.assertEqual(self.jira.too_early, [])

    def test_a_quota_limit_holds_the_whole_site(self) -> None:
        outbox = self.make(min_request_interval=1.0)
        self.jira.rate_limit_next(retry_after=10, reason="jira-quota-based")
        outbox.put(update(1, 100))
        self.at(1.0, outbox, deployment(1, 100))
        self.drain(outbox)
        self.assertEqual(self.requests(), [(0, [1]), (10, [1])])
        self.assertEqual(self.requests("deployments"), [(10, [1])])
        self.assertEqual(self.jira.too_early, [])

    def test_a_rate_limit_without_a_wait_widens_the_pace(self) -> None:
        outbox = self.make(min_request_interval=0)
        self.jira.rate_limit_next(3, retry_after=None)
        outbox.put(update(1, 100))
        self.drain(outbox)
        # Each 429 doubles the interval: no busy loop, even with pacing off.
        self.assertEqual(self.requests(), [(0, [1]), (1, [1]), (3, [1]), (7, [1])])
        self.assertEqual(self.states(), {1: ["successful"]})

    def test_near_limit_widens_the_interval_then_it_eases_back(self) -> None:
        outbox = self.make(min_request_interval=1.0)
        self.jira.near_limit_next(3)
        for tick in range(300):  # an update every 0.1 s for 30 s
            self.at(tick / 10, outbox, update(tick, 100))
        self.drain(outbox)
        times = [time for time, _ in self.requests()]
        gaps = [round(b - a, 6) for a, b in itertools.pairwise(times)]
        self.assertEqual(gaps[:6], [2, 4, 8, 4, 2, 1])
        self.assertEqual(set(gaps[6:]), {1})
        self.assertEqual(len(self.states()), 300)


class NothingLostTests(PacingTestCase):
    events = st.lists(
        st.tuples(
            st.floats(0, 3),  # seconds since the previous event
            st.integers(0, 5),  # build number
            st.booleans(),  # a final state?
            st.sampled_from([None, "jira-burst-based", "jira-per-issue-on-write", "quota"]),
        ),
        max_size=40,
    )

    @settings(deadline=None, max_examples=60)
    @given(events, st.sampled_from([0.0, 0.5, 1.0]), st.sampled_from([0.0, 0.3]))
    def test_nothing_is_lost_or_reordered(self, events: Any, interval: float, delay: float) -> None:
        outbox = self.make(min_request_interval=interval, delay=delay)
        sequence = iter(range(1, 10_000))
        newest: dict[int, tuple[int, bool]] = {}
        time = 0.0
        for gap, number, final, limit in events:
            time += gap
            if newest.get(number, (0, False))[1]:
                continue  # a final state is the last word
            seq = next(sequence)
            newest[number] = (seq, final)
            state = "successful" if final else "in_progress"
            issues = (f"ISSUE-{number % 3}",)
            self.at(time, outbox, update(number, seq, state=state, issues=issues))
            if limit is not None:
                reason = "jira-quota-based" if limit == "quota" else limit
                self.clock.callLater(
                    time, lambda r=reason: self.jira.rate_limit_next(retry_after=2, reason=r)
                )
        self.drain(outbox)
        self.assertEqual(self.jira.too_early, [])
        stored = {
            int(key.rsplit("#", 1)[1]): versions for (_, key), versions in self.jira.stored.items()
        }
        self.assertEqual(
            {n: versions[-1]["updateSequenceNumber"] for n, versions in stored.items()},
            {n: seq for n, (seq, _) in newest.items()},
        )
        sent: dict[int, int] = {}
        for submission in self.jira.submissions:
            for payload in submission.payloads:
                number = payload["buildNumber"]
                self.assertGreaterEqual(payload["updateSequenceNumber"], sent.get(number, 0))
                sent[number] = payload["updateSequenceNumber"]


class FakeJiraTests(PacingTestCase):
    def test_a_request_made_while_the_limits_hold_it_back_is_listed(self) -> None:
        clock = task.Clock()
        jira = FakeJira(clock=clock, min_request_interval=1.0)
        for _ in range(2):
            defer.Deferred.fromCoroutine(jira.submit("builds", [build_payload(1)]))
        self.assertEqual([s.time for s in jira.too_early], [0])
        self.assertEqual(len(jira.submissions), 2)


class RealClientTests(PacingTestCase):
    def test_the_outbox_waits_what_jira_asks_for_and_no_backoff_of_its_own(self) -> None:
        """Through the real client and the simulator in memory: 429, Retry-After: 3, twice."""
        clock = task.Clock()
        simulator = JiraSimulator(clock=clock)
        simulator.fail_next(2, 429, retry_after=3)
        client = memory_client(
            self, simulator, clock=clock, retry=RetryPolicy(max_attempts=2, jitter=0)
        )
        outbox = Outbox(client=client, store=MemoryStore(), clock=clock, initial_backoff=30)
        self.successResultOf(defer.Deferred.fromCoroutine(outbox.start()))
        outbox.put(update(1, 100))
        drive_until(clock, lambda: not len(outbox))
        posts = [r.timestamp for r in simulator.requests if r.path.endswith("/bulk")]
        # The client's two attempts, then the outbox once Jira's wait (to 6 s)
        # and the interval that each 429 doubled (4 s after 3) are over; its
        # own backoff (30 s here) would have made it 33.
        self.assertEqual(posts, [0, 3, 7])
        flush(clock)
        self.successResultOf(defer.Deferred.fromCoroutine(outbox.stop()))
