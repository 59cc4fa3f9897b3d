"""The ledger: coalescing, ordering, the cap, batches, settling and restoring."""

from __future__ import annotations

import unittest
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from buildbot_jira.delivery.ledger import BATCH_SIZE, Ledger, Update, entity_key
from buildbot_jira.jira.client import MAX_ENTITIES_PER_REQUEST


def update(
    number: int,
    sequence: int,
    *,
    final: bool = True,
    entity: Any = "builds",
    context: str | None = None,
) -> Update:
    return Update(
        entity=entity,
        key=f"ci.example.com/app#{number}",
        payload={"buildNumber": number, "updateSequenceNumber": sequence},
        sequence=sequence,
        final=final,
        context=f"app #{number}" if context is None else context,
    )


def numbers(updates: Any) -> list[int]:
    return [u.payload["buildNumber"] for u in updates]


class UpdateTests(unittest.TestCase):
    def test_an_update_survives_json(self) -> None:
        original = update(1, 100, final=False)
        self.assertEqual(Update.from_json(original.to_json()), original)
        self.assertEqual(original.slot, ("builds", "ci.example.com/app#1"))

    def test_an_update_saved_without_context_reads_back_with_an_empty_one(self) -> None:
        data = update(1, 100).to_json()
        del data["context"]
        self.assertEqual(Update.from_json(data).context, "")


class CoalescingTests(unittest.TestCase):
    def test_a_newer_update_replaces_an_unsent_one_and_keeps_its_place(self) -> None:
        ledger = Ledger()
        ledger.put(update(1, 100, final=False))
        ledger.put(update(2, 200))
        admission = ledger.put(update(1, 101))
        self.assertTrue(admission.accepted)
        self.assertEqual(len(ledger), 2)
        self.assertEqual([u.sequence for u in ledger.pending.values()], [101, 200])

    def test_an_update_not_newer_than_the_pending_one_is_refused(self) -> None:
        ledger = Ledger()
        ledger.put(update(1, 100))
        for sequence in (99, 100):
            admission = ledger.put(update(1, sequence))
            self.assertFalse(admission.accepted)
            self.assertEqual(admission.newest, 100)
        self.assertEqual([u.sequence for u in ledger.pending.values()], [100])

    def test_an_update_older_than_the_one_in_flight_is_refused(self) -> None:
        ledger = Ledger()
        ledger.put(update(1, 200, final=False))
        ledger.take_batch()
        self.assertFalse(ledger.put(update(1, 150)).accepted)
        self.assertEqual(dict(ledger.pending), {})

    def test_an_update_older_than_one_sent_is_refused(self) -> None:
        ledger = Ledger()
        ledger.put(update(1, 200, final=False))
        ledger.take_batch()
        ledger.settle()
        admission = ledger.put(update(1, 199))
        self.assertFalse(admission.accepted)
        self.assertEqual(admission.newest, 200)
        self.assertEqual(len(ledger), 0)

    def test_a_final_state_is_never_followed_by_a_non_final_one(self) -> None:
        ledger = Ledger()
        ledger.put(update(1, 100))
        self.assertFalse(ledger.put(update(1, 101, final=False)).accepted)
        ledger.take_batch()
        ledger.settle()
        self.assertFalse(ledger.put(update(1, 102, final=False)).accepted)
        # A newer final state (a rebuild's result) still goes.
        self.assertTrue(ledger.put(update(1, 103)).accepted)

    def test_slots_of_different_entity_types_are_independent(self) -> None:
        ledger = Ledger()
        ledger.put(update(1, 100))
        self.assertTrue(ledger.put(update(1, 50, entity="deployments")).accepted)
        self.assertEqual(len(ledger), 2)

    def test_the_memory_of_sent_slots_forgets_the_least_recently_sent(self) -> None:
        ledger = Ledger(remembered=2)
        for number in (1, 2, 3):
            ledger.put(update(number, 100))
            ledger.take_batch()
            ledger.settle()
        self.assertTrue(ledger.put(update(1, 50)).accepted)  # forgotten
        self.assertFalse(ledger.put(update(2, 50)).accepted)
        self.assertFalse(ledger.put(update(3, 50)).accepted)


