"""The ``buildbot-jira`` command.

Each subcommand is a function ``run_<name>(args) -> int`` registered by
``_add_<name>(subparsers)``; ``main`` only parses and dispatches, so that
new subcommands (``check``, ``demo``) slot in beside ``simulate``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from buildbot_jira import __version__
from buildbot_jira.simulator import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_CLOUD_ID,
    DEFAULT_PROJECTS,
    JiraSimulator,
    ReceivedRequest,
    RunningSimulator,
)

__all__ = ["build_parser", "main", "run_simulate"]

_Command = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``buildbot-jira`` and all its subcommands."""
    parser = argparse.ArgumentParser(
        prog="buildbot-jira",
        description="Tools for buildbot-jira, the Buildbot reporter for Jira Software Cloud.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
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


# -- simulate -------------------------------------------------------------------


def _add_simulate(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="run a local Jira Cloud simulator for dry runs",
        description=(
            "Run a local stand-in for Jira Software Cloud (its OAuth 2.0 gateway, "
            "the site's tenant_info and the builds, deployments, devinfo and feature-flag "
            "APIs). Point the reporter's API URL and site URL at the printed URL. "
            "GET <url>/_simulator/state and <url>/_simulator/issues show what it received "
            "and stored. Stop it with Ctrl-C."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (%(default)s)")
    parser.add_argument("--port", type=int, default=8099, help="port to listen on (%(default)s)")
    parser.add_argument(
        "--client-id", default=DEFAULT_CLIENT_ID, help="OAuth client ID to accept (%(default)s)"
    )
    parser.add_argument(
        "--client-secret",
        default=DEFAULT_CLIENT_SECRET,
        help="OAuth client secret to accept (default: the simulator's published test secret)",
    )
    parser.add_argument(
        "--project",
        action="append",
        dest="projects",
        metavar="KEY",
        help=(
            "a project key whose issues exist; repeat for more "
            f"(default: {', '.join(DEFAULT_PROJECTS)})"
        ),
    )
    parser.add_argument(
        "--any-project",
        action="store_true",
        help="treat every issue key as existing",
    )
    parser.add_argument(
        "--token-lifetime",
        type=_positive_int,
        default=3600,
        metavar="SECONDS",
        help="lifetime of issued access tokens (%(default)s)",
    )
    parser.add_argument("--cloud-id", default=DEFAULT_CLOUD_ID, help="cloud ID (%(default)s)")
    parser.add_argument("--quiet", action="store_true", help="do not print a line for each request")
    parser.set_defaults(command=run_simulate)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def make_simulator(args: argparse.Namespace) -> JiraSimulator:
    """The simulator that the ``simulate`` arguments describe."""
    projects: Sequence[str] | None
    if args.any_project:
        projects = None
    else:
        projects = tuple(args.projects) if args.projects else DEFAULT_PROJECTS
    return JiraSimulator(
        clients={args.client_id: args.client_secret},
        cloud_id=args.cloud_id,
        known_projects=projects,
        token_lifetime=args.token_lifetime,
    )


def run_simulate(args: argparse.Namespace) -> int:
    """Serve the simulator on the global reactor until interrupted."""
    from twisted.internet import defer
    from twisted.internet import reactor as global_reactor

    reactor: Any = global_reactor
    simulator = make_simulator(args)
    status = {"code": 0}

    async def start() -> None:
        try:
            running = await simulator.listen(reactor, port=args.port, interface=args.host)
        except Exception as error:  # noqa: BLE001 - any failure to listen ends the command
            print(
                f"buildbot-jira simulate: {error}\nChoose another --port or --host.",
                file=sys.stderr,
            )
            status["code"] = 1
            reactor.stop()
            return
        print_banner(running, args, sys.stdout)
        if not args.quiet:
            simulator.subscribe(lambda record: print_request(record, sys.stdout))
        reactor.addSystemEventTrigger(
            "before", "shutdown", lambda: defer.Deferred.fromCoroutine(running.stop())
        )

    reactor.callWhenRunning(lambda: defer.ensureDeferred(start()))
    reactor.run()
    return status["code"]


def print_banner(running: RunningSimulator, args: argparse.Namespace, out: TextIO) -> None:
    """Tell the user where the simulator listens and which credentials it accepts."""
    simulator = running.simulator
    # A secret the user typed is not echoed back; the default one is public.
    secret = (
        args.client_secret
        if args.client_secret == DEFAULT_CLIENT_SECRET
        else "(the one given with --client-secret)"
    )
    projects = (
        "any" if simulator.known_projects is None else ", ".join(sorted(simulator.known_projects))
    )
    lines = [
        f"Jira Cloud simulator listening on {running.url}",
        f"  API URL and site URL: {running.url}",
        f"  cloud ID:             {simulator.cloud_id}",
        f"  client ID:            {args.client_id}",
        f"  client secret:        {secret}",
        f"  known projects:       {projects}",
        f"  state:                {running.url}/_simulator/state",
        f"  issues:               {running.url}/_simulator/issues",
        "Press Ctrl-C to stop.",
    ]
    out.write("\n".join(lines) + "\n")
    out.flush()


def print_request(record: ReceivedRequest, out: TextIO) -> None:
    """One line per request: time, method, path and how it was answered."""
    status = "dropped" if record.fault == "drop" else str(record.status)
    if record.fault == "fail":
        status += " (injected)"
    moment = time.strftime("%H:%M:%S")
    out.write(f"{moment} {record.method} {record.path} -> {status}\n")
    out.flush()


if __name__ == "__main__":
    sys.exit(main())
