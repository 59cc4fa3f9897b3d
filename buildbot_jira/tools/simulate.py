"""``buildbot-jira simulate``: a local Jira Cloud stand-in to rehearse with.

Its options choose the credentials and projects the simulator accepts, what
its change management decides of gated deployments, the rate limit it
enforces and the faults it injects (failed answers, any of Jira's rate-limit
signals, delays, missing permissions), so that a Buildbot master pointed at
it can be watched coping with a busy or misbehaving Jira.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import Any, TextIO

from buildbot_jira.simulator import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_CLOUD_ID,
    DEFAULT_PROJECTS,
    GATING_STATUSES,
    JiraSimulator,
    ReceivedRequest,
    RunningSimulator,
)
from buildbot_jira.simulator.contract import ENTITY_TYPES
from buildbot_jira.simulator.rate_limits import RATE_LIMIT_REASONS, RETRY_AFTER_FORMS
from buildbot_jira.tools.simulate_tls import add_tls_arguments, server_tls, tls_ca_file

__all__ = [
    "add_arguments",
    "check_arguments",
    "describe_faults",
    "describe_gating",
    "describe_rate_limit",
    "make_simulator",
    "print_banner",
    "print_request",
    "run",
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``simulate`` options to ``parser``."""
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (%(default)s)")
    parser.add_argument("--port", type=int, default=8099, help="port to listen on (%(default)s)")
    add_tls_arguments(parser)
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
    parser.add_argument(
        "--gating",
        choices=GATING_STATUSES,
        default="awaiting",
        metavar="STATUS",
        help=(
            "the gating status that each deployment asking to be gated starts with: "
            f"{', '.join(GATING_STATUSES)} (%(default)s); POST /_simulator/gating changes "
            "it while the simulator runs"
        ),
    )
    limits = parser.add_argument_group(
        "rate limits", "play Jira Cloud's burst limit and its warnings (API calls only)"
    )
    limits.add_argument(
        "--rate-limit",
        type=_positive_int,
        metavar="N",
        help=(
            "serve at most N requests per second to each API endpoint and method; more answer "
            "HTTP 429 with Retry-After, RateLimit-Reason: jira-burst-based and X-RateLimit-Reset "
            "until the wait is over (default: no limit)"
        ),
    )
    limits.add_argument(
        "--rate-limit-retry-after",
        type=_positive_int,
        metavar="SECONDS",
        help="the wait that a 429 of --rate-limit tells (default: until its window frees, 1)",
    )
    limits.add_argument(
        "--near-limit",
        action="store_true",
        help="add X-RateLimit-NearLimit: true to every successful API answer",
    )
    faults = parser.add_argument_group(
        "faults", "rehearse how Buildbot copes when Jira misbehaves (API calls only)"
    )
    faults.add_argument(
        "--fail-next",
        type=_positive_int,
        metavar="N",
        help="answer the next N API requests with --fail-status",
    )
    faults.add_argument(
        "--fail-every",
        type=_positive_int,
        metavar="N",
        help="answer every N-th API request with --fail-status (1: an outage)",
    )
    faults.add_argument(
        "--fail-status",
        type=_http_error_status,
        default=503,
        metavar="STATUS",
        help="the HTTP status of failed answers (%(default)s; 429 for rate limiting)",
    )
    faults.add_argument(
        "--retry-after",
        type=_non_negative_float,
        metavar="SECONDS",
        help="send a Retry-After header with failed answers",
    )
    faults.add_argument(
        "--retry-after-form",
        choices=RETRY_AFTER_FORMS,
        default="seconds",
        metavar="FORM",
        help=(
            "how failed answers tell --retry-after: seconds (Retry-After: N, the default), "
            "http-date (Retry-After as an HTTP date) or reset (only X-RateLimit-Reset)"
        ),
    )
    faults.add_argument(
        "--fail-reason",
        choices=RATE_LIMIT_REASONS,
        metavar="REASON",
        help=(
            "send RateLimit-Reason: REASON with failed answers of --fail-status 429 "
            f"({', '.join(RATE_LIMIT_REASONS)})"
        ),
    )
    faults.add_argument(
        "--delay",
        type=_non_negative_float,
        default=0.0,
        metavar="SECONDS",
        help="wait this long before each answer (%(default)s)",
    )
    faults.add_argument(
        "--deny",
        action="append",
        choices=ENTITY_TYPES,
        default=[],
        metavar="ENTITY",
        help=(
            "refuse (HTTP 403) the client the permission for this kind of data; repeat for "
            f"more ({', '.join(ENTITY_TYPES)})"
        ),
    )


