"""Builds released together: how many requests they cost, the 429s, and how soon Jira has them.

A real Buildbot master (in this process, with a local worker and an
in-memory SQLite database) runs ``JiraBuildReporter`` with its defaults,
pointed at the Jira Cloud simulator (``buildbot-jira simulate`` in a process
of its own, on loopback). For each answer delay of the simulator (at once,
and 0.3 s late, as Jira Cloud often answers):

- **idle**: builds one at a time, each on its own branch, with a quiet spell
  before and after each (``--idle-gap``) and a step that lasts
  ``--idle-step-seconds``, both longer than the reporter's default
  ``min_request_interval`` (1 s), so that each update finds the outbox idle:
  the delay from a build's end to Jira storing its final state (p50, p95);
- **burst**: ``--builds`` builds of one builder released together (one
  change each, on its own branch, on as many local workers), each a
  single trivial shell step: the bulk POSTs per build in all and in the
  finish phase (from the moment the first build ends), and the delay from
  each build's end to Jira storing its final state.

Then, against the simulator's burst limit (``--rate-limit`` requests per
second per endpoint and method), ``--rate-limit-builds`` builds released
together: how many answers of 429 they draw. A simulator without a burst
limiter says so instead.

A build's end is the moment the master publishes its
``('builds', id, 'finished')`` message (Buildbot keeps ``complete_at`` in
whole seconds); Jira stores an update when its request arrives, so the
delay runs to the simulator's arrival time of the first accepted request
that carries the build's final state.

Run it from the repository (about 2.5 minutes at the defaults on 2 cores)::

    .venv/bin/python benchmarks/burst.py
    .venv/bin/python benchmarks/burst.py --builds 10 --idle-builds 3 --delays 0
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Run as a script, the repository is not on the path: add it last, so that a
# PYTHONPATH (another checkout's buildbot_jira) still wins.
sys.path.append(str(Path(__file__).resolve().parents[1]))

import attrs
from twisted.internet import defer, task

from benchmarks.bench_master import (
    BenchMaster,
    BuildEvent,
    LogWatch,
    Release,
    WaitForRelease,
    jira_reporter,
    shell_steps,
)
from benchmarks.command_line import count, react, seconds, seconds_list
from benchmarks.figures import format_table, milliseconds, percentile, what_is_measured
from benchmarks.jira_process import (
    JiraProcess,
    ReceivedRequest,
    SimulatorUnavailable,
    start_jira,
    stored_at,
)

__all__ = ["Delivery", "delivery", "main", "parse_arguments"]

BURST = "burst"
IDLE = "idle"
#: Buildbot's own HttpStatusPush: one request when a build starts and one when it ends.
HTTP_STATUS_PUSH_REQUESTS_PER_BUILD = 2


@attrs.frozen
class Delivery:
    """What reporting some builds cost: bulk POSTs, answers of 429, delays to Jira (s)."""

    builds: int
    requests: int
    finish_requests: int
    rate_limited: int
    latencies: tuple[float, ...]

    def per_build(self, count: int) -> str:
        """``count`` per build, with the count itself."""
        return f"{count / self.builds:.2f} ({count})" if self.builds else "-"

    def latency(self) -> str:
        """The p50 and p95 delays, in milliseconds."""
        p50, p95 = percentile(self.latencies, 0.5), percentile(self.latencies, 0.95)
        return f"{milliseconds(p50)} / {milliseconds(p95)}"


def delivery(
    requests: Sequence[ReceivedRequest],
    finished: Sequence[BuildEvent],
    *,
    since: float,
    builder: str,
) -> Delivery:
    """The figures of ``finished`` builds of ``builder``, from the requests after ``since``."""
    posts = [r for r in requests if r.is_bulk_post and r.timestamp >= since]
    first_end = min((b.at for b in finished), default=since)
    stored = stored_at(posts, builder)
    return Delivery(
        builds=len(finished),
        requests=len(posts),
        finish_requests=sum(1 for r in posts if r.timestamp >= first_end),
        rate_limited=sum(1 for r in posts if r.status == 429),
        latencies=tuple(stored[b.number] - b.at for b in finished if b.number in stored),
    )


def burst_steps(release: Release) -> list[Any]:
    """A build of a burst: wait for the release (on the master), then one trivial shell step."""
    return [WaitForRelease(release), *shell_steps(1)]


async def _sleep(reactor: Any, seconds: float) -> None:
    await task.deferLater(reactor, seconds, lambda: None)


async def run_idle(
    reactor: Any, bench: BenchMaster, jira: JiraProcess, args: argparse.Namespace
) -> Delivery:
    """``--idle-builds`` builds one at a time, each after a quiet spell."""
    since = time.time()
    for n in range(1, args.idle_builds + 1):
        await _sleep(reactor, args.idle_gap)
        await bench.add_change(
            builder=IDLE, branch=f"feature/PROJ-{n}-idle", comments=f"PROJ-{n}: change {n}"
        )
        await bench.builds.when_finished(IDLE, n)
    await _sleep(reactor, args.idle_gap)
    requests = await jira.until_stored(reactor, IDLE, args.idle_builds, timeout=args.timeout)
    return delivery(requests, bench.builds.finished(IDLE), since=since, builder=IDLE)


async def run_burst(
    reactor: Any,
    bench: BenchMaster,
    jira: JiraProcess,
    release: Release,
    count: int,
    *,
    timeout: float,
) -> Delivery:
    """``count`` builds, one change each on a branch of its own, released together.

    Every build waits at its first step until all have started; then
    ``release`` lets them go, and they end within moments of each other.
    """
    since = time.time()
    await defer.gatherResults(
        [
            defer.Deferred.fromCoroutine(
                bench.add_change(
                    builder=BURST,
                    branch=f"feature/PROJ-{n}-burst",
                    comments=f"PROJ-{n}: change {n}",
                )
            )
            for n in range(1, count + 1)
        ]
    )
    await bench.builds.when_started(BURST, count)
    release.open()
    await bench.builds.when_finished(BURST, count)
    requests = await jira.until_stored(reactor, BURST, count, timeout=timeout)
    return delivery(requests, bench.builds.finished(BURST), since=since, builder=BURST)


async def run_delay(
    reactor: Any, args: argparse.Namespace, delay: float
) -> tuple[Delivery, Delivery]:
    """The idle and burst figures with the simulator answering after ``delay`` seconds."""
    jira = await start_jira(reactor, delay=delay, checkout=args.simulator_checkout)
    release = Release()
    try:
        bench = await BenchMaster.start(
            reactor,
            builders={
                IDLE: shell_steps(1, f"sleep {args.idle_step_seconds:g}"),
                BURST: burst_steps(release),
            },
            services=[jira_reporter(jira.url)],
            workers=args.builds,
        )
        try:
            idle = await run_idle(reactor, bench, jira, args)
            burst = await run_burst(
                reactor, bench, jira, release, args.builds, timeout=args.timeout
            )
        finally:
            await bench.stop()
    finally:
        await jira.stop()
    return idle, burst


async def run_rate_limited(reactor: Any, args: argparse.Namespace) -> Delivery | None:
    """A burst against the simulator's burst limit; None if it has no burst limiter."""
    try:
        jira = await start_jira(
            reactor, rate_limit=args.rate_limit, checkout=args.simulator_checkout
        )
    except SimulatorUnavailable:
        return None
    release = Release()
    try:
        bench = await BenchMaster.start(
            reactor,
            builders={BURST: burst_steps(release)},
            services=[jira_reporter(jira.url)],
            workers=args.rate_limit_builds,
        )
        try:
            return await run_burst(
                reactor, bench, jira, release, args.rate_limit_builds, timeout=args.timeout
            )
        finally:
            await bench.stop()
    finally:
        await jira.stop()


