"""Jira's rate-limit headers, read: Retry-After (both forms), X-RateLimit-Reset, the reasons."""

from __future__ import annotations

import datetime

from twisted.trial import unittest

from buildbot_jira.jira.rate_limit_headers import (
    MAX_WAIT,
    LimitScope,
    LimitSignal,
    parse_rate_limit_reset,
    parse_retry_after,
    read_limit_signal,
)

#: 2026-03-02T10:00:00Z, as epoch seconds: the clock's time in these tests.
NOW = datetime.datetime(2026, 3, 2, 10, 0, tzinfo=datetime.timezone.utc).timestamp()


def signal(status: int, **headers: str) -> LimitSignal:
    names = {name.replace("_", "-").lower(): value for name, value in headers.items()}
    return read_limit_signal(status, lambda name: names.get(name.lower()), now=NOW)


class RetryAfterTests(unittest.TestCase):
    def test_seconds(self) -> None:
        self.assertEqual(parse_retry_after("7", now=NOW), 7.0)
        self.assertEqual(parse_retry_after(" 2.5 ", now=NOW), 2.5)

    def test_an_http_date_is_measured_from_the_clock(self) -> None:
        self.assertEqual(parse_retry_after("Mon, 02 Mar 2026 10:00:30 GMT", now=NOW), 30.0)

    def test_a_date_in_the_past_means_no_wait(self) -> None:
        self.assertEqual(parse_retry_after("Mon, 02 Mar 2026 09:59:00 GMT", now=NOW), 0.0)

    def test_a_date_needs_the_clock(self) -> None:
        self.assertIsNone(parse_retry_after("Mon, 02 Mar 2026 10:00:30 GMT"))

    def test_nonsense_is_no_wait_at_all(self) -> None:
        for value in (None, "", "soon", "-1", "inf", "nan", "Mon, 99 Foo 2026"):
            self.assertIsNone(parse_retry_after(value, now=NOW), value)


class ResetTests(unittest.TestCase):
    def test_the_short_form_jira_documents(self) -> None:
        self.assertEqual(parse_rate_limit_reset("2026-03-02T10:01Z", now=NOW), 60.0)

    def test_fuller_forms(self) -> None:
        self.assertEqual(parse_rate_limit_reset("2026-03-02T10:00:05.500Z", now=NOW), 5.5)
        self.assertEqual(parse_rate_limit_reset("2026-03-02T11:00:10+01:00", now=NOW), 10.0)
        self.assertEqual(parse_rate_limit_reset("2026-03-02T10:00:20", now=NOW), 20.0)  # UTC

    def test_nonsense_and_the_past(self) -> None:
        self.assertIsNone(parse_rate_limit_reset("tomorrow", now=NOW))
        self.assertIsNone(parse_rate_limit_reset(None, now=NOW))
        self.assertEqual(parse_rate_limit_reset("2026-03-02T09:00Z", now=NOW), 0.0)


class SignalTests(unittest.TestCase):
    def test_a_burst_limit_holds_its_endpoint(self) -> None:
        read = signal(429, Retry_After="3", RateLimit_Reason="jira-burst-based")
        self.assertEqual(read, LimitSignal(True, 3.0, "jira-burst-based", served=False))
        self.assertIs(read.scope, LimitScope.ENDPOINT)
        self.assertTrue(read.holds)

    def test_each_reason_names_its_scope(self) -> None:
        scopes = {
            "jira-per-issue-on-write": LimitScope.ISSUES,
            "jira-quota-based": LimitScope.SITE,
            "jira-cost-based": LimitScope.SITE,
            "jira-something-new": LimitScope.ENDPOINT,
        }
        for reason, scope in scopes.items():
            self.assertIs(signal(429, RateLimit_Reason=reason).scope, scope, reason)
        self.assertIs(signal(429).scope, LimitScope.ENDPOINT)

    def test_reset_is_the_wait_only_without_retry_after(self) -> None:
        self.assertEqual(signal(429, X_RateLimit_Reset="2026-03-02T10:01Z").wait, 60.0)
        both = signal(429, Retry_After="4", X_RateLimit_Reset="2026-03-02T10:01Z")
        self.assertEqual(both.wait, 4.0)

    def test_a_503_that_says_how_long_holds_too(self) -> None:
        read = signal(503, Retry_After="Mon, 02 Mar 2026 10:00:09 GMT")
        self.assertEqual((read.wait, read.limited, read.served), (9.0, False, False))
        self.assertTrue(read.holds)
        self.assertFalse(signal(503).holds)
        self.assertFalse(signal(500, Retry_After="5").holds)  # only 429 and 503 say when

    def test_near_limit_on_a_served_answer(self) -> None:
        self.assertTrue(signal(202, X_RateLimit_NearLimit="true").near_limit)
        self.assertTrue(signal(200, X_RateLimit_NearLimit=" TRUE ").near_limit)
        self.assertFalse(signal(202, X_RateLimit_NearLimit="false").near_limit)
        self.assertFalse(signal(202).near_limit)
        self.assertTrue(signal(202).served)

    def test_a_far_future_wait_is_capped(self) -> None:
        self.assertEqual(signal(429, Retry_After="86400").wait, MAX_WAIT)
