"""The services' options: parsed once, every default in one place, None means the default."""

from __future__ import annotations

import re

from buildbot.plugins import util
from buildbot.process.results import FAILURE, WARNINGS
from twisted.trial import unittest

from buildbot_jira.jira.auth import DEFAULT_API_URL
from buildbot_jira.jira.errors import JiraConfigError
from buildbot_jira.jira.http import DEFAULT_TIMEOUT
from buildbot_jira.jira.rate_limits import DEFAULT_MIN_REQUEST_INTERVAL
from buildbot_jira.mapping.builds import DEFAULT_TEXT_PROPERTIES
from buildbot_jira.mapping.deployments import DEFAULT_DEPLOYMENT_STATES
from buildbot_jira.mapping.keys import ISSUE_KEYS_PROPERTY
from buildbot_jira.options import (
    BUILD_REPORTER_ARGUMENTS,
    DEPLOYMENT_REPORTER_ARGUMENTS,
    parse_build_reporter,
    parse_deployment_reporter,
    parse_gate,
    take_site,
)
from tests.support import SECRET

GOOD = {"site": "example.atlassian.net", "client_id": "id", "client_secret": SECRET}


def gate_arguments(**changes: object) -> dict[str, object]:
    arguments: dict[str, object] = {
        **GOOD,
        "environment_id": "production",
        "pipeline_id": None,
        "cloud_id": None,
        "api_url": DEFAULT_API_URL,
        "site_url": None,
        "interval": 30,
        "timeout": 3600,
        "timeout_result": FAILURE,
    }
    arguments.update(changes)
    return arguments


class SiteTests(unittest.TestCase):
    def test_site_arguments_are_taken_out_and_the_rest_left(self) -> None:
        arguments = {"api_url": "http://127.0.0.1:8099/", "timeout": 10, "debug": True}
        site = take_site("https://example.atlassian.net/", "id", SECRET, arguments)
        self.assertEqual(site.site, "example.atlassian.net")
        self.assertEqual(site.api_url, "http://127.0.0.1:8099")
        self.assertEqual(site.timeout, 10.0)
        self.assertEqual(arguments, {"debug": True})

    def test_renderable_credentials_stay_as_given(self) -> None:
        secret = util.Secret("jira-client-secret")
        site = take_site("example.atlassian.net", "id", secret, {})
        self.assertIs(site.client_secret, secret)


