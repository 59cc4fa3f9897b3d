"""What one more update costs the outbox's storage at 100, 1,000 and 10,000 pending, and a drain.

A real Buildbot database (a SQLite file by default; ``--db-url`` for
PostgreSQL or MySQL/MariaDB, an empty database that the benchmark fills with
Buildbot's schema) and the outbox's real store
(:class:`~buildbot_jira.delivery.database.DatabaseStore`, through Buildbot's
connection pool and the outbox's change writer), with Jira down: for each
backlog of ``--pending`` updates, the cost of ``--samples`` more updates, one
write each (saved before sent, as the outbox saves them):

- **CPU**: the process's CPU time per update (the reactor and the database
  threads; for a database server, the server's own work is not counted);
- **SQL bytes**: the bytes of the statements and their parameters handed to
  the database per update;
- **disk bytes**: what the process wrote per update (``/proc/self/io``: the
  SQLite file and its journal; nothing for a database server);

then Jira comes back and an outbox that starts on the largest backlog
delivers it (100 updates a request, to an in-memory Jira): the time, CPU
and bytes of the whole drain. buildbot-jira 0.1.0 kept the outbox as one
JSON document rewritten on every change; its figures, measured with this
method on the same machine, are printed beside these.

Run it from the repository (about 30 s on 2 cores with SQLite)::

    .venv/bin/python benchmarks/storage.py
    .venv/bin/python benchmarks/storage.py --db-url postgresql+psycopg2://buildbot@127.0.0.1/bench
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Run as a script, the repository is not on the path: add it last, so that a
# PYTHONPATH (another checkout's buildbot_jira) still wins.
sys.path.append(str(Path(__file__).resolve().parents[1]))

import attrs
import sqlalchemy as sa
from buildbot.config.master import DBConfig
from buildbot.db.connector import DBConnector
from buildbot.process.cache import CacheManager
from twisted.internet import task

from benchmarks.command_line import count, counts, react
from benchmarks.figures import format_table, what_is_measured
from buildbot_jira.delivery.database import DatabaseStore
from buildbot_jira.delivery.durable import DurableLedger
from buildbot_jira.delivery.ledger import Update
from buildbot_jira.delivery.outbox import Outbox
from buildbot_jira.delivery.testing import FakeJira

__all__ = ["Cost", "Meter", "main", "parse_arguments"]

#: 0.1.0's figures on SQLite (from the issue that asked for this storage):
#: per update at each backlog (CPU ms, disk MB), and the drain of 10,000.
BEFORE = {100: ("5.8", "0.57"), 10_000: ("116", "25")}
BEFORE_DRAIN = "18 s, 899 MB of JSON written (1.8 GB to disk)"


@attrs.frozen
class Meter:
    """The process's clocks and byte counters at one moment."""

    wall: float
    cpu: float
    sql_bytes: int
    disk_bytes: int

    @classmethod
    def read(cls, sql: SqlBytes) -> Meter:
        """Read them now."""
        return cls(time.perf_counter(), time.process_time(), sql.total, written_bytes())

    def until(self, end: Meter) -> Meter:
        """What was spent from this moment to ``end``."""
        return Meter(
            end.wall - self.wall,
            end.cpu - self.cpu,
            end.sql_bytes - self.sql_bytes,
            end.disk_bytes - self.disk_bytes,
        )


@attrs.frozen
class Cost:
    """The cost of ``updates`` more updates at a backlog of ``pending``."""

    pending: int
    updates: int
    spent: Meter

    def per_update(self) -> tuple[str, str, str]:
        """CPU (ms), SQL bytes and disk bytes per update, for people."""
        n = self.updates
        return (
            f"{self.spent.cpu * 1000 / n:.2f}",
            f"{self.spent.sql_bytes / n:,.0f}",
            f"{self.spent.disk_bytes / n:,.0f}",
        )


def written_bytes() -> int:
    """What this process has written (``wchar`` of ``/proc/self/io``), 0 where unknown."""
    try:
        with open("/proc/self/io") as io:
            fields = dict(line.split(": ") for line in io.read().splitlines())
    except OSError:
        return 0
    return int(fields.get("wchar", 0))


