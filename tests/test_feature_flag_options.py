"""JiraFeatureFlag's arguments: checked when the configuration loads, each wrong one named."""

from __future__ import annotations

from typing import Any

from buildbot import config
from buildbot.config.errors import capture_config_errors
from buildbot.plugins import util
from twisted.trial import unittest

from buildbot_jira.feature_flag_options import (
    FEATURE_FLAG_ARGUMENTS,
    parse_feature_flag,
    rendered_enabled,
)
from buildbot_jira.feature_flag_step import JiraFeatureFlag
from buildbot_jira.jira.errors import JiraConfigError
from buildbot_jira.sites import SITE_ARGUMENTS
from buildbot_jira.steps import JiraFeatureFlag as ExportedJiraFeatureFlag
from tests.support import SECRET

GOOD: dict[str, Any] = {
    "site": "example.atlassian.net",
    "client_id": "id",
    "client_secret": SECRET,
    "flag_key": "new-checkout",
    "environment": "production",
    "enabled": True,
}


def config_error(**arguments: object) -> str:
    """The configuration error the step reports for ``arguments`` (GOOD for the rest)."""
    try:
        JiraFeatureFlag(**{**GOOD, **arguments})
    except config.ConfigErrors as errors:
        return "; ".join(errors.errors)
    raise AssertionError(f"no configuration error for {arguments!r}")


class FeatureFlagConfigTests(unittest.TestCase):
    def test_the_documented_example_is_accepted(self) -> None:
        step = JiraFeatureFlag(
            site="example.atlassian.net",
            client_id=util.Secret("jira-client-id"),
            client_secret=util.Secret("jira-client-secret"),
            flag_key="new-checkout",
            environment="production",
            enabled=util.Property("checkout_on"),
            rollout_percentage=25,
            issue_keys=None,
            url="https://flags.example.com/new-checkout",
        )
        assert step.options is not None
        self.assertEqual(step.options.rollout_percentage, 25)
        self.assertFalse(step.options.fail_on_error)
        self.assertFalse(step.haltOnFailure)
        self.assertIs(ExportedJiraFeatureFlag, JiraFeatureFlag)

    def test_wrong_arguments_are_named(self) -> None:
        for arguments, said in (
            ({"flag_key": None}, "give flag_key"),
            ({"flags_file": "flags.yaml"}, "not both"),
            ({"enabled": "yes"}, "enabled must be True, False"),
            ({"enabled": None}, "enabled is required"),
            ({"environment": None}, "environment is required"),
            ({"rollout_percentage": 101}, "rollout_percentage must be a number from 0 to 100"),
            ({"rollout_rules": -1}, "rollout_rules must be a whole number"),
            ({"rollout_percentage": 5, "rollout_text": "beta"}, "give one of"),
            ({"url": "flags.example.com"}, "url must be an absolute"),
            ({"environment_type": "prod"}, "did you mean 'production'"),
            ({"issue_keys": ["ABC-1", "oops"]}, "issue_keys: 'oops'"),
            ({"wait_timeout": 0}, "wait_timeout must be a number of seconds"),
            ({"fail_on_error": "yes"}, "fail_on_error must be True or False"),
            ({"projects": []}, "projects is empty"),
            ({"site": None}, "site must be"),
            ({"client_secret": None}, "client_secret must be"),
        ):
            message = config_error(**arguments)
            self.assertIn(said, message, arguments)
            self.assertTrue(message.startswith("JiraFeatureFlag 'jira-feature-flag': "), message)

    def test_a_flags_file_refuses_the_arguments_of_one_flag(self) -> None:
        message = config_error(flag_key=None, flags_file="flags.yaml", rollout_text="beta")
        self.assertIn("enabled, rollout_text: argument(s) of one flag (flag_key=)", message)

    def test_an_unknown_argument_names_the_closest(self) -> None:
        self.assertIn(
            "unknown argument flag_kee (did you mean flag_key?)", config_error(flag_kee=1)
        )

    def test_errors_are_collected_while_a_config_loads(self) -> None:
        with capture_config_errors() as errors:
            JiraFeatureFlag(**{**GOOD, "enabled": "no", "name": "flag"})
        (message,) = errors.errors
        self.assertTrue(message.startswith("JiraFeatureFlag 'flag': enabled"), message)

    def test_the_secret_is_not_in_the_steps_text(self) -> None:
        step = JiraFeatureFlag(**GOOD)
        self.assertNotIn(SECRET, str(step) + repr(step))
        self.assertIn("new-checkout", str(step))


class ParseTests(unittest.TestCase):
    def test_every_site_argument_is_taken(self) -> None:
        self.assertLessEqual(set(SITE_ARGUMENTS), set(FEATURE_FLAG_ARGUMENTS))
        options = parse_feature_flag(**GOOD, timeout=10, min_request_interval=2)
        self.assertEqual((options.site.timeout, options.site.min_request_interval), (10.0, 2.0))

    def test_issue_keys_given_as_text_are_parsed_once(self) -> None:
        options = parse_feature_flag(**GOOD, issue_keys="abc-1 OPS-2", ignore_case=True)
        self.assertEqual(options.issue_keys, ("ABC-1", "OPS-2"))
        with self.assertRaisesRegex(JiraConfigError, "names no issue key"):
            parse_feature_flag(**GOOD, issue_keys=[])

    def test_rendered_enabled_takes_bools_and_words(self) -> None:
        for value, expected in ((True, True), ("On", True), ("0", False), (1, True), ("no", False)):
            self.assertIs(rendered_enabled(value), expected, value)
        for value in ("maybe", None, 2, [True]):
            with self.assertRaisesRegex(JiraConfigError, "neither true nor false"):
                rendered_enabled(value)
