"""Outboxes for tests: a started :class:`Outbox` on a fake clock with an in-memory Jira.

Also stores on a real database (:class:`DatabaseTestCase`) and the row changes
that tests write to them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from buildbot.test import fakedb
from buildbot.test.fake import fakemaster
from buildbot.test.reactor import TestReactorMixin
from twisted.internet import defer, task
from twisted.trial import unittest

from buildbot_jira.delivery.database import DatabaseStore, outbox_table
from buildbot_jira.delivery.outbox import MemoryStore, Outbox, Update
from buildbot_jira.delivery.store import PENDING, Change, Saved
from buildbot_jira.delivery.testing import FakeJira
from buildbot_jira.jira.errors import JiraUnavailableError
from tests.support import build_payload

#: The key of build number ``n``: ``KEY.format(n)``.
KEY = "ci.example.com/app#{}"
#: What the client says when Jira kept failing.
UNAVAILABLE = "Jira site 'example.atlassian.net' is unavailable after 1 attempts: HTTP 503"


def update(
    number: int,
    sequence: int,
    *,
    state: str = "successful",
    key: str | None = None,
    issues: tuple[str, ...] = ("PROJ-1",),
) -> Update:
    """An update of build ``number`` naming ``issues``; final unless ``in_progress``."""
    payload = build_payload(number, keys=issues, updateSequenceNumber=sequence, state=state)
    return Update(
        entity="builds",
        key=key or KEY.format(number),
        payload=payload,
        sequence=sequence,
        final=state != "in_progress",
        context=f"app #{number}",
    )


def unavailable(retry_after: float | None = None) -> JiraUnavailableError:
    """The error the client raises when Jira kept failing (a 503, say)."""
    return JiraUnavailableError(UNAVAILABLE, retry_after=retry_after)


class OutboxTestCase(unittest.TestCase):
    """Makes outboxes, drives their clock, and reads what the fake Jira stored."""

    def make(
        self,
        *,
        cap: int = 10_000,
        store: MemoryStore | None = None,
        delay: float = 0.0,
        on_result: Any = None,
        min_request_interval: float = 0.0,
        start: float = 0.0,
    ) -> Outbox:
        """A started outbox with its own clock (``self.clock``) and Jira (``self.jira``).

        The clock starts at ``start``; ``min_request_interval`` paces the fake
        Jira's limits (none by default).
        """
        self.clock = task.Clock()
        self.clock.advance(start)
        self.jira = FakeJira(
            clock=self.clock, delay=delay, min_request_interval=min_request_interval
        )
        self.store = store or MemoryStore()
        outbox = Outbox(
            client=self.jira,
            store=self.store,
            clock=self.clock,
            cap=cap,
            grace=10,
            on_result=on_result,
        )
        self.successResultOf(defer.Deferred.fromCoroutine(outbox.start()))
        self.addCleanup(self.stop, outbox, self.clock)
        return outbox

    def stop(self, outbox: Outbox, clock: task.Clock) -> None:
        stopping = defer.Deferred.fromCoroutine(outbox.stop())
        clock.advance(60)  # past any grace period
        self.successResultOf(stopping)

    def drain(self, outbox: Outbox, *, limit: int = 10_000) -> None:
        """Jump the clock from one scheduled call to the next until nothing is left."""
        for _ in range(limit):
            calls = self.clock.getDelayedCalls()
            if not calls:
                self.assertEqual(len(outbox), 0, outbox)
                return
            self.clock.advance(min(c.getTime() for c in calls) - self.clock.seconds())
        raise AssertionError(f"the outbox did not drain: {outbox!r}")

    def states(self) -> dict[int, list[str]]:
        """What Jira stored per build number: the state of each version taken."""
        return {int(key.rsplit("#", 1)[1]): states for key, states in self.jira.states().items()}

    def sizes(self) -> list[int]:
        return [len(s.payloads) for s in self.jira.submissions]


class FirstWriteFails(MemoryStore):
    """A store whose first write fails (a full disk, a lost connection); later ones work."""

    async def write(self, changes: Sequence[Change]) -> None:
        if not self.writes:
            self.writes += 1
            raise OSError("disk full")
        await super().write(changes)


def pending(number: int, sequence: int, **kwargs: Any) -> Change:
    """A change that saves update ``number`` as pending."""
    made = update(number, sequence, **kwargs)
    return Change(made.slot, Saved(PENDING, made))


def gone(number: int) -> Change:
    """A change that deletes the row of update ``number``."""
    return Change(update(number, 1).slot, None)


class DatabaseTestCase(TestReactorMixin, unittest.TestCase):
    """A fake master on a real (in-memory SQLite) database, with masters 1 to 3."""

    async def make_master(self, *, active: dict[int, int] | None = None) -> Any:
        self.setup_test_reactor()
        master = await fakemaster.make_master(self, wantDb=True)
        states = active or {1: 1, 2: 1, 3: 1}
        await master.db.insert_test_data(
            [fakedb.Master(id=i, name=f"vm:/srv/{i}", active=a) for i, a in states.items()]
        )
        self.objectid = await master.db.state.getObjectId("jira", "buildbot_jira.JiraBuildReporter")
        self.master = master
        return master

    def store(self, masterid: int, objectid: int | None = None) -> DatabaseStore:
        return DatabaseStore(
            master=self.master, objectid=objectid or self.objectid, masterid=masterid
        )

    async def rows(self) -> list[tuple[int, int, str, int]]:
        """(objectid, masterid, kind, sequence) of every row, in id order."""

        def read(conn: Any) -> list[tuple[int, int, str, int]]:
            table = outbox_table
            query = sa.select(table.c.objectid, table.c.masterid, table.c.kind, table.c.data)
            return [
                (r.objectid, r.masterid, r.kind, json.loads(r.data)["sequence"])
                for r in conn.execute(query.order_by(table.c.id))
            ]

        result: list[tuple[int, int, str, int]] = await self.master.db.pool.do(read)
        return result

    async def set_active(self, masterid: int, active: bool) -> None:
        await self.master.db.masters.setMasterState(masterid=masterid, active=active)