class SqlBytes:
    """Counts the bytes of every statement and its parameters that reach the database."""

    def __init__(self, engine: Any) -> None:
        self.total = 0
        sa.event.listen(engine, "before_cursor_execute", self._executed)

    def _executed(self, conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        self.total += len(statement) + len(repr(parameters))


class Owner:
    """What Buildbot's DBConnector needs of a master: a reactor, caches, a base directory."""

    def __init__(self, reactor: Any, basedir: str) -> None:
        self.reactor = reactor
        self.basedir = basedir
        self.caches = CacheManager()
        self.db: DBConnector


async def open_database(reactor: Any, db_url: str, basedir: str) -> Owner:
    """Buildbot's database connector on ``db_url``, with Buildbot's schema."""
    owner = Owner(reactor, basedir)
    db = DBConnector(basedir)
    await db.set_master(owner)
    db.configured_db_config = DBConfig(db_url)
    await db.setup(check_version=False, verbose=False)
    await db.model.upgrade()
    owner.db = db
    return owner


def update(number: int) -> Update:
    """A build's final state, as the reporter makes it (some 700 bytes of JSON)."""
    pipeline = "buildbot.example.com/app"
    payload = {
        "schemaVersion": "1.0",
        "pipelineId": pipeline,
        "buildNumber": number,
        "updateSequenceNumber": 1_800_000_000_000 + number,
        "displayName": f"app #{number}",
        "url": f"https://buildbot.example.com/#/builders/1/builds/{number}",
        "state": "successful",
        "lastUpdated": "2027-01-15T08:00:00.000Z",
        "issueKeys": [f"PROJ-{number % 500 + 1}"],
        "description": "build successful",
        "label": f"feature/PROJ-{number % 500 + 1}-change @ 0123456789ab",
        "testInfo": {"totalNumber": 120, "numberPassed": 120, "numberFailed": 0},
        "references": [
            {
                "commit": {
                    "id": "0123456789abcdef0123456789abcdef01234567",
                    "repositoryUri": "https://git.example.com/app.git",
                },
                "ref": {
                    "name": f"feature/PROJ-{number % 500 + 1}-change",
                    "uri": "https://git.example.com/app.git#feature",
                },
            }
        ],
    }
    return Update("builds", f"{pipeline}#{number}", payload, 1_800_000_000_000 + number, True)


async def measure(reactor: Any, args: argparse.Namespace, owner: Owner) -> None:
    """Fill the backlog level by level, price more updates at each, then drain it."""
    sql = SqlBytes(owner.db.pool.engine)
    masterid = await owner.db.masters.findMasterId(name="bench:/srv/storage")
    await owner.db.masters.setMasterState(masterid=masterid, active=True)
    objectid = await owner.db.state.getObjectId("jira", "buildbot_jira.JiraBuildReporter")
    store = DatabaseStore(master=owner, objectid=objectid, masterid=masterid)
    cap = max(args.pending) + args.samples * len(args.pending) + 1
    ledger = DurableLedger(store=store, cap=cap, name="jira", dropped=lambda dropped: None)
    await ledger.load(None)
    costs, number = [], 0
    for level in sorted(args.pending):
        # Fill up to the level in batches of 500 (not measured).
        while len(ledger) < level:
            for _ in range(min(500, level - len(ledger))):
                ledger.put(update(number))
                number += 1
            await ledger.flush()
        start = Meter.read(sql)
        for _ in range(args.samples):
            ledger.put(update(number))
            number += 1
            await ledger.flush()  # one write per update: saved before sent
        costs.append(Cost(pending=level, updates=args.samples, spent=start.until(Meter.read(sql))))
        print(f"  {level:,} pending: measured", flush=True)
    backlog = len(ledger)
    jira = FakeJira(clock=reactor)
    outbox = Outbox(client=jira, store=store, clock=reactor, cap=cap, name="jira")
    start = Meter.read(sql)
    await outbox.start()
    while len(outbox):
        await _turn(reactor)
    await outbox.stop()
    drain = start.until(Meter.read(sql))
    delivered = sum(len(s.payloads) for s in jira.submissions)
    print(_costs_table(costs))
    print(
        f"\nDrain: {delivered:,} of {backlog:,} updates delivered in "
        f"{len(jira.submissions)} requests: {drain.wall:.1f} s, CPU {drain.cpu:.1f} s, "
        f"{drain.sql_bytes / 1e6:.1f} MB of SQL, {drain.disk_bytes / 1e6:.1f} MB written "
        f"({drain.sql_bytes / max(delivered, 1):,.0f} bytes of SQL per update)."
    )
    print(f"0.1.0 on SQLite: {BEFORE_DRAIN} for 10,000.")


def _costs_table(costs: Sequence[Cost]) -> str:
    header = [
        "pending",
        "CPU ms / update",
        "SQL bytes / update",
        "disk bytes / update",
        "0.1.0: CPU ms, disk MB",
    ]
    rows = []
    for cost in costs:
        before = BEFORE.get(cost.pending)
        rows.append(
            [f"{cost.pending:,}", *cost.per_update(), " / ".join(before) if before else "-"]
        )
    return format_table(header, rows)


async def _turn(reactor: Any) -> None:
    await task.deferLater(reactor, 0.001, lambda: None)


async def run(reactor: Any, args: argparse.Namespace) -> None:
    """Open the database, measure, print, clean up."""
    began = time.monotonic()
    print(what_is_measured())
    directory = tempfile.mkdtemp(prefix="buildbot-jira-storage-")
    db_url = args.db_url or f"sqlite:///{os.path.join(directory, 'state.sqlite')}"
    engine = sa.engine.make_url(db_url).get_backend_name()
    print(
        f"Storage on {engine}: {args.samples} updates, one write each, at each backlog of "
        f"{', '.join(f'{n:,}' for n in sorted(args.pending))} pending; then the drain.",
        flush=True,
    )
    try:
        owner = await open_database(reactor, db_url, directory)
        try:
            await measure(reactor, args, owner)
        finally:
            await owner.db.pool.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    print(f"({time.monotonic() - began:.0f} s)")


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The benchmark's options."""
    parser = argparse.ArgumentParser(
        prog="benchmarks/storage.py",
        description=(
            "What one more update costs the outbox's storage (CPU, bytes) at several backlogs, "
            "and what draining the largest costs, on a real Buildbot database."
        ),
    )
    parser.add_argument(
        "--pending",
        type=counts,
        default=[100, 1000, 10_000],
        metavar="N,...",
        help="backlogs to measure at (100,1000,10000)",
    )
    parser.add_argument(
        "--samples", type=count, default=100, help="updates measured per backlog (%(default)s)"
    )
    parser.add_argument(
        "--db-url", default=None, help="an empty database's SQLAlchemy URL (a SQLite file)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark with ``argv`` (default: the command line) and exit."""
    react(run, parse_arguments(argv))


if __name__ == "__main__":
    main()
