"""``buildbot-jira check`` against the simulator: each outcome, its exit code and its message."""

from __future__ import annotations

import io
import os
import sys
from typing import Any

from twisted.internet import reactor
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial import unittest

from buildbot_jira.simulator import DEFAULT_CLIENT_ID, DEFAULT_CLOUD_ID, RunningSimulator
from buildbot_jira.simulator.contract import entity_schema, validation_errors
from buildbot_jira.tools import check
from buildbot_jira.tools.cli import build_parser
from tests.support import SECRET, coroutine_test, start_simulator

WRONG_SECRET = "wrong-secret-4f9a1c7e22"


class CheckTestCase(unittest.TestCase):
    """Runs the check command's parser and code in-process, output captured."""

    running: RunningSimulator

    async def start(self, **simulator: Any) -> RunningSimulator:
        self.running = await start_simulator(self, **simulator)
        return self.running

    def arguments(self, *extra: str, site_url: str | None = None) -> list[str]:
        url = self.running.url
        return [
            "check",
            "--site",
            "example.atlassian.net",
            "--client-id",
            DEFAULT_CLIENT_ID,
            "--api-url",
            url,
            "--site-url",
            site_url or url,
            *extra,
        ]

    async def check(
        self,
        *extra: str,
        secret: str | None = SECRET,
        site_url: str | None = None,
        prompt: check.SecretPrompt | None = None,
    ) -> tuple[int, str]:
        """The exit code and everything printed (stdout, then stderr)."""
        environ = {} if secret is None else {"JIRA_CLIENT_SECRET": secret}
        args = build_parser().parse_args(self.arguments(*extra, site_url=site_url))
        out, err = io.StringIO(), io.StringIO()
        code = await check.run(
            args, out=out, err=err, environ=environ, reactor=reactor, prompt=prompt
        )
        output = out.getvalue() + err.getvalue()
        for value in (SECRET, WRONG_SECRET):
            self.assertNotIn(value, output)
        return code, output

    def stored_builds(self) -> list[dict[str, Any]]:
        return [entity.current for entity in self.running.simulator.builds.values()]

    def posts(self) -> list[str]:
        return [r.path for r in self.running.simulator.requests if r.method == "POST"]


