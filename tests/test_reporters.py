"""The reporters' configuration: every mistake is named at checkConfig, which keeps nothing."""

from __future__ import annotations

import re
from typing import Any

import attrs
from buildbot import config
from buildbot.config.errors import capture_config_errors
from buildbot.plugins import reporters, util
from buildbot.reporters.base import ReporterBase
from twisted.internet import defer, task
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial import unittest

from buildbot_jira.build_reporter import RunningBuilds
from buildbot_jira.delivery.interrupted import MASTER_LOST
from buildbot_jira.events import JiraEventGenerator
from buildbot_jira.jira.http import DEFAULT_TIMEOUT
from buildbot_jira.jira.model import SequenceNumbers
from buildbot_jira.mapping.builds import BuildSnapshot
from buildbot_jira.mapping.keys import ISSUE_KEYS_PROPERTY
from buildbot_jira.options import BuildReporterOptions, DeploymentReporterOptions
from buildbot_jira.reporter_base import RecentIds
from buildbot_jira.reporters import JiraBuildReporter, JiraDeploymentReporter
from buildbot_jira.simulator.contract import entity_schema, validation_errors
from tests.outboxes import update
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
        arguments = {
            "site": "example.atlassian.net",
            "client_id": util.Secret("jira-client-id"),
            "client_secret": util.Secret("jira-client-secret"),
        }
        reporter = JiraBuildReporter(name="jira", **arguments)
        self.assertEqual(reporter.name, "jira")
        options = JiraBuildReporter.parse_options(**arguments)
        self.assertEqual(options.site.api_url, "https://api.atlassian.com")
        self.assertEqual(options.site.timeout, DEFAULT_TIMEOUT)
        self.assertEqual(options.mapping.issue_keys_property, ISSUE_KEYS_PROPERTY)
        self.assertEqual(options.test_update_interval, 5.0)

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
        self.assertNotIn(SECRET, repr(JiraBuildReporter.parse_options(**GOOD)))

    def test_builder_and_branch_filters_accept_patterns(self) -> None:
        deploy = re.compile("^deploy-")
        arguments = {"builders": ["app", deploy], "branches": "main", **GOOD}
        JiraBuildReporter(name="jira", **arguments)
        options = JiraBuildReporter.parse_options(**arguments)
        self.assertEqual(options.builders, ("app", deploy))
        self.assertEqual(options.branches, ("main",))


class PlainReporter(ReporterBase):
    """What Buildbot's ReporterBase alone leaves on a reporter, with one generator."""

    def checkConfig(self, **arguments: Any) -> None:
        super().checkConfig(generators=[JiraEventGenerator()])

    def sendMessage(self, reports: list[Any]) -> defer.Deferred[None]:
        return defer.succeed(None)


class NoStateFromCheckConfigTests(unittest.TestCase):
    """Buildbot checks a configuration before it decides to use it: a check keeps nothing."""

    def assert_keeps_nothing(self, reporter: ReporterBase, arguments: dict[str, Any]) -> None:
        plain = PlainReporter(name="jira", **arguments)
        self.assertEqual(vars(reporter), vars(plain))
        self.assertIsNone(reporter.options)
        self.assertIsNone(reporter.outbox)

    def test_build_reporter(self) -> None:
        arguments = {**GOOD, "debug": True, "test_update_interval": 1, "builders": ["app"]}
        self.assert_keeps_nothing(JiraBuildReporter(name="jira", **arguments), arguments)

    def test_deployment_reporter(self) -> None:
        arguments = {**GOOD, "step_pattern": r"^deploy to (?P<environment>.+)$"}
        self.assert_keeps_nothing(JiraDeploymentReporter(name="jira", **arguments), arguments)

    def test_a_failed_check_keeps_nothing_either(self) -> None:
        # Buildbot collects configuration errors while it loads a master.cfg.
        with capture_config_errors() as errors:
            reporter = JiraBuildReporter(name="jira", **{**GOOD, "timeout": "30"})
        self.assertIn("timeout", errors.errors[0])
        self.assertIsNone(reporter.options)
        self.assertNotIn("options", vars(reporter))


class ParsedOptionsTests(unittest.TestCase):
    """The options that reconfigService assigns, one value per reporter."""

    def test_build_reporter_options(self) -> None:
        options = JiraBuildReporter.parse_options(
            **GOOD, result_states={"warnings": "failed"}, issue_keys_property=None, timeout=60
        )
        self.assertIsInstance(options, BuildReporterOptions)
        self.assertEqual(options.mapping.result_states["warnings"], "failed")
        self.assertEqual(options.mapping.result_states["success"], "successful")
        self.assertEqual(options.mapping.issue_keys_property, ISSUE_KEYS_PROPERTY)
        self.assertEqual(options.site.timeout, 60)

    def test_deployment_reporter_options(self) -> None:
        options = JiraDeploymentReporter.parse_options(
            **GOOD,
            environment_id="prod",
            enable_gating=True,
            service_ids=["svc"],
            result_states={"cancelled": "rolled_back"},
        )
        self.assertIsInstance(options, DeploymentReporterOptions)
        self.assertTrue(options.deployments.gating)
        self.assertEqual(options.deployments.service_ids, ("svc",))
        self.assertEqual(options.deployments.result_states["cancelled"], "rolled_back")
        self.assertEqual(options.environment_id, "prod")
        self.assertIsNone(options.step_pattern)


