"""Rows read back from a store, put into a ledger: after a restart, or from a dead master (pure).

What a store held is put into the :class:`~buildbot_jira.delivery.ledger.Ledger`
under its rules: a pending update waits again (unless a newer or final one
of its slot is known), an open entity is open again. When the rows are of a
run that has ended (``reason``: the master that wrote them died, or is this
one starting again), the builds they speak of are over: an entity not yet
final gets the final update that ``interrupt`` makes of it, or is forgotten.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from buildbot_jira.delivery.interrupted import Interrupt
from buildbot_jira.delivery.ledger import Ledger, Slot, Update
from buildbot_jira.delivery.store import OPEN, Saved

__all__ = ["TakenIn", "take_in"]


@attrs.frozen
class TakenIn:
    """What :func:`take_in` did.

    ``queued``: updates that now wait to be sent (``interrupted`` of them
    final states of interrupted entities); ``dropped``: what the cap pushed
    out; ``changed``: the slots whose rows must be written again.
    """

    queued: int = 0
    interrupted: int = 0
    dropped: tuple[Update, ...] = ()
    changed: tuple[Slot, ...] = ()


def take_in(
    ledger: Ledger,
    rows: Sequence[Saved],
    *,
    reason: str | None,
    interrupt: Interrupt | None,
    adopted: bool,
) -> TakenIn:
    """Put ``rows`` into ``ledger``; see the module's docstring.

    ``adopted``: the rows come from another master, so each is written
    again under this one's rules (the store keeps one row per slot).
    """
    queued = interrupted = 0
    dropped: list[Update] = []
    changed: list[Slot] = []
    for row in rows:
        update, slot = row.update, row.update.slot
        rewrite = adopted
        if reason is not None and not update.final:
            ledger.close(slot)
            final = interrupt(update, reason) if interrupt is not None else None
            if final is None:
                changed.append(slot)
                continue
            update, rewrite = final, True
            interrupted += 1
        elif row.kind == OPEN:
            if not ledger.reopen(update) or rewrite:
                changed.append(slot)
            continue
        admission = ledger.put(update)
        queued += admission.accepted
        dropped += admission.dropped
        if rewrite or not admission.accepted:
            changed.append(slot)
    changed += [update.slot for update in dropped]
    return TakenIn(
        queued=queued - len(dropped),
        interrupted=interrupted,
        dropped=tuple(dropped),
        changed=tuple(changed),
    )