class CheckOutcomeTests(CheckTestCase):
    @coroutine_test
    async def test_success_sends_one_labelled_test_build(self) -> None:
        await self.start()
        code, output = await self.check("--issue", "PROJ-7")
        self.assertEqual(code, check.EXIT_OK)
        self.assertIn("[1/3] cloud ID of example.atlassian.net ... 00000000-", output)
        self.assertIn("[2/3] access token for client ID 'sim-client-id' ... ok", output)
        self.assertIn("[3/3] builds permission: test build for PROJ-7 ... accepted", output)
        self.assertIn("OK: these credentials work", output)
        (build,) = self.stored_builds()
        self.assertEqual(build["displayName"], "buildbot-jira check (test build)")
        self.assertEqual(build["pipelineId"], "buildbot-jira-check")
        self.assertEqual(build["state"], "successful")
        self.assertEqual(build["issueKeys"], ["PROJ-7"])
        self.assertEqual(validation_errors(entity_schema("builds"), build), [])

    @coroutine_test
    async def test_a_second_check_replaces_the_test_build(self) -> None:
        await self.start()
        self.assertEqual((await self.check("--issue", "PROJ-7"))[0], check.EXIT_OK)
        self.assertEqual((await self.check("--issue", "PROJ-8"))[0], check.EXIT_OK)
        (build,) = self.stored_builds()
        self.assertEqual(build["issueKeys"], ["PROJ-8"])

    @coroutine_test
    async def test_wrong_secret_is_wrong_credentials(self) -> None:
        await self.start()
        code, output = await self.check("--issue", "PROJ-7", secret=WRONG_SECRET)
        self.assertEqual(code, check.EXIT_CREDENTIALS)
        self.assertIn("access token for client ID 'sim-client-id' ... FAILED", output)
        self.assertIn("wrong credentials (exit code 4)", output)
        self.assertIn("Check the client ID and secret", output)
        self.assertEqual(self.posts(), ["/oauth/token"])  # no build was sent

    @coroutine_test
    async def test_unknown_site_is_named(self) -> None:
        await self.start()
        # Atlassian answers 404 at tenant_info for a site that does not exist.
        code, output = await self.check(site_url=f"{self.running.url}/no-such-site")
        self.assertEqual(code, check.EXIT_UNKNOWN_SITE)
        self.assertIn("cloud ID of example.atlassian.net ... FAILED", output)
        self.assertIn("wrong site name (exit code 3)", output)
        self.assertIn("The site name is probably wrong", output)
        self.assertEqual(self.running.simulator.token_requests, 0)

    @coroutine_test
    async def test_wrong_cloud_id_is_an_unknown_site(self) -> None:
        await self.start()
        code, output = await self.check("--cloud-id", "not-a-cloud", "--issue", "PROJ-7")
        self.assertEqual(code, check.EXIT_UNKNOWN_SITE)
        self.assertIn("wrong cloud ID (exit code 3)", output)
        self.assertIn("leave out --cloud-id", output)

    @coroutine_test
    async def test_a_wrong_cloud_id_fails_a_read_only_check_too(self) -> None:
        await self.start()
        wrong = "11111111-1111-4111-8111-111111111111"
        for extra in ((), ("--deployments",)):
            with self.subTest(extra=extra):
                code, output = await self.check("--cloud-id", wrong, *extra)
                self.assertEqual(code, check.EXIT_UNKNOWN_SITE, output)
                self.assertIn("[1/", output)
                self.assertIn("cloud ID of example.atlassian.net ... FAILED", output)
                self.assertIn("wrong cloud ID (exit code 3)", output)
                self.assertIn(f"--cloud-id {wrong} is not the cloud ID of", output)
                self.assertIn(f"which is {DEFAULT_CLOUD_ID}", output)
                self.assertNotIn("OK: these credentials work", output)
        self.assertEqual(self.running.simulator.token_requests, 0)  # it stopped at once

    @coroutine_test
    async def test_the_right_cloud_id_is_confirmed_by_the_site(self) -> None:
        await self.start()
        code, output = await self.check("--cloud-id", DEFAULT_CLOUD_ID)
        self.assertEqual(code, check.EXIT_OK, output)
        self.assertIn(
            f"[1/3] cloud ID of example.atlassian.net ... {DEFAULT_CLOUD_ID} "
            "(given with --cloud-id; the site's own)",
            output,
        )
        # One token for both clients: the look-up shares the check's connections.
        self.assertEqual(self.running.simulator.token_requests, 1)

    @coroutine_test
    async def test_a_cloud_id_the_site_cannot_confirm_is_said_to_be_unconfirmed(self) -> None:
        await self.start()
        elsewhere = f"{self.running.url}/no-such-site"
        code, output = await self.check("--cloud-id", DEFAULT_CLOUD_ID, site_url=elsewhere)
        self.assertEqual(code, check.EXIT_OK, output)
        self.assertIn("(given with --cloud-id; not confirmed, since Jira site", output)
        self.assertIn("add --issue KEY to prove it with a test build", output)
        # A test build does prove it: the gateway refuses a write to a wrong cloud ID.
        code, output = await self.check(
            "--cloud-id", "not-a-cloud", "--issue", "PROJ-7", site_url=elsewhere
        )
        self.assertEqual(code, check.EXIT_UNKNOWN_SITE, output)
        self.assertIn("wrong cloud ID (exit code 3)", output)
        self.assertEqual(self.stored_builds(), [])

    @coroutine_test
    async def test_unknown_issue_key_is_named(self) -> None:
        await self.start(known_projects=("PROJ",))
        code, output = await self.check("--issue", "NOPE-1")
        self.assertEqual(code, check.EXIT_REJECTED)
        self.assertIn("test build for NOPE-1 ... FAILED", output)
        self.assertIn("unknown issue key (exit code 6)", output)
        self.assertIn("Jira does not know the issue NOPE-1", output)
        self.assertEqual(self.stored_builds(), [])

    @coroutine_test
    async def test_missing_builds_permission(self) -> None:
        await self.start(permissions={DEFAULT_CLIENT_ID: ["deployments"]})
        code, output = await self.check("--issue", "PROJ-7")
        self.assertEqual(code, check.EXIT_PERMISSION)
        self.assertIn("missing permission (exit code 5)", output)
        self.assertIn("HTTP 403", output)
        self.assertIn("Settings > Apps > OAuth credentials", output)

    @coroutine_test
    async def test_without_issue_the_permission_is_read_only_checked(self) -> None:
        await self.start()
        code, output = await self.check()
        self.assertEqual(code, check.EXIT_OK)
        self.assertIn("[3/3] builds permission ... ok", output)
        self.assertEqual(self.posts(), ["/oauth/token"])  # nothing was written
        # The same read notices a missing permission.
        self.running.simulator.permissions = {DEFAULT_CLIENT_ID: frozenset({"deployments"})}
        code, output = await self.check()
        self.assertEqual(code, check.EXIT_PERMISSION)

    @coroutine_test
    async def test_missing_deployments_permission(self) -> None:
        await self.start(permissions={DEFAULT_CLIENT_ID: ["builds"]})
        code, output = await self.check("--deployments")
        self.assertEqual(code, check.EXIT_PERMISSION)
        self.assertIn("[4/4] deployments permission ... FAILED", output)
        self.assertIn("write:deployment:jira-software", output)

    @coroutine_test
    async def test_unreachable_host(self) -> None:
        await self.start()
        await self.running.stop()  # nothing listens on that port any more
        code, output = await self.check("--timeout", "5")
        self.assertEqual(code, check.EXIT_UNREACHABLE)
        self.assertIn("unreachable host (exit code 7)", output)
        self.assertIn("Connection was refused", output)
        self.assertIn("Check the host names", output)


