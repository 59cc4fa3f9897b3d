"""Tests of buildbot_jira.simulator.web: serving, delayed answers, clients that leave.

The simulator's clock is a ``task.Clock``: answer delays are driven by
``clock.advance``, never by waiting.
"""

from __future__ import annotations

from twisted.internet import defer
from twisted.web.client import ResponseNeverReceived

from buildbot_jira.simulator import JiraSimulator

from .test_contract import valid_build
from .test_simulator import (
    SimulatorTestCase,
    run,
)


class DelayTests(SimulatorTestCase):
    """An answer waits on the simulator's clock; a client may leave meanwhile."""

    @run
    async def test_delay_holds_the_answer_until_the_clock_moves(self) -> None:
        token = await self.token()
        self.simulator.set_delay(30)
        answer = defer.ensureDeferred(self.post_builds(valid_build(), token=token))
        await self.simulator.when_received(2)
        self.assertFalse(answer.called)
        self.clock.advance(29)
        self.assertFalse(answer.called)
        self.clock.advance(1)
        reply = await answer
        self.assertEqual(reply.status, 202)

    @run
    async def test_a_client_leaving_during_a_delay_is_coped_with(self) -> None:
        token = await self.token()
        self.simulator.delay = 30
        answer = defer.ensureDeferred(self.post_builds(valid_build(), token=token))
        await self.simulator.when_received(2)
        answer.cancel()
        await self.running.when_idle()
        self.assertTrue(self.simulator.requests[-1].disconnected)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(30)  # nothing left to write: must not raise
        with self.assertRaises(ResponseNeverReceived):
            await answer


class ServingTests(SimulatorTestCase):
    """What the twisted.web layer answers by itself, and where it listens."""

    @run
    async def test_a_path_that_is_not_utf8_is_400_and_not_recorded(self) -> None:
        reply = await self.request("GET", "/_edge/%ff")
        self.assertEqual(reply.status, 400)
        self.assertEqual(reply.body, [{"message": "The path is not valid percent-encoded UTF-8"}])
        self.assertEqual(self.simulator.requests, [])

    @run
    async def test_a_wildcard_interface_is_reached_through_the_loopback(self) -> None:
        simulator = JiraSimulator(clock=self.clock)
        running = await simulator.listen(interface="0.0.0.0")
        self.addCleanup(lambda: defer.ensureDeferred(running.stop()))
        self.assertTrue(running.url.startswith("http://127.0.0.1:"), running.url)
        reply = await self.request("GET", "/_edge/tenant_info", running=running)
        self.assertEqual(reply.body, {"cloudId": simulator.cloud_id})
