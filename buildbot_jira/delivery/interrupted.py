"""Final states for builds and deployments that their master's end interrupted (pure).

A build does not outlive the run of the master that runs it: when a master
dies (or restarts), each build it had sent ``in_progress`` and not finished
gets a final state from the master that takes over its outbox (or from the
master's next run), so that Jira never shows it in progress for ever.
"""

from __future__ import annotations

from collections.abc import Callable

from buildbot_jira.delivery.ledger import Update

__all__ = ["MASTER_LOST", "MASTER_RESTARTED", "Interrupt", "interrupted_update"]

#: The description of an entity whose master died, sent by the master that adopted it.
MASTER_LOST = "interrupted: master lost"
#: The description of an entity of a master's earlier run, sent by its next run.
MASTER_RESTARTED = "interrupted: master restarted"

#: What an outbox asks of its reporter for an interrupted entity (its last
#: update, and why): the final update to send, or None to send nothing.
Interrupt = Callable[[Update, str], Update | None]


def interrupted_update(
    update: Update, *, state: str, reason: str, sequence: int, last_updated: str
) -> Update:
    """``update`` (``in_progress``) as a final ``state``, saying ``reason``, newer than it.

    ``sequence`` is the new ``updateSequenceNumber``; it is raised above the
    update's own if the clock gives a lower one, so that Jira takes it.
    """
    sequence = max(sequence, update.sequence + 1)
    payload = {
        **update.payload,
        "state": state,
        "description": reason,
        "updateSequenceNumber": sequence,
        "lastUpdated": last_updated,
    }
    return Update(
        entity=update.entity,
        key=update.key,
        payload=payload,
        sequence=sequence,
        final=True,
        context=update.context,
    )
