"""Several masters: each reports its own builds and keeps its own outbox entries."""

from __future__ import annotations

from typing import Any

from buildbot.test.fake import fakemaster
from buildbot.test.reactor import TestReactorMixin
from twisted.trial import unittest

from buildbot_jira.delivery.store import StateStore
from buildbot_jira.events import JiraEventGenerator
from tests.support import coroutine_test


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


class SharedDatabaseTests(TestReactorMixin, unittest.TestCase):
    @coroutine_test
    async def test_masters_sharing_a_database_keep_separate_outboxes(self) -> None:
        self.setup_test_reactor()
        master = await fakemaster.make_master(self, wantDb=True)
        objectid = await master.db.state.getObjectId("jira", "buildbot_jira.JiraBuildReporter")
        first = StateStore(master=master, objectid=objectid, masterid=1)
        second = StateStore(master=master, objectid=objectid, masterid=2)
        await first.save([{"key": "a"}])
        await second.save([{"key": "b"}])
        await second.save([])  # master 2 delivered its updates
        self.assertEqual(await first.load(), [{"key": "a"}])
        self.assertEqual(await second.load(), [])
