"""Several masters: each reports its own builds; a dead master's outbox is adopted by one other."""

from __future__ import annotations

from typing import Any

from twisted.trial import unittest

from buildbot_jira.delivery.interrupted import MASTER_LOST, interrupted_update
from buildbot_jira.delivery.ledger import Update
from buildbot_jira.delivery.outbox import Outbox
from buildbot_jira.delivery.store import OPEN, Change, Saved
from buildbot_jira.delivery.testing import FakeJira
from buildbot_jira.events import JiraEventGenerator
from tests.outboxes import KEY, DatabaseTestCase, pending, update
from tests.support import captured_log, coroutine_test


class OtherMastersBuildsTests(unittest.TestCase):
    @coroutine_test
    async def test_a_build_of_another_master_is_not_reported(self) -> None:
        class Master:
            masterid = 1

            class data:
                @staticmethod
                async def get(path: Any) -> None:
                    raise AssertionError(f"read {path} for another master's build")

        build = {"buildid": 5, "builderid": 1, "masterid": 2, "number": 1, "buildrequestid": 1}
        generator = JiraEventGenerator()
        event = await generator.generate(Master(), None, ("builds", "5", "new"), build)
        self.assertIsNone(event)


def cancel(last: Update, reason: str) -> Update:
    """What a reporter makes of an interrupted build by default."""
    return interrupted_update(
        last, state="cancelled", reason=reason, sequence=5000, last_updated="2026-01-01T00:00:00Z"
    )


class ClaimTests(DatabaseTestCase):
    @coroutine_test
    async def test_an_inactive_masters_rows_go_to_the_first_claim_and_no_other(self) -> None:
        await self.make_master(active={1: 0, 2: 1, 3: 1})
        dead = self.store(1)
        await dead.load()
        await dead.write([pending(1, 100), pending(2, 200)])
        survivors = [self.store(2), self.store(3)]
        for survivor in survivors:
            await survivor.load()
        (adoption,) = await survivors[0].adopt()
        self.assertEqual((adoption.masterid, adoption.name), (1, "vm:/srv/1"))
        self.assertEqual([r.update for r in adoption.saved], [update(1, 100), update(2, 200)])
        self.assertEqual(await survivors[1].adopt(), [])
        self.assertEqual({m for _o, m, _k, _s in await self.rows()}, {2})

    @coroutine_test
    async def test_the_rows_of_active_masters_stay_where_they_are(self) -> None:
        await self.make_master(active={1: 1, 2: 1})
        busy = self.store(1)
        await busy.load()
        await busy.write([pending(1, 100)])
        self.assertEqual(await self.store(2).adopt(), [])
        self.assertEqual([m for _o, m, _k, _s in await self.rows()], [1])

    @coroutine_test
    async def test_a_master_that_never_left_a_record_counts_as_gone(self) -> None:
        await self.make_master(active={2: 1})
        orphan = self.store(9)
        await orphan.load()
        await orphan.write([pending(1, 100)])
        (adoption,) = await self.store(2).adopt()
        self.assertEqual((adoption.masterid, adoption.name, len(adoption.saved)), (9, "#9", 1))

    @coroutine_test
    async def test_an_adopted_row_of_a_slot_this_master_has_leaves_one_row(self) -> None:
        await self.make_master(active={1: 0, 2: 1})
        dead, survivor = self.store(1), self.store(2)
        for store in (dead, survivor):
            await store.load()
        await dead.write([pending(1, 100)])
        await survivor.write([pending(1, 200)])
        (adoption,) = await survivor.adopt()
        self.assertEqual(len(adoption.saved), 1)
        await survivor.write([pending(1, 201)])
        self.assertEqual([(m, seq) for _o, m, _k, seq in await self.rows()], [(2, 201)])


class AdoptionTests(DatabaseTestCase):
    async def dead_master_left(self) -> None:
        """Master 1 died having sent #1 in progress, with #2's final and #3's start waiting."""
        await self.make_master(active={1: 0, 2: 1, 3: 1})
        dead = self.store(1)
        await dead.load()
        await dead.write(
            [
                Change(update(1, 1).slot, Saved(OPEN, update(1, 100, state="in_progress"))),
                pending(2, 200),
                pending(3, 300, state="in_progress"),
            ]
        )

    def outbox(self, masterid: int) -> tuple[Outbox, FakeJira]:
        jira = FakeJira(clock=self.reactor)
        outbox = Outbox(
            client=jira, store=self.store(masterid), clock=self.reactor, interrupt=cancel
        )
        return outbox, jira

    @coroutine_test
    async def test_a_survivor_sends_what_a_dead_master_left_and_ends_its_builds(self) -> None:
        await self.dead_master_left()
        outbox, jira = self.outbox(2)
        await outbox.start()
        with captured_log() as lines:
            self.assertEqual(await outbox.adopt(), 3)
        self.reactor.advance(0)
        await outbox.stop()
        self.assertEqual(
            jira.states(),
            {
                KEY.format(1): ["cancelled"],
                KEY.format(2): ["successful"],
                KEY.format(3): ["cancelled"],
            },
        )
        cancelled = [p for s in jira.submissions for p in s.payloads if p["state"] == "cancelled"]
        self.assertEqual({p["description"] for p in cancelled}, {MASTER_LOST})
        self.assertTrue(all(p["updateSequenceNumber"] == 5000 for p in cancelled))
        adopted = [line for line in lines if "adopted" in line]
        self.assertEqual(
            adopted[0],
            "jira: adopted 3 updates of master vm:/srv/1 (2 of builds it left unfinished)",
        )
        self.assertEqual(len([line for line in adopted if line.startswith("jira: ")]), 1)
        self.assertEqual(await self.rows(), [])

    @coroutine_test
    async def test_two_survivors_never_both_send_a_dead_masters_updates(self) -> None:
        await self.dead_master_left()
        (first, first_jira), (second, second_jira) = self.outbox(2), self.outbox(3)
        await first.start()
        await second.start()
        counts = [await first.adopt(), await second.adopt()]
        self.reactor.advance(0)
        await first.stop()
        await second.stop()
        self.assertEqual(counts, [3, 0])
        self.assertEqual(len(first_jira.states()), 3)
        self.assertEqual(second_jira.submissions, [])

    @coroutine_test
    async def test_a_master_restarted_under_a_new_name_adopts_its_predecessor(self) -> None:
        # vm:/srv/1 expired; the same base directory starts on another host: master 3.
        await self.dead_master_left()
        outbox, jira = self.outbox(3)
        await outbox.start()
        await outbox.adopt()
        self.reactor.advance(0)
        await outbox.stop()
        self.assertEqual(sorted(jira.states()), [KEY.format(n) for n in (1, 2, 3)])

    @coroutine_test
    async def test_without_a_final_state_for_retry_interrupted_builds_are_forgotten(self) -> None:
        await self.dead_master_left()
        outbox, jira = self.outbox(2)
        outbox.interrupt = lambda last, reason: None
        await outbox.start()
        self.assertEqual(await outbox.adopt(), 1)
        self.reactor.advance(0)
        await outbox.stop()
        self.assertEqual(jira.states(), {KEY.format(2): ["successful"]})
        self.assertEqual(await self.rows(), [])