class ReporterOptionsTests(unittest.TestCase):
    def test_none_means_the_default(self) -> None:
        given = parse_build_reporter(
            **GOOD,
            issue_keys_property=None,
            cloud_id=None,
            site_url=None,
            builders=None,
            pipeline_id=None,
        )
        self.assertEqual(given, parse_build_reporter(**GOOD))
        self.assertEqual(given.mapping.issue_keys_property, ISSUE_KEYS_PROPERTY)
        self.assertEqual(given.site.timeout, DEFAULT_TIMEOUT)

    def test_key_arguments_make_the_mapping(self) -> None:
        options = parse_build_reporter(
            **GOOD,
            projects=["PROJ"],
            ignore_case=True,
            issue_keys_property="keys",
            issue_key_properties=["title"],
        )
        self.assertEqual(options.mapping.rules.projects, frozenset({"PROJ"}))
        self.assertTrue(options.mapping.rules.ignore_case)
        self.assertEqual(options.mapping.issue_keys_property, "keys")
        self.assertEqual(options.mapping.text_properties, ("title",))
        self.assertEqual(
            parse_build_reporter(**GOOD).mapping.text_properties, DEFAULT_TEXT_PROPERTIES
        )

    def test_a_wrong_key_rule_is_named_as_the_user_wrote_it(self) -> None:
        with self.assertRaises(JiraConfigError) as raised:
            parse_build_reporter(**GOOD, ignore_case="no")
        self.assertTrue(str(raised.exception).startswith("ignore_case"), str(raised.exception))

    def test_the_deployment_reporter_takes_its_own_arguments(self) -> None:
        pattern = r"^deploy to (?P<environment>.+)$"
        options = parse_deployment_reporter(
            **GOOD, step_pattern=pattern, environment_types={re.compile("^eu-"): "production"}
        )
        assert options.step_pattern is not None
        self.assertEqual(options.step_pattern.pattern, pattern)
        self.assertIsNone(options.environment_id)
        self.assertEqual(options.deployments.result_states, DEFAULT_DEPLOYMENT_STATES)
        self.assertFalse(options.deployments.gating)
        self.assertEqual(list(options.environment_types.values()), ["production"])

    def test_each_reporter_refuses_the_others_arguments(self) -> None:
        with self.assertRaises(JiraConfigError) as raised:
            parse_build_reporter(**GOOD, step_pattern="^deploy$")
        message = str(raised.exception)
        self.assertIn("unknown argument(s): step_pattern", message)
        self.assertIn("test_update_interval", message)
        with self.assertRaises(JiraConfigError) as raised:
            parse_deployment_reporter(**GOOD, environment_id="x", test_update_interval=1)
        self.assertIn("unknown argument(s): test_update_interval", str(raised.exception))
        self.assertNotIn("step_pattern", BUILD_REPORTER_ARGUMENTS)
        self.assertIn("enable_gating", DEPLOYMENT_REPORTER_ARGUMENTS)

    def test_the_arguments_given_are_not_changed(self) -> None:
        arguments = {"builders": ["app"], "debug": True}
        parse_build_reporter(**GOOD, **arguments)
        self.assertEqual(arguments, {"builders": ["app"], "debug": True})


class MinRequestIntervalTests(unittest.TestCase):
    def test_the_default_paces_one_request_per_second(self) -> None:
        self.assertEqual(parse_build_reporter(**GOOD).site.min_request_interval, 1.0)
        self.assertEqual(DEFAULT_MIN_REQUEST_INTERVAL, 1.0)
        self.assertEqual(parse_gate(**gate_arguments()).site.min_request_interval, 1.0)

    def test_every_reporter_takes_it_and_zero_turns_pacing_off(self) -> None:
        self.assertEqual(
            parse_build_reporter(**GOOD, min_request_interval=2.5).site.min_request_interval, 2.5
        )
        options = parse_deployment_reporter(**GOOD, environment_id="x", min_request_interval=0)
        self.assertEqual(options.site.min_request_interval, 0.0)
        self.assertIn("min_request_interval", BUILD_REPORTER_ARGUMENTS)
        self.assertIn("min_request_interval", DEPLOYMENT_REPORTER_ARGUMENTS)

    def test_a_wrong_interval_is_named(self) -> None:
        for value in (-1, True, "1", 61, float("nan"), float("inf")):
            with self.assertRaises(JiraConfigError) as raised:
                parse_build_reporter(**GOOD, min_request_interval=value)
            self.assertEqual(
                str(raised.exception),
                f"min_request_interval must be a number from 0 to 60, not {value!r}",
            )


class GateOptionsTests(unittest.TestCase):
    def test_the_gate_options(self) -> None:
        options = parse_gate(**gate_arguments(interval=5, timeout_result=WARNINGS))
        self.assertEqual(options.interval, 5.0)
        self.assertEqual(options.timeout, 3600.0)
        self.assertEqual(options.timeout_result, WARNINGS)
        self.assertEqual(options.environment_id, "production")
        self.assertEqual(options.site.timeout, DEFAULT_TIMEOUT)
        self.assertEqual(options.site.api_url, DEFAULT_API_URL)

    def test_a_wrong_gate_argument_is_named(self) -> None:
        with self.assertRaises(JiraConfigError) as raised:
            parse_gate(**gate_arguments(timeout=0))
        self.assertIn("timeout must be a number of seconds above 0", str(raised.exception))