class CheckUsageTests(CheckTestCase):
    @coroutine_test
    async def test_no_secret_names_the_variable(self) -> None:
        await self.start()
        code, output = await self.check(secret=None)
        self.assertEqual(code, check.EXIT_USAGE)
        self.assertIn("no client secret (exit code 2)", output)
        self.assertIn("JIRA_CLIENT_SECRET is not set", output)
        self.assertEqual(self.running.simulator.requests, [])

    @coroutine_test
    async def test_secret_from_a_named_variable_or_a_file(self) -> None:
        await self.start()
        code, output = await self.check("--client-secret-env", "MY_SECRET", secret=None)
        self.assertEqual(code, check.EXIT_USAGE)
        self.assertIn("MY_SECRET is not set", output)
        path = self.mktemp()
        with open(path, "w", encoding="utf-8") as file:
            file.write(SECRET + "\n")
        code, output = await self.check("--client-secret-file", path, secret=None)
        self.assertEqual(code, check.EXIT_OK)
        self.assertIn(f"(secret from file {path})", output)

    @coroutine_test
    async def test_without_a_file_or_variable_the_secret_is_asked_for(self) -> None:
        await self.start()
        asked: list[str] = []

        def prompt(question: str) -> str:
            asked.append(question)
            return SECRET + "\n"

        code, output = await self.check("--issue", "PROJ-7", secret=None, prompt=prompt)
        self.assertEqual(code, check.EXIT_OK, output)
        self.assertEqual(asked, ["Client secret for client ID 'sim-client-id' (input hidden): "])
        self.assertIn("(secret from the prompt)", output)
        code, output = await self.check(secret=None, prompt=lambda question: "")
        self.assertEqual(code, check.EXIT_USAGE)
        self.assertIn("none was typed at the prompt", output)

    @coroutine_test
    async def test_a_file_or_variable_spares_the_prompt(self) -> None:
        await self.start()

        def prompt(question: str) -> str:
            raise AssertionError("asked for a secret it had")

        path = self.mktemp()
        with open(path, "w", encoding="utf-8") as file:
            file.write(SECRET)
        code, _ = await self.check("--client-secret-file", path, secret=None, prompt=prompt)
        self.assertEqual(code, check.EXIT_OK)
        code, output = await self.check(prompt=prompt)  # $JIRA_CLIENT_SECRET, as before
        self.assertEqual(code, check.EXIT_OK)
        self.assertIn("(secret from $JIRA_CLIENT_SECRET)", output)

    @coroutine_test
    async def test_a_secret_on_the_command_line_is_refused_unechoed(self) -> None:
        await self.start()
        code, output = await self.check("--client-secret", WRONG_SECRET)
        self.assertEqual(code, check.EXIT_USAGE)
        self.assertIn("not taken from the command line", output)
        self.assertEqual(self.running.simulator.requests, [])

    @coroutine_test
    async def test_invalid_issue_key(self) -> None:
        await self.start()
        code, output = await self.check("--issue", "not a key")
        self.assertEqual(code, check.EXIT_USAGE)
        self.assertIn("--issue 'not a key' is not an issue key", output)

    @coroutine_test
    async def test_the_test_build_links_to_the_given_buildbot(self) -> None:
        await self.start()
        code, output = await self.check("--issue", "PROJ-7", "--buildbot-url", "ftp://ci")
        self.assertEqual(code, check.EXIT_USAGE)
        self.assertIn("--buildbot-url 'ftp://ci' must be an http:// or https:// address", output)
        code, _ = await self.check("--issue", "PROJ-7", "--buildbot-url", "http://ci:8010/")
        self.assertEqual(code, check.EXIT_OK)
        self.assertEqual(self.stored_builds()[0]["url"], "http://ci:8010/")

    @coroutine_test
    async def test_plain_http_to_another_host_is_refused(self) -> None:
        await self.start()
        code, output = await self.check("--api-url", "http://jira.example.com")
        self.assertEqual(code, check.EXIT_USAGE)
        self.assertIn("--api-url 'http://jira.example.com' uses plain http://", output)


