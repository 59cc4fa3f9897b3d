"""The retry policy: backoff with jitter, and what Retry-After asks."""

from __future__ import annotations

from twisted.trial import unittest

from buildbot_jira.jira.retry import RetryPolicy


class RetryPolicyTests(unittest.TestCase):
    def test_backoff_grows_to_the_cap(self) -> None:
        policy = RetryPolicy(initial_delay=1, multiplier=2, max_delay=5, jitter=0)
        self.assertEqual([policy.backoff(n) for n in range(1, 6)], [1, 2, 4, 5, 5])

    def test_jitter_shortens_each_wait_by_up_to_its_fraction(self) -> None:
        policy = RetryPolicy(initial_delay=4, jitter=0.5)
        self.assertEqual(policy.backoff(1, uniform=lambda: 0.0), 4)
        self.assertEqual(policy.backoff(1, uniform=lambda: 1.0), 2)

    def test_retry_after_is_waited_within_bounds(self) -> None:
        policy = RetryPolicy(initial_delay=1, max_retry_after=300, jitter=0)
        self.assertEqual(policy.delay(3, retry_after=20), 20)
        self.assertEqual(policy.delay(1, retry_after=0), 1)  # never a busy loop
        self.assertEqual(policy.delay(1, retry_after=9999), 300)
        self.assertEqual(policy.delay(3), policy.backoff(3))

    def test_nonsense_is_refused(self) -> None:
        for arguments in ({"max_attempts": 0}, {"jitter": 1.5}, {"multiplier": 0.5}):
            with self.assertRaises(ValueError):
                RetryPolicy(**arguments)
