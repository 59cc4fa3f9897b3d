"""``buildbot-jira check --devinfo`` and ``--feature-flags`` against the simulator."""

from __future__ import annotations

import argparse

from twisted.trial import unittest

from buildbot_jira.simulator import DEFAULT_CLIENT_ID
from buildbot_jira.simulator.state import ReceivedRequest
from buildbot_jira.tools import check
from buildbot_jira.tools.check_outcomes import PERMISSION_NAMES
from buildbot_jira.tools.cli import build_parser
from tests.support import coroutine_test
from tests.test_check import CheckTestCase

EVERY = ("builds", "deployments", "devinfo", "featureflags")


class DevinfoAndFlagsCheckTests(CheckTestCase):
    @coroutine_test
    async def test_both_permissions_are_proven_by_reads_alone(self) -> None:
        await self.start()
        code, output = await self.check("--devinfo", "--feature-flags")
        self.assertEqual(code, check.EXIT_OK, output)
        self.assertIn("[3/5] builds permission ... ok", output)
        self.assertIn("[4/5] development information permission ... ok (read a repository)", output)
        self.assertIn("[5/5] feature flags permission ... ok (read a feature flag)", output)
        self.assertIn("OK: these credentials work", output)
        reads = [r.path for r in self.running.simulator.requests if r.method == "GET"]
        self.assertTrue(any("/jira/devinfo/0.1/cloud/" in path for path in reads), reads)
        self.assertTrue(any("/jira/featureflags/0.1/cloud/" in path for path in reads), reads)
        self.assertEqual(self.posts(), ["/oauth/token"])  # nothing was written

    @coroutine_test
    async def test_every_permission_at_once(self) -> None:
        await self.start()
        code, output = await self.check("--deployments", "--devinfo", "--feature-flags")
        self.assertEqual(code, check.EXIT_OK, output)
        self.assertIn("[4/6] deployments permission ... ok", output)
        self.assertIn("[5/6] development information permission ... ok", output)
        self.assertIn("[6/6] feature flags permission ... ok", output)

    @coroutine_test
    async def test_a_missing_devinfo_permission_is_named(self) -> None:
        await self.start(permissions={DEFAULT_CLIENT_ID: ["builds", "featureflags"]})
        code, output = await self.check("--devinfo", "--feature-flags")
        # The exit code of a missing deployments permission, and of any missing one.
        self.assertEqual(code, check.EXIT_PERMISSION)
        self.assertIn("[4/5] development information permission ... FAILED", output)
        self.assertIn("missing permission (exit code 5)", output)
        self.assertIn('lack the "Development information" permission', output)
        self.assertIn("Settings > Apps > OAuth credentials", output)
        self.assertIn("write:dev-info:jira", output)
        self.assertNotIn("[5/5]", output)  # the check stops at the first failure

    @coroutine_test
    async def test_a_missing_feature_flags_permission_is_named(self) -> None:
        await self.start(permissions={DEFAULT_CLIENT_ID: ["builds", "devinfo"]})
        code, output = await self.check("--devinfo", "--feature-flags")
        self.assertEqual(code, check.EXIT_PERMISSION)
        self.assertIn("[4/5] development information permission ... ok", output)
        self.assertIn("[5/5] feature flags permission ... FAILED", output)
        self.assertIn('lack the "Feature flags" permission', output)
        self.assertIn("write:feature-flag:jira", output)
        self.assertNotIn("Development information", output)

    @coroutine_test
    async def test_each_missing_permission_has_the_same_exit_code(self) -> None:
        await self.start()
        for entity, option in (
            ("deployments", "--deployments"),
            ("devinfo", "--devinfo"),
            ("featureflags", "--feature-flags"),
        ):
            with self.subTest(entity=entity):
                granted = frozenset(e for e in EVERY if e != entity)
                self.running.simulator.permissions = {DEFAULT_CLIENT_ID: granted}
                code, output = await self.check(option)
                self.assertEqual(code, check.EXIT_PERMISSION, output)
                self.assertIn(f'lack the "{PERMISSION_NAMES[entity]}" permission', output)

    @coroutine_test
    async def test_a_missing_builds_permission_is_named_too(self) -> None:
        await self.start(permissions={DEFAULT_CLIENT_ID: ["devinfo", "featureflags"]})
        code, output = await self.check("--devinfo")
        self.assertEqual(code, check.EXIT_PERMISSION)
        self.assertIn("[3/4] builds permission ... FAILED", output)
        self.assertIn('lack the "Builds" permission', output)

    @coroutine_test
    async def test_jira_down_at_the_devinfo_read_is_unreachable(self) -> None:
        await self.start()
        simulator = self.running.simulator

        def outage_after_the_build_read(request: ReceivedRequest) -> None:
            # Jira goes down once the builds permission is proven.
            if "/jira/builds/" in request.path:
                simulator.fail_every(1, 503)

        self.addCleanup(simulator.subscribe(outage_after_the_build_read))
        code, output = await self.check("--devinfo", "--feature-flags")
        self.assertEqual(code, check.EXIT_UNREACHABLE, output)
        self.assertIn("[3/5] builds permission ... ok", output)
        self.assertIn("[4/5] development information permission ... FAILED", output)
        self.assertIn("unreachable host (exit code 7)", output)
        self.assertIn("503", output)
        self.assertNotIn("permission (exit code", output)

    @coroutine_test
    async def test_jira_down_at_the_feature_flag_read_is_unreachable(self) -> None:
        await self.start()
        simulator = self.running.simulator

        def outage_after_the_repository_read(request: ReceivedRequest) -> None:
            if "/jira/devinfo/" in request.path:
                simulator.fail_every(1, 503)

        self.addCleanup(simulator.subscribe(outage_after_the_repository_read))
        code, output = await self.check("--devinfo", "--feature-flags")
        self.assertEqual(code, check.EXIT_UNREACHABLE, output)
        self.assertIn("[5/5] feature flags permission ... FAILED", output)
        self.assertIn("unreachable host (exit code 7)", output)


class DevinfoAndFlagsOptionTests(unittest.TestCase):
    def test_every_kind_of_data_has_its_permission_named(self) -> None:
        self.assertEqual(sorted(PERMISSION_NAMES), sorted(EVERY))
        self.assertEqual(PERMISSION_NAMES["devinfo"], "Development information")
        self.assertEqual(PERMISSION_NAMES["featureflags"], "Feature flags")

    def test_the_options_default_to_off_and_name_their_permission_in_help(self) -> None:
        parser = build_parser()
        base = ["check", "--site", "example.atlassian.net", "--client-id", "c"]
        args = parser.parse_args(base)
        self.assertEqual((args.devinfo, args.feature_flags), (False, False))
        args = parser.parse_args([*base, "--devinfo", "--feature-flags"])
        self.assertEqual((args.devinfo, args.feature_flags), (True, True))
        settings = check.read_settings(args, {"JIRA_CLIENT_SECRET": "s" * 20})
        self.assertEqual((settings.devinfo, settings.feature_flags), (True, True))
        options = argparse.ArgumentParser(prog="check")
        check.add_arguments(options)
        text = " ".join(options.format_help().split())
        self.assertIn('"Development information" permission', text)
        self.assertIn('"Feature flags" permission', text)
