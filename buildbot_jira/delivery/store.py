"""Where an outbox keeps its undelivered updates across master restarts.

A store keeps at most one row per slot (entity type and key): the update
waiting to be sent (``pending``), or the ``in_progress`` update last
delivered of an entity whose final state has not been (``open``). An outbox
never rewrites the whole store: a :class:`ChangeWriter` writes the rows of
the slots that changed, so that the work per update does not grow with the
number of updates waiting. :class:`~buildbot_jira.delivery.database.DatabaseStore`
keeps the rows in the master's database; :class:`MemoryStore` in memory, for
tests.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol

import attrs
from twisted.internet import defer
from twisted.logger import Logger

from buildbot_jira.delivery.ledger import Slot, Update

__all__ = [
    "OPEN",
    "PENDING",
    "Adoption",
    "Change",
    "ChangeWriter",
    "Loaded",
    "MemoryStore",
    "OutboxStore",
    "Saved",
    "parse_saved",
    "state_name",
]

log = Logger()

#: What a row holds: an update waiting to be sent, or one delivered of an open entity.
Kind = Literal["pending", "open"]
PENDING: Kind = "pending"
OPEN: Kind = "open"


@attrs.frozen
class Saved:
    """One row of a store: ``update``, waiting (``pending``) or delivered and ``open``."""

    kind: Kind
    update: Update


@attrs.frozen
class Change:
    """What a write does to the row of ``slot``: hold ``saved``, or go (None)."""

    slot: Slot
    saved: Saved | None


@attrs.frozen
class Loaded:
    """What a store held for this master when its outbox started.

    ``earlier_run_over``: the master is starting (Buildbot marks it inactive
    until it runs), so the rows are those of a run that has ended, and so
    have the builds they speak of. ``unreadable``: rows that were skipped.
    """

    saved: tuple[Saved, ...] = ()
    unreadable: int = 0
    earlier_run_over: bool = False


@attrs.frozen
class Adoption:
    """The rows this master took over from ``name`` (master ``masterid``), which is gone."""

    masterid: int
    name: str
    saved: tuple[Saved, ...] = ()
    unreadable: int = 0


class OutboxStore(Protocol):
    """Where an outbox keeps its rows across master restarts."""

    async def load(self) -> Loaded:
        """The rows this master left (in the order they were first written)."""

    async def write(self, changes: Sequence[Change]) -> None:
        """Apply ``changes``, all or none of them."""

    async def adopt(self) -> list[Adoption]:
        """Take over the rows of masters that Buildbot marks inactive; what each left."""


def parse_saved(kind: object, data: str | bytes) -> Saved | None:
    """A row read back (its kind and its JSON text), or None if it cannot be read."""
    if kind != PENDING and kind != OPEN:
        return None
    try:
        decoded = json.loads(data)
        update = Update.from_json(decoded)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    return Saved(kind=PENDING if kind == PENDING else OPEN, update=update)


def state_name(masterid: int) -> str:
    """The name of master ``masterid``'s entry in the state table (0.1.0's outbox)."""
    return f"pending@{masterid}"


class MemoryStore:
    """An :class:`OutboxStore` in memory, for tests.

    ``saved`` lists the pending updates as JSON (oldest first), ``open`` the
    open ones; assigning ``saved`` replaces every row (as an outbox saved by
    0.1.0 would be). ``writes`` counts the writes. Rows go through JSON, so
    that what is kept here would fit in a database too.
    """

    def __init__(self) -> None:
        self._rows: dict[int, tuple[str, str]] = {}
        self._ids: dict[Slot, int] = {}
        self._next_id = 1
        self.writes = 0

    def __repr__(self) -> str:
        return f"<MemoryStore rows={len(self._rows)}>"

    @property
    def saved(self) -> list[dict[str, Any]]:
        """The pending updates, as JSON, oldest first."""
        return [json.loads(data) for kind, data in self._rows.values() if kind == PENDING]

    @saved.setter
    def saved(self, updates: list[dict[str, Any]]) -> None:
        self._rows.clear()
        self._ids.clear()
        for data in updates:
            self._insert(PENDING, json.dumps(data))

    @property
    def open(self) -> list[dict[str, Any]]:
        """The updates of open entities, as JSON, oldest first."""
        return [json.loads(data) for kind, data in self._rows.values() if kind == OPEN]

    async def load(self) -> Loaded:
        """Every row (unreadable ones are dropped)."""
        saved, unreadable = [], 0
        self._ids.clear()
        for row_id, (kind, data) in list(self._rows.items()):
            row = parse_saved(kind, data)
            if row is None:
                unreadable += 1
                del self._rows[row_id]
                continue
            self._ids[row.update.slot] = row_id
            saved.append(row)
        return Loaded(saved=tuple(saved), unreadable=unreadable)

    async def write(self, changes: Sequence[Change]) -> None:
        """Apply ``changes``."""
        self.writes += 1
        for change in changes:
            row_id = self._ids.get(change.slot)
            if change.saved is None:
                if row_id is not None:
                    del self._ids[change.slot]
                    del self._rows[row_id]
                continue
            data = json.dumps(change.saved.update.to_json())
            if row_id is None:
                self._ids[change.slot] = self._insert(change.saved.kind, data)
            else:
                self._rows[row_id] = (change.saved.kind, data)

    async def adopt(self) -> list[Adoption]:
        """No other master shares a store in memory."""
        return []

    def _insert(self, kind: str, data: str) -> int:
        row_id, self._next_id = self._next_id, self._next_id + 1
        self._rows[row_id] = (kind, data)
        return row_id


class ChangeWriter:
    """Writes the rows of the slots that changed to ``store``, one write at a time.

    :meth:`changed` notes a slot; :meth:`flush` returns once a write that
    began after the call has ended, so that what the caller changed before
    it is in the store. Each write asks ``current`` what each noted slot
    holds now, so a slot changed many times between two writes costs one
    row. Callers that arrive during a write wait for it and share one more
    after it. A write that fails is logged (``name`` names the outbox) and
    counts as done: delivery goes on, and its slots are written again next
    time; :meth:`flush` then answers False.
    """

    def __init__(
        self, *, store: OutboxStore, current: Callable[[Slot], Saved | None], name: str
    ) -> None:
        self._store = store
        self._current = current
        self._name = name
        self._dirty: dict[Slot, None] = {}
        self._writing: defer.Deferred[None] | None = None
        self._wanted = 0
        self._done = 0
        self._failures = 0

    def __len__(self) -> int:
        """How many slots wait to be written."""
        return len(self._dirty)

    def changed(self, slot: Slot) -> None:
        """``slot`` changed: the next write saves what it holds then."""
        self._dirty[slot] = None

    async def flush(self) -> bool:
        """Write every change noted so far, now or after the write under way; never fails.

        Whether every write it waited for succeeded: False when one failed,
        and what it held waits for the next write.
        """
        failures = self._failures
        self._wanted += 1
        wanted = self._wanted
        while self._done < wanted:
            writing = self._writing
            if writing is None:
                writing = defer.Deferred.fromCoroutine(self._write())
                if not writing.called:  # a store may write at once
                    self._writing = writing
                    writing.addBoth(self._finished)
            # _write never fails and resolves to None, so any number of
            # callers may wait on the same Deferred.
            await writing
        return self._failures == failures

    def _finished(self, result: object) -> object:
        self._writing = None
        return result

    async def _write(self) -> None:
        generation = self._wanted
        slots, self._dirty = list(self._dirty), {}
        try:
            if slots:
                await self._store.write([Change(slot, self._current(slot)) for slot in slots])
        except Exception:  # noqa: BLE001 - a failed write must not stop delivery
            log.failure("{name}: could not save pending Jira updates", name=self._name)
            self._failures += 1
            for slot in slots:
                self._dirty.setdefault(slot, None)
        finally:
            self._done = max(self._done, generation)
