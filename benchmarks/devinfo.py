"""Changes to Jira's development panel: how many requests they cost, and how soon Jira has them.

A real Buildbot master (in this process, with an in-memory SQLite database)
runs ``JiraDevInfoReporter`` with its defaults, pointed at the Jira Cloud
simulator (``buildbot-jira simulate`` in a process of its own, on loopback).
No builder takes the changes: what is measured is the reporter alone.

- **trickle**: ``--trickle`` changes one at a time, each after a quiet spell
  (``--gap``) longer than the reporter's ``min_request_interval`` (1 s): the
  delay from a change being added to Jira storing its commit (p50, p95), and
  the bulk POSTs per change;
- **burst**: ``--changes`` changes added together (as a push of that many
  commits, or a poller catching up after an outage), each on a branch that
  names its issue (so each is a commit and a branch for Jira): the bulk POSTs
  per change, the largest request (entities), the master's database calls
  per change (Buildbot's own, adding the changes, included: a master without
  the reporter adds the same changes for comparison), and the time until
  Jira holds every commit.

The comparison is the naive design that the README's figures set it against:
one request per change (as a commit hook that posts each commit would send).

Run it from the repository (about 30 s at the defaults on 2 cores)::

    .venv/bin/python benchmarks/devinfo.py
    .venv/bin/python benchmarks/devinfo.py --changes 100 --trickle 3
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

from benchmarks.bench_master import BenchMaster, LogWatch, shell_steps
from benchmarks.command_line import count, react, seconds
from benchmarks.figures import format_table, milliseconds, percentile, what_is_measured
from benchmarks.jira_process import JiraProcess, ReceivedRequest, start_jira
from buildbot_jira.reporters import JiraDevInfoReporter
from buildbot_jira.simulator import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET

__all__ = ["DevinfoDelivery", "commits_stored_at", "delivery", "main", "parse_arguments"]

#: The project of the benchmark's changes: no builder is scheduled for it.
PROJECT = "app"


def devinfo_reporter(url: str) -> JiraDevInfoReporter:
    """The reporter under test, with its defaults, pointed at the simulator at ``url``."""
    return JiraDevInfoReporter(
        name="jira-devinfo",
        site="example.atlassian.net",
        client_id=DEFAULT_CLIENT_ID,
        client_secret=DEFAULT_CLIENT_SECRET,
        api_url=url,
        site_url=url,
    )


def _devinfo_posts(requests: Sequence[ReceivedRequest], since: float) -> list[ReceivedRequest]:
    return [
        r for r in requests if r.method == "POST" and "/devinfo/" in r.path and r.timestamp >= since
    ]


def _entities(request: ReceivedRequest) -> list[tuple[str, dict[str, Any]]]:
    body = request.body if isinstance(request.body, dict) else {}
    return [
        (kind, entity)
        for repository in body.get("repositories", [])
        for kind in ("commits", "branches", "pullRequests")
        for entity in repository.get(kind, [])
    ]


def commits_stored_at(requests: Sequence[ReceivedRequest]) -> dict[str, float]:
    """When Jira first accepted each commit (by its hash), from the requests it received."""
    stored: dict[str, float] = {}
    for request in requests:
        if request.status != 202:
            continue
        for kind, entity in _entities(request):
            if kind == "commits":
                stored.setdefault(str(entity["id"]), request.timestamp)
    return stored


@attrs.frozen
class DevinfoDelivery:
    """What sending some changes cost: bulk POSTs, the largest one, delays to Jira (s)."""

    changes: int
    requests: int
    largest: int
    latencies: tuple[float, ...]
    database_calls: int = 0
    seconds: float = 0.0

    def per_change(self, value: float) -> str:
        """``value`` per change, with the value itself."""
        return f"{value / self.changes:.3f} ({value:g})" if self.changes else "-"

    def latency(self) -> str:
        """The p50 and p95 delays, in milliseconds."""
        p50, p95 = percentile(self.latencies, 0.5), percentile(self.latencies, 0.95)
        return f"{milliseconds(p50)} / {milliseconds(p95)}"


def delivery(
    requests: Sequence[ReceivedRequest], added: dict[str, float], *, since: float
) -> DevinfoDelivery:
    """The figures of the changes ``added`` (hash -> when), from the requests after ``since``."""
    posts = _devinfo_posts(requests, since)
    stored = commits_stored_at(posts)
    return DevinfoDelivery(
        changes=len(added),
        requests=len(posts),
        largest=max((len(_entities(r)) for r in posts), default=0),
        latencies=tuple(stored[h] - at for h, at in added.items() if h in stored),
    )


class Changes:
    """Adds changes to the master, each with its own revision and issue."""

    def __init__(self, bench: BenchMaster) -> None:
        self._bench = bench
        self._number = 0

    async def add(self) -> tuple[str, float]:
        """Add one change; its revision, and when it was added (``time.time()``)."""
        self._number += 1
        n = self._number
        revision = f"{n:040x}"
        at = time.time()
        await self._bench.master.data.updates.addChange(
            author="Ada Lovelace <ada@example.com>",
            branch=f"feature/ABC-{n}-change",
            revision=revision,
            comments=f"ABC-{n}: change {n}",
            repository="ssh://git@git.example.com/team/app.git",
            project=PROJECT,
            files=["app.py", "app_test.py", "README"],
            when_timestamp=int(at),
        )
        return revision, at


async def _until_stored(
    reactor: Any, jira: JiraProcess, hashes: set[str], *, timeout: float
) -> list[ReceivedRequest]:
    deadline = time.monotonic() + timeout
    while True:
        requests = await jira.requests()
        if hashes <= set(commits_stored_at(requests)) or time.monotonic() > deadline:
            return requests
        await task.deferLater(reactor, 0.2, lambda: None)


async def run_trickle(
    reactor: Any, changes: Changes, jira: JiraProcess, args: argparse.Namespace
) -> DevinfoDelivery:
    """``--trickle`` changes one at a time, each after a quiet spell."""
    since = time.time()
    added: dict[str, float] = {}
    for _ in range(args.trickle):
        await task.deferLater(reactor, args.gap, lambda: None)
        revision, at = await changes.add()
        added[revision] = at
    await task.deferLater(reactor, args.gap, lambda: None)
    requests = await _until_stored(reactor, jira, set(added), timeout=args.timeout)
    return delivery(requests, added, since=since)


async def run_burst(
    reactor: Any, bench: BenchMaster, changes: Changes, jira: JiraProcess, args: argparse.Namespace
) -> DevinfoDelivery:
    """``--changes`` changes added together."""
    since = time.time()
    calls = bench.database.calls
    began = time.monotonic()
    added = dict(
        await defer.gatherResults(
            [defer.Deferred.fromCoroutine(changes.add()) for _ in range(args.changes)]
        )
    )
    requests = await _until_stored(reactor, jira, set(added), timeout=args.timeout)
    seconds_taken = time.monotonic() - began
    figures = delivery(requests, added, since=since)
    return attrs.evolve(figures, database_calls=bench.database.calls - calls, seconds=seconds_taken)


async def run_baseline(reactor: Any, args: argparse.Namespace) -> int:
    """The database calls of adding the burst's changes on a master without the reporter."""
    bench = await BenchMaster.start(reactor, builders={"unused": shell_steps(1)})
    try:
        changes = Changes(bench)
        calls = bench.database.calls
        await defer.gatherResults(
            [defer.Deferred.fromCoroutine(changes.add()) for _ in range(args.changes)]
        )
        # What Buildbot does after a change (schedulers, none here) settles first.
        await task.deferLater(reactor, 1.0, lambda: None)
        return int(bench.database.calls - calls)
    finally:
        await bench.stop()


