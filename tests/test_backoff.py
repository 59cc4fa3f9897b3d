"""Backoff: capped doubling waits, Retry-After, and how long an outage lasted."""

from __future__ import annotations

from twisted.trial import unittest

from buildbot_jira.delivery.backoff import Backoff, describe_duration


class BackoffTests(unittest.TestCase):
    def test_waits_double_up_to_the_maximum_and_honour_a_longer_retry_after(self) -> None:
        backoff = Backoff(initial=5, maximum=60)
        self.assertEqual([backoff.failed(0) for _ in range(5)], [5, 10, 20, 40, 60])
        self.assertEqual(backoff.failed(1, retry_after=500), 60)
        backoff.answered(2)
        self.assertEqual(backoff.failed(3, retry_after=30), 30)
        self.assertEqual(backoff.failed(4, retry_after=0), 10)

    def test_an_outage_lasts_from_the_first_failure_to_the_next_answer(self) -> None:
        backoff = Backoff(initial=5, maximum=60)
        self.assertIsNone(backoff.answered(0))
        backoff.failed(10)
        backoff.failed(15)
        self.assertTrue(backoff.in_outage)
        self.assertEqual(backoff.answered(250), 240)
        self.assertFalse(backoff.in_outage)
        self.assertEqual((describe_duration(42), describe_duration(240)), ("42 s", "4 min"))

    def test_the_maximum_is_never_below_the_first_wait(self) -> None:
        backoff = Backoff(initial=5, maximum=60)
        backoff.configure(initial=10, maximum=2)
        self.assertEqual(backoff.failed(0), 10)


class SummaryTests(unittest.TestCase):
    def test_summaries_are_due_after_1_2_4_8_minutes_of_an_outage(self) -> None:
        backoff = Backoff(initial=5, maximum=300)
        self.assertIsNone(backoff.summary_due(0))  # no outage
        backoff.failed(100)
        due = [t for t in range(100, 100 + 20 * 60, 10) if backoff.summary_due(t) is not None]
        self.assertEqual([t - 100 for t in due], [60, 120, 240, 480, 960])

    def test_a_summary_late_by_several_intervals_is_one(self) -> None:
        backoff = Backoff(initial=5, maximum=300)
        backoff.failed(0)
        self.assertEqual(backoff.summary_due(500), 500)  # past 1, 2 and 4 minutes: one line
        self.assertIsNone(backoff.summary_due(900))
        self.assertEqual(backoff.summary_due(960), 960)

    def test_a_new_outage_starts_the_schedule_again(self) -> None:
        backoff = Backoff(initial=5, maximum=300)
        backoff.failed(0)
        backoff.summary_due(200)
        backoff.answered(300)
        backoff.failed(1000)
        self.assertIsNone(backoff.summary_due(1059))
        self.assertEqual(backoff.summary_due(1060), 60)
