"""Rows read back into a ledger: after a restart, and from a dead master (pure)."""

from __future__ import annotations

import unittest

from buildbot_jira.delivery.interrupted import MASTER_LOST, interrupted_update
from buildbot_jira.delivery.ledger import Ledger, Update
from buildbot_jira.delivery.store import OPEN, PENDING, Saved
from buildbot_jira.delivery.takeover import take_in
from tests.outboxes import update


def cancel(last: Update, reason: str) -> Update:
    return interrupted_update(last, state="cancelled", reason=reason, sequence=1, last_updated="t")


class TakeInTests(unittest.TestCase):
    def test_rows_of_a_run_that_goes_on_wait_and_stay_open_as_they_were(self) -> None:
        ledger = Ledger()
        rows = (
            Saved(PENDING, update(1, 100)),
            Saved(OPEN, update(2, 200, state="in_progress")),
            Saved(PENDING, update(3, 300, state="in_progress")),
        )
        taken = take_in(ledger, rows, reason=None, interrupt=cancel, adopted=False)
        self.assertEqual((taken.queued, taken.interrupted, taken.changed), (2, 0, ()))
        self.assertEqual([u.sequence for u in ledger.pending.values()], [100, 300])
        self.assertEqual(list(ledger.open), [update(2, 1).slot])

    def test_rows_of_a_run_that_ended_end_what_it_left_unfinished(self) -> None:
        ledger = Ledger()
        rows = (
            Saved(PENDING, update(1, 100)),
            Saved(OPEN, update(2, 200, state="in_progress")),
            Saved(PENDING, update(3, 300, state="in_progress")),
        )
        taken = take_in(ledger, rows, reason=MASTER_LOST, interrupt=cancel, adopted=True)
        self.assertEqual((taken.queued, taken.interrupted), (3, 2))
        self.assertEqual(
            [(u.payload["state"], u.sequence, u.final) for u in ledger.pending.values()],
            [("successful", 100, True), ("cancelled", 201, True), ("cancelled", 301, True)],
        )
        self.assertEqual(ledger.pending[update(2, 1).slot].payload["description"], MASTER_LOST)
        self.assertEqual(dict(ledger.open), {})
        # Adopted rows are written again under the adopter's rules.
        self.assertEqual(sorted(taken.changed), sorted(r.update.slot for r in rows))

    def test_the_ledger_decides_against_what_already_waits(self) -> None:
        ledger = Ledger()
        ledger.put(update(1, 500))
        taken = take_in(
            ledger,
            (Saved(PENDING, update(1, 100)),),
            reason=MASTER_LOST,
            interrupt=cancel,
            adopted=True,
        )
        self.assertEqual((taken.queued, taken.changed), (0, (update(1, 1).slot,)))
        self.assertEqual(ledger.pending[update(1, 1).slot].sequence, 500)

    def test_the_cap_applies_to_what_is_taken_in(self) -> None:
        ledger = Ledger(cap=2)
        rows = tuple(Saved(PENDING, update(n, 100 + n, state="in_progress")) for n in range(3))
        taken = take_in(ledger, rows, reason=None, interrupt=None, adopted=False)
        self.assertEqual((taken.queued, len(taken.dropped)), (2, 1))
        self.assertEqual(taken.changed, (update(0, 1).slot,))
