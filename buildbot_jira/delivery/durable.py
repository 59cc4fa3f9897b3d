"""A ledger whose every change reaches the store: what an outbox drives.

:class:`DurableLedger` wraps the pure :class:`~buildbot_jira.delivery.ledger.Ledger`
and notes, for each change, the slot whose row must be written again; a
:class:`~buildbot_jira.delivery.store.ChangeWriter` writes those rows, and
nothing else, on :meth:`DurableLedger.flush`. It also reads rows back: this
master's at start (:meth:`DurableLedger.load`), and those of masters that
died (:meth:`DurableLedger.adopt`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from twisted.logger import Logger

from buildbot_jira.delivery.interrupted import MASTER_LOST, MASTER_RESTARTED, Interrupt
from buildbot_jira.delivery.ledger import Admission, Ledger, Slot, Update
from buildbot_jira.delivery.store import OPEN, PENDING, ChangeWriter, OutboxStore, Saved
from buildbot_jira.delivery.takeover import TakenIn, take_in

__all__ = ["DurableLedger"]

log = Logger()


class DurableLedger:
    """A :class:`Ledger` (``rules``) whose rows are kept in ``store``.

    :param store: where the rows are kept.
    :param cap: the ledger's cap.
    :param name: names the outbox in log lines.
    :param dropped: called with what the cap pushed out, to count and log it.
    """

    def __init__(
        self,
        *,
        store: OutboxStore,
        cap: int,
        name: str,
        dropped: Callable[[tuple[Update, ...]], None],
    ) -> None:
        self.rules = Ledger(cap=cap)
        self.name = name
        self._store = store
        self._dropped = dropped
        self._writer = ChangeWriter(store=store, current=self.row, name=name)

    def __len__(self) -> int:
        return len(self.rules)

    @property
    def open(self) -> Mapping[Slot, Update]:
        """Entities delivered ``in_progress`` whose final state has not been, oldest first."""
        return self.rules.open

    def row(self, slot: Slot) -> Saved | None:
        """What the store keeps for ``slot`` now: the update waiting, or the open one."""
        update = self.rules.undelivered(slot)
        if update is not None:
            return Saved(PENDING, update)
        opened = self.rules.open.get(slot)
        return None if opened is None else Saved(OPEN, opened)

    async def flush(self) -> bool:
        """Write the rows of every slot changed so far; whether they are saved.

        See :class:`ChangeWriter`.
        """
        return await self._writer.flush()

    # -- changes ------------------------------------------------------------------

    def put(self, update: Update) -> Admission:
        """:meth:`Ledger.put`, noting the rows it changes."""
        admission = self.rules.put(update)
        if admission.accepted:
            self._writer.changed(update.slot)
            self._drop(admission.dropped)
        return admission

    def take_batch(
        self, entity: str | None = None, *, held: Callable[[Update], bool] | None = None
    ) -> list[Update]:
        """:meth:`Ledger.take_batch`: rows do not change until Jira answers."""
        return self.rules.take_batch(entity, held=held)

    def settle(self) -> list[Update]:
        """:meth:`Ledger.settle`: the delivered rows go, or stay as open entities."""
        batch = self.rules.settle()
        for slot in [*(update.slot for update in batch), *self.rules.take_forgotten()]:
            self._writer.changed(slot)
        return batch

    def restore(self) -> None:
        """:meth:`Ledger.restore`: the rows still hold what waits; what the cap drops goes."""
        self._drop(self.rules.restore())

    def close(self, slot: Slot) -> bool:
        """Forget an open entity (it gets no final state); whether it was open."""
        if self.rules.close(slot) is None:
            return False
        self._writer.changed(slot)
        return True

    def _drop(self, dropped: tuple[Update, ...]) -> None:
        if dropped:
            for update in dropped:
                self._writer.changed(update.slot)
            self._dropped(dropped)

    # -- reading rows back ----------------------------------------------------------

    async def load(self, interrupt: Interrupt | None) -> int:
        """Read this master's rows back; how many updates wait.

        When the master is starting, the builds of its earlier run are
        over: those it left in progress get the final update ``interrupt``
        makes of them.
        """
        loaded = await self._store.load()
        self._log_unreadable(loaded.unreadable)
        reason = MASTER_RESTARTED if loaded.earlier_run_over else None
        return self._take_in(loaded.saved, reason, interrupt, adopted=False).queued

    async def adopt(self, interrupt: Interrupt | None) -> int:
        """Take over the rows of masters that Buildbot marks inactive; how many updates.

        Their pending updates wait here (the ledger's rules decide against
        what already waits), and the builds they left in progress get the
        final update ``interrupt`` makes of them. Each adoption is logged once.
        """
        total = 0
        for adoption in await self._store.adopt():
            self._log_unreadable(adoption.unreadable)
            taken = self._take_in(adoption.saved, MASTER_LOST, interrupt, adopted=True)
            total += taken.queued
            log.info(
                "{name}: adopted {count} updates of master {master}{detail}",
                name=self.name,
                count=taken.queued,
                master=adoption.name,
                detail=(
                    f" ({taken.interrupted} of builds it left unfinished)"
                    if taken.interrupted
                    else ""
                ),
            )
        return total

    def _take_in(
        self,
        rows: tuple[Saved, ...],
        reason: str | None,
        interrupt: Interrupt | None,
        *,
        adopted: bool,
    ) -> TakenIn:
        taken = take_in(self.rules, rows, reason=reason, interrupt=interrupt, adopted=adopted)
        for slot in taken.changed:
            self._writer.changed(slot)
        if taken.dropped:
            self._dropped(taken.dropped)
        return taken

    def _log_unreadable(self, count: int) -> None:
        for _ in range(count):
            log.warn("{name}: skipped an unreadable saved update", name=self.name)