class BatchTests(unittest.TestCase):
    def test_a_batch_holds_one_entity_type_oldest_first(self) -> None:
        ledger = Ledger()
        ledger.put(update(1, 100, entity="deployments"))
        ledger.put(update(2, 100))
        ledger.put(update(3, 100, entity="deployments"))
        batch = ledger.take_batch()
        self.assertEqual([u.entity for u in batch], ["deployments", "deployments"])
        self.assertEqual(numbers(batch), [1, 3])
        self.assertEqual(list(ledger.in_flight.values()), batch)
        self.assertEqual(numbers(ledger.pending.values()), [2])

    def test_a_batch_holds_at_most_the_contracts_limit(self) -> None:
        self.assertEqual(BATCH_SIZE, MAX_ENTITIES_PER_REQUEST)
        ledger = Ledger()
        for number in range(250):
            ledger.put(update(number, 100))
        sizes = []
        while batch := ledger.take_batch():
            sizes.append(len(batch))
            ledger.settle()
        self.assertEqual(sizes, [100, 100, 50])
        self.assertEqual(len(ledger), 0)

    def test_one_batch_is_in_flight_at_a_time(self) -> None:
        ledger = Ledger()
        ledger.put(update(1, 100, final=False))
        self.assertEqual(numbers(ledger.take_batch()), [1])
        ledger.put(update(1, 101))
        ledger.put(update(2, 100))
        self.assertEqual(ledger.take_batch(), [])
        self.assertEqual(len(ledger), 2)  # slot 1 is in flight and pending: counted once
        self.assertEqual(numbers(ledger.settle()), [1])
        self.assertEqual(numbers(ledger.take_batch()), [1, 2])

    def test_nothing_to_take_from_an_empty_ledger(self) -> None:
        self.assertEqual(Ledger().take_batch(), [])
        self.assertEqual(Ledger().settle(), [])
        self.assertEqual(Ledger().restore(), ())


class RestoreTests(unittest.TestCase):
    def test_a_failed_batch_waits_again_behind_what_came_meanwhile(self) -> None:
        ledger = Ledger()
        ledger.put(update(1, 100))
        ledger.put(update(2, 100))
        ledger.take_batch()
        ledger.put(update(3, 100))
        self.assertEqual(ledger.restore(), ())
        self.assertEqual(dict(ledger.in_flight), {})
        self.assertEqual(numbers(ledger.pending.values()), [3, 1, 2])

    def test_a_newer_update_that_came_meanwhile_wins_over_the_failed_one(self) -> None:
        ledger = Ledger()
        ledger.put(update(1, 100, final=False))
        ledger.take_batch()
        ledger.put(update(1, 101))
        ledger.restore()
        self.assertEqual([u.sequence for u in ledger.pending.values()], [101])
        self.assertEqual(len(ledger), 1)

    def test_the_snapshot_holds_what_is_in_flight_then_what_is_pending(self) -> None:
        ledger = Ledger()
        ledger.put(update(1, 100, final=False))
        ledger.take_batch()
        ledger.put(update(2, 100))
        ledger.put(update(1, 101))
        snapshot = ledger.snapshot()
        self.assertEqual(
            [(u.key[-1], u.sequence) for u in snapshot],
            [
                ("1", 100),
                ("2", 100),
                ("1", 101),
            ],
        )


class CapTests(unittest.TestCase):
    def test_the_cap_drops_the_oldest_in_progress_updates_first(self) -> None:
        ledger = Ledger(cap=5)
        dropped: list[Update] = []
        for number in range(1, 4):
            dropped += ledger.put(update(number, 100 + number)).dropped
        for number in range(4, 10):
            dropped += ledger.put(update(number, 100 + number, final=False)).dropped
        self.assertEqual(len(ledger), 5)
        self.assertEqual(sorted(numbers(ledger.pending.values())), [1, 2, 3, 8, 9])
        self.assertEqual(numbers(dropped), [4, 5, 6, 7])

    def test_final_states_are_dropped_only_when_nothing_else_is_left(self) -> None:
        ledger = Ledger(cap=2)
        ledger.put(update(1, 100, final=False))
        ledger.put(update(2, 100))
        self.assertEqual(numbers(ledger.put(update(3, 100)).dropped), [1])
        self.assertEqual(numbers(ledger.put(update(4, 100)).dropped), [2])
        self.assertEqual(numbers(ledger.pending.values()), [3, 4])

    def test_no_final_state_goes_for_an_in_progress_update_in_flight(self) -> None:
        ledger = Ledger(cap=2)
        ledger.put(update(1, 100, final=False))
        ledger.take_batch()
        ledger.put(update(2, 100))
        self.assertEqual(ledger.put(update(3, 100)).dropped, ())
        self.assertEqual(len(ledger), 3)
        # Back from a failed request, the in-progress update is the one to go.
        self.assertEqual(numbers(ledger.restore()), [1])
        self.assertEqual(numbers(ledger.pending.values()), [2, 3])

    def test_a_final_state_in_flight_makes_room_only_by_dropping_a_pending_one(self) -> None:
        ledger = Ledger(cap=2)
        ledger.put(update(1, 100))
        ledger.take_batch()
        ledger.put(update(2, 100))
        self.assertEqual(numbers(ledger.put(update(3, 100)).dropped), [2])
        self.assertEqual(len(ledger), 2)

    def test_a_new_cap_applies_from_the_next_update(self) -> None:
        ledger = Ledger(cap=10)
        for number in range(5):
            ledger.put(update(number, 100, final=False))
        ledger.cap = 2
        self.assertEqual(len(ledger), 5)
        self.assertEqual(numbers(ledger.put(update(9, 100)).dropped), [0, 1, 2, 3])
        self.assertEqual(numbers(ledger.pending.values()), [4, 9])


