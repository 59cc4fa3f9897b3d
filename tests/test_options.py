"""The services' options: parsed once, every default in one place, None means the default."""

from __future__ import annotations

import re
from typing import Any

import pytest
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

    def test_the_deployment_reporter_chooses_which_issues_a_deployment_names(self) -> None:
        default = parse_deployment_reporter(**GOOD, environment_id="prod")
        self.assertEqual(default.deployed_issues, "since-last")
        self.assertEqual(default.first_deployment_lookback, 0)
        given = parse_deployment_reporter(
            **GOOD, environment_id="prod", deployed_issues="build", first_deployment_lookback=50
        )
        self.assertEqual((given.deployed_issues, given.first_deployment_lookback), ("build", 50))
        message = parse_error(
            parse_deployment_reporter, environment_id="prod", deployed_issues="since_last"
        )
        self.assertIn("deployed_issues must be 'since-last' or 'build', not 'since_last'", message)
        message = parse_error(
            parse_deployment_reporter, environment_id="prod", first_deployment_lookback=-1
        )
        self.assertIn("first_deployment_lookback must be a whole number of at least 0", message)
        with self.assertRaises(JiraConfigError):
            parse_build_reporter(**GOOD, deployed_issues="build")

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


def parse_error(parse: Any, **arguments: object) -> str:
    """The message of the configuration error that ``parse(**GOOD, **arguments)`` raises."""
    with pytest.raises(JiraConfigError) as raised:
        parse(**{**GOOD, **arguments})
    return str(raised.value)


class SettingsThatOnlyFailLaterTests(unittest.TestCase):
    """What ``checkconfig`` once passed and the first build found wrong."""

    def test_an_environment_type_that_jira_does_not_know(self) -> None:
        message = parse_error(
            parse_deployment_reporter, environment_id="prod-1", environment_type="prod"
        )
        self.assertTrue(message.startswith("environment_type: 'prod' is not a Jira"), message)
        self.assertIn("did you mean 'production'?", message)
        options = parse_deployment_reporter(
            **GOOD, environment_id="prod-1", environment_type=util.Property("type")
        )
        self.assertIsInstance(options.environment_type, util.Property)

    def test_min_backoff_above_max_backoff(self) -> None:
        message = parse_error(parse_build_reporter, min_backoff=600, max_backoff=10)
        self.assertTrue(message.startswith("min_backoff 600 is above max_backoff 10:"), message)
        self.assertIn("give a min_backoff of at most max_backoff", message)
        message = parse_error(parse_deployment_reporter, environment_id="x", min_backoff=600)
        self.assertIn("max_backoff 300 (its default is 300)", message)
        self.assertEqual(
            parse_build_reporter(**GOOD, min_backoff=10, max_backoff=10).min_backoff, 10
        )

    def test_a_site_name_that_is_not_a_host_name(self) -> None:
        self.assertIn("'shop.atlassian.net'", parse_error(parse_build_reporter, site="shop"))
        self.assertIn("clear text", parse_error(parse_build_reporter, site="http://x.example"))

    def test_an_issue_key_pattern_that_cannot_give_a_key(self) -> None:
        message = parse_error(parse_build_reporter, issue_key_pattern=r"\d+")
        self.assertTrue(
            message.startswith(r"issue_key_pattern '\\d+' cannot give a Jira issue key"), message
        )


class ArgumentListTests(unittest.TestCase):
    def test_name_is_among_the_arguments(self) -> None:
        self.assertIn("name", BUILD_REPORTER_ARGUMENTS)
        self.assertIn("name", DEPLOYMENT_REPORTER_ARGUMENTS)
        message = parse_error(parse_build_reporter, builder=["app"])
        self.assertIn("unknown argument(s): builder (did you mean builders?)", message)
        self.assertIn(" name,", message)

    def test_every_list_argument_takes_a_lone_string(self) -> None:
        options = parse_build_reporter(
            **GOOD,
            builders="app",
            branches="main",
            projects="shop",
            ignored_issue_keys="ops",
            issue_key_properties="github.title",
        )
        self.assertEqual(options.builders, ("app",))
        self.assertEqual(options.branches, ("main",))
        self.assertEqual(options.mapping.rules.projects, frozenset({"SHOP"}))
        self.assertEqual(options.mapping.rules.ignored, frozenset({"OPS"}))
        self.assertEqual(options.mapping.text_properties, ("github.title",))
        deployments = parse_deployment_reporter(**GOOD, environment_id="x", service_ids="svc-1")
        self.assertEqual(deployments.deployments.service_ids, ("svc-1",))

    def test_result_states_take_buildbot_constants(self) -> None:
        options = parse_build_reporter(**GOOD, result_states={util.WARNINGS: "failed"})
        self.assertEqual(options.mapping.result_states["warnings"], "failed")


class GateVocabularyTests(unittest.TestCase):
    def test_wait_timeout_is_the_wait_and_timeout_is_per_request(self) -> None:
        options = parse_gate(**GOOD, environment_id="prod", wait_timeout=600, timeout=10)
        self.assertEqual(options.wait_timeout, 600.0)
        self.assertEqual(options.site.timeout, 10.0)
        self.assertFalse(options.timeout_is_the_wait)

    def test_timeout_alone_keeps_its_old_meaning(self) -> None:
        options = parse_gate(**GOOD, environment_id="prod", timeout=600)
        self.assertEqual(options.wait_timeout, 600.0)
        self.assertEqual(options.site.timeout, DEFAULT_TIMEOUT)
        self.assertTrue(options.timeout_is_the_wait)

    def test_defaults_and_the_shared_site_arguments(self) -> None:
        options = parse_gate(**GOOD, environment_id="prod", min_request_interval=2)
        self.assertEqual(options.wait_timeout, 3600.0)
        self.assertEqual(options.interval, 30.0)
        self.assertEqual(options.timeout_result, FAILURE)
        self.assertEqual(options.site.min_request_interval, 2.0)
        # With wait_timeout named, timeout is checked as the reporters check it.
        self.assertEqual(
            parse_error(parse_gate, environment_id="prod", wait_timeout=60, timeout=0),
            parse_error(parse_build_reporter, timeout=0),
        )
        self.assertIn(
            "wait_timeout must be a number of seconds above 0",
            parse_error(parse_gate, environment_id="prod", wait_timeout=0),
        )

    def test_timeout_result_takes_a_name(self) -> None:
        options = parse_gate(**GOOD, environment_id="prod", timeout_result="warnings")
        self.assertEqual(options.timeout_result, WARNINGS)
