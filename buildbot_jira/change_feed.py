"""Which master sends a reporter's changes, and how far it has got: a job in the database.

Every master of a cluster receives every ``('changes', None, 'new')``
event, yet each change must reach Jira once. A :class:`ChangeFeed` keeps
one row per reporter in the plugin's table ``buildbot_jira_jobs``: the
master that holds the job, and the position (the last change ID it has
handed to its outbox). A master claims the job only when nobody holds
it, this master holds it already, or its holder is no longer an active
master, and only once Buildbot has marked it active (a master is inactive
while it starts). The claim reads the holder, then sets itself with an
``UPDATE`` whose condition is that holder, on the row alone: of two masters
that race for it, the database gives it to one. (A condition on another
table, such as "no active master holds it", is not checked again when a
concurrent claim commits first, on PostgreSQL.) Only the holder reads
changes, in change ID order, from the position on; it moves the position
only once its outbox has saved what it made of them, and only while it
still holds the job. A holder that dies leaves the position where its
saved work ends: the next holder goes on from there, and the dead one's
outbox rows are adopted like any others.

The job starts at the change that was newest when the first master's
reporter started: a reporter sends what happens from when it is first
configured, not a repository's history.

On PostgreSQL and MySQL a change ID is handed out when its ``INSERT``
runs, not when it commits: change 7 may become visible after change 8.
The holder reads change IDs only while they follow each other; at a gap it
stops and waits (:class:`Gaps`), and only a gap that has stayed open for
:data:`GAP_GRACE` seconds (an ``INSERT`` that was rolled back, a change
that was deleted) is passed over.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import sqlalchemy as sa

from buildbot_jira.delivery.database import create_table

__all__ = ["GAP_GRACE", "JOBS_TABLE", "ChangeFeed", "Gaps", "jobs_table"]

#: Seconds a gap in the change IDs may take to fill before it is passed over.
GAP_GRACE = 10.0

#: The name of the plugin's table of jobs.
JOBS_TABLE = "buildbot_jira_jobs"

metadata = sa.MetaData()

#: One row per job (a reporter, by its objectid).
jobs_table = sa.Table(
    JOBS_TABLE,
    metadata,
    sa.Column("objectid", sa.Integer, primary_key=True, autoincrement=False),
    # The master that holds the job; None: nobody.
    sa.Column("masterid", sa.Integer, nullable=True),
    # The last change ID handed to the holder's outbox.
    sa.Column("position", sa.BigInteger, nullable=False),
)


class Gaps:
    """Which of the change IDs read after a position may be handled now.

    Each gap (named by its first missing ID) is waited for from when it was
    first seen, so several gaps age together: a database that leaves a gap
    after every change (MySQL's ``auto_increment_increment`` above 1) costs
    one grace per read, not one per gap.

    :param grace: seconds a missing ID is waited for, from when it is first seen missing.
    """

    def __init__(self, grace: float = GAP_GRACE) -> None:
        self.grace = grace
        self._seen: dict[int, float] = {}  # the first missing ID of a gap: when first seen

    def __repr__(self) -> str:
        return f"<Gaps grace={self.grace} open={sorted(self._seen)}>"

    def usable(self, position: int, ids: list[int], now: float) -> tuple[list[int], float | None]:
        """The IDs of ``ids`` (ascending, after ``position``) to handle now, and a wait.

        The IDs that follow ``position`` without a gap, and past each gap that
        has been open for :attr:`grace` seconds. The wait is None, or the
        seconds after which the gap that stopped them may be passed over.
        """
        gaps, expected = [], position + 1
        for changeid in ids:
            if changeid > expected:
                gaps.append((expected, changeid))
            expected = changeid + 1
        # Gaps that filled, or that the position has passed, are forgotten;
        # those beyond this read (a shorter one) keep their age.
        beyond = {start: seen for start, seen in self._seen.items() if start >= expected}
        self._seen = {start: self._seen.get(start, now) for start, _ in gaps} | beyond
        for start, after in gaps:
            waited = now - self._seen[start]
            if waited < self.grace:
                return ids[: ids.index(after)], self.grace - waited
        return list(ids), None


class ChangeFeed:
    """One reporter's job of sending changes: who holds it, and from which change on.

    :param master: the Buildbot master (its ``db.pool``, ``db.model`` and ``masterid``).
    :param objectid: the reporter's objectid: the job's row.
    """

    def __init__(self, *, master: Any, objectid: int) -> None:
        self._master = master
        self._objectid = objectid
        self._created = False
        self._start: int | None = None
        #: Whether this master held the job when it last asked.
        self.held = False

    def __repr__(self) -> str:
        return f"<ChangeFeed objectid={self._objectid} held={self.held}>"

    @property
    def _pool(self) -> Any:
        return self._master.db.pool

    async def _ensure_table(self) -> None:
        if not self._created:
            await self._pool.do(create_table, jobs_table)
            self._created = True

    async def claim(self) -> bool:
        """Take the job if nobody active holds it; whether this master holds it now."""
        await self._ensure_table()
        self.held = await self._pool.do(self._thd_claim, self._master.masterid)
        return self.held

    async def note_start(self) -> None:
        """Remember the newest change now: where the job starts if nobody has held it yet.

        Called when the reporter starts, before its master is active and may
        claim the job: changes that come meanwhile are sent too. The job's row
        is made now, held by nobody, if it does not exist: of several masters
        that start, the first one's start counts, whichever claims the job.
        """
        if self._start is None:
            await self._ensure_table()
            self._start = await self._pool.do(self._thd_make_row, None)

    async def release(self, *, force: bool = False) -> None:
        """Give the job up (at a clean stop), so that another master takes it at once.

        Only if this master held it when it last asked, unless ``force``: a
        master that restarted may hold it from its earlier run.
        """
        if not (self.held or force):
            return
        await self._ensure_table()
        await self._pool.do(self._thd_release, self._master.masterid)
        self.held = False

    async def position(self) -> int:
        """The last change ID handed to the holder's outbox."""
        await self._ensure_table()
        value: int | None = await self._pool.do(self._thd_position)
        return value or 0

    async def advance(self, changeid: int) -> bool:
        """Move the position to ``changeid``; False (and no longer held) if the job was lost."""
        moved: bool = await self._pool.do(self._thd_advance, self._master.masterid, changeid)
        if not moved:
            self.held = False
        return moved

    async def change_ids_after(self, changeid: int, limit: int) -> list[int]:
        """The IDs of up to ``limit`` changes after ``changeid``, oldest first."""

        def select(conn: Any) -> list[int]:
            table = self._master.db.model.changes
            query = (
                sa.select(table.c.changeid)
                .where(table.c.changeid > changeid)
                .order_by(table.c.changeid)
                .limit(limit)
            )
            return [int(row.changeid) for row in conn.execute(query)]

        ids: list[int] = await self._pool.do(select)
        return ids

    async def read_change(self, changeid: int) -> dict[str, Any] | None:
        """One change with its files and properties, as a dict: one database call.

        From Buildbot's database API, whose change is a dataclass from
        Buildbot 4.1 on (a dict before); the data API would read its source
        stamp too, which nothing here needs.
        """
        change: Any = await self._master.db.changes.getChange(changeid)
        if change is None:
            return None
        return dict(change) if isinstance(change, dict) else dataclasses.asdict(change)

    # -- in the database's thread --------------------------------------------------

    def _thd_claim(self, conn: Any, masterid: int, *, first: bool = True) -> bool:
        masters = self._master.db.model.masters
        table = jobs_table

        def active(master: int) -> bool:
            found = sa.select(masters.c.id).where(masters.c.id == master, masters.c.active != 0)
            return conn.execute(found).first() is not None

        with conn.begin():
            # A master takes the job only once Buildbot has marked it active: while
            # it starts, its own row says inactive, and others would take it back.
            if not active(masterid):
                return False
            # FOR UPDATE: the newest holder (not a snapshot's), and one claim at a time.
            row = conn.execute(
                sa.select(table.c.masterid)
                .where(table.c.objectid == self._objectid)
                .with_for_update()
            ).first()
            if row is not None:
                holder = row.masterid
                if holder == masterid:
                    return True
                if holder is not None and active(holder):
                    return False
                # Compare and set, on the row alone (what PostgreSQL and InnoDB
                # check again after a concurrent update): of two masters that saw
                # the same holder, one takes the job.
                same = table.c.masterid.is_(None) if holder is None else table.c.masterid == holder
                taken = conn.execute(
                    table.update()
                    .where(table.c.objectid == self._objectid, same)
                    .values(masterid=masterid)
                ).rowcount
                return bool(taken)
        if not first:
            return False
        # Nobody noted a start (the reporter's note_start did not run): the job starts now.
        self._thd_make_row(conn, self._start)
        return self._thd_claim(conn, masterid, first=False)

    def _thd_make_row(self, conn: Any, start: int | None) -> int:
        """Make the job's row, held by nobody, unless it exists; the start it chose.

        At ``start``, or at the newest change if None; a row that exists (made
        by another master first) keeps its own.
        """
        table = jobs_table
        position = start or 0
        try:
            with conn.begin():
                position = start if start is not None else self._thd_newest(conn)
                exists = conn.execute(
                    sa.select(table.c.objectid).where(table.c.objectid == self._objectid)
                ).first()
                if exists is None:
                    conn.execute(
                        table.insert().values(
                            objectid=self._objectid, masterid=None, position=position
                        )
                    )
        except sa.exc.IntegrityError:
            pass  # another master made the row first: its start counts
        return position

    def _thd_newest(self, conn: Any) -> int:
        changes = self._master.db.model.changes
        return int(conn.execute(sa.select(sa.func.max(changes.c.changeid))).scalar() or 0)

    def _thd_release(self, conn: Any, masterid: int) -> None:
        table = jobs_table
        with conn.begin():
            conn.execute(
                table.update()
                .where(table.c.objectid == self._objectid, table.c.masterid == masterid)
                .values(masterid=None)
            )

    def _thd_position(self, conn: Any) -> int | None:
        table = jobs_table
        value = conn.execute(
            sa.select(table.c.position).where(table.c.objectid == self._objectid)
        ).scalar()
        return None if value is None else int(value)

    def _thd_advance(self, conn: Any, masterid: int, changeid: int) -> bool:
        table = jobs_table
        with conn.begin():
            moved = conn.execute(
                table.update()
                .where(
                    table.c.objectid == self._objectid,
                    table.c.masterid == masterid,
                    table.c.position < changeid,
                )
                .values(position=changeid)
            ).rowcount
            if moved:
                return True
            # Held, and already there (another read went as far): still held.
            still = conn.execute(
                sa.select(table.c.objectid).where(
                    table.c.objectid == self._objectid, table.c.masterid == masterid
                )
            ).first()
        return still is not None