def _report(
    args: argparse.Namespace, runs: Sequence[tuple[float, Delivery, Delivery]]
) -> list[str]:
    """The table of the idle and burst runs, one column per answer delay."""
    header = ["", *(f"Jira answers in {delay:g} s" for delay, _, _ in runs)]
    rows = [
        ["bulk POSTs per build, in all", *(b.per_build(b.requests) for _, _, b in runs)],
        [
            "bulk POSTs per build, finish phase",
            *(b.per_build(b.finish_requests) for _, _, b in runs),
        ],
        ["answers of 429", *(str(b.rate_limited) for _, _, b in runs)],
        ["end -> stored in Jira, burst, p50 / p95 ms", *(b.latency() for _, _, b in runs)],
        [
            f"end -> stored in Jira, idle, p50 / p95 ms ({args.idle_builds} builds)",
            *(i.latency() for _, i, _ in runs),
        ],
    ]
    lost = [
        f"{delay:g} s"
        for delay, i, b in runs
        if len(b.latencies) < b.builds or len(i.latencies) < i.builds
    ]
    lines = [format_table(header, rows)]
    if lost:
        lines.append(f"NOT every build reached Jira within {args.timeout:g} s: {', '.join(lost)}")
    return lines


async def run(reactor: Any, args: argparse.Namespace) -> None:
    """Run every scenario and print the figures."""
    log = LogWatch.install(verbose=args.verbose)
    began = time.monotonic()
    print(what_is_measured())
    if args.delays:
        print(
            f"Burst: {args.builds} builds of one builder released together; "
            f"idle: {args.idle_builds} builds one at a time.",
            flush=True,
        )
    runs = []
    for delay in args.delays:
        idle, burst = await run_delay(reactor, args, delay)
        runs.append((delay, idle, burst))
    if runs:
        print("\n".join(_report(args, runs)))
    if args.rate_limit:
        limited = await run_rate_limited(reactor, args)
        if limited is None:
            print("Burst limit: this simulator has no --rate-limit (not measured).")
        else:
            print(
                f"Burst limit of {args.rate_limit} requests/s per endpoint, "
                f"{limited.builds} builds released together: {limited.rate_limited} answers "
                f"of 429 in {limited.requests} bulk POSTs; end -> stored p50 / p95 "
                f"{limited.latency()} ms."
            )
    print(
        f"For comparison, Buildbot's HttpStatusPush sends {HTTP_STATUS_PUSH_REQUESTS_PER_BUILD} "
        "requests per build (one when it starts, one when it ends), with no batching."
    )
    if log.errors:
        print(f"The master logged {len(log.errors)} errors; the first:\n{log.errors[0]}")
    print(f"({time.monotonic() - began:.0f} s)")


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The benchmark's options."""
    parser = argparse.ArgumentParser(
        prog="benchmarks/burst.py",
        description=(
            "Builds released together through a real Buildbot master reporting to the Jira "
            "simulator: bulk POSTs per build, answers of 429 under a burst limit, and the "
            "delay from a build's end to Jira storing it, idle and in a burst."
        ),
    )
    parser.add_argument("--builds", type=count, default=50, help="builds in a burst (%(default)s)")
    parser.add_argument(
        "--idle-builds", type=count, default=20, help="builds one at a time (%(default)s)"
    )
    parser.add_argument(
        "--delays",
        type=seconds_list,
        default=[0.0, 0.3],
        metavar="SECONDS,...",
        help="the simulator's answer delays to run with (0,0.3; empty: only the burst limit)",
    )
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=2,
        metavar="N",
        help="the simulator's burst limit, requests per second per endpoint (%(default)s; 0: skip)",
    )
    parser.add_argument(
        "--rate-limit-builds",
        type=count,
        default=30,
        help="builds in the burst against that limit (%(default)s)",
    )
    parser.add_argument(
        "--idle-step-seconds",
        type=seconds,
        default=1.2,
        help="how long each idle build runs (%(default)s)",
    )
    parser.add_argument(
        "--idle-gap",
        type=seconds,
        default=1.2,
        help="quiet seconds before and after each idle build (%(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=seconds,
        default=120.0,
        help="seconds to wait for Jira to hold every build of a run (%(default)s)",
    )
    parser.add_argument(
        "--simulator-checkout",
        metavar="DIR",
        help=(
            "a checkout whose simulator to run (default: the one measured), e.g. a newer "
            "one with a burst limiter against an older reporter"
        ),
    )
    parser.add_argument("--verbose", action="store_true", help="print the master's log")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark with ``argv`` (default: the command line) and exit."""
    react(run, parse_arguments(argv))


if __name__ == "__main__":
    main()
