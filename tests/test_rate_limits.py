"""One site's rate limits, pure: pacing, Jira's waits by reason, NearLimit, episodes."""

from __future__ import annotations

import math

from twisted.trial import unittest

from buildbot_jira.jira.rate_limit_headers import LimitSignal
from buildbot_jira.jira.rate_limits import (
    Episode,
    Notice,
    RateLimits,
    describe_notice,
    payload_issue_keys,
)

BUILDS = ("builds", "POST")
DEPLOYMENTS = ("deployments", "POST")
SERVED = LimitSignal()
NEAR = LimitSignal(near_limit=True)


def limited(wait: float | None, reason: str | None = None) -> LimitSignal:
    return LimitSignal(limited=True, wait=wait, reason=reason, served=False)


class PacingTests(unittest.TestCase):
    def test_the_first_request_after_a_quiet_spell_goes_at_once(self) -> None:
        limits = RateLimits(min_interval=1.0)
        self.assertEqual(limits.next_time(BUILDS), -math.inf)
        limits.sent(BUILDS, 100.0)
        self.assertEqual(limits.next_time(BUILDS), 101.0)  # busy: one per interval
        self.assertLess(limits.next_time(BUILDS), 101.5)  # quiet by then: at once

    def test_each_endpoint_is_paced_on_its_own(self) -> None:
        limits = RateLimits(min_interval=2.0)
        limits.sent(BUILDS, 10.0)
        self.assertEqual(limits.next_time(DEPLOYMENTS), -math.inf)
        self.assertEqual(limits.next_time(("builds", "GET")), -math.inf)

    def test_reads_are_not_paced_unless_jira_widened_them(self) -> None:
        gating = ("deployments", "GET")
        limits = RateLimits(min_interval=5.0)
        limits.sent(gating, 10.0)
        self.assertEqual(limits.next_time(gating), 10.0)  # the next poll may go at once
        limits.answered(gating, 10.2, NEAR)
        self.assertEqual(limits.next_time(gating), 11.0)  # widened: then spaced out

    def test_no_pacing_at_zero(self) -> None:
        limits = RateLimits(min_interval=0)
        limits.sent(BUILDS, 10.0)
        self.assertEqual(limits.next_time(BUILDS), 10.0)

    def test_a_negative_interval_is_refused(self) -> None:
        with self.assertRaises(ValueError):
            RateLimits(min_interval=-1)


class WaitTests(unittest.TestCase):
    def setUp(self) -> None:
        self.limits = RateLimits(min_interval=1.0)
        self.limits.sent(BUILDS, 10.0)

    def test_a_burst_limit_holds_that_endpoint_only(self) -> None:
        self.limits.answered(BUILDS, 10.1, limited(3, "jira-burst-based"))
        self.assertEqual(self.limits.next_time(BUILDS), 13.1)
        self.assertEqual(self.limits.next_time(DEPLOYMENTS), -math.inf)
        self.assertEqual(self.limits.interval(BUILDS), 2.0)  # and asks it less often after

    def test_a_429_or_503_without_a_reason_holds_the_endpoint(self) -> None:
        self.limits.answered(BUILDS, 10.0, LimitSignal(wait=5, served=False))  # a 503
        self.assertEqual(self.limits.next_time(BUILDS), 15.0)
        self.assertEqual(self.limits.next_time(DEPLOYMENTS), -math.inf)

    def test_a_quota_limit_holds_the_whole_site(self) -> None:
        for reason in ("jira-quota-based", "jira-cost-based"):
            limits = RateLimits(min_interval=1.0)
            limits.answered(BUILDS, 10.0, limited(30, reason))
            for endpoint in (BUILDS, DEPLOYMENTS, ("deployments", "GET")):
                self.assertEqual(limits.next_time(endpoint), 40.0, (reason, endpoint))

    def test_a_per_issue_limit_holds_the_issues_of_the_request(self) -> None:
        self.limits.answered(BUILDS, 10.0, limited(4, "jira-per-issue-on-write"), {"A-1", "A-2"})
        self.assertEqual(self.limits.next_time(BUILDS, {"A-1"}), 14.0)
        self.assertEqual(self.limits.next_time(BUILDS, {"B-1"}), 11.0)  # just pacing
        self.assertEqual(self.limits.next_time(DEPLOYMENTS, {"A-2", "C-3"}), 14.0)
        self.assertEqual(self.limits.issues_free_at({"A-1", "B-1"}), 14.0)
        self.assertTrue(self.limits.holds_issues(13.9))
        self.assertFalse(self.limits.holds_issues(14.0))  # over, and forgotten

    def test_a_per_issue_limit_without_issues_holds_the_endpoint(self) -> None:
        self.limits.answered(BUILDS, 10.0, limited(4, "jira-per-issue-on-write"))
        self.assertEqual(self.limits.next_time(BUILDS), 14.0)

    def test_a_longer_wait_wins_and_a_shorter_one_never_shortens_it(self) -> None:
        self.limits.answered(BUILDS, 10.0, limited(10))
        self.limits.answered(BUILDS, 11.0, limited(1))
        self.assertEqual(self.limits.next_time(BUILDS), 20.0)