class CheckCommandTests(CheckTestCase):
    """The installed command in a process of its own, as a user runs it."""

    async def run_command(self, *extra: str, secret: str) -> tuple[int, str]:
        environment = {**os.environ, "JIRA_CLIENT_SECRET": secret}
        # The simulator keeps serving on this reactor while the child runs.
        out, err, code = await getProcessOutputAndValue(
            sys.executable,
            ["-m", "buildbot_jira.tools.cli", *self.arguments(*extra)],
            env=environment,
            reactor=reactor,
        )
        output = out.decode() + err.decode()
        for value in (SECRET, WRONG_SECRET):
            self.assertNotIn(value, output)
        return code, output

    @coroutine_test
    async def test_success_exits_0(self) -> None:
        await self.start()
        code, output = await self.run_command("--issue", "PROJ-7", secret=SECRET)
        self.assertEqual(code, 0, output)
        self.assertIn("test build for PROJ-7 ... accepted", output)
        self.assertEqual(self.stored_builds()[0]["displayName"], check.TEST_DISPLAY_NAME)

    @coroutine_test
    async def test_wrong_secret_exits_4(self) -> None:
        await self.start()
        code, output = await self.run_command("--issue", "PROJ-7", secret=WRONG_SECRET)
        self.assertEqual(code, 4, output)
        self.assertIn("wrong credentials (exit code 4)", output)
        self.assertEqual(self.stored_builds(), [])
