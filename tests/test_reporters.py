"""JiraBuildReporter configuration: every mistake is named at checkConfig."""

from __future__ import annotations

import re

from buildbot import config
from buildbot.plugins import reporters, util
from twisted.trial import unittest

from buildbot_jira.reporters import JiraBuildReporter
from tests.support import SECRET

GOOD = {"site": "example.atlassian.net", "client_id": "id", "client_secret": SECRET}


def config_error(**arguments: object) -> str:
    try:
        JiraBuildReporter(**{**GOOD, **arguments})
    except config.ConfigErrors as errors:
        return "; ".join(errors.errors)
    raise AssertionError(f"no configuration error for {arguments!r}")


class CheckConfigTests(unittest.TestCase):
    def test_plugin_is_found_by_buildbot(self) -> None:
        self.assertIs(reporters.JiraBuildReporter, JiraBuildReporter)

    def test_minimal_configuration_with_secrets(self) -> None:
        reporter = JiraBuildReporter(
            name="jira",
            site="example.atlassian.net",
            client_id=util.Secret("jira-client-id"),
            client_secret=util.Secret("jira-client-secret"),
        )
        self.assertEqual(reporter.name, "jira")
        assert reporter.options is not None
        self.assertEqual(reporter.options.api_url, "https://api.atlassian.com")

    def test_missing_required_arguments_are_named(self) -> None:
        self.assertIn("site", config_error(site=None))
        self.assertIn("client_id", config_error(client_id=None))
        self.assertIn("client_secret", config_error(client_secret=""))

    def test_wrong_types_are_named(self) -> None:
        cases = {
            "builders": 42,
            "branches": [1],
            "dry_run": "yes",
            "debug": 1,
            "timeout": "30",
            "outbox_size": 0,
            "issue_keys_property": 5,
            "pipeline_id": 12,
            "ignore_case": "no",
        }
        for argument, value in cases.items():
            message = config_error(**{argument: value})
            self.assertIn(argument, message, argument)

    def test_invalid_regex_is_named(self) -> None:
        self.assertIn("issue_key_pattern", config_error(issue_key_pattern="([A-Z"))

    def test_unknown_result_name_and_state_are_named(self) -> None:
        message = config_error(result_states={"sucess": "successful"})
        self.assertIn("result_states", message)
        self.assertIn("sucess", message)
        self.assertIn("result_states", config_error(result_states={"warnings": "green"}))

    def test_plain_http_off_this_machine_is_refused(self) -> None:
        self.assertIn("api_url", config_error(api_url="http://api.example.com"))

    def test_unknown_argument_is_named(self) -> None:
        self.assertIn("sitee", config_error(sitee="x"))

    def test_a_secret_of_the_wrong_type_is_not_quoted(self) -> None:
        message = config_error(client_secret=b"s3cr3t-bytes")
        self.assertIn("client_secret", message)
        self.assertIn("bytes", message)
        self.assertNotIn("s3cr3t", message)

    def test_config_dict_and_repr_hide_the_secret(self) -> None:
        reporter = JiraBuildReporter(name="jira", **GOOD)
        self.assertNotIn(SECRET, repr(reporter.getConfigDict()))
        self.assertNotIn(SECRET, repr(reporter))
        self.assertNotIn(SECRET, repr(reporter.options))

    def test_builder_and_branch_filters_accept_patterns(self) -> None:
        reporter = JiraBuildReporter(
            name="jira", builders=["app", re.compile("^deploy-")], branches="main", **GOOD
        )
        assert reporter.options is not None
        self.assertEqual(reporter.options.branches, ("main",))
