"""The outbox: coalescing, batching, retries, the cap, saving, shutdown."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer, task
from twisted.trial import unittest

from buildbot_jira.delivery.outbox import MemoryStore, Outbox, Update
from buildbot_jira.jira.client import RetryPolicy
from tests.support import (
    build_payload,
    captured_log,
    coroutine_test,
    make_client,
    real_turn,
    start_simulator,
)


def update(
    number: int, sequence: int, *, state: str = "successful", key: str | None = None
) -> Update:
    payload = build_payload(number, updateSequenceNumber=sequence, state=state)
    return Update(
        entity="builds",
        key=key or f"ci.example.com/app#{number}",
        payload=payload,
        sequence=sequence,
        final=state != "in_progress",
        context=f"app #{number}",
    )


class OutboxTestCase(unittest.TestCase):
    async def make(
        self, *, cap: int = 10_000, store: MemoryStore | None = None, **sim: Any
    ) -> Outbox:
        self.clock = task.Clock()
        self.running = await start_simulator(self, **sim)
        self.sim = self.running.simulator
        client = make_client(
            self, self.running, clock=self.clock, retry=RetryPolicy(max_attempts=1)
        )
        self.store = store or MemoryStore()
        outbox = Outbox(client=client, store=self.store, clock=self.clock, cap=cap, grace=10)
        await outbox.start()
        self.addCleanup(lambda: defer.Deferred.fromCoroutine(outbox.stop()))
        return outbox

    async def drain(self, outbox: Outbox, *, limit: int = 3000) -> None:
        """Run until the outbox is empty, jumping the fake clock over each wait."""
        for _ in range(limit):
            if not len(outbox) and outbox._sending is None:
                return
            calls = self.clock.getDelayedCalls()
            if calls:
                self.clock.advance(min(c.getTime() for c in calls) - self.clock.seconds())
            await real_turn()
        raise AssertionError(f"the outbox did not drain: {outbox!r}")

    async def until(self, condition: Any, *, limit: int = 2000) -> None:
        """Run real I/O and the fake clock's due calls (no waits) until ``condition()``."""
        for _ in range(limit):
            if condition():
                return
            self.clock.advance(0)
            await real_turn()
        raise AssertionError("condition not met")

    def stored_states(self) -> dict[int, list[str]]:
        return {
            key[1]: [version["state"] for version in entity.history]
            for key, entity in self.sim.builds.items()
        }

    def posts(self) -> list[Any]:
        return [r for r in self.sim.requests if r.path.endswith("/bulk")]


class DeliveryTests(OutboxTestCase):
    @coroutine_test
    async def test_an_idle_outbox_sends_at_once(self) -> None:
        outbox = await self.make()
        outbox.put(update(1, 100))
        await self.drain(outbox)
        self.assertEqual(self.stored_states(), {1: ["successful"]})
        self.assertEqual(len(self.posts()), 1)
        self.assertGreaterEqual(self.store.saves, 1)

    @coroutine_test
    async def test_a_newer_update_replaces_an_unsent_one(self) -> None:
        outbox = await self.make()
        outbox.put(update(1, 100, state="in_progress"))
        outbox.put(update(1, 101, state="successful"))
        self.assertEqual(len(outbox), 1)
        await self.drain(outbox)
        self.assertEqual(self.stored_states(), {1: ["successful"]})

    @coroutine_test
    async def test_an_older_update_never_overtakes_a_newer_one(self) -> None:
        outbox = await self.make()
        outbox.put(update(1, 200, state="in_progress"))
        outbox.put(update(1, 150, state="successful"))
        await self.drain(outbox)
        outbox.put(update(1, 199, state="failed"))
        self.assertEqual(len(outbox), 0)
        self.assertEqual(self.stored_states(), {1: ["in_progress"]})

    @coroutine_test
    async def test_a_final_state_is_never_followed_by_in_progress(self) -> None:
        outbox = await self.make()
        outbox.put(update(1, 100, state="failed"))
        await self.drain(outbox)
        outbox.put(update(1, 101, state="in_progress"))
        self.assertEqual(len(outbox), 0)
        self.assertEqual(self.stored_states(), {1: ["failed"]})

    @coroutine_test
    async def test_updates_made_while_a_request_is_in_flight_go_together(self) -> None:
        outbox = await self.make()
        self.sim.clock = self.clock  # answers wait for the fake clock
        self.sim.set_delay(1)
        outbox.put(update(0, 100))
        await self.until(lambda: outbox._in_flight)  # the first request is under way
        for number in range(1, 251):
            outbox.put(update(number, 1000 + number))
        await self.drain(outbox)
        sizes = [len(r.body["builds"]) for r in self.posts()]
        self.assertEqual(sizes, [1, 100, 100, 50])
        self.assertEqual(len(self.sim.builds), 251)