class NearLimitTests(unittest.TestCase):
    def test_near_limit_widens_the_interval_then_it_eases_back(self) -> None:
        limits = RateLimits(min_interval=1.0, max_interval=8.0)
        widened = []
        for _ in range(5):
            limits.answered(BUILDS, 0.0, NEAR)
            widened.append(limits.interval(BUILDS))
        self.assertEqual(widened, [2.0, 4.0, 8.0, 8.0, 8.0])  # capped
        self.assertEqual(limits.interval(DEPLOYMENTS), 1.0)
        eased = []
        for _ in range(4):
            limits.answered(BUILDS, 0.0, SERVED)
            eased.append(limits.interval(BUILDS))
        self.assertEqual(eased, [4.0, 2.0, 1.0, 1.0])

    def test_near_limit_slows_even_without_pacing(self) -> None:
        limits = RateLimits(min_interval=0)
        limits.answered(BUILDS, 0.0, NEAR)
        self.assertEqual(limits.interval(BUILDS), 1.0)
        limits.answered(BUILDS, 0.0, SERVED)
        self.assertEqual(limits.interval(BUILDS), 0.0)


class EpisodeTests(unittest.TestCase):
    def test_an_episode_is_noticed_when_it_begins_and_when_it_ends(self) -> None:
        limits = RateLimits(min_interval=1.0)
        first = limits.answered(BUILDS, 0.0, limited(3, "jira-burst-based"))
        again = limits.answered(BUILDS, 3.0, limited(3, "jira-burst-based"))
        early = limits.answered(BUILDS, 5.0, SERVED)  # the second wait runs to 6
        ended = limits.answered(BUILDS, 6.0, SERVED)
        after = limits.answered(BUILDS, 7.0, SERVED)
        self.assertEqual(
            first, (Notice(True, Episode.ENDPOINT, BUILDS, "jira-burst-based", 3.0, 2.0),)
        )
        self.assertEqual((again, early, after), ((), (), ()))
        self.assertEqual([(n.began, n.episode) for n in ended], [(False, Episode.ENDPOINT)])

    def test_site_issue_and_near_limit_episodes(self) -> None:
        limits = RateLimits(min_interval=1.0)
        began = [
            *limits.answered(BUILDS, 0.0, limited(5, "jira-quota-based")),
            *limits.answered(BUILDS, 0.0, limited(2, "jira-per-issue-on-write"), {"B-2", "A-1"}),
            *limits.answered(DEPLOYMENTS, 0.0, NEAR),
            *limits.answered(DEPLOYMENTS, 0.0, NEAR),
        ]
        self.assertEqual(
            [(n.episode, n.issue_keys) for n in began],
            [(Episode.SITE, ()), (Episode.ISSUES, ("A-1", "B-2")), (Episode.NEAR_LIMIT, ())],
        )
        ended = limits.answered(DEPLOYMENTS, 5.0, SERVED)  # the interval eases to 2 s
        self.assertNotIn(Episode.NEAR_LIMIT, {n.episode for n in ended})
        ended += limits.answered(DEPLOYMENTS, 5.0, SERVED)  # and is back at 1 s
        self.assertEqual(
            {(n.began, n.episode) for n in ended},
            {(False, Episode.SITE), (False, Episode.ISSUES), (False, Episode.NEAR_LIMIT)},
        )

    def test_the_log_lines_say_what_is_held_and_for_how_long(self) -> None:
        site = "example.atlassian.net"
        burst = Notice(True, Episode.ENDPOINT, BUILDS, "jira-burst-based", 3.0, 2.0)
        self.assertEqual(
            describe_notice(burst, site),
            "Jira site 'example.atlassian.net' limits POST builds requests (jira-burst-based): "
            "none goes to it for 3 s, then they are spaced 2 s apart",
        )
        issues = Notice(True, Episode.ISSUES, BUILDS, "jira-per-issue-on-write", 4.0, 1.0, ("A-1",))
        self.assertIn("limits writes to the issues A-1", describe_notice(issues, site))
        self.assertIn("the others go on", describe_notice(issues, site))
        quota = Notice(True, Episode.SITE, BUILDS, "jira-quota-based", 30.0)
        self.assertIn("no request goes to any of its APIs for 30 s", describe_notice(quota, site))
        near = Notice(True, Episode.NEAR_LIMIT, DEPLOYMENTS, interval=2.0)
        self.assertIn("near a rate limit on POST deployments", describe_notice(near, site))
        ended = Notice(False, Episode.ENDPOINT, BUILDS)
        self.assertEqual(
            describe_notice(ended, site),
            "Jira site 'example.atlassian.net' takes POST builds requests again",
        )


class IssueKeyTests(unittest.TestCase):
    def test_issue_keys_and_issue_associations(self) -> None:
        build = {"issueKeys": ["A-1", "B-2"]}
        deployment = {
            "associations": [
                {"associationType": "issueIdOrKeys", "values": ["C-3"]},
                {"associationType": "serviceIdOrKeys", "values": ["svc"]},
                {"associationType": "issueKeys", "values": ["D-4"]},
            ]
        }
        self.assertEqual(payload_issue_keys(build), {"A-1", "B-2"})
        self.assertEqual(payload_issue_keys(deployment), {"C-3", "D-4"})
        self.assertEqual(payload_issue_keys({}), frozenset())