class EntityKeyTests(unittest.TestCase):
    def test_jira_names_are_turned_into_update_keys(self) -> None:
        build = {"pipelineId": "ci.example.com/app", "buildNumber": 7}
        deployment = {
            "pipelineId": "ci.example.com/app",
            "environmentId": "prod",
            "deploymentSequenceNumber": 3,
        }
        self.assertEqual(entity_key("builds", build), "ci.example.com/app#7")
        self.assertEqual(entity_key("deployments", deployment), "ci.example.com/app#prod#3")
        self.assertEqual(entity_key("featureflags", "flag-1"), "flag-1")


# -- properties ---------------------------------------------------------------

#: An operation on a ledger: put (slot, sequence, final), take, settle or restore.
operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("put"),
            st.integers(0, 3),
            st.integers(0, 40),
            st.booleans(),
        ),
        st.tuples(st.sampled_from(["take", "settle", "restore"])),
    ),
    max_size=80,
)


def run(ledger: Ledger, ops: list[tuple[Any, ...]]) -> tuple[list[Update], list[Update]]:
    """Apply ``ops``; every update accepted, and every update sent (settled), in order."""
    accepted: list[Update] = []
    sent: list[Update] = []
    for op in ops:
        if op[0] == "put":
            _, slot, sequence, final = op
            item = update(slot, sequence, final=final)
            admission = ledger.put(item)
            if admission.accepted:
                accepted.append(item)
            if any(u.final for u in admission.dropped):
                # A final state goes only when no in-progress update is left to drop.
                assert not any(not u.final for u in ledger.pending.values())
        elif op[0] == "take":
            ledger.take_batch()
        elif op[0] == "settle":
            sent += ledger.settle()
        else:
            ledger.restore()
        leaving = sum(1 for slot in ledger.in_flight if slot not in ledger.pending)
        assert len(ledger) <= ledger.cap + leaving
    return accepted, sent


def drain(ledger: Ledger) -> list[Update]:
    ledger.restore()
    sent: list[Update] = []
    while ledger.take_batch():
        sent += ledger.settle()
    return sent


class PropertyTests(unittest.TestCase):
    @settings(deadline=None)
    @given(operations, st.integers(1, 6))
    def test_an_older_update_is_never_sent_after_a_newer_one(
        self, ops: list[tuple[Any, ...]], cap: int
    ) -> None:
        ledger = Ledger(cap=cap)
        _, sent = run(ledger, ops)
        sent += drain(ledger)
        last: dict[tuple[str, str], Update] = {}
        for item in sent:
            before = last.get(item.slot)
            if before is not None:
                self.assertGreater(item.sequence, before.sequence)
                self.assertFalse(before.final and not item.final)
            last[item.slot] = item

    @settings(deadline=None)
    @given(operations)
    def test_under_the_cap_the_newest_update_of_every_slot_is_sent(
        self, ops: list[tuple[Any, ...]]
    ) -> None:
        ledger = Ledger(cap=10)  # more than the four slots in use
        accepted, sent = run(ledger, ops)
        sent += drain(ledger)
        newest: dict[tuple[str, str], Update] = {}
        for item in accepted:
            newest[item.slot] = item  # accepted updates of a slot only ever grow
        last = {item.slot: item for item in sent}
        self.assertEqual(last, newest)
        self.assertEqual(len(ledger), 0)


