"""MasterWatch: adoption at start and whenever another master stops, one run at a time."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.trial import unittest

from buildbot_jira.adoption import MasterWatch
from tests.support import captured_log


class FakeMq:
    """Buildbot's mq as a MasterWatch uses it: one consumer, messages on demand."""

    def __init__(self) -> None:
        self.callback: Any = None
        self.filter: Any = None
        self.stopped = False

    async def startConsuming(self, callback: Any, filter: Any) -> Any:  # Buildbot names it
        self.callback, self.filter = callback, filter
        return self

    def stopConsuming(self) -> None:
        self.stopped = True

    def stopped_master(self, masterid: int) -> None:
        self.callback(("masters", str(masterid), "stopped"), {"masterid": masterid})


class FakeMaster:
    masterid = 1

    def __init__(self) -> None:
        self.mq = FakeMq()


class SlowOutbox:
    """An outbox whose adoptions end when the test says so."""

    def __init__(self) -> None:
        self.waiting: list[defer.Deferred[int]] = []
        self.fail = False

    async def adopt(self) -> int:
        if self.fail:
            raise RuntimeError("database gone")
        done: defer.Deferred[int] = defer.Deferred()
        self.waiting.append(done)
        return await done


class MasterWatchTests(unittest.TestCase):
    def setUp(self) -> None:
        self.master = FakeMaster()
        self.outbox = SlowOutbox()
        self.watch = MasterWatch(master=self.master, outbox=self.outbox, name="jira")
        self.successResultOf(defer.Deferred.fromCoroutine(self.watch.start()))

    def test_it_adopts_at_start_and_listens_to_masters_that_stop(self) -> None:
        self.assertEqual(self.master.mq.filter, ("masters", None, "stopped"))
        self.assertEqual(len(self.outbox.waiting), 1)
        self.outbox.waiting.pop().callback(0)
        self.assertTrue(self.watch.idle)
        self.master.mq.stopped_master(2)
        self.assertEqual(len(self.outbox.waiting), 1)

    def test_its_own_master_stopping_is_not_a_reason(self) -> None:
        self.outbox.waiting.pop().callback(0)
        self.master.mq.stopped_master(1)
        self.assertEqual((self.outbox.waiting, self.watch.idle), ([], True))

    def test_masters_that_stop_during_an_adoption_cost_one_more_run(self) -> None:
        self.master.mq.stopped_master(2)
        self.master.mq.stopped_master(3)
        self.assertEqual(len(self.outbox.waiting), 1)  # one run at a time
        self.outbox.waiting.pop().callback(0)
        self.assertEqual(len(self.outbox.waiting), 1)  # one more, for both
        self.outbox.waiting.pop().callback(0)
        self.assertEqual((self.outbox.waiting, self.watch.idle), ([], True))

    def test_a_failed_adoption_is_logged_and_the_next_stop_tries_again(self) -> None:
        self.outbox.waiting.pop().callback(0)
        self.outbox.fail = True
        with captured_log() as lines:
            self.master.mq.stopped_master(2)
        self.assertTrue(any("jira: could not adopt" in line for line in lines))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.outbox.fail = False
        self.master.mq.stopped_master(2)
        self.assertEqual(len(self.outbox.waiting), 1)

    def test_stop_unsubscribes_and_waits_for_the_adoption_under_way(self) -> None:
        stopping = defer.Deferred.fromCoroutine(self.watch.stop())
        self.assertTrue(self.master.mq.stopped)
        self.assertNoResult(stopping)
        self.outbox.waiting.pop().callback(0)
        self.successResultOf(stopping)
        self.master.mq.stopped_master(2)  # a late message starts nothing
        self.assertEqual(self.outbox.waiting, [])
