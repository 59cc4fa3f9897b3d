"""JiraFeatureFlag in Buildbot's fake build, with a Jira in memory and the fake reactor."""

from __future__ import annotations

import json
from typing import Any

from buildbot.interfaces import IRenderable
from buildbot.plugins import util
from buildbot.process.remotetransfer import StringFileWriter
from buildbot.process.results import FAILURE, SUCCESS, WARNINGS
from buildbot.test.reactor import TestReactorMixin
from buildbot.test.steps import ExpectRemoteRef, ExpectUploadFile, TestBuildStepMixin
from twisted.internet import defer
from twisted.trial import unittest
from zope.interface import implementer

from buildbot_jira import feature_flag_step, worker_file
from buildbot_jira.feature_flag_step import FLAG_RETRY, JiraFeatureFlag
from buildbot_jira.jira.errors import JiraPermissionError, JiraUnavailableError
from buildbot_jira.jira.model import MAX_INT64
from buildbot_jira.jira.results import Rejection, SubmitResult
from buildbot_jira.jira.retry import RetryPolicy
from buildbot_jira.mapping.flags_file import MAX_FLAGS_FILE_BYTES
from buildbot_jira.simulator.contract import request_schema, validation_errors
from buildbot_jira.sites import JiraSite
from tests.support import SECRET, coroutine_test


class MemoryJira:
    """Jira's feature flags API in memory: stores what it accepts, fails on demand."""

    def __init__(self) -> None:
        self.stored: dict[str, dict[str, Any]] = {}
        self.sent: list[list[dict[str, Any]]] = []
        self.read: list[str] = []
        self.failure: Exception | None = None
        self.read_failure: Exception | None = None
        self.unknown_projects: set[str] = set()
        self.hang = False

    async def get_feature_flag(self, flag_id: str) -> dict[str, Any] | None:
        self.read.append(flag_id)
        if self.read_failure is not None:
            raise self.read_failure
        return self.stored.get(flag_id)

    async def submit_feature_flags(self, flags: list[dict[str, Any]]) -> SubmitResult:
        self.sent.append(flags)
        if self.hang:
            await defer.Deferred()
        if self.failure is not None:
            raise self.failure
        accepted, unknown = [], []
        for flag in flags:
            missing = [k for k in flag["issueKeys"] if k.split("-")[0] in self.unknown_projects]
            unknown += missing
            if len(missing) < len(flag["issueKeys"]):
                self.stored[flag["id"]] = flag
                accepted.append(flag["id"])
        return SubmitResult(
            entity="featureflags", accepted=tuple(accepted), unknown_issue_keys=tuple(unknown)
        )


class FakeConnection:
    def __init__(self, client: MemoryJira, site: JiraSite[str], retry: RetryPolicy) -> None:
        self.client, self.site, self.retry = client, site, retry
        self.released = False

    async def release(self) -> None:
        self.released = True


