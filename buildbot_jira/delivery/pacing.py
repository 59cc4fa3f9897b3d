"""When an outbox's next batch may go: the site's rate limits, read for the pending updates.

Pure: the ledger, the client's :class:`~buildbot_jira.jira.rate_limits.RateLimits`
and the clock's time in, a decision out. Each entity type goes to its own
bulk endpoint, so each is paced on its own; an update whose issues Jira asked
to spare waits without holding back the others.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import attrs

from buildbot_jira.delivery.ledger import Ledger, Update
from buildbot_jira.jira.model import EntityType
from buildbot_jira.jira.rate_limits import (
    RateLimits,
    bulk_endpoint,
    is_due,
    payload_issue_keys,
)

__all__ = ["NextBatch", "held_updates", "limits_hold_back", "next_batch"]


@attrs.frozen
class NextBatch:
    """The entity type whose batch may go first, and from when (a clock time)."""

    entity: EntityType
    time: float

    def delay(self, now: float) -> float:
        """Seconds from ``now`` until the batch may go (0: it may now)."""
        return 0.0 if is_due(self.time, now) else self.time - now


def next_batch(ledger: Ledger, limits: RateLimits, now: float) -> NextBatch | None:
    """Which entity type's batch may go first, and when; None when nothing is pending.

    Of entity types that may go at the same time, that of the oldest pending
    update goes first. While some issues wait, an entity type whose every
    pending update touches one of them goes when the first of those waits ends.
    """
    holding = limits.holds_issues(now)
    best: NextBatch | None = None
    for entity in ledger.pending_entities():
        time = limits.next_time(bulk_endpoint(entity))
        if holding:
            free = min(
                (_free_at(limits, update) for update in ledger.pending_of(entity)),
                default=math.inf,
            )
            time = max(time, free)
        if best is None or time < best.time:
            best = NextBatch(entity, time)
    return best


def held_updates(limits: RateLimits, now: float) -> Callable[[Update], bool] | None:
    """Which pending updates must stay behind at ``now``; None when none must."""
    if not limits.holds_issues(now):
        return None
    return lambda update: not is_due(_free_at(limits, update), now)


def limits_hold_back(limits: RateLimits, entity: str, now: float) -> bool:
    """Whether the limits hold back ``entity``'s endpoint, or some issues, beyond ``now``."""
    return limits.wait(bulk_endpoint(entity), now) > 0 or limits.holds_issues(now)


def _free_at(limits: RateLimits, update: Update) -> float:
    return limits.issues_free_at(payload_issue_keys(update.payload))
