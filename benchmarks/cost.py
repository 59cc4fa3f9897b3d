"""What the Jira reporter costs a Buildbot master per build, and whether it grows with history.

Builds run one after another through a real Buildbot master (in this
process, with a local worker and an in-memory SQLite database), each for a
change on a branch of its own (``feature/PROJ-<n>-x``, the feature-branch
workflow), each build ``--steps`` trivial steps that run on the master
(each sets a property: the figures are the master's and the reporter's, not
a worker's processes). The same builds run on a master without a reporter and on one with
``JiraBuildReporter`` (its defaults), pointed at the Jira Cloud simulator
(``buildbot-jira simulate``, in a process of its own as Jira is on other
machines). Per window of ``--window`` builds, per build:

- **wall time**, from the change to the end of the build (builds follow each
  other at once, so what the reporter does after a build ends is paid by the
  next one);
- **reactor CPU**: the CPU time of the reactor's thread, where the master,
  the local worker and the reporter all run;
- **process CPU**: the whole process, the database's threads included;
- **database calls** through the master's pool (``do`` and
  ``do_with_engine``, so each transaction counts once).

Then, per step count, the ratios with and without the reporter, and how the
database calls per build grow from the first window to the last: a reporter
whose reads walk back through earlier builds grows with history.

Run it from the repository (200 builds, windows of 50, 1 and 10 steps: four
masters of 200 builds, 3 to 8 minutes on 2 cores, the more the reporter
costs the longer; ``--steps 10`` alone takes some 60 % of that)::

    .venv/bin/python benchmarks/cost.py
    .venv/bin/python benchmarks/cost.py --steps 10 --builds 100 --window 25
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

from benchmarks.bench_master import BenchMaster, LogWatch, jira_reporter, master_steps
from benchmarks.command_line import count, counts, react
from benchmarks.figures import format_table, ratio, what_is_measured
from benchmarks.jira_process import JiraProcess, start_jira, stored_at

__all__ = ["Meter", "Run", "Window", "main", "parse_arguments"]

APP = "app"


@attrs.frozen
class Meter:
    """The clocks and the database counter at one moment (seconds, calls)."""

    wall: float
    reactor_cpu: float
    process_cpu: float
    database_calls: int

    @classmethod
    def read(cls, bench: BenchMaster) -> Meter:
        """Read them now; called on the reactor's thread, whose CPU time it takes."""
        return cls(
            wall=time.perf_counter(),
            reactor_cpu=time.thread_time(),
            process_cpu=time.process_time(),
            database_calls=bench.database.calls,
        )


@attrs.frozen
class Window:
    """What ``builds`` consecutive builds cost, in all (seconds, calls)."""

    first: int
    builds: int
    wall: float
    reactor_cpu: float
    process_cpu: float
    database_calls: int

    @classmethod
    def between(cls, first: int, builds: int, start: Meter, end: Meter) -> Window:
        """The cost of ``builds`` builds from number ``first``, from ``start`` to ``end``."""
        return cls(
            first=first,
            builds=builds,
            wall=end.wall - start.wall,
            reactor_cpu=end.reactor_cpu - start.reactor_cpu,
            process_cpu=end.process_cpu - start.process_cpu,
            database_calls=end.database_calls - start.database_calls,
        )

    def per_build(self) -> tuple[float, float, float, float]:
        """Wall time, reactor CPU and process CPU (ms), and database calls, per build."""
        n = self.builds
        return (
            self.wall * 1000 / n,
            self.reactor_cpu * 1000 / n,
            self.process_cpu * 1000 / n,
            self.database_calls / n,
        )


@attrs.frozen
class Run:
    """The builds of one master: with or without the reporter, ``steps`` steps each."""

    steps: int
    reporter: bool
    windows: tuple[Window, ...]
    #: Builds whose final state Jira holds (None without the reporter).
    delivered: int | None = None

    def total(self) -> Window:
        """Every window together."""
        return Window(
            first=1,
            builds=sum(w.builds for w in self.windows),
            wall=sum(w.wall for w in self.windows),
            reactor_cpu=sum(w.reactor_cpu for w in self.windows),
            process_cpu=sum(w.process_cpu for w in self.windows),
            database_calls=sum(w.database_calls for w in self.windows),
        )

    def database_growth(self) -> str:
        """Database calls per build in the last window against the first, as a change."""
        first, last = self.windows[0].per_build()[3], self.windows[-1].per_build()[3]
        return f"{(last / first - 1) * 100:+.0f} %" if first else "-"


