"""``buildbot-jira simulate``: its options, the faults they inject, and what it prints."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import tempfile
import unittest
from typing import Any

from twisted.internet.interfaces import IOpenSSLServerConnectionCreator

from buildbot_jira.jira.trust import load_ca_bundle
from buildbot_jira.simulator import JiraSimulator, ReceivedRequest, RunningSimulator
from buildbot_jira.simulator.burst import BurstLimit
from buildbot_jira.tools import cli, simulate, simulate_tls

from .test_contract import valid_build, valid_deployment
from .test_simulator import BUILDS, DEPLOYMENTS, InMemoryTestCase, deployment_path


def parse(*argv: str) -> argparse.Namespace:
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


def banner(args: argparse.Namespace, simulator: JiraSimulator) -> list[str]:
    """The lines of the banner, for a simulator said to listen on a made-up URL."""
    unused: Any = None
    running = RunningSimulator(
        simulator=simulator, url="http://127.0.0.1:1", port=unused, connections=unused
    )
    out = io.StringIO()
    simulate.print_banner(running, args, out)
    return out.getvalue().splitlines()


class RateLimitOptionTests(unittest.TestCase):
    def test_no_limit_and_no_rate_limit_signal_by_default(self) -> None:
        args = parse()
        self.assertIsNone(args.rate_limit)
        self.assertEqual(simulate.describe_rate_limit(args), [])
        simulator = simulate.make_simulator(args)
        self.assertIsNone(simulator.rate_limit)
        self.assertFalse(simulator.near_limit)
        self.assertFalse(any("rate limit" in line for line in banner(args, simulator)))

    def test_the_banner_says_the_rate_limit_is_on(self) -> None:
        args = cli.build_parser().parse_args(["simulate", "--rate-limit", "2"])
        simulator = simulate.make_simulator(args)
        self.assertEqual(simulator.rate_limit, BurstLimit(2))
        self.assertIn(
            "  rate limit:           2 requests per second per API endpoint and method, "
            "then HTTP 429 (jira-burst-based) with Retry-After: 1",
            banner(args, simulator),
        )
        slower = cli.build_parser().parse_args(
            ["simulate", "--rate-limit", "2", "--rate-limit-retry-after", "3"]
        )
        self.assertEqual(simulate.make_simulator(slower).rate_limit, BurstLimit(2, retry_after=3))
        self.assertTrue(simulate.describe_rate_limit(slower)[0].endswith("Retry-After: 3"))

    def test_rate_limit_signals_are_described_in_words(self) -> None:
        args = cli.build_parser().parse_args(
            [
                "simulate",
                *("--fail-every", "4", "--fail-status", "429", "--retry-after", "5"),
                *("--retry-after-form", "reset", "--fail-reason", "jira-quota-based"),
                "--near-limit",
            ]
        )
        self.assertEqual(
            simulate.describe_faults(args),
            [
                "1 API request in 4 answers HTTP 429 with X-RateLimit-Reset 5 s ahead "
                "and RateLimit-Reason: jira-quota-based",
                "successful API answers say X-RateLimit-NearLimit: true",
            ],
        )
        dated = parse("--fail-next", "1", "--retry-after", "2", "--retry-after-form", "http-date")
        self.assertEqual(
            simulate.describe_faults(dated),
            ["the next 1 API requests answer HTTP 503 with Retry-After: an HTTP date 2 s ahead"],
        )

    def test_the_help_documents_the_rate_limit_options(self) -> None:
        with contextlib.redirect_stdout(io.StringIO()) as out, self.assertRaises(SystemExit):
            parse("--help")
        text = " ".join(out.getvalue().split())
        for option in (
            "--rate-limit N",
            "--rate-limit-retry-after SECONDS",
            "--near-limit",
            "--retry-after-form FORM",
            "--fail-reason REASON",
        ):
            self.assertIn(option, text)
        self.assertIn("RateLimit-Reason: jira-burst-based", text)

    def test_values_out_of_range_are_usage_errors(self) -> None:
        for argv in (
            ["--rate-limit", "0"],
            ["--rate-limit-retry-after", "0"],
            ["--fail-reason", "jira-bursty"],
            ["--retry-after-form", "minutes"],
        ):
            with (
                self.subTest(argv=argv),
                contextlib.redirect_stderr(io.StringIO()) as err,
                self.assertRaises(SystemExit) as raised,
            ):
                parse(*argv)
            self.assertEqual(raised.exception.code, 2)
            self.assertIn(argv[0], err.getvalue())

    def test_options_that_do_not_go_together_are_refused_before_serving(self) -> None:
        for argv, words in (
            (["--fail-next", "1", "--fail-reason", "jira-cost-based"], "--fail-status 429"),
            (["--fail-next", "1", "--retry-after-form", "reset"], "needs --retry-after"),
            (["--rate-limit-retry-after", "3"], "needs --rate-limit"),
        ):
            args = parse(*argv)
            with self.subTest(argv=argv):
                with self.assertRaises(ValueError):
                    simulate.make_simulator(args)
                err = io.StringIO()
                self.assertEqual(simulate.run(args, out=io.StringIO(), err=err), 2)
                self.assertIn(words, err.getvalue())

    def test_a_rate_limited_request_says_so(self) -> None:
        out = io.StringIO()
        simulate.print_request(
            ReceivedRequest(method="POST", path="/bulk", timestamp=0, status=429), out
        )
        self.assertRegex(out.getvalue(), r"^\d\d:\d\d:\d\d POST /bulk -> 429 \(rate limited\)$")


class RateLimitServingTests(InMemoryTestCase):
    """What the options make the simulator answer, in memory on a fake clock."""

    def serve_options(self, *argv: str) -> str:
        """Serve the simulator of ``simulate`` with ``argv``; an access token for it."""
        simulator = simulate.make_simulator(cli.build_parser().parse_args(["simulate", *argv]))
        simulator.clock = self.clock
        self.serve(simulator)
        return simulator.issue_token(simulate.DEFAULT_CLIENT_ID)

    def post_builds(self, token: str, count: int) -> list[Any]:
        return [
            self.call("POST", BUILDS, {"builds": [valid_build()]}, token=token)
            for _ in range(count)
        ]

    def test_the_rate_limit_flag_turns_the_burst_limit_on(self) -> None:
        token = self.serve_options("--rate-limit", "2")
        replies = self.post_builds(token, 3)
        self.assertEqual([r.status for r in replies], [202, 202, 429])
        self.assertEqual(replies[2].headers["ratelimit-reason"], "jira-burst-based")
        self.assertEqual(replies[2].headers["retry-after"], "1")
        self.assertEqual(replies[1].headers["x-ratelimit-nearlimit"], "true")
        self.clock.advance(1)
        self.assertEqual(self.post_builds(token, 1)[0].status, 202)

    def test_the_fault_options_provoke_a_reason_and_a_form(self) -> None:
        token = self.serve_options(
            *("--fail-next", "1", "--fail-status", "429", "--retry-after", "4"),
            *("--retry-after-form", "http-date", "--fail-reason", "jira-per-issue-on-write"),
            "--near-limit",
        )
        refused, accepted = self.post_builds(token, 2)
        self.assertEqual(refused.status, 429)
        self.assertEqual(refused.headers["ratelimit-reason"], "jira-per-issue-on-write")
        self.assertEqual(refused.headers["retry-after"], "Thu, 01 Jan 1970 00:00:04 GMT")
        self.assertEqual(accepted.status, 202)
        self.assertEqual(accepted.headers["x-ratelimit-nearlimit"], "true")


class GatingOptionTests(InMemoryTestCase):
    """``--gating``: what a gated deployment starts with, to rehearse each decision."""

    def test_gated_deployments_await_by_default_and_the_banner_says_how_to_decide(self) -> None:
        args = parse()
        self.assertEqual(args.gating, "awaiting")
        simulator = simulate.make_simulator(args)
        self.assertEqual(simulator.default_gating_status, "awaiting")
        self.assertIn(
            "  gating:               gated deployments start awaiting; change them with POST "
            '/_simulator/gating {"gatingStatus": "allowed"}',
            banner(args, simulator),
        )
        self.assertIn(
            "  everything else:      http://127.0.0.1:1/_simulator/", banner(args, simulator)
        )

    def test_the_gating_flag_decides_what_a_gated_deployment_starts_with(self) -> None:
        simulator = simulate.make_simulator(parse("--gating", "prevented"))
        simulator.clock = self.clock
        self.serve(simulator)
        token = simulator.issue_token(simulate.DEFAULT_CLIENT_ID)
        gated = valid_deployment(commands=[{"command": "initiate_deployment_gating"}])
        reply = self.call("POST", DEPLOYMENTS, {"deployments": [gated]}, token=token)
        self.assertEqual(reply.status, 202)
        path = deployment_path("deploy", "stg", 7, "/gating-status")
        self.assertEqual(self.call("GET", path, token=token).body["gatingStatus"], "prevented")
        self.assertIn("gated deployments start prevented", " ".join(banner(parse(), simulator)))

    def test_an_unknown_gating_status_is_a_usage_error(self) -> None:
        with (
            contextlib.redirect_stderr(io.StringIO()) as err,
            self.assertRaises(SystemExit) as raised,
        ):
            parse("--gating", "maybe")
        self.assertEqual(raised.exception.code, 2)
        self.assertIn("--gating", err.getvalue())


class TlsOptionTests(unittest.TestCase):
    def test_tls_writes_the_authoritys_pem_and_the_banner_names_it(self) -> None:
        with tempfile.TemporaryDirectory() as directory:
            ca_file = os.path.join(directory, "ca.pem")
            args = cli.build_parser().parse_args(["simulate", "--tls", "--tls-ca-file", ca_file])
            options = simulate_tls.server_tls(args)
            self.assertTrue(IOpenSSLServerConnectionCreator.providedBy(options))
            (authority,) = load_ca_bundle(ca_file, "ca_bundle")
            self.assertIn("buildbot-jira simulator", authority.subject.rfc4514_string())
            self.assertIn(
                f"  CA certificate:       {ca_file} (ca_bundle, --ca-bundle)",
                banner(args, simulate.make_simulator(args)),
            )

    def test_without_tls_nothing_is_written_or_shown(self) -> None:
        args = cli.build_parser().parse_args(["simulate"])
        self.assertIsNone(simulate_tls.server_tls(args))
        self.assertFalse(any("CA certificate" in line for line in banner(args, JiraSimulator())))
        self.assertEqual(args.tls_ca_file, simulate_tls.DEFAULT_CA_FILE)
