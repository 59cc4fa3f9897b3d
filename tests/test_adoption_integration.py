"""A real master: no build left in progress, and what a dead master left is adopted."""

from __future__ import annotations

import json
from typing import Any

import attrs
from buildbot.process.buildstep import BuildStep
from buildbot.process.results import RETRY, SUCCESS

from buildbot_jira.delivery.database import DatabaseStore
from buildbot_jira.delivery.interrupted import MASTER_LOST
from buildbot_jira.delivery.store import OPEN, PENDING, Change, Saved
from buildbot_jira.mapping.builds import RETRY_DESCRIPTION
from buildbot_jira.simulator.contract import entity_schema, validation_errors
from tests.masters import BUILDBOT_URL, shell
from tests.outboxes import update
from tests.support import captured_log, coroutine_test
from tests.test_reliability_integration import ReliabilityTestCase

PIPELINE = BUILDBOT_URL.split("//", 1)[1].rstrip("/") + "/app"


class LoseWorkerOnce(BuildStep):
    """Ends its first build with RETRY, as when the worker is lost mid-build."""

    runs = 0

    async def run(self) -> int:
        LoseWorkerOnce.runs += 1
        return RETRY if LoseWorkerOnce.runs == 1 else SUCCESS


class RetryTests(ReliabilityTestCase):
    @coroutine_test
    async def test_a_build_that_ends_with_retry_is_cancelled_in_jira(self) -> None:
        LoseWorkerOnce.runs = 0
        await self.start_simulator()
        await self.start_master([self.reporter()], {"app": [LoseWorkerOnce(name="work")]})
        await self.build_with_change(branch="PROJ-1")
        await self.until(lambda: len(self.final_builds()) == 2, seconds=30)
        retried, retry = (self.sim.simulator.builds[(PIPELINE, n)] for n in (1, 2))
        self.assertEqual([v["state"] for v in retried.history], ["in_progress", "cancelled"])
        self.assertEqual(retried.current["description"], RETRY_DESCRIPTION)
        self.assertEqual(retry.current["state"], "successful")
        for entity in (retried, retry):
            for version in entity.history:
                self.assertEqual(validation_errors(entity_schema("builds"), version), [])


class UnreportedResultTests(ReliabilityTestCase):
    @coroutine_test
    async def test_a_build_whose_result_is_not_reported_is_not_left_open(self) -> None:
        await self.start_simulator()
        reporter = self.reporter(result_states={"failure": None})
        await self.start_master([reporter], {"app": [shell("compile", "false")]})
        await self.build_with_change(branch="PROJ-1")
        outbox = self.service("jira").outbox
        await self.until(lambda: not len(outbox) and (PIPELINE, 1) in self.sim.simulator.builds)
        await self.until(lambda: not outbox.open, seconds=10)
        self.assertEqual(self.sim.simulator.builds[(PIPELINE, 1)].current["state"], "in_progress")


class AdoptionTests(ReliabilityTestCase):
    async def leave_rows_of_a_dead_master(self) -> int:
        """Master ``vm:/srv/gone`` (inactive) left #1 open and #2's final state waiting."""
        db = self.master.db
        masterid: int = await db.masters.findMasterId(name="vm:/srv/gone")
        await db.masters.setMasterState(masterid=masterid, active=False)
        objectid = await db.state.getObjectId("jira", "buildbot_jira.JiraBuildReporter")
        store = DatabaseStore(master=self.master, objectid=objectid, masterid=masterid)
        await store.load()
        started = update(1, 100, state="in_progress", key=f"{PIPELINE}#1")
        started = attrs_payload(started, pipelineId=PIPELINE)
        finished = attrs_payload(update(2, 200, key=f"{PIPELINE}#2"), pipelineId=PIPELINE)
        await store.write(
            [
                Change(started.slot, Saved(OPEN, started)),
                Change(finished.slot, Saved(PENDING, finished)),
            ]
        )

    @coroutine_test
    async def test_a_stopped_masters_updates_are_adopted_and_its_builds_ended(self) -> None:
        await self.start_simulator()
        await self.start_master([self.reporter()], {"app": [LoseWorkerOnce(name="work")]})
        with captured_log() as lines:
            gone = await self.leave_rows_of_a_dead_master()
            self.master.mq.produce(
                ("masters", str(gone), "stopped"),
                {"masterid": gone, "name": "vm:/srv/gone", "active": False},
            )
            await self.until(lambda: len(self.final_builds()) == 2, seconds=30)
        builds = self.sim.simulator.builds
        self.assertEqual(builds[(PIPELINE, 1)].current["state"], "cancelled")
        self.assertEqual(builds[(PIPELINE, 1)].current["description"], MASTER_LOST)
        self.assertEqual(builds[(PIPELINE, 2)].current["state"], "successful")
        adopted = [line for line in lines if line.startswith("jira: adopted")]
        self.assertEqual(
            adopted,
            ["jira: adopted 2 updates of master vm:/srv/gone (1 of builds it left unfinished)"],
        )
        await self.until(lambda: not len(self.service("jira").outbox), seconds=10)


def attrs_payload(made: Any, **fields: Any) -> Any:
    """``made`` with ``fields`` in its payload (the simulator keys builds by pipeline)."""
    return attrs.evolve(made, payload=json.loads(json.dumps({**made.payload, **fields})))
