"""``buildbot-jira simulate``: its options, the faults they inject, and what it prints."""

from __future__ import annotations

import contextlib
import io
import unittest

from buildbot_jira.simulator import ReceivedRequest
from buildbot_jira.tools import cli, simulate


def parse(*argv: str) -> object:
    return cli.build_parser().parse_args(["simulate", *argv])


class OptionTests(unittest.TestCase):
    def test_defaults(self) -> None:
        args = cli.build_parser().parse_args(["simulate"])
        self.assertIs(args.command, cli.run_simulate)
        self.assertEqual((args.host, args.port), ("127.0.0.1", 8099))
        self.assertEqual((args.token_lifetime, args.fail_status, args.delay), (3600, 503, 0.0))
        self.assertEqual(args.deny, [])
        self.assertEqual(simulate.describe_faults(args), [])

    def test_values_out_of_range_are_usage_errors(self) -> None:
        for argv in (
            ["--fail-status", "302"],
            ["--fail-next", "0"],
            ["--retry-after", "-1"],
            ["--delay", "inf"],
            ["--delay", "soon"],
            ["--deny", "issues"],
        ):
            with (
                self.subTest(argv=argv),
                contextlib.redirect_stderr(io.StringIO()) as err,
                self.assertRaises(SystemExit) as raised,
            ):
                parse(*argv)
            self.assertEqual(raised.exception.code, 2)
            self.assertIn(argv[0], err.getvalue())

    def test_the_cli_names_are_the_simulate_modules(self) -> None:
        self.assertIs(cli.make_simulator, simulate.make_simulator)
        self.assertIs(cli.print_banner, simulate.print_banner)
        self.assertIs(cli.describe_faults, simulate.describe_faults)


class FaultTests(unittest.TestCase):
    def test_faults_are_described_in_words(self) -> None:
        args = cli.build_parser().parse_args(
            [
                "simulate",
                *("--fail-next", "2", "--fail-status", "429", "--retry-after", "1.5"),
                *("--delay", "0.25", "--deny", "builds", "--deny", "devinfo"),
            ]
        )
        self.assertEqual(
            simulate.describe_faults(args),
            [
                "the next 2 API requests answer HTTP 429 with Retry-After: 1.5",
                "every answer waits 0.25 s",
                "builds: permission denied (HTTP 403)",
                "devinfo: permission denied (HTTP 403)",
            ],
        )
        outage = cli.build_parser().parse_args(["simulate", "--fail-every", "1"])
        self.assertEqual(
            simulate.describe_faults(outage), ["every API request answers HTTP 503 (an outage)"]
        )
        some = cli.build_parser().parse_args(["simulate", "--fail-every", "3"])
        self.assertEqual(simulate.describe_faults(some), ["1 API request in 3 answers HTTP 503"])

    def test_denied_entities_lose_their_permission_only(self) -> None:
        args = cli.build_parser().parse_args(["simulate", "--deny", "builds"])
        simulator = simulate.make_simulator(args)
        permissions = {client: set(kinds) for client, kinds in simulator.permissions.items()}
        self.assertEqual(permissions, {args.client_id: {"deployments", "devinfo", "featureflags"}})


class RequestLineTests(unittest.TestCase):
    def test_one_line_per_request_says_how_it_was_answered(self) -> None:
        out = io.StringIO()
        simulate.print_request(
            ReceivedRequest(method="POST", path="/bulk", timestamp=0, status=503, fault="fail"),
            out,
        )
        simulate.print_request(
            ReceivedRequest(method="GET", path="/x", timestamp=0, fault="drop"), out
        )
        lines = out.getvalue().splitlines()
        self.assertRegex(lines[0], r"^\d\d:\d\d:\d\d POST /bulk -> 503 \(injected\)$")
        self.assertRegex(lines[1], r"^\d\d:\d\d:\d\d GET /x -> dropped$")
