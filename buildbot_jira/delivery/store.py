"""Where an outbox keeps its undelivered updates across master restarts.

An :class:`OutboxStore` saves and loads a list of JSON dicts (each one
:meth:`~buildbot_jira.delivery.ledger.Update.to_json`): :class:`StateStore`
in the master's database, :class:`MemoryStore` in memory for dry runs and
tests. A :class:`SnapshotSaver` writes to one store one save at a time.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

from twisted.internet import defer
from twisted.logger import Logger

__all__ = ["MemoryStore", "OutboxStore", "SnapshotSaver", "StateStore", "state_name"]

log = Logger()


class OutboxStore(Protocol):
    """Where an outbox keeps its pending updates across master restarts."""

    async def load(self) -> list[dict[str, Any]]:
        """The updates saved last time (as JSON dicts)."""

    async def save(self, updates: list[dict[str, Any]]) -> None:
        """Replace what is saved with ``updates``."""


class MemoryStore:
    """An :class:`OutboxStore` in memory, for dry runs and tests.

    ``saved`` is what was saved last, ``saves`` how many saves there were.
    Both go through JSON, so that what an outbox saves here would fit in a
    database too.
    """

    def __init__(self) -> None:
        self.saved: list[dict[str, Any]] = []
        self.saves = 0

    async def load(self) -> list[dict[str, Any]]:
        """What was saved last."""
        return list(json.loads(json.dumps(self.saved)))

    async def save(self, updates: list[dict[str, Any]]) -> None:
        """Keep a copy of ``updates``."""
        self.saves += 1
        self.saved = json.loads(json.dumps(updates))


class StateStore:
    """An :class:`OutboxStore` in the master's database (``master.db.state``).

    Each master keeps its own entry, ``pending@<masterid>``, holding a JSON
    list of updates, so masters that share one database never send or delete
    each other's updates. The name and the format are those of 0.1.0: an
    upgraded master sends what the old one left.
    """

    def __init__(self, *, master: Any, objectid: int, masterid: int) -> None:
        self._master = master
        self._objectid = objectid
        self._name = state_name(masterid)

    def __repr__(self) -> str:
        return f"<StateStore objectid={self._objectid} name={self._name!r}>"

    async def load(self) -> list[dict[str, Any]]:
        """The updates this master saved last (nothing if the entry is not a list)."""
        saved = await self._master.db.state.getState(self._objectid, self._name, [])
        return list(saved) if isinstance(saved, list) else []

    async def save(self, updates: list[dict[str, Any]]) -> None:
        """Replace this master's saved updates."""
        await self._master.db.state.setState(self._objectid, self._name, updates)


def state_name(masterid: int) -> str:
    """The name of master ``masterid``'s entry in the state table."""
    return f"pending@{masterid}"


class SnapshotSaver:
    """Saves ``snapshot()`` to ``store``, one save at a time.

    :meth:`save` returns once a save that began after the call has ended, so
    that what the caller changed before it is in the store. Callers that
    arrive during a save wait for it and share one more save after it: a
    burst of changes costs two writes, not one per change. A save that fails
    is logged (``name`` names the outbox) and counts as done: delivery goes
    on, and the next save writes everything again.
    """

    def __init__(
        self, *, store: OutboxStore, snapshot: Callable[[], list[dict[str, Any]]], name: str
    ) -> None:
        self._store = store
        self._snapshot = snapshot
        self._name = name
        self._saving: defer.Deferred[None] | None = None
        self._wanted = 0
        self._done = 0

    async def save(self) -> None:
        """Save the snapshot as it is now, or later; never fails."""
        self._wanted += 1
        wanted = self._wanted
        while self._done < wanted:
            saving = self._saving
            if saving is None:
                saving = defer.Deferred.fromCoroutine(self._write())
                if not saving.called:  # a store may save at once
                    self._saving = saving
                    saving.addBoth(self._finished)
            # _write never fails and resolves to None, so any number of
            # callers may wait on the same Deferred.
            await saving

    def _finished(self, result: object) -> object:
        self._saving = None
        return result

    async def _write(self) -> None:
        generation = self._wanted
        snapshot = self._snapshot()
        try:
            await self._store.save(snapshot)
        except Exception:  # noqa: BLE001 - a failed save must not stop delivery
            log.failure("{name}: could not save pending Jira updates", name=self._name)
        finally:
            self._done = max(self._done, generation)