class FailureTests(OutboxTestCase):
    @coroutine_test
    async def test_unavailable_jira_keeps_updates_and_retries_with_backoff(self) -> None:
        outbox = await self.make()
        self.sim.fail_next(3, 503)
        with captured_log() as lines:
            outbox.put(update(1, 100))
            await self.drain(outbox)
        self.assertEqual(self.stored_states(), {1: ["successful"]})
        self.assertEqual([r.status for r in self.posts()], [503, 503, 503, 202])
        self.assertTrue(any("held and retried in 5 s" in line for line in lines))
        self.assertTrue(any("retried in 20 s" in line for line in lines))
        self.assertTrue(any("delivered 1 updates held during" in line for line in lines))

    @coroutine_test
    async def test_retry_after_is_honoured(self) -> None:
        outbox = await self.make()
        self.sim.fail_next(1, 429, retry_after=42)
        outbox.put(update(1, 100))
        await self.until(lambda: outbox._backoff_call is not None)
        assert outbox._backoff_call is not None
        self.assertEqual(outbox._backoff_call.getTime() - self.clock.seconds(), 42)
        await self.drain(outbox)
        self.assertEqual(self.stored_states(), {1: ["successful"]})

    @coroutine_test
    async def test_a_malformed_request_is_logged_and_dropped(self) -> None:
        outbox = await self.make()
        self.sim.fail_next(1, 400, body=[{"message": "the request is malformed"}])
        with captured_log() as lines:
            outbox.put(update(1, 100))
            await self.drain(outbox)
        self.assertEqual(len(outbox), 0)
        self.assertEqual(len(self.posts()), 1)
        self.assertTrue(
            any("the request is malformed" in line and "app #1" in line for line in lines)
        )

    @coroutine_test
    async def test_rejected_entities_are_logged_with_their_build(self) -> None:
        outbox = await self.make()
        bad = update(1, 100)
        payload = dict(bad.payload)
        del payload["displayName"]
        with captured_log() as lines:
            outbox.put(
                Update(
                    entity="builds",
                    key=bad.key,
                    payload=payload,
                    sequence=100,
                    final=True,
                    context="app #1",
                )
            )
            await self.drain(outbox)
        self.assertTrue(
            any("rejected" in line and "app #1" in line and "displayName" in line for line in lines)
        )
        self.assertEqual(len(outbox), 0)

    @coroutine_test
    async def test_missing_permission_keeps_updates_until_it_is_granted(self) -> None:
        outbox = await self.make(permissions={"sim-client-id": ["deployments"]})
        with captured_log() as lines:
            outbox.put(update(1, 100))
            await self.until(lambda: outbox._backoff_call is not None)
        self.assertEqual(len(outbox), 1)
        self.assertTrue(
            any("configuration problem" in line and "permission" in line for line in lines)
        )
        self.sim.permissions = None  # an admin grants the permission
        await self.drain(outbox)
        self.assertEqual(self.stored_states(), {1: ["successful"]})


class CapTests(OutboxTestCase):
    @coroutine_test
    async def test_the_cap_drops_the_oldest_in_progress_updates_first(self) -> None:
        outbox = await self.make(cap=5)
        outbox._running = False  # hold everything, as while Jira is down
        for number in range(1, 4):
            outbox.put(update(number, 100 + number, state="successful"))
        for number in range(4, 10):
            outbox.put(update(number, 100 + number, state="in_progress"))
        self.assertEqual(len(outbox), 5)
        kept = sorted(u.payload["buildNumber"] for u in outbox.pending.values())
        self.assertEqual(kept, [1, 2, 3, 8, 9])
        self.assertEqual(outbox.dropped, 4)


