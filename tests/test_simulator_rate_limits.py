"""Tests of buildbot_jira.simulator.rate_limits: Jira's reasons, and how a wait is told."""

from __future__ import annotations

import datetime
import email.utils

from twisted.trial import unittest

from buildbot_jira.simulator.rate_limits import (
    RATE_LIMIT_REASONS,
    check_reason,
    check_retry_after_form,
    http_date,
    is_near_limit,
    iso_moment,
    wait_headers,
    whole_seconds,
)

UTC = datetime.timezone.utc
# 2027-01-15T08:00:00Z, and a quarter of a second.
MOMENT = 1_800_000_000.25


class FormattingTests(unittest.TestCase):
    def test_dates_round_up_to_the_second(self) -> None:
        self.assertEqual(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT")
        self.assertEqual(http_date(MOMENT), "Fri, 15 Jan 2027 08:00:01 GMT")
        self.assertEqual(iso_moment(MOMENT), "2027-01-15T08:00:01Z")
        self.assertEqual(iso_moment(MOMENT - 0.25), "2027-01-15T08:00:00Z")

    def test_dates_read_back_as_the_moment_or_just_after(self) -> None:
        told = email.utils.parsedate_to_datetime(http_date(MOMENT + 3)).timestamp()
        self.assertTrue(MOMENT + 3 <= told < MOMENT + 4)
        reset = datetime.datetime.fromisoformat(iso_moment(MOMENT + 3).replace("Z", "+00:00"))
        self.assertEqual(reset.tzinfo, UTC)
        self.assertTrue(MOMENT + 3 <= reset.timestamp() < MOMENT + 4)

    def test_a_wait_is_told_in_each_form(self) -> None:
        self.assertEqual(
            wait_headers(2.5, now=MOMENT, form="seconds"),
            {"Retry-After": "2.5"},
        )
        self.assertEqual(
            wait_headers(3, now=MOMENT, form="http-date"),
            {"Retry-After": "Fri, 15 Jan 2027 08:00:04 GMT"},
        )
        self.assertEqual(
            wait_headers(3, now=MOMENT, form="reset"),
            {"X-RateLimit-Reset": "2027-01-15T08:00:04Z"},
        )

    def test_whole_seconds_round_up_without_float_noise(self) -> None:
        self.assertEqual(whole_seconds(1.1 - 0.1), 1)
        self.assertEqual(whole_seconds(0.2), 1)
        self.assertEqual(whole_seconds(0.0), 1)
        self.assertEqual(whole_seconds(2.5), 3)

    def test_near_limit_is_less_than_a_fifth_left(self) -> None:
        self.assertEqual(
            [is_near_limit(left, 10) for left in (0, 1, 2, 3)], [True, True, False, False]
        )
        self.assertEqual([is_near_limit(left, 2) for left in (0, 1)], [True, False])


class CheckTests(unittest.TestCase):
    def test_known_reasons_and_forms_pass(self) -> None:
        for reason in (None, *RATE_LIMIT_REASONS):
            check_reason(reason)
        check_retry_after_form("seconds", None)
        check_retry_after_form("http-date", 1)
        check_retry_after_form("reset", 0)

    def test_unknown_or_undated_ones_are_refused(self) -> None:
        for check in (
            lambda: check_reason("jira-bursty"),
            lambda: check_retry_after_form("minutes", 1),
            lambda: check_retry_after_form("http-date", None),
            lambda: check_retry_after_form("reset", None),
        ):
            with self.assertRaises(ValueError):
                check()