def _positive_int(text: str) -> int:
    """An argument that must be a whole number of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    """An argument that must be a finite number of seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _http_error_status(text: str) -> int:
    """An argument that must be an HTTP status of a failed answer."""
    value = int(text)
    if not 400 <= value <= 599:
        raise argparse.ArgumentTypeError(f"must be an HTTP error status (400 to 599), got {value}")
    return value


def check_arguments(args: argparse.Namespace) -> None:
    """Raise ``ValueError`` for ``simulate`` options that do not go together."""
    if getattr(args, "fail_reason", None) and getattr(args, "fail_status", 503) != 429:
        raise ValueError(
            "--fail-reason goes with --fail-status 429: Jira names a rate limit only in a 429"
        )
    form = getattr(args, "retry_after_form", "seconds")
    if form != "seconds" and getattr(args, "retry_after", None) is None:
        raise ValueError(f"--retry-after-form {form} needs --retry-after SECONDS")
    if getattr(args, "rate_limit_retry_after", None) and not getattr(args, "rate_limit", None):
        raise ValueError("--rate-limit-retry-after needs --rate-limit N")


def make_simulator(args: argparse.Namespace) -> JiraSimulator:
    """The simulator that the ``simulate`` arguments describe.

    Raises ``ValueError`` for options that do not go together.
    """
    check_arguments(args)
    projects: Sequence[str] | None
    if args.any_project:
        projects = None
    else:
        projects = tuple(args.projects) if args.projects else DEFAULT_PROJECTS
    denied = set(getattr(args, "deny", None) or ())
    permissions = {args.client_id: [e for e in ENTITY_TYPES if e not in denied]} if denied else None
    simulator = JiraSimulator(
        clients={args.client_id: args.client_secret},
        cloud_id=args.cloud_id,
        known_projects=projects,
        token_lifetime=args.token_lifetime,
        permissions=permissions,
        default_gating_status=getattr(args, "gating", "awaiting"),
    )
    failure: dict[str, Any] = {
        "retry_after": args.retry_after,
        "reason": getattr(args, "fail_reason", None),
        "retry_after_form": getattr(args, "retry_after_form", "seconds"),
    }
    if getattr(args, "fail_next", None):
        simulator.fail_next(args.fail_next, args.fail_status, **failure)
    if getattr(args, "fail_every", None):
        simulator.fail_every(args.fail_every, args.fail_status, **failure)
    simulator.set_delay(getattr(args, "delay", 0.0) or 0.0)
    if getattr(args, "rate_limit", None):
        simulator.set_rate_limit(
            args.rate_limit, retry_after=getattr(args, "rate_limit_retry_after", None)
        )
    simulator.near_limit = bool(getattr(args, "near_limit", False))
    return simulator