class FeatureFlagStepTests(TestBuildStepMixin, TestReactorMixin, unittest.TestCase):
    """The step in Buildbot's fake build, with a Jira in memory and the fake reactor."""

    def setUp(self) -> defer.Deferred[None]:  # type: ignore[override]
        self.setup_test_reactor()
        self.jira = MemoryJira()
        self.connections: list[FakeConnection] = []
        self.users: list[str | None] = []

        async def connect(
            master: Any, site: JiraSite[str], *, retry: RetryPolicy, user: str | None = None
        ) -> FakeConnection:
            self.users.append(user)
            connection = FakeConnection(self.jira, site, retry)
            self.connections.append(connection)
            return connection

        self.patch(feature_flag_step, "connect", connect)
        return self.setup_test_build_step(
            with_secrets={"jira-client-id": "id-from-secret", "jira-client-secret": SECRET}
        )

    def flag_step(self, **arguments: Any) -> JiraFeatureFlag:
        base = {
            "site": "example.atlassian.net",
            "client_id": util.Secret("jira-client-id"),
            "client_secret": util.Secret("jira-client-secret"),
            "flag_key": "new-checkout",
            "environment": "production",
            "enabled": util.Property("checkout_on"),
            "rollout_percentage": 25,
        }
        base.update(arguments)
        step = self.setup_step(JiraFeatureFlag(**{k: v for k, v in base.items() if v is not None}))
        self.build.getBuilderId = lambda: defer.succeed(3)  # type: ignore[attr-defined]
        self.build.setProperty("checkout_on", True, "test")
        self.build.setProperty("jira_issue_keys", ["ABC-7"], "test")
        return step

    def log_text(self, step: JiraFeatureFlag) -> str:
        return str(step.logs["jira feature flags"].stdout)

    def sent(self) -> list[dict[str, Any]]:
        (flags,) = self.jira.sent
        self.assertEqual(validation_errors(request_schema("featureflags"), {"flags": flags}), [])
        return flags

    @coroutine_test
    async def test_the_flag_is_sent_linked_to_the_builds_issues(self) -> None:
        step = self.flag_step()
        self.reactor.advance(1_800_000_000.25)
        self.expect_outcome(SUCCESS, "Jira feature flags: new-checkout on (25 %) in production")
        await self.run_step()
        (flag,) = self.sent()
        self.assertEqual((flag["id"], flag["issueKeys"]), ("new-checkout", ["ABC-7"]))
        (detail,) = flag["details"]
        self.assertEqual(detail["environment"], {"name": "production", "type": "production"})
        self.assertEqual(detail["status"], {"enabled": True, "rollout": {"percentage": 25}})
        self.assertEqual(detail["url"], "http://localhost:8080/#/builders/3/builds/13")
        # Milliseconds of the master's clock, as lastUpdated says.
        self.assertEqual(flag["updateSequenceId"], 1_800_000_000_250)
        self.assertEqual(detail["lastUpdated"], "2027-01-15T08:00:00.250Z")
        (connection,) = self.connections
        self.assertEqual(
            (connection.site.client_id, connection.site.client_secret), ("id-from-secret", SECRET)
        )
        self.assertEqual(connection.retry, FLAG_RETRY)
        self.assertTrue(connection.released)
        self.assertEqual(self.users, ["jira-feature-flag"])
        text = self.log_text(step)
        self.assertIn('"key": "new-checkout"', text)
        self.assertIn("Jira accepted: new-checkout", text)
        self.assertNotIn(SECRET, text)

    @coroutine_test
    async def test_environments_jira_holds_are_kept_and_the_sequence_grows(self) -> None:
        staging = {
            "url": "https://flags.example.com/new-checkout/staging",
            "lastUpdated": "2026-01-01T00:00:00.000Z",
            "environment": {"name": "staging", "type": "staging"},
            "status": {"enabled": True},
        }
        # From a build whose clock was ahead of this one's.
        self.jira.stored["new-checkout"] = {"details": [staging], "updateSequenceId": 10**15}
        self.flag_step()
        self.expect_outcome(SUCCESS)
        await self.run_step()
        self.assertEqual(self.jira.read, ["new-checkout"])
        (flag,) = self.sent()
        self.assertEqual(flag["details"][0], staging)
        self.assertEqual(flag["details"][1]["environment"]["name"], "production")
        self.assertEqual(flag["updateSequenceId"], 10**15 + 1)
        self.assertEqual(flag["summary"]["status"]["rollout"], {"percentage": 25})

    @coroutine_test
    async def test_a_sequence_at_jiras_maximum_stays_within_the_contract(self) -> None:
        self.jira.stored["new-checkout"] = {"details": [], "updateSequenceId": MAX_INT64}
        step = self.flag_step()
        self.expect_outcome(WARNINGS, "Jira feature flags: sequence at its maximum (warnings)")
        await self.run_step()
        self.assertEqual(self.jira.sent, [], "Jira would ignore an update that is not newer")
        self.assertIn("at the highest updateSequenceId", self.log_text(step))

    @coroutine_test
    async def test_a_sequence_just_below_jiras_maximum_goes_to_the_maximum(self) -> None:
        self.jira.stored["new-checkout"] = {"details": [], "updateSequenceId": MAX_INT64 - 1}
        self.flag_step()
        self.expect_outcome(SUCCESS)
        await self.run_step()
        (flag,) = self.sent()  # validated against the contract's schema
        self.assertEqual(flag["updateSequenceId"], MAX_INT64)

    @coroutine_test
    async def test_a_connection_that_fails_oddly_warns_and_the_build_goes_on(self) -> None:
        async def broken(master: Any, site: JiraSite[str], **kwargs: Any) -> FakeConnection:
            raise RuntimeError(f"no connection with {SECRET}")

        self.patch(feature_flag_step, "connect", broken)
        step = self.flag_step()
        self.expect_outcome(WARNINGS, "Jira feature flags: error (warnings)")
        await self.run_step()
        text = self.log_text(step)
        self.assertIn("Could not report to Jira: RuntimeError (see the master's log)", text)
        self.assertNotIn(SECRET, text)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    @coroutine_test
    async def test_a_renderable_that_raises_anything_is_a_configuration_error(self) -> None:
        @implementer(IRenderable)
        class Broken:
            def getRenderingFor(self, properties: Any) -> Any:
                raise OSError(f"vault sealed; the token was {SECRET}")

        step = self.flag_step(environment=Broken())
        self.expect_outcome(WARNINGS, "Jira feature flags: configuration error (warnings)")
        await self.run_step()
        text = self.log_text(step)
        self.assertIn("environment could not be rendered (OSError)", text)
        self.assertNotIn(SECRET, text)
        self.assertEqual(self.connections, [])

    @coroutine_test
    async def test_keep_environments_false_reads_nothing_back(self) -> None:
        self.jira.stored["new-checkout"] = {"details": [], "updateSequenceId": 5}
        self.flag_step(keep_environments=False)
        self.expect_outcome(SUCCESS)
        await self.run_step()
        self.assertEqual(self.jira.read, [])

    @coroutine_test
    async def test_jira_down_gives_warnings_and_the_build_goes_on(self) -> None:
        self.jira.failure = JiraUnavailableError("Jira site 'example.atlassian.net' is down")
        step = self.flag_step()
        self.expect_outcome(WARNINGS, "Jira feature flags: Jira unavailable (warnings)")
        await self.run_step()
        self.assertFalse(step.haltOnFailure)
        text = self.log_text(step)
        self.assertIn("failed: Jira site 'example.atlassian.net' is down", text)
        self.assertIn("Check the network path", text)
        self.assertTrue(self.connections[0].released)

    @coroutine_test
    async def test_fail_on_error_makes_it_a_failure(self) -> None:
        self.jira.failure = JiraUnavailableError("down")
        self.flag_step(fail_on_error=True)
        self.expect_outcome(FAILURE, "Jira feature flags: Jira unavailable (failure)")
        await self.run_step()

    @coroutine_test
    async def test_a_jira_that_never_answers_is_given_up_on(self) -> None:
        self.jira.hang = True
        step = self.flag_step(wait_timeout=30)
        self.expect_outcome(WARNINGS, "Jira feature flags: Jira timeout (warnings)")
        running = self.run_step()
        self.reactor.advance(30)
        await running
        self.assertIn("Jira did not answer within 30 s", self.log_text(step))
        self.assertTrue(self.connections[0].released)

    @coroutine_test
    async def test_a_missing_permission_says_which(self) -> None:
        self.jira.failure = JiraPermissionError(
            "POST featureflags was refused (HTTP 403). The OAuth credentials lack the "
            "permission to write feature flags (write:feature-flag:jira)",
            status=403,
        )
        self.jira.read_failure = JiraPermissionError("GET featureflags was refused", status=403)
        step = self.flag_step()
        self.expect_outcome(WARNINGS, "Jira feature flags: permission missing (warnings)")
        await self.run_step()
        text = self.log_text(step)
        self.assertNotIn(SECRET, text)
        self.assertIn("Could not read what Jira holds", text)
        self.assertIn("permission to write feature flags", text)

    @coroutine_test
    async def test_unknown_issue_keys_are_said_and_an_unstored_flag_warns(self) -> None:
        self.jira.unknown_projects = {"ABC"}
        step = self.flag_step()
        self.expect_outcome(WARNINGS, "Jira feature flags: not stored: new-checkout (warnings)")
        await self.run_step()
        self.assertIn("Jira does not know the issue(s) ABC-7", self.log_text(step))

    @coroutine_test
    async def test_a_rejection_is_logged_with_jiras_words(self) -> None:
        step = self.flag_step(fail_on_error=True)
        self.jira.submit_feature_flags = self.reject  # type: ignore[method-assign]
        self.expect_outcome(FAILURE)
        await self.run_step()
        self.assertIn("Jira rejected new-checkout: bad flag", self.log_text(step))

    async def reject(self, flags: list[dict[str, Any]]) -> SubmitResult:
        self.jira.sent.append(flags)
        return SubmitResult(
            entity="featureflags", rejected=(Rejection(key="new-checkout", errors=("bad flag",)),)
        )

    @coroutine_test
    async def test_dry_run_logs_the_payload_and_sends_nothing(self) -> None:
        step = self.flag_step(dry_run=True, issue_keys="OPS-1, OPS-2")
        self.expect_outcome(
            SUCCESS, "Jira feature flags: dry run, new-checkout on (25 %) in production"
        )
        await self.run_step()
        self.assertEqual((self.jira.sent, self.connections), ([], []))
        text = self.log_text(step)
        self.assertIn("Dry run: this would be sent (nothing was)", text)
        payload = json.loads(text[text.index("{") : text.rindex("}") + 1])
        self.assertEqual(payload["flags"][0]["issueKeys"], ["OPS-1", "OPS-2"])

    @coroutine_test
    async def test_a_flag_without_issues_is_not_sent(self) -> None:
        step = self.flag_step()
        self.build.setProperty("jira_issue_keys", [], "test")
        self.expect_outcome(WARNINGS, "Jira feature flags: no issue keys (warnings)")
        await self.run_step()
        self.assertEqual(self.jira.sent, [])
        self.assertIn("names no Jira issue", self.log_text(step))

    @coroutine_test
    async def test_enabled_may_be_a_word(self) -> None:
        self.flag_step()
        self.build.setProperty("checkout_on", "off", "test")
        self.expect_outcome(SUCCESS, "Jira feature flags: new-checkout off in production")
        await self.run_step()

    @coroutine_test
    async def test_a_wrong_enabled_word_is_named(self) -> None:
        step = self.flag_step()
        self.build.setProperty("checkout_on", "maybe", "test")
        self.expect_outcome(WARNINGS, "Jira feature flags: configuration error (warnings)")
        await self.run_step()
        self.assertIn("enabled rendered to 'maybe'", self.log_text(step))

    def expect_file(self, path: str, content: str | None, rc: int = 0) -> None:
        expectation = ExpectUploadFile(
            workersrc=path,
            workdir="wkdir",
            blocksize=32 * 1024,
            maxsize=MAX_FLAGS_FILE_BYTES + 1,
            writer=ExpectRemoteRef(worker_file._FileContent),
        )
        if content is not None:
            expectation.upload_string(content)
        self.expect_commands(expectation.exit(rc))

    def file_step(self, **arguments: Any) -> JiraFeatureFlag:
        file_arguments = {"flag_key": None, "enabled": None, "rollout_percentage": None}
        defaults = {"flags_file": "flags.yaml", "workdir": "wkdir", **file_arguments}
        return self.flag_step(**{**defaults, **arguments})

    @coroutine_test
    async def test_a_yaml_flags_file_reports_every_flag(self) -> None:
        step = self.file_step()
        self.expect_file(
            "flags.yaml",
            "flags:\n  new-checkout: {enabled: true, rollout_percentage: 25}\n"
            "  dark-mode: false\n  search-v2: {enabled: true, issue_keys: [OPS-3]}\n",
        )
        self.expect_outcome(SUCCESS, "Jira feature flags: 3 flags")
        await self.run_step()
        flags = self.sent()
        self.assertEqual([f["key"] for f in flags], ["new-checkout", "dark-mode", "search-v2"])
        self.assertEqual([f["issueKeys"] for f in flags], [["ABC-7"], ["ABC-7"], ["OPS-3"]])
        self.assertEqual(len({f["updateSequenceId"] for f in flags}), 3)
        self.assertIn("Jira accepted: dark-mode, new-checkout, search-v2", self.log_text(step))

    @coroutine_test
    async def test_a_json_flags_file(self) -> None:
        self.file_step(flags_file="out/flags.json")
        self.expect_file("out/flags.json", json.dumps({"flags": {"a": True, "b": False}}))
        self.expect_outcome(SUCCESS, "Jira feature flags: 2 flags")
        await self.run_step()
        self.assertEqual([f["details"][0]["status"]["enabled"] for f in self.sent()], [True, False])

    @coroutine_test
    async def test_a_bad_flags_file_is_refused_whole_and_named(self) -> None:
        step = self.file_step()
        self.expect_file("flags.yaml", "flags:\n  a: yes please\n  b: {enabld: true}\n")
        self.expect_outcome(WARNINGS, "Jira feature flags: flags file refused (warnings)")
        await self.run_step()
        self.assertEqual(self.connections, [])
        text = self.log_text(step)
        self.assertIn("The flags file 'flags.yaml' is refused; nothing is sent:", text)
        self.assertIn("flag 'a': must be true, false or a mapping", text)
        self.assertIn("unknown field 'enabld' (did you mean enabled?)", text)

    @coroutine_test
    async def test_a_file_that_is_not_yaml_fails_with_fail_on_error(self) -> None:
        step = self.file_step(fail_on_error=True)
        self.expect_file("flags.yaml", "flags: [unclosed")
        self.expect_outcome(FAILURE, "Jira feature flags: flags file refused (failure)")
        await self.run_step()
        self.assertIn("not UTF-8 YAML", self.log_text(step))

    @coroutine_test
    async def test_a_missing_file_is_named(self) -> None:
        step = self.file_step()
        self.expect_file("flags.yaml", None, rc=1)
        self.expect_outcome(WARNINGS, "Jira feature flags: no flags file (warnings)")
        await self.run_step()
        self.assertIn("could not be read in 'wkdir'", self.log_text(step))

    @coroutine_test
    async def test_a_file_over_one_mebibyte_is_not_read(self) -> None:
        step = self.file_step()
        self.expect_file("flags.yaml", "#" * (MAX_FLAGS_FILE_BYTES + 10), rc=1)
        self.expect_outcome(WARNINGS, "Jira feature flags: flags file too large (warnings)")
        await self.run_step()
        self.assertIn("larger than 1 MiB", self.log_text(step))

    @coroutine_test
    async def test_a_yaml_alias_bomb_is_refused_quickly(self) -> None:
        # Twelve levels of nine aliases each: a full repr would list 9**12 items.
        lines = ["flags:", "  a: &a [x, x, x, x, x, x, x, x, x]"]
        for level in range(1, 12):
            name, below = chr(97 + level), chr(96 + level)
            lines.append(f"  {name}: &{name} [{', '.join(['*' + below] * 9)}]")
        lines.append("  boom: {enabled: *l}")
        step = self.file_step()
        self.expect_file("flags.yaml", "\n".join(lines) + "\n")
        self.expect_outcome(WARNINGS, "Jira feature flags: flags file refused (warnings)")
        await self.run_step()
        text = self.log_text(step)
        self.assertIn("flag 'l': must be true, false or a mapping, not [[[[...], ", text)
        self.assertIn("flag 'boom': enabled must be true or false, not [[[[", text)
        self.assertLess(len(text), 4_000)

    @coroutine_test
    async def test_numbers_too_long_to_print_are_refused_not_crashed_on(self) -> None:
        step = self.file_step()
        huge = "0x" + "f" * 5000  # YAML reads hex without Python's limit on digits
        # An explicit key ("? "): YAML allows any length there.
        self.expect_file("flags.yaml", f"flags:\n  a:\n    enabled: true\n    ? {huge}\n    : 1\n")
        self.expect_outcome(WARNINGS, "Jira feature flags: flags file refused (warnings)")
        await self.run_step()
        self.assertIn("flag 'a': unknown field <int>", self.log_text(step))

    @coroutine_test
    async def test_a_deeply_nested_file_is_refused(self) -> None:
        step = self.file_step()
        self.expect_file("flags.yaml", "flags: " + "[" * 50_000 + "]" * 50_000)
        self.expect_outcome(WARNINGS, "Jira feature flags: flags file refused (warnings)")
        await self.run_step()
        self.assertIn("nested too deeply", self.log_text(step))

    def test_the_writer_is_a_worker_file_writer(self) -> None:
        # What the worker protocols wrap: like Buildbot's own StringFileWriter.
        self.assertTrue(issubclass(worker_file._FileContent, StringFileWriter.__mro__[1]))
