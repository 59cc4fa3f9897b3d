"""The changes a deployment ships, the 500-value cap, rollbacks, and their durable memory."""

from __future__ import annotations

import time
from typing import Any

from buildbot.test import fakedb
from buildbot.test.fake.fakemaster import make_master
from buildbot.test.reactor import TestReactorMixin
from twisted.trial import unittest

from buildbot_jira.deployment_history import (
    DeploymentHistory,
    from_json,
    state_name,
    to_json,
)
from buildbot_jira.jira.model import MAX_ASSOCIATION_VALUES
from buildbot_jira.mapping.deployed_issues import (
    ChangeRange,
    ChangeRecord,
    DeployedRevision,
    RangePlan,
    cap_keys,
    collect_range,
    key_budget,
    plan_range,
    shipped_keys,
)
from buildbot_jira.mapping.key_rules import IssueKeyRules
from tests.support import coroutine_test

REPOSITORY = "https://git.example.com/app.git"
RULES = IssueKeyRules()


def change(changeid: int, key: str | None = None, **fields: Any) -> ChangeRecord:
    """A change record on ``release``, naming ``key`` (default ``ABC-<changeid>``)."""
    values: dict[str, Any] = {
        "revision": f"r{changeid}",
        "comments": f"{key or f'ABC-{changeid}'}: change {changeid}",
        "repository": REPOSITORY,
        "branch": "release",
        "codebase": "",
        **fields,
    }
    return ChangeRecord(changeid=changeid, **values)


def at(changeid: int, *, shipped_after: int | None = None) -> DeployedRevision:
    return DeployedRevision(revision=f"r{changeid}", changeid=changeid, shipped_after=shipped_after)


def shipped(
    records: list[ChangeRecord], *, deployed: int | None, last: DeployedRevision | None, **kw: Any
) -> tuple[ChangeRange | None, tuple[str, ...]]:
    """What a deployment of change ``deployed`` ships, out of ``records``, and its keys."""
    plan = plan_range(deployed=deployed, last=last, repository=REPOSITORY, branch="release", **kw)
    if plan is None:
        return None, ()
    found = collect_range(records, plan)
    return found, shipped_keys(found.changes, RULES)


class RangeTests(unittest.TestCase):
    def test_linear_history_ships_every_change_after_the_last_deployment(self) -> None:
        records = [change(n) for n in range(1, 21)]
        found, keys = shipped(records, deployed=20, last=at(10))
        assert found is not None
        self.assertEqual(keys, tuple(f"ABC-{n}" for n in range(20, 10, -1)))
        self.assertFalse(found.rolled_back)
        self.assertFalse(found.truncated)

    def test_changes_after_the_deployed_one_are_not_shipped(self) -> None:
        # A green build promoted while newer pushes were already recorded.
        records = [change(n) for n in range(1, 21)]
        _found, keys = shipped(records, deployed=15, last=at(10))
        self.assertEqual(keys, ("ABC-15", "ABC-14", "ABC-13", "ABC-12", "ABC-11"))

    def test_merges_ship_the_merge_and_leave_other_branches_out(self) -> None:
        merge = "Merge branch 'feature/FEAT-1' (FEAT-1)"
        records = [
            change(1),
            change(2, "FEAT-1", branch="feature/FEAT-1"),  # work on the feature branch
            change(3, "FEAT-2", branch="feature/FEAT-1"),
            change(4, "OTHER-1", branch="main"),
            change(5, comments=merge),
            change(6, codebase="docs"),  # another codebase's branch of the same name
            change(7, revision="r5", comments=merge),  # the merge pushed again
            change(8),
        ]
        found, keys = shipped(records, deployed=8, last=at(1))
        assert found is not None
        # One revision is one change, at its newest record.
        self.assertEqual([c.changeid for c in found.changes], [8, 7])
        self.assertEqual(keys, ("ABC-8", "FEAT-1"))

    def test_a_forced_revision_buildbot_never_saw_ships_the_builds_own_only(self) -> None:
        self.assertIsNone(plan_range(deployed=None, last=at(10)))
        # Nor does the next deployment guess from a revision nothing records.
        unseen = DeployedRevision(revision="f" * 40, changeid=None)
        self.assertIsNone(plan_range(deployed=12, last=unseen))
        plan = plan_range(deployed=12, last=unseen, lookback=3)
        self.assertEqual(plan, RangePlan(upto=12, limit=3))

    def test_a_repository_rename_keeps_the_range_by_change_id(self) -> None:
        old = "https://git.example.com/old-name.git"
        records = [change(n, repository=old) for n in range(1, 6)]
        records += [change(n) for n in range(6, 10)]
        # The last deployment's change was recorded under the old name; the
        # range still starts after it, and takes what the new name recorded.
        found, keys = shipped(records, deployed=9, last=at(3))
        assert found is not None
        self.assertEqual(keys, ("ABC-9", "ABC-8", "ABC-7", "ABC-6"))

    def test_5000_changes_in_range_read_the_newest_within_the_limit(self) -> None:
        records = [change(n) for n in range(1, 5_002)]
        started = time.process_time()
        plan = plan_range(deployed=5_001, last=at(1), branch="release", repository=REPOSITORY)
        assert plan is not None
        found = collect_range(records, plan)
        keys = shipped_keys(found.changes, RULES)
        elapsed = time.process_time() - started
        self.assertTrue(found.truncated)
        self.assertEqual(len(found.changes), plan.limit)
        self.assertEqual(found.changes[0].changeid, 5_001)
        self.assertEqual(keys[0], "ABC-5001")
        # 500 association values in all, one of them the commit: 499 keys.
        budget = key_budget(services=0, commits=1)
        self.assertEqual(budget, MAX_ASSOCIATION_VALUES - 1)
        capped = cap_keys((), keys, budget)
        self.assertEqual(capped.keys[-1], f"ABC-{5_001 - budget + 1}")
        self.assertEqual(capped.dropped, plan.limit - budget)
        self.assertLess(elapsed, 1.0)

    def test_a_first_deployment_takes_its_lookback(self) -> None:
        records = [change(n) for n in range(1, 21)]
        self.assertIsNone(plan_range(deployed=20, last=None))
        _found, keys = shipped(records, deployed=20, last=None, lookback=3)
        self.assertEqual(keys, ("ABC-20", "ABC-19", "ABC-18"))

    def test_a_redeploy_ships_what_the_deployment_of_that_revision_shipped(self) -> None:
        records = [change(n) for n in range(1, 21)]
        found, keys = shipped(records, deployed=20, last=at(20, shipped_after=17))
        assert found is not None
        self.assertEqual(keys, ("ABC-20", "ABC-19", "ABC-18"))
        self.assertFalse(found.rolled_back)
        # Its state says it undoes that deployment.
        found, keys = shipped(
            records, deployed=20, last=at(20, shipped_after=17), rolling_back=True
        )
        assert found is not None
        self.assertTrue(found.rolled_back)
        self.assertEqual(keys, ("ABC-20", "ABC-19", "ABC-18"))