def run(args: argparse.Namespace, *, out: TextIO, err: TextIO) -> int:
    """Serve the simulator on the global reactor until interrupted; the exit status."""
    from twisted.internet import defer
    from twisted.internet import reactor as global_reactor

    reactor: Any = global_reactor
    try:
        simulator = make_simulator(args)
        tls = server_tls(args)
    except ValueError as error:
        print(f"buildbot-jira simulate: {error}", file=err)
        return 2
    status = {"code": 0}

    async def start() -> None:
        try:
            running = await simulator.listen(reactor, port=args.port, interface=args.host, tls=tls)
        except Exception as error:  # noqa: BLE001 - any failure to listen ends the command
            print(
                f"buildbot-jira simulate: {error}\nChoose another --port or --host.",
                file=err,
            )
            status["code"] = 1
            reactor.stop()
            return
        print_banner(running, args, out)
        if not args.quiet:
            simulator.subscribe(lambda record: print_request(record, out))
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
        f"  issue view:           {running.url}/",
        f"  API URL and site URL: {running.url}",
        f"  cloud ID:             {simulator.cloud_id}",
        f"  client ID:            {args.client_id}",
        f"  client secret:        {secret}",
        f"  known projects:       {projects}",
        f"  gating:               {describe_gating(simulator)}",
        f"  state:                {running.url}/_simulator/state",
        f"  issues:               {running.url}/_simulator/issues",
        f"  everything else:      {running.url}/_simulator/",
        *(f"  rate limit:           {limit}" for limit in describe_rate_limit(args)),
        *(f"  fault:                {fault}" for fault in describe_faults(args)),
        *(f"  CA certificate:       {ca} (ca_bundle, --ca-bundle)" for ca in tls_ca_file(args)),
        "Press Ctrl-C to stop.",
    ]
    out.write("\n".join(lines) + "\n")
    out.flush()


def describe_gating(simulator: JiraSimulator) -> str:
    """What the simulator decides of gated deployments, and how to change it, in words."""
    return (
        f"gated deployments start {simulator.default_gating_status}; change them with "
        """POST /_simulator/gating {"gatingStatus": "allowed"}"""
    )


def describe_rate_limit(args: argparse.Namespace) -> list[str]:
    """The rate limit that the ``simulate`` arguments enforce, in words (none: empty)."""
    limit = getattr(args, "rate_limit", None)
    if not limit:
        return []
    # Unless told otherwise, a 429 waits out the one-second window: 1 s.
    wait = getattr(args, "rate_limit_retry_after", None) or 1
    return [
        f"{limit} requests per second per API endpoint and method, "
        f"then HTTP 429 (jira-burst-based) with Retry-After: {wait}"
    ]


def _failed_answer(args: argparse.Namespace) -> str:
    """A failed answer of the ``simulate`` arguments, in words."""
    words = f"HTTP {getattr(args, 'fail_status', 503)}"
    retry_after = getattr(args, "retry_after", None)
    form = getattr(args, "retry_after_form", "seconds")
    if retry_after is not None and form == "seconds":
        words += f" with Retry-After: {retry_after:g}"
    elif retry_after is not None and form == "http-date":
        words += f" with Retry-After: an HTTP date {retry_after:g} s ahead"
    elif retry_after is not None:
        words += f" with X-RateLimit-Reset {retry_after:g} s ahead"
    reason = getattr(args, "fail_reason", None)
    if reason:
        words += f" and RateLimit-Reason: {reason}"
    return words


def describe_faults(args: argparse.Namespace) -> list[str]:
    """The faults that the ``simulate`` arguments inject, in words."""
    answer = _failed_answer(args)
    faults = []
    if getattr(args, "fail_next", None):
        faults.append(f"the next {args.fail_next} API requests answer {answer}")
    if getattr(args, "fail_every", None) == 1:
        faults.append(f"every API request answers {answer} (an outage)")
    elif getattr(args, "fail_every", None):
        faults.append(f"1 API request in {args.fail_every} answers {answer}")
    if getattr(args, "delay", 0.0):
        faults.append(f"every answer waits {args.delay:g} s")
    for entity in getattr(args, "deny", None) or ():
        faults.append(f"{entity}: permission denied (HTTP 403)")
    if getattr(args, "near_limit", False):
        faults.append("successful API answers say X-RateLimit-NearLimit: true")
    return faults


def print_request(record: ReceivedRequest, out: TextIO) -> None:
    """One line per request: time, method, path and how it was answered."""
    status = "dropped" if record.fault == "drop" else str(record.status)
    if record.fault == "fail":
        status += " (injected)"
    elif record.status == 429:
        # No API answers 429 of its own: only the rate limit does.
        status += " (rate limited)"
    moment = time.strftime("%H:%M:%S")
    out.write(f"{moment} {record.method} {record.path} -> {status}\n")
    out.flush()
