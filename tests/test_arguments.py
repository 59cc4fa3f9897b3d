"""Checks of single arguments: each names the argument and says what to give instead."""

from __future__ import annotations

import re

from buildbot.plugins import util
from buildbot.process.results import CANCELLED, FAILURE, RETRY, SUCCESS, WARNINGS
from twisted.trial import unittest

from buildbot_jira.arguments import (
    check_environment_type,
    check_environment_types,
    check_names,
    check_result,
    check_result_states,
    check_site,
    check_text_list,
    closest,
    refuse_unknown,
    result_name,
)
from buildbot_jira.jira.errors import JiraConfigError
from buildbot_jira.mapping.builds import DEFAULT_RESULT_STATES

BUILD_STATES = {"successful", "failed", "cancelled", "in_progress"}


def error(check: object, *arguments: object) -> str:
    """The message of the configuration error that ``check(*arguments)`` raises."""
    try:
        check(*arguments)  # type: ignore[operator]
    except JiraConfigError as problem:
        return str(problem)
    raise AssertionError(f"no configuration error for {arguments!r}")


class SiteTests(unittest.TestCase):
    def test_a_host_name_is_taken_and_https_forgiven(self) -> None:
        self.assertEqual(check_site("shop.atlassian.net"), "shop.atlassian.net")
        self.assertEqual(check_site("https://shop.atlassian.net/"), "shop.atlassian.net")
        self.assertEqual(check_site("localhost:8099"), "localhost:8099")

    def test_plain_http_is_refused_saying_why(self) -> None:
        message = error(check_site, "http://shop.atlassian.net/")
        self.assertEqual(
            message,
            "site 'http://shop.atlassian.net/' uses plain http://, which would send the "
            "credentials in clear text, and Jira Cloud sites answer on https only: give the "
            "host name alone, 'shop.atlassian.net'",
        )

    def test_the_site_name_alone_suggests_its_host_name(self) -> None:
        message = error(check_site, "shop")
        self.assertIn("site 'shop' is not a full host name", message)
        self.assertIn("'shop.atlassian.net'", message)

    def test_not_a_host_name_is_named(self) -> None:
        self.assertIn("host name", error(check_site, "shop atlassian"))
        self.assertIn("host name", error(check_site, None))


class ListTests(unittest.TestCase):
    def test_a_lone_string_is_a_list_of_one_in_every_list_argument(self) -> None:
        self.assertEqual(check_names("app", "builders"), ("app",))
        pattern = re.compile("^release/")
        self.assertEqual(check_names(pattern, "branches"), (pattern,))
        self.assertEqual(check_text_list("github.title", "issue_key_properties"), ("github.title",))
        self.assertEqual(check_text_list(["a", "b"], "service_ids"), ("a", "b"))

    def test_what_is_not_a_list_is_named(self) -> None:
        self.assertIn(
            "service_ids must be a list of strings", error(check_text_list, 7, "service_ids")
        )
        self.assertIn(
            "issue_key_properties must hold non-empty strings",
            error(check_text_list, ["a", ""], "issue_key_properties"),
        )


class ResultTests(unittest.TestCase):
    def test_a_result_is_a_constant_or_a_name(self) -> None:
        self.assertEqual(result_name(util.FAILURE, "r"), "failure")
        self.assertEqual(result_name("failure", "r"), "failure")
        self.assertEqual(result_name("WARNINGS", "r"), "warnings")
        self.assertEqual(check_result("failure", "timeout_result", {FAILURE, WARNINGS}), FAILURE)
        self.assertEqual(check_result(WARNINGS, "timeout_result", {FAILURE, WARNINGS}), WARNINGS)

    def test_a_result_not_allowed_is_named_with_both_spellings(self) -> None:
        allowed = {SUCCESS, FAILURE, CANCELLED}
        for value in (RETRY, "retry", "flaky", True, None, 42):
            message = error(check_result, value, "timeout_result", allowed)
            self.assertEqual(
                message,
                "timeout_result must be a Buildbot result (util.SUCCESS, util.FAILURE, "
                "util.CANCELLED, or its name: success, failure, cancelled), "
                f"not {value!r}",
            )

    def test_result_states_take_constants_and_names_alike(self) -> None:
        states = check_result_states(
            {util.WARNINGS: "failed", "exception": None},
            "result_states",
            DEFAULT_RESULT_STATES,
            BUILD_STATES,
        )
        self.assertEqual(states["warnings"], "failed")
        self.assertIsNone(states["exception"])
        self.assertEqual(states["success"], "successful")
        self.assertNotIn(util.WARNINGS, states)

    def test_a_wrong_result_or_state_is_named(self) -> None:
        message = error(check_result_states, {"flaky": "failed"}, "result_states", {}, BUILD_STATES)
        self.assertIn("result_states: 'flaky' is not a Buildbot result", message)
        self.assertIn("util.FAILURE", message)
        message = error(check_result_states, {"success": "ok"}, "result_states", {}, BUILD_STATES)
        self.assertIn("'ok' is not a Jira state here", message)


class EnvironmentTypeTests(unittest.TestCase):
    def test_a_jira_type_or_a_renderable_is_taken(self) -> None:
        self.assertEqual(check_environment_type("production", "environment_type"), "production")
        renderable = util.Property("environment_type")
        self.assertIs(check_environment_type(renderable, "environment_type"), renderable)
        self.assertIsNone(check_environment_type(None, "environment_type"))

    def test_another_word_is_refused_with_the_types_and_the_closest(self) -> None:
        self.assertEqual(
            error(check_environment_type, "prod", "environment_type"),
            "environment_type: 'prod' is not a Jira environment type; use one of development, "
            "production, staging, testing, unmapped (did you mean 'production'?)",
        )
        self.assertIn("'staging'", error(check_environment_type, "stage", "environment_type"))
        self.assertIn(
            "did you mean 'development'?",
            error(check_environment_types, {"dev-1": "dev"}, "environment_types"),
        )


class UnknownArgumentTests(unittest.TestCase):
    def test_the_closest_known_argument_is_suggested(self) -> None:
        self.assertEqual(closest("builder", ["builders", "branches"]), "builders")
        self.assertEqual(closest("prod", ["production", "staging"]), "production")
        self.assertIsNone(closest("colour", ["builders", "branches"]))
        message = error(refuse_unknown, {"builder": ["app"], "colour": 1}, ("builders", "name"))
        self.assertEqual(
            message,
            "unknown argument(s): builder (did you mean builders?), colour; "
            "the arguments are: builders, name",
        )

    def test_nothing_left_is_no_error(self) -> None:
        refuse_unknown({}, ("builders",))
