"""The outbox in the master's database: one row per slot, adoption of a dead master's rows.

:class:`DatabaseStore` keeps each outbox's rows in a table of the plugin's
own, ``buildbot_jira_outbox``, through Buildbot's connection pool (so on
SQLite, PostgreSQL and MySQL/MariaDB alike), created when missing. A row
belongs to one reporter (its ``objectid``) on one master (``masterid``): an
update is one insert or update of one row, a delivery one delete of the
delivered rows, whatever the number of rows waiting.

When Buildbot marks a master inactive, another master's store claims its
rows in one ``UPDATE ... WHERE masterid = <dead>`` that also checks, in the
same statement, that the dead master is still inactive: of two masters that
race for them, the database gives every row to one.

The outbox of 0.1.0 (the state entry ``pending@<masterid>``, one JSON list)
is read once into rows at start; the entry is then emptied.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from twisted.internet import defer

from buildbot_jira.delivery.ledger import Slot
from buildbot_jira.delivery.store import (
    Adoption,
    Change,
    Loaded,
    Saved,
    parse_saved,
    state_name,
)

__all__ = ["OUTBOX_TABLE", "DatabaseStore", "create_table", "outbox_table"]

T = TypeVar("T")

#: The name of the plugin's table.
OUTBOX_TABLE = "buildbot_jira_outbox"

#: Ids to a statement at most: far below every database's limit on parameters.
_CHUNK = 500

metadata = sa.MetaData()

#: One row per slot of one reporter's outbox on one master.
outbox_table = sa.Table(
    OUTBOX_TABLE,
    metadata,
    # SQLite gives an autoincrement key only to INTEGER PRIMARY KEY.
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    # The reporter (Buildbot's objectid of its name and class).
    sa.Column("objectid", sa.Integer, nullable=False),
    # The master whose outbox holds the row.
    sa.Column("masterid", sa.Integer, nullable=False),
    # Set while a claim moves the row from a dead master; cleared in the same transaction.
    sa.Column("adopted_from", sa.Integer, nullable=True),
    # "pending" or "open" (see buildbot_jira.delivery.store).
    sa.Column("kind", sa.String(16), nullable=False),
    # The update as JSON; MySQL's TEXT holds 64 KiB, MEDIUMTEXT 16 MiB.
    sa.Column(
        "data", sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb"), nullable=False
    ),
    sa.Index(f"{OUTBOX_TABLE}_owner", "objectid", "masterid"),
)


def create_table(conn: Any, table: sa.Table) -> None:
    """Create ``table`` if it is missing; another master creating it meanwhile is fine."""
    try:
        with conn.begin():
            table.metadata.create_all(conn, tables=[table], checkfirst=True)
    except sa.exc.DatabaseError:
        # Another master created it meanwhile: if it is there now, all is well.
        if not sa.inspect(conn).has_table(table.name):
            raise


def _chunks(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


class DatabaseStore:
    """An :class:`~buildbot_jira.delivery.store.OutboxStore` in the master's database.

    :param master: the Buildbot master (its ``db.pool``, ``db.model`` and ``db.state``).
    :param objectid: the reporter's objectid: each reporter keeps rows of its own.
    :param masterid: this master's ID: each master keeps rows of its own.
    """

    def __init__(self, *, master: Any, objectid: int, masterid: int) -> None:
        self._master = master
        self._objectid = objectid
        self._masterid = masterid
        # The row of each slot, as far as this master knows: writes go by id.
        self._ids: dict[Slot, int] = {}
        # Rows that an adoption brought for slots that already had one: the
        # outbox rewrites the slot's row, and these go with the next write.
        self._superseded: list[int] = []
        self._created = False
        # One operation at a time: a write and an adoption must not both
        # decide which row a slot has.
        self._lock = defer.DeferredLock()

    def __repr__(self) -> str:
        return f"<DatabaseStore objectid={self._objectid} masterid={self._masterid}>"

    @property
    def _pool(self) -> Any:
        return self._master.db.pool

    async def _ensure_table(self) -> None:
        if not self._created:
            await self._pool.do(create_table, outbox_table)
            self._created = True

    # -- loading ------------------------------------------------------------------

    async def load(self) -> Loaded:
        """This master's rows, with what 0.1.0 left in the state table read into rows first."""
        return await self._locked(self._load)

    async def write(self, changes: Sequence[Change]) -> None:
        """Apply ``changes`` in one transaction: an insert, update or delete per slot."""
        await self._locked(self._write, changes)

    async def adopt(self) -> list[Adoption]:
        """Claim the rows of this reporter that inactive masters hold, and return them.

        Each dead master's rows are claimed in one statement that rechecks that
        the master is inactive: a master that races for them, or the dead one
        coming back, never gets the same rows.
        """
        return await self._locked(self._adopt)

    async def _locked(self, work: Callable[..., Awaitable[T]], *args: Any) -> T:
        await self._lock.acquire()
        try:
            await self._ensure_table()
            return await work(*args)
        finally:
            self._lock.release()

    async def _load(self) -> Loaded:
        await self._import_state_entry()
        rows, active = await self._pool.do(self._thd_load)
        self._ids.clear()
        saved, unreadable = self._take_rows(rows)
        if self._superseded:  # duplicates of an import cut short, and unreadable rows
            superseded, self._superseded = self._superseded, []
            await self._pool.do(self._thd_write, [], {}, superseded)
        return Loaded(saved=saved, unreadable=unreadable, earlier_run_over=active == 0)

    async def _import_state_entry(self) -> None:
        state = self._master.db.state
        name = state_name(self._masterid)
        entries = await state.getState(self._objectid, name, None)
        if not isinstance(entries, list) or not entries:
            return
        rows = [{"kind": "pending", "data": json.dumps(entry)} for entry in entries]
        await self._pool.do(self._thd_insert_many, rows)
        # Only once the rows are in: a master that dies meanwhile imports
        # again, and loading keeps one row per slot.
        await state.setState(self._objectid, name, [])

    def _thd_insert_many(self, conn: Any, rows: list[dict[str, Any]]) -> None:
        with conn.begin():
            owner = {"objectid": self._objectid, "masterid": self._masterid}
            conn.execute(outbox_table.insert(), [{**owner, **row} for row in rows])

    def _thd_load(self, conn: Any) -> tuple[list[tuple[int, str, str]], int | None]:
        with conn.begin():
            return self._thd_read_own(conn)

    def _thd_read_own(self, conn: Any) -> tuple[list[tuple[int, str, str]], int | None]:
        table = outbox_table
        query = (
            sa.select(table.c.id, table.c.kind, table.c.data)
            .where(table.c.objectid == self._objectid, table.c.masterid == self._masterid)
            .order_by(table.c.id)
        )
        rows = [(row.id, row.kind, row.data) for row in conn.execute(query)]
        masters = self._master.db.model.masters
        active = conn.execute(
            sa.select(masters.c.active).where(masters.c.id == self._masterid)
        ).scalar()
        return rows, active

    def _take_rows(self, rows: Sequence[tuple[int, str, str]]) -> tuple[tuple[Saved, ...], int]:
        """Parse rows into this store's slots; the unreadable and superseded ones go.

        Of two rows of one slot read together, the newer update stays. A row
        of a slot that already has one (an adopted row, say) is read but
        goes: the outbox decides which update wins and writes it to the
        slot's row.
        """
        kept: dict[Slot, tuple[int, Saved]] = {}
        unreadable = 0
        for row_id, kind, data in rows:
            saved = parse_saved(kind, data)
            if saved is None:
                unreadable += 1
                self._superseded.append(row_id)
                continue
            slot = saved.update.slot
            if slot in self._ids:
                self._superseded.append(row_id)
                kept.setdefault(slot, (row_id, saved))
                continue
            known = kept.get(slot)
            if known is not None and known[1].update.sequence >= saved.update.sequence:
                self._superseded.append(row_id)
                continue
            if known is not None:
                self._superseded.append(known[0])
            kept[slot] = (row_id, saved)
        for slot, (row_id, _saved) in kept.items():
            self._ids.setdefault(slot, row_id)
        return tuple(saved for _row_id, saved in kept.values()), unreadable

    # -- writing ------------------------------------------------------------------

    async def _write(self, changes: Sequence[Change]) -> None:
        known = {change.slot: self._ids.get(change.slot) for change in changes}
        superseded, self._superseded = self._superseded, []
        try:
            created = await self._pool.do(self._thd_write, changes, known, superseded)
        except Exception:
            self._superseded = superseded + self._superseded
            raise
        for change in changes:
            if change.saved is None:
                self._ids.pop(change.slot, None)
        self._ids.update(created)

    def _thd_write(
        self,
        conn: Any,
        changes: Sequence[Change],
        known: dict[Slot, int | None],
        superseded: list[int],
    ) -> dict[Slot, int]:
        table = outbox_table
        mine = (table.c.objectid == self._objectid) & (table.c.masterid == self._masterid)
        doomed = list(superseded)
        updates: list[tuple[Slot, int, Saved]] = []
        inserts: list[tuple[Slot, Saved]] = []
        for change in changes:
            row_id = known[change.slot]
            if change.saved is None:
                if row_id is not None:
                    doomed.append(row_id)
            elif row_id is None:
                inserts.append((change.slot, change.saved))
            else:
                updates.append((change.slot, row_id, change.saved))
        created: dict[Slot, int] = {}
        with conn.begin():
            for chunk in _chunks(doomed):
                conn.execute(table.delete().where(mine, table.c.id.in_(chunk)))
            statement = (
                table.update()
                .where(mine, table.c.id == sa.bindparam("row_id"))
                .values(kind=sa.bindparam("new_kind"), data=sa.bindparam("new_data"))
            )
            for slot, row_id, saved in updates:
                result = conn.execute(statement, _values(saved, row_id=row_id))
                if result.rowcount == 0:
                    # Another master adopted the row (this one was taken for
                    # dead): keep the update in a row of this master's.
                    inserts.append((slot, saved))
            for slot, saved in inserts:
                result = conn.execute(
                    table.insert().values(
                        objectid=self._objectid,
                        masterid=self._masterid,
                        kind=saved.kind,
                        data=json.dumps(saved.update.to_json()),
                    )
                )
                created[slot] = int(result.inserted_primary_key[0])
        return created

    # -- adoption -----------------------------------------------------------------

    async def _adopt(self) -> list[Adoption]:
        claimed = await self._pool.do(self._thd_adopt)
        adoptions = []
        for masterid, name, rows in claimed:
            saved, unreadable = self._take_rows(rows)
            adoptions.append(
                Adoption(masterid=masterid, name=name, saved=saved, unreadable=unreadable)
            )
        return adoptions

    def _thd_adopt(self, conn: Any) -> list[tuple[int, str, list[tuple[int, str, str]]]]:
        table = outbox_table
        masters = self._master.db.model.masters
        with conn.begin():
            owners = conn.execute(
                sa.select(table.c.masterid, masters.c.name)
                .select_from(table.outerjoin(masters, masters.c.id == table.c.masterid))
                .where(
                    table.c.objectid == self._objectid,
                    table.c.masterid != self._masterid,
                    sa.or_(masters.c.id.is_(None), masters.c.active == 0),
                )
                .distinct()
            ).all()
        claimed = []
        for dead, name in owners:
            still_dead = ~sa.exists().where(masters.c.id == dead, masters.c.active != 0)
            theirs = (table.c.objectid == self._objectid) & (table.c.masterid == dead)
            with conn.begin():
                taken = conn.execute(
                    table.update()
                    .where(theirs, still_dead)
                    .values(masterid=self._masterid, adopted_from=dead)
                ).rowcount
                if not taken:
                    continue
                adopted = (
                    (table.c.objectid == self._objectid)
                    & (table.c.masterid == self._masterid)
                    & (table.c.adopted_from == dead)
                )
                rows = [
                    (row.id, row.kind, row.data)
                    for row in conn.execute(
                        sa.select(table.c.id, table.c.kind, table.c.data)
                        .where(adopted)
                        .order_by(table.c.id)
                    )
                ]
                conn.execute(table.update().where(adopted).values(adopted_from=None))
            claimed.append((int(dead), name or f"#{dead}", rows))
        return claimed


def _values(saved: Saved, *, row_id: int) -> dict[str, Any]:
    return {
        "row_id": row_id,
        "new_kind": saved.kind,
        "new_data": json.dumps(saved.update.to_json()),
    }
