"""The rules of delivery: which update of each entity waits, goes, or is forgotten.

A :class:`Ledger` keeps, per slot (entity type and key), at most one pending
update, the update in flight, and a memory of what was sent. It holds no
reactor, does no I/O and never logs: the :class:`~buildbot_jira.delivery.outbox.Outbox`
drives it and says what happened. Its rules:

- a newer update replaces an unsent older one of the same slot (coalescing);
- an update is refused unless it is newer than the one pending, in flight
  and already sent for its slot, and a final state is never followed by a
  non-final one (Jira keeps the highest ``updateSequenceNumber``; sending a
  lower one after it would be wasted at best);
- one batch is in flight at a time: at most :data:`BATCH_SIZE` updates of one
  entity type, oldest first, leaving out those the caller holds back (the
  ones whose issues Jira asked to spare for a while); they keep their place;
- beyond the cap, the oldest ``in_progress`` updates are dropped first, final
  states only when nothing else is left;
- an entity whose last delivered update was ``in_progress`` stays *open* until
  a final state of it is delivered (or it is closed): if its master dies, the
  open entities are the builds that need a final state from someone else.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from buildbot_jira.jira.model import EntityType

__all__ = [
    "BATCH_SIZE",
    "REMEMBERED_KEYS",
    "Admission",
    "Ledger",
    "Slot",
    "Update",
    "entity_key",
]

#: The most entities the contract allows in one bulk request.
BATCH_SIZE = 100

#: How many delivered entities the ledger remembers, to refuse stale updates.
REMEMBERED_KEYS = 20_000

#: What an update is of: its entity type and its key among that type.
Slot = tuple[str, str]


@attrs.frozen
class Update:
    """One update of one entity (a build or a deployment) for Jira.

    ``key`` names the entity among all of its type; ``sequence`` is its
    ``updateSequenceNumber``; ``final`` says whether it is a final state;
    ``context`` names the Buildbot build it comes from, for log lines.
    """

    entity: EntityType
    key: str
    payload: Mapping[str, Any]
    sequence: int
    final: bool
    context: str = ""

    @property
    def slot(self) -> Slot:
        """The entity this update is of: one pending update per slot."""
        return (self.entity, self.key)

    def to_json(self) -> dict[str, Any]:
        """The update as JSON, for the database."""
        return {
            "entity": self.entity,
            "key": self.key,
            "payload": dict(self.payload),
            "sequence": self.sequence,
            "final": self.final,
            "context": self.context,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Update:
        """An update read back from the database."""
        return cls(
            entity=data["entity"],
            key=str(data["key"]),
            payload=data["payload"],
            sequence=int(data["sequence"]),
            final=bool(data["final"]),
            context=str(data.get("context", "")),
        )


@attrs.frozen
class Admission:
    """What :meth:`Ledger.put` did with an update.

    ``accepted`` says whether the update now waits to be sent; when it does
    not, ``newest`` is the sequence of the newer (or final) update it lost
    to. ``dropped`` holds the updates that the cap pushed out to make room.
    """

    accepted: bool
    newest: int | None = None
    dropped: tuple[Update, ...] = ()


class Ledger:
    """Pending, in-flight and sent updates per slot, under a cap.

    :param cap: the most updates kept (pending or in flight); see :meth:`put`.
        Assignable: a new cap applies from the next :meth:`put` or
        :meth:`restore`.
    :param remembered: how many sent slots to remember, newest first.
    """

    def __init__(self, *, cap: int = 10_000, remembered: int = REMEMBERED_KEYS) -> None:
        self.cap = cap
        self._remembered = remembered
        # Insertion order is age: a newer update of a waiting slot keeps the
        # slot's place, so coalescing never sends a busy build to the back.
        self._pending: dict[Slot, Update] = {}
        # How many updates of each entity type are pending.
        self._pending_counts: collections.Counter[str] = collections.Counter()
        self._in_flight: dict[Slot, Update] = {}
        # The highest sequence sent per slot, and whether it was final,
        # least recently sent first.
        self._sent: collections.OrderedDict[Slot, tuple[int, bool]] = collections.OrderedDict()
        # The in_progress update last delivered per open entity, oldest first,
        # and the open entities forgotten beyond the bound, until asked for.
        self._open: dict[Slot, Update] = {}
        self._forgotten: list[Slot] = []
        # Entities closed while an update of theirs still waited or was in
        # flight: delivering it must not open them again.
        self._closed: dict[Slot, None] = {}

    def __len__(self) -> int:
        # A slot can be both in flight and pending (a newer update came).
        in_flight_only = sum(1 for slot in self._in_flight if slot not in self._pending)
        return len(self._pending) + in_flight_only

    def __repr__(self) -> str:
        return f"<Ledger pending={len(self._pending)} in_flight={len(self._in_flight)}>"

    @property
    def pending(self) -> Mapping[Slot, Update]:
        """Updates waiting to be sent (not those in flight), oldest first."""
        return self._pending

    @property
    def in_flight(self) -> Mapping[Slot, Update]:
        """The batch taken by :meth:`take_batch` and not yet settled or restored."""
        return self._in_flight

    @property
    def open(self) -> Mapping[Slot, Update]:
        """Entities delivered ``in_progress`` whose final state has not been, oldest first."""
        return self._open

    def undelivered(self, slot: Slot) -> Update | None:
        """The newest update of ``slot`` that Jira has not answered for, if any."""
        return self._pending.get(slot) or self._in_flight.get(slot)

    def reopen(self, update: Update) -> bool:
        """Remember ``update`` as delivered and open (read back after a restart).

        Refused (False) when a newer or final update of its slot is known.
        """
        newest = self.newest(update.slot)
        if update.final or (newest is not None and newest[0] >= update.sequence):
            return False
        self._remember_sent(update)
        return True

    def close(self, slot: Slot) -> Update | None:
        """The entity needs no final state any more (its result is not reported).

        Returns its open update, if it was open. An update of it that waits
        or is in flight still goes, but does not open it again.
        """
        if slot in self._pending or slot in self._in_flight:
            self._closed[slot] = None
            while len(self._closed) > self._remembered:
                del self._closed[next(iter(self._closed))]
        return self._open.pop(slot, None)

    def newest(self, slot: Slot) -> tuple[int, bool] | None:
        """The sequence and finality of the newest update known for ``slot``, if any."""
        for source in (self._pending, self._in_flight):
            if slot in source:
                return (source[slot].sequence, source[slot].final)
        return self._sent.get(slot)

    def put(self, update: Update) -> Admission:
        """Keep ``update`` to send, unless a newer or final one of its slot is known.

        An accepted update replaces the slot's pending one. If the ledger then
        holds more than :attr:`cap` updates, the oldest ``in_progress`` ones
        are dropped, final states only when nothing else is left; the
        :class:`Admission` lists them.
        """
        newest = self.newest(update.slot)
        if newest is not None:
            sequence, final = newest
            if update.sequence <= sequence or (final and not update.final):
                return Admission(accepted=False, newest=sequence)
        self._set_pending(update)
        return Admission(accepted=True, dropped=self._enforce_cap())

    def pending_entities(self) -> list[EntityType]:
        """The entity types of the pending updates, that of the oldest one first."""
        found: list[EntityType] = []
        for update in self._pending.values():
            if update.entity not in found:
                found.append(update.entity)
                if len(found) == len(self._pending_counts):
                    break
        return found

    def pending_of(self, entity: str) -> list[Update]:
        """The pending updates of ``entity``, oldest first."""
        if not self._pending_counts[entity]:
            return []
        return [u for u in self._pending.values() if u.entity == entity]

    def take_batch(
        self, entity: str | None = None, *, held: Callable[[Update], bool] | None = None
    ) -> list[Update]:
        """Move the next batch from pending to in flight, and return it.

        The batch holds the oldest pending updates of ``entity`` (by default
        the oldest pending update's entity type), at most :data:`BATCH_SIZE`,
        without those for which ``held`` is true: they stay pending, in their
        place. It is empty when nothing is pending or a batch is already in
        flight: one at a time, so that two updates of one slot are never on
        their way at once.
        """
        if self._in_flight or not self._pending:
            return []
        if entity is None:
            entity = next(iter(self._pending.values())).entity
        batch: list[Update] = []
        for update in self.pending_of(entity):
            if held is None or not held(update):
                batch.append(update)
                if len(batch) == BATCH_SIZE:
                    break
        for update in batch:
            self._pop_pending(update.slot)
            self._in_flight[update.slot] = update
        return batch

    def settle(self) -> list[Update]:
        """Jira answered for the batch in flight: remember it as sent, and return it."""
        batch = list(self._in_flight.values())
        for update in batch:
            self._remember_sent(update)
        self._in_flight.clear()
        return batch

    def _remember_sent(self, update: Update) -> None:
        slot = update.slot
        self._sent[slot] = (update.sequence, update.final)
        self._sent.move_to_end(slot)
        while len(self._sent) > self._remembered:
            self._sent.popitem(last=False)
        self._open.pop(slot, None)
        closed = slot in self._closed
        if closed and slot not in self._pending:
            del self._closed[slot]  # nothing of it is left to deliver
        if not update.final and not closed:
            self._open[slot] = update
            # Bounded like the memory of sent slots: an entity whose final
            # state never comes must not hold memory (or a row) for ever.
            while len(self._open) > self._remembered:
                forgotten = next(iter(self._open))
                del self._open[forgotten]
                self._forgotten.append(forgotten)

    def take_forgotten(self) -> list[Slot]:
        """The open entities forgotten since the last call (beyond the bound)."""
        forgotten, self._forgotten = self._forgotten, []
        return forgotten

    def restore(self) -> tuple[Update, ...]:
        """The batch in flight was not delivered: it waits again, unless newer came.

        Restored updates wait behind those that came meanwhile. Returns what
        the cap dropped to make room.
        """
        for slot, update in self._in_flight.items():
            newer = self._pending.get(slot)
            if newer is None or newer.sequence < update.sequence:
                self._set_pending(update)
        self._in_flight.clear()
        return self._enforce_cap()

    def snapshot(self) -> list[Update]:
        """Every update not yet delivered (in flight, then pending), to save."""
        return [*self._in_flight.values(), *self._pending.values()]

    def _enforce_cap(self) -> tuple[Update, ...]:
        excess = len(self) - self.cap
        if excess <= 0:
            return ()
        # Oldest in_progress updates first; final states only when nothing else is left.
        victims = [s for s, u in self._pending.items() if not u.final][:excess]
        # In-progress updates in flight cannot be dropped now, but they leave
        # when their request ends (or come back and are dropped then): no
        # final state goes for their sake.
        leaving = sum(
            1 for s, u in self._in_flight.items() if not u.final and s not in self._pending
        )
        finals_needed = max(0, excess - len(victims) - leaving)
        victims += [s for s, u in self._pending.items() if u.final][:finals_needed]
        return tuple(self._pop_pending(slot) for slot in victims)

    def _set_pending(self, update: Update) -> None:
        if update.slot not in self._pending:
            self._pending_counts[update.entity] += 1
        self._pending[update.slot] = update

    def _pop_pending(self, slot: Slot) -> Update:
        update = self._pending.pop(slot)
        self._pending_counts[update.entity] -= 1
        if not self._pending_counts[update.entity]:
            del self._pending_counts[update.entity]
        return update


def entity_key(entity: str, jira_key: object) -> str:
    """The :attr:`Update.key` of an entity that Jira names in an answer.

    Jira names a rejected build ``{"pipelineId": ..., "buildNumber": ...}``
    and a deployment by its pipeline, environment and sequence number; the
    keys of :class:`~buildbot_jira.jira.model.BuildData` and
    :class:`~buildbot_jira.jira.model.DeploymentData` join them with ``#``.
    Jira rejects development information per repository
    (``{"repository": id}``): its key is the repository ID, which every key
    of the repository's commits, branches and pull requests begins with
    (``<id>/commits/<commit id>``); with ``kind`` and ``id`` too, the key is
    that entity's. Any other key (a feature flag ID) is its own text.
    """
    if isinstance(jira_key, Mapping) and entity == "devinfo":
        repository, kind, item = (jira_key.get(k) for k in ("repository", "kind", "id"))
        return f"{repository}/{kind}/{item}" if kind and item else str(repository)
    if isinstance(jira_key, Mapping):
        if entity == "builds":
            return f"{jira_key.get('pipelineId')}#{jira_key.get('buildNumber')}"
        if entity == "deployments":
            return (
                f"{jira_key.get('pipelineId')}#{jira_key.get('environmentId')}"
                f"#{jira_key.get('deploymentSequenceNumber')}"
            )
    return str(jira_key)