async def run_builds(
    reactor: Any, *, steps: int, builds: int, window: int, jira: JiraProcess | None, timeout: float
) -> Run:
    """``builds`` builds one after another, with the reporter if ``jira`` is given."""
    bench = await BenchMaster.start(
        reactor,
        builders={APP: master_steps(steps)},
        services=[jira_reporter(jira.url)] if jira is not None else [],
    )
    try:
        windows = []
        first, start = 1, Meter.read(bench)
        for n in range(1, builds + 1):
            await bench.add_change(
                builder=APP, branch=f"feature/PROJ-{n}-x", comments=f"PROJ-{n}: change {n}"
            )
            await bench.builds.when_finished(APP, n)
            if n % window == 0 or n == builds:
                end = Meter.read(bench)
                windows.append(Window.between(first, n - first + 1, start, end))
                first, start = n + 1, end
        delivered = None
        if jira is not None:
            requests = await jira.until_stored(reactor, APP, builds, timeout=timeout)
            delivered = len(stored_at(requests, APP))
    finally:
        await bench.stop()
    return Run(steps=steps, reporter=jira is not None, windows=tuple(windows), delivered=delivered)


async def run_pair(reactor: Any, args: argparse.Namespace, steps: int) -> tuple[Run, Run]:
    """The same builds without the reporter, then with it (and a simulator of its own)."""
    without = await run_builds(
        reactor, steps=steps, builds=args.builds, window=args.window, jira=None, timeout=0
    )
    jira = await start_jira(reactor)
    try:
        with_reporter = await run_builds(
            reactor,
            steps=steps,
            builds=args.builds,
            window=args.window,
            jira=jira,
            timeout=args.timeout,
        )
    finally:
        await jira.stop()
    return without, with_reporter


def _windows_table(runs: Sequence[Run]) -> str:
    header = [
        "steps",
        "reporter",
        "builds",
        "wall ms",
        "reactor CPU ms",
        "process CPU ms",
        "DB calls",
    ]
    rows = []
    for run in runs:
        for w in run.windows:
            wall, reactor_cpu, process_cpu, calls = w.per_build()
            rows.append(
                [
                    str(run.steps),
                    "with" if run.reporter else "without",
                    f"{w.first}-{w.first + w.builds - 1}",
                    f"{wall:.0f}",
                    f"{reactor_cpu:.0f}",
                    f"{process_cpu:.0f}",
                    f"{calls:.0f}",
                ]
            )
    return format_table(header, rows)


def _summary_table(pairs: Sequence[tuple[Run, Run]]) -> str:
    header = [
        "steps",
        "wall time",
        "reactor CPU",
        "process CPU",
        "DB calls",
        "DB calls growth, without",
        "with",
    ]
    rows = []
    for without, with_reporter in pairs:
        a, b = without.total().per_build(), with_reporter.total().per_build()
        rows.append(
            [
                str(without.steps),
                ratio(b[0], a[0]),
                ratio(b[1], a[1]),
                ratio(b[2], a[2]),
                ratio(b[3], a[3]),
                without.database_growth(),
                with_reporter.database_growth(),
            ]
        )
    return format_table(header, rows)


async def run(reactor: Any, args: argparse.Namespace) -> None:
    """Run each step count without and with the reporter, and print the figures."""
    log = LogWatch.install(verbose=args.verbose)
    began = time.monotonic()
    print(what_is_measured())
    print(
        f"Cost: {args.builds} builds one after another, each on a new branch; "
        f"figures per build, by window of {args.window} builds.",
        flush=True,
    )
    pairs = [await run_pair(reactor, args, steps) for steps in args.steps]
    print(_windows_table([run for pair in pairs for run in pair]))
    print(
        "\nWith the reporter against without it (per build, whole run), and how the database "
        "calls per build grow from the first window to the last:"
    )
    print(_summary_table(pairs))
    for _, with_reporter in pairs:
        if with_reporter.delivered != args.builds:
            print(
                f"NOT every build reached Jira ({with_reporter.steps} steps): "
                f"{with_reporter.delivered} of {args.builds} within {args.timeout:g} s"
            )
    if log.errors:
        print(f"The master logged {len(log.errors)} errors; the first:\n{log.errors[0]}")
    print(f"({time.monotonic() - began:.0f} s)")


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The benchmark's options."""
    parser = argparse.ArgumentParser(
        prog="benchmarks/cost.py",
        description=(
            "What JiraBuildReporter adds to each build of a real Buildbot master: wall time, "
            "CPU and database calls per build, without and with the reporter, by window of "
            "builds, each build on a new branch."
        ),
    )
    parser.add_argument("--builds", type=count, default=200, help="builds per master (%(default)s)")
    parser.add_argument("--window", type=count, default=50, help="builds per window (%(default)s)")
    parser.add_argument(
        "--steps",
        type=counts,
        default=[1, 10],
        metavar="N,...",
        help="steps per build, one pair of masters for each (1,10)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="seconds to wait for Jira to hold every build (%(default)s)",
    )
    parser.add_argument("--verbose", action="store_true", help="print the master's log")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark with ``argv`` (default: the command line) and exit."""
    react(run, parse_arguments(argv))


if __name__ == "__main__":
    main()