class SavingTests(OutboxTestCase):
    @coroutine_test
    async def test_pending_updates_are_saved_and_sent_after_a_restart(self) -> None:
        store = MemoryStore()
        outbox = await self.make(store=store)
        self.sim.fail_next(100, 503)
        outbox.put(update(1, 100))
        outbox.put(update(2, 200, state="in_progress"))
        await self.until(lambda: outbox._backoff_call is not None)
        await outbox.stop()
        self.assertEqual(
            sorted(u["key"] for u in store.saved), ["ci.example.com/app#1", "ci.example.com/app#2"]
        )
        self.sim.clear_faults()
        client = outbox.client
        second = Outbox(client=client, store=store, clock=self.clock)
        await second.start()
        await self.drain(second)
        await second.stop()
        self.assertEqual(self.stored_states(), {1: ["successful"], 2: ["in_progress"]})
        self.assertEqual(store.saved, [])

    @coroutine_test
    async def test_stop_waits_the_grace_period_then_keeps_the_rest(self) -> None:
        store = MemoryStore()
        outbox = await self.make(store=store)
        self.sim.clock = self.clock
        self.sim.set_delay(3600)  # Jira never answers in time
        outbox.put(update(1, 100))
        await self.until(lambda: outbox._in_flight)
        stopping = defer.Deferred.fromCoroutine(outbox.stop())
        await real_turn()
        self.assertFalse(stopping.called)
        self.clock.advance(10)
        for _ in range(200):
            if stopping.called:
                break
            await real_turn()
        await stopping
        self.assertEqual([u["key"] for u in store.saved], ["ci.example.com/app#1"])


class ReviewedFailureTests(OutboxTestCase):
    @coroutine_test
    async def test_a_redirect_or_404_keeps_the_updates_as_a_configuration_problem(self) -> None:
        outbox = await self.make()
        for status in (302, 404):
            self.sim.fail_next(1, status)
            with captured_log() as lines:
                outbox.put(update(status, 100 + status))
                await self.until(lambda: outbox._backoff_call is not None)
            self.assertEqual(len(outbox), 1)  # kept, not dropped
            self.assertTrue(any("configuration problem" in line for line in lines))
            await self.drain(outbox)  # the problem is fixed: the next try delivers
        self.assertEqual(sorted(self.stored_states()), [302, 404])

    @coroutine_test
    async def test_retry_after_zero_waits_the_backoff_instead_of_looping(self) -> None:
        outbox = await self.make()
        self.sim.fail_next(1, 503, retry_after=0)
        outbox.put(update(1, 100))
        await self.until(lambda: outbox._backoff_call is not None)
        assert outbox._backoff_call is not None
        self.assertEqual(outbox._backoff_call.getTime() - self.clock.seconds(), 5)

    @coroutine_test
    async def test_an_update_made_during_a_backoff_is_saved_at_once(self) -> None:
        outbox = await self.make()
        self.sim.fail_next(1, 503)
        outbox.put(update(1, 100))
        await self.until(lambda: outbox._backoff_call is not None)
        outbox.put(update(2, 200))
        await self.until(lambda: len(self.store.saved) == 2)
        self.assertEqual(
            sorted(u["key"] for u in self.store.saved),
            ["ci.example.com/app#1", "ci.example.com/app#2"],
        )

    @coroutine_test
    async def test_an_unexpected_error_keeps_the_batch(self) -> None:
        outbox = await self.make()
        real_submit = outbox.client.submit
        calls = []

        async def broken_once(*args: Any, **kwargs: Any) -> Any:
            calls.append(args)
            if len(calls) == 1:
                raise RuntimeError("a bug")
            return await real_submit(*args, **kwargs)

        outbox.client.submit = broken_once  # type: ignore[method-assign]
        with captured_log() as lines:
            outbox.put(update(1, 100))
            await self.drain(outbox)
        self.assertEqual(self.stored_states(), {1: ["successful"]})
        self.assertTrue(any("unexpected error" in line for line in lines))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
