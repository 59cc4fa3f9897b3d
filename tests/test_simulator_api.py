"""Tests of buildbot_jira.simulator.api: which handler answers which path, over HTTP."""

from __future__ import annotations

from .test_simulator import (
    BUILDS,
    SimulatorTestCase,
    run,
)


class RouteTests(SimulatorTestCase):
    """Paths and methods that no route answers."""

    @run
    async def test_unknown_paths_are_404(self) -> None:
        self.assertEqual((await self.request("GET", "/nothing/here")).status, 404)
        token = await self.token()
        self.assertEqual((await self.request("GET", "/jira/nothing", token=token)).status, 404)

    @run
    async def test_wrong_method_is_405(self) -> None:
        reply = await self.request("GET", BUILDS, token=await self.token())
        self.assertEqual(reply.status, 405)
        self.assertEqual(reply.headers["allow"], "POST")