class RollbackTests(unittest.TestCase):
    def test_an_older_revision_rolls_back_the_changes_in_between(self) -> None:
        records = [change(n) for n in range(1, 21)]
        found, keys = shipped(records, deployed=16, last=at(20))
        assert found is not None
        self.assertTrue(found.rolled_back)
        self.assertEqual(keys, ("ABC-20", "ABC-19", "ABC-18", "ABC-17"))

    def test_a_rollback_past_the_limit_is_truncated_to_the_newest(self) -> None:
        records = [change(n) for n in range(1, 21)]
        plan = plan_range(deployed=2, last=at(20), limit=5, branch="release")
        assert plan is not None
        found = collect_range(records, plan)
        self.assertTrue(found.truncated)
        self.assertEqual([c.changeid for c in found.changes], [20, 19, 18, 17, 16])


class CapTests(unittest.TestCase):
    def test_the_budget_leaves_room_for_services_and_commits(self) -> None:
        self.assertEqual(key_budget(services=0, commits=1), MAX_ASSOCIATION_VALUES - 1)
        self.assertEqual(key_budget(services=450, commits=5), 45)
        self.assertEqual(key_budget(services=600, commits=0), 0)

    def test_own_keys_first_then_the_newest_shipped_within_the_budget(self) -> None:
        capped = cap_keys(("ABC-9",), ("ABC-9", "ABC-8", "ABC-7", "ABC-6"), 3)
        self.assertEqual(capped.keys, ("ABC-9", "ABC-8", "ABC-7"))
        self.assertEqual(capped.dropped, 1)
        self.assertEqual(cap_keys((), ("ABC-1",), 3).dropped, 0)

    def test_500_values_never_exceeded(self) -> None:
        keys = tuple(f"ABC-{n}" for n in range(1, 1_001))
        for services, commits in ((0, 0), (100, 5), (499, 1), (500, 5)):
            budget = key_budget(services=services, commits=commits)
            capped = cap_keys((), keys, budget)
            self.assertLessEqual(
                len(capped.keys) + services + commits, max(500, services + commits)
            )
            self.assertEqual(len(capped.keys) + capped.dropped, len(keys))


class StoredFormTests(unittest.TestCase):
    def test_round_trip_and_anything_else_is_no_history(self) -> None:
        codebases = {"": at(7, shipped_after=3), "docs": DeployedRevision(revision="x")}
        self.assertEqual(from_json(to_json(codebases)), codebases)
        for value in (None, [], {"codebases": []}, {"codebases": {"": "r1"}}, "text"):
            self.assertEqual(from_json(value), {})
        self.assertEqual(
            from_json({"codebases": {"": {"revision": 5, "changeid": True}}}),
            {"": DeployedRevision(revision=None, changeid=None)},
        )

    def test_state_names_stay_within_255_characters_and_apart(self) -> None:
        self.assertEqual(state_name("ci/deploy", "prod"), "last:ci/deploy#prod")
        long_a = state_name("p" * 255, "production-a")
        long_b = state_name("p" * 255, "production-b")
        self.assertLessEqual(len(long_a), 255)
        self.assertNotEqual(long_a, long_b)


class HistoryTests(TestReactorMixin, unittest.TestCase):
    @coroutine_test
    async def test_remembered_in_the_database_and_shared_by_every_history(self) -> None:
        self.setup_test_reactor()
        master = await make_master(self, wantDb=True)
        await master.db.insert_test_data([fakedb.Master(id=1, name="vm:/srv/1")])
        first, second = DeploymentHistory(master), DeploymentHistory(master)
        self.assertEqual(await first.last("ci/deploy", "prod"), {})
        await first.remember("ci/deploy", "prod", {"": at(7, shipped_after=3)})
        await second.remember("ci/deploy", "prod", {"docs": at(2)})
        # Another master (another history object) sees both codebases.
        self.assertEqual(
            await DeploymentHistory(master).last("ci/deploy", "prod"),
            {"": at(7, shipped_after=3), "docs": at(2)},
        )
        self.assertEqual(await first.last("ci/deploy", "staging"), {})