class ChosenBatchTests(unittest.TestCase):
    def test_pending_entity_types_come_oldest_first(self) -> None:
        ledger = Ledger()
        self.assertEqual(ledger.pending_entities(), [])
        ledger.put(update(1, 100, entity="deployments"))
        ledger.put(update(2, 100))
        ledger.put(update(3, 100, entity="deployments"))
        self.assertEqual(ledger.pending_entities(), ["deployments", "builds"])
        self.assertEqual(numbers(ledger.pending_of("deployments")), [1, 3])
        self.assertEqual(numbers(ledger.take_batch("builds")), [2])
        ledger.settle()
        self.assertEqual(ledger.pending_entities(), ["deployments"])
        self.assertEqual(ledger.pending_of("builds"), [])

    def test_held_updates_stay_behind_in_their_place(self) -> None:
        ledger = Ledger()
        for number in range(1, 6):
            ledger.put(update(number, 100))
        batch = ledger.take_batch(held=lambda u: u.payload["buildNumber"] in (2, 4))
        self.assertEqual(numbers(batch), [1, 3, 5])
        ledger.settle()
        ledger.put(update(6, 100))
        self.assertEqual(numbers(ledger.take_batch()), [2, 4, 6])

    def test_a_batch_leaves_out_held_updates_yet_stays_full(self) -> None:
        ledger = Ledger()
        for number in range(BATCH_SIZE + 10):
            ledger.put(update(number, 100))
        batch = ledger.take_batch(held=lambda u: u.payload["buildNumber"] < 10)
        self.assertEqual(numbers(batch), list(range(10, BATCH_SIZE + 10)))
        self.assertEqual(numbers(ledger.pending.values()), list(range(10)))


def deliver(ledger: Ledger, *updates: Update) -> None:
    for made in updates:
        ledger.put(made)
    ledger.take_batch()
    ledger.settle()


class OpenEntityTests(unittest.TestCase):
    def test_an_entity_delivered_in_progress_is_open_until_its_final_state_is(self) -> None:
        ledger = Ledger()
        deliver(ledger, update(1, 100, final=False), update(2, 100, final=False))
        self.assertEqual(numbers(ledger.open.values()), [1, 2])
        deliver(ledger, update(1, 101))
        self.assertEqual(numbers(ledger.open.values()), [2])
        self.assertEqual(numbers([ledger.close(update(2, 1).slot)]), [2])
        self.assertIsNone(ledger.close(update(2, 1).slot))
        self.assertEqual(dict(ledger.open), {})

    def test_what_waits_is_what_was_not_delivered(self) -> None:
        ledger = Ledger()
        ledger.put(update(1, 100, final=False))
        ledger.take_batch()
        ledger.put(update(1, 101))
        self.assertEqual(ledger.undelivered(update(1, 1).slot), update(1, 101))
        ledger.take_batch()  # one batch at a time: #1's newer update waits
        ledger.settle()
        self.assertEqual(ledger.undelivered(update(1, 1).slot), update(1, 101))
        self.assertEqual(numbers(ledger.open.values()), [1])
        self.assertIsNone(ledger.undelivered(update(2, 1).slot))

    def test_an_open_entity_read_back_refuses_older_updates(self) -> None:
        ledger = Ledger()
        self.assertTrue(ledger.reopen(update(1, 100, final=False)))
        self.assertFalse(ledger.reopen(update(2, 100)))  # a final state is never open
        self.assertFalse(ledger.put(update(1, 99, final=False)).accepted)
        self.assertTrue(ledger.put(update(1, 101)).accepted)
        self.assertFalse(ledger.reopen(update(1, 100, final=False)))

    def test_open_entities_are_bounded_and_the_forgotten_ones_are_told(self) -> None:
        ledger = Ledger(remembered=2)
        deliver(ledger, *(update(n, 100, final=False) for n in range(4)))
        self.assertEqual(numbers(ledger.open.values()), [2, 3])
        self.assertEqual(ledger.take_forgotten(), [update(0, 1).slot, update(1, 1).slot])
        self.assertEqual(ledger.take_forgotten(), [])

    def test_an_entity_closed_while_its_update_is_in_flight_is_not_opened_by_it(self) -> None:
        ledger = Ledger()
        ledger.put(update(1, 100, final=False))
        ledger.take_batch()
        self.assertIsNone(ledger.close(update(1, 1).slot))
        ledger.settle()
        self.assertEqual(dict(ledger.open), {})
        deliver(ledger, update(2, 100, final=False))  # others still open
        self.assertEqual(numbers(ledger.open.values()), [2])