def _report(trickle: DevinfoDelivery, burst: DevinfoDelivery, baseline: int) -> list[str]:
    per_change = burst.per_change
    header = ["", f"trickle ({trickle.changes})", f"burst ({burst.changes})"]
    rows = [
        [
            "bulk POSTs per change",
            trickle.per_change(trickle.requests),
            burst.per_change(burst.requests),
        ],
        ["one request per change (naive)", "1.000", "1.000"],
        ["largest request, entities", str(trickle.largest), str(burst.largest)],
        ["added -> stored in Jira, p50 / p95 ms", trickle.latency(), burst.latency()],
        ["database calls per change, with the reporter", "-", per_change(burst.database_calls)],
        ["database calls per change, without it", "-", per_change(baseline)],
        ["all stored after, s", "-", f"{burst.seconds:.1f}"],
    ]
    lines = [format_table(header, rows)]
    for name, run in (("trickle", trickle), ("burst", burst)):
        if len(run.latencies) < run.changes:
            lines.append(f"NOT every commit of the {name} reached Jira")
    return lines


async def run(reactor: Any, args: argparse.Namespace) -> None:
    """Run both scenarios and print the figures."""
    log = LogWatch.install(verbose=args.verbose)
    began = time.monotonic()
    print(what_is_measured())
    jira = await start_jira(reactor)
    try:
        # One builder that no change starts: the master's work is the reporter's.
        bench = await BenchMaster.start(
            reactor, builders={"unused": shell_steps(1)}, services=[devinfo_reporter(jira.url)]
        )
        try:
            changes = Changes(bench)
            # The reporter takes its job once the master is active.
            await task.deferLater(reactor, 1.0, lambda: None)
            trickle = await run_trickle(reactor, changes, jira, args)
            burst = await run_burst(reactor, bench, changes, jira, args)
        finally:
            await bench.stop()
    finally:
        await jira.stop()
    baseline = await run_baseline(reactor, args)
    print("\n".join(_report(trickle, burst, baseline)))
    if log.errors:
        print(f"The master logged {len(log.errors)} errors; the first:\n{log.errors[0]}")
    print(f"({time.monotonic() - began:.0f} s)")


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The benchmark's options."""
    parser = argparse.ArgumentParser(
        prog="benchmarks/devinfo.py",
        description=(
            "Changes through a real Buildbot master's JiraDevInfoReporter to the Jira "
            "simulator: bulk POSTs per change, the largest request, database calls per change "
            "and the delay from a change to Jira storing its commit, one at a time and in a burst."
        ),
    )
    parser.add_argument(
        "--changes", type=count, default=1000, help="changes in the burst (%(default)s)"
    )
    parser.add_argument(
        "--trickle", type=count, default=10, help="changes one at a time (%(default)s)"
    )
    parser.add_argument(
        "--gap", type=seconds, default=1.5, help="seconds between trickled changes (%(default)s)"
    )
    parser.add_argument(
        "--timeout", type=seconds, default=120.0, help="seconds to wait for Jira (%(default)s)"
    )
    parser.add_argument("--verbose", action="store_true", help="print the master's log")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the options and run."""
    react(run, parse_arguments(argv))


if __name__ == "__main__":
    main()
