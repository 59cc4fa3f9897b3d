"""The ``buildbot-jira`` command.

Each subcommand has a module that owns its options (``add_arguments``) and
its work (``run``): :mod:`~buildbot_jira.tools.demo`,
:mod:`~buildbot_jira.tools.check` and :mod:`~buildbot_jira.tools.simulate`.
This module names the subcommands, parses and dispatches; the commands that
talk to the network run one coroutine on the global reactor through
:func:`~buildbot_jira.tools.runner.run_on_reactor`.

``demo`` shows the whole path on this machine, ``check`` proves a site's
credentials, and ``simulate`` serves a local Jira to rehearse with.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from buildbot_jira import __version__
from buildbot_jira.tools import check, demo, simulate
from buildbot_jira.tools.runner import INTERRUPTED, run_on_reactor
from buildbot_jira.tools.simulate import describe_faults, make_simulator, print_banner

__all__ = [
    "INTERRUPTED",
    "build_parser",
    "describe_faults",
    "main",
    "make_simulator",
    "print_banner",
    "run_check",
    "run_demo",
    "run_on_reactor",
    "run_simulate",
]

_Command = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``buildbot-jira`` and all its subcommands."""
    parser = argparse.ArgumentParser(
        prog="buildbot-jira",
        description="Tools for buildbot-jira, the Buildbot reporter for Jira Software Cloud.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_demo(subparsers)
    _add_check(subparsers)
    _add_simulate(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``buildbot-jira`` with ``argv`` (default: the process's arguments).

    Returns the exit status; ``--help`` and argument errors exit through
    ``SystemExit`` as argparse does.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    command: _Command | None = getattr(args, "command", None)
    if command is None:
        parser.print_help(sys.stderr)
        return 2
    return command(args)


def _add_demo(subparsers: Any) -> None:
    """Register ``demo``."""
    parser = subparsers.add_parser(
        "demo",
        help="watch a real Buildbot master report builds and deployments to a local Jira",
        description=(
            "In a temporary directory, start a Jira Cloud simulator, a Buildbot master with "
            "a local worker and the Jira reporters, and a small git repository whose branches "
            "and commits name issues DEMO-1, DEMO-2 and DEMO-3. Run a build that succeeds, one "
            "that fails and one that deploys to staging and production, then show what Jira "
            "received per issue and keep the simulator's issue view open until Ctrl-C. "
            "Exit codes: 0 Jira got every expected build and deployment, 1 it did not, "
            "130 interrupted."
        ),
    )
    demo.add_arguments(parser)
    parser.set_defaults(command=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    """Run ``buildbot-jira demo``."""
    return run_on_reactor(lambda reactor: demo.run(args, out=sys.stdout, reactor=reactor))


def _add_check(subparsers: Any) -> None:
    """Register ``check``."""
    codes = "; ".join(f"{code} {cause}" for code, cause in check.EXIT_CODES.items())
    parser = subparsers.add_parser(
        "check",
        help="prove a Jira site's OAuth credentials before putting them into master.cfg",
        description=(
            "Look up the site's cloud ID, get an access token with the client ID and secret, "
            "and check the builds permission: with --issue by sending one test build linked "
            "to that issue (labelled as a test; the next check replaces it), without it by "
            "reading only (with --deployments, --devinfo and --feature-flags, those permissions "
            "too, by reads only). The secret comes from a file (--client-secret-file), or is "
            "asked for without echo; never from the command line. Exit codes: "
            f"{codes}."
        ),
    )
    check.add_arguments(parser)
    parser.set_defaults(command=run_check)


def run_check(args: argparse.Namespace) -> int:
    """Run ``buildbot-jira check``; it asks for the secret only when a person is at a terminal."""
    prompt = getpass.getpass if sys.stdin is not None and sys.stdin.isatty() else None
    # Asked before the reactor runs, so that Ctrl-C at the prompt simply ends the command.
    try:
        settings = check.read_settings(args, os.environ, prompt)
    except check.CheckFailed as failure:
        check.report_failure(failure, sys.stderr)
        return failure.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        return INTERRUPTED
    return run_on_reactor(
        lambda reactor: check.run_settings(
            settings, out=sys.stdout, err=sys.stderr, reactor=reactor
        )
    )


def _add_simulate(subparsers: Any) -> None:
    """Register ``simulate``."""
    parser = subparsers.add_parser(
        "simulate",
        help="run a local Jira Cloud simulator for dry runs",
        description=(
            "Run a local stand-in for Jira Software Cloud (its OAuth 2.0 gateway, "
            "the site's tenant_info and the builds, deployments, devinfo and feature-flag "
            "APIs). Point the reporter's API URL and site URL at the printed URL. "
            "GET <url>/_simulator/state and <url>/_simulator/issues show what it received "
            "and stored. It can play Jira's burst rate limit (--rate-limit) and fail the "
            "ways Jira does (the fault options). Stop it with Ctrl-C."
        ),
    )
    simulate.add_arguments(parser)
    parser.set_defaults(command=run_simulate)


def run_simulate(args: argparse.Namespace) -> int:
    """Serve the simulator on the global reactor until interrupted."""
    return simulate.run(args, out=sys.stdout, err=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