class RecentIdsTests(unittest.TestCase):
    def test_the_oldest_ids_are_forgotten_first(self) -> None:
        recent = RecentIds(size=3)
        for identifier in (1, 2, 3, 4):
            recent.add(identifier)
        self.assertNotIn(1, recent)
        self.assertTrue(all(identifier in recent for identifier in (2, 3, 4)))
        recent.add(2)  # seen again: still remembered, nothing else forgotten
        self.assertIn(3, recent)


class EventSelectionTests(unittest.TestCase):
    """What each reporter's generator reads for, decided before any read."""

    def test_the_build_reporter_reads_steps_only_of_builds_it_sent_that_still_run(self) -> None:
        reporter = JiraBuildReporter(name="jira", **GOOD)
        generator = reporter.generator(JiraBuildReporter.parse_options(**GOOD))
        assert generator.step_filter is not None
        step = {"buildid": 10, "stepid": 3}
        self.assertFalse(generator.step_filter("finished", step))  # not configured yet
        reporter._builds = RunningBuilds(task.Clock())
        self.assertFalse(generator.step_filter("finished", step))  # never sent: no keys
        reporter._builds.sent(10, None)
        self.assertTrue(generator.step_filter("finished", step))
        reporter._builds.finish(10)
        self.assertFalse(generator.step_filter("finished", step))

    def test_the_deployment_reporter_reads_no_test_results(self) -> None:
        arguments = {**GOOD, "step_pattern": "^deploy to (?P<environment>.+)$"}
        reporter = JiraDeploymentReporter(name="jira", **arguments)
        generator = reporter.generator(JiraDeploymentReporter.parse_options(**arguments))
        self.assertFalse(generator.test_results)
        build = JiraBuildReporter(name="jira", **GOOD).generator(
            JiraBuildReporter.parse_options(**GOOD)
        )
        self.assertTrue(build.test_results)

    def test_the_generator_finds_keys_with_the_reporters_rules(self) -> None:
        options = JiraBuildReporter.parse_options(**GOOD, projects=["OPS"])
        generator = JiraBuildReporter(name="jira", **GOOD).generator(options)
        self.assertIs(generator.mapping, options.mapping)


class IssueKeyNotesTests(unittest.TestCase):
    def test_each_note_about_a_builds_keys_is_logged_once_per_build(self) -> None:
        reporter = JiraBuildReporter(name="jira", **GOOD)
        reporter.options = JiraBuildReporter.parse_options(**GOOD)
        reporter._noted = RecentIds()
        logged: list[str] = []

        def observe(event: dict[str, Any]) -> None:
            logged.append(formatEvent(event))

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        build = BuildSnapshot(
            buildid=10,
            number=1,
            builderid=1,
            builder_name="app",
            masterid=1,
            url="http://ci.example.com/#/builders/1/builds/1",
            properties={"jira_issue_keys": 5, "title": "PROJ-1"},
        )
        for snapshot in (build, build, attrs.evolve(build, buildid=11)):
            self.assertEqual(reporter.issue_keys(snapshot), ("PROJ-1",))
        notes = [line for line in logged if "'jira_issue_keys' ignored" in line]
        self.assertEqual(len(notes), 2, logged)


class InterruptedTests(unittest.TestCase):
    """What a reporter sends for a build its master's end interrupted (``result_states``)."""

    def reporter(self, kind: Any, **arguments: Any) -> Any:
        reporter = kind(name="jira", **GOOD, **arguments)
        reporter.options = kind.parse_options(**GOOD, **arguments)
        reporter._sequence = SequenceNumbers()
        reporter.now = lambda: 1_800_000_000.0  # the master's clock
        return reporter

    def test_a_build_is_cancelled_by_default_with_a_newer_sequence(self) -> None:
        reporter = self.reporter(JiraBuildReporter)
        last = update(1, 100, state="in_progress")
        final = reporter.interrupted(last, MASTER_LOST)
        self.assertEqual((final.payload["state"], final.final), ("cancelled", True))
        self.assertEqual(final.payload["description"], MASTER_LOST)
        self.assertGreater(final.sequence, last.sequence)
        self.assertEqual(final.payload["updateSequenceNumber"], final.sequence)
        self.assertEqual(validation_errors(entity_schema("builds"), dict(final.payload)), [])

    def test_the_retry_entry_of_result_states_decides(self) -> None:
        failed = self.reporter(JiraBuildReporter, result_states={"retry": "failed"})
        self.assertEqual(failed.interrupted(update(1, 100), MASTER_LOST).payload["state"], "failed")
        silent = self.reporter(JiraBuildReporter, result_states={"retry": None})
        self.assertIsNone(silent.interrupted(update(1, 100), MASTER_LOST))

    def test_a_deployment_takes_its_own_result_states(self) -> None:
        reporter = self.reporter(
            JiraDeploymentReporter, environment_id="prod", result_states={"retry": "rolled_back"}
        )
        self.assertEqual(reporter.interrupted_state(), "rolled_back")
        self.assertEqual(
            self.reporter(JiraDeploymentReporter, environment_id="p").interrupted_state(),
            "cancelled",
        )
