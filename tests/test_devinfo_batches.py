"""Development information requests: merging, splitting within the contract, and the client."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial import unittest

from buildbot_jira.delivery.ledger import entity_key
from buildbot_jira.jira.batches import bulk_fields, request_batches, request_halves
from buildbot_jira.jira.devinfo import (
    DEVINFO_KINDS,
    devinfo_requests,
    entity_count,
    split_in_two,
)
from buildbot_jira.jira.errors import JiraRequestError
from buildbot_jira.jira.rate_limits import payload_issue_keys
from buildbot_jira.mapping.devinfo import ChangeFacts, DevinfoMapping, map_change
from buildbot_jira.simulator.contract import entity_schema, envelope_schema, validation_errors
from buildbot_jira.simulator.devinfo import devinfo_entity_problems, devinfo_request_problems
from tests.test_client import MemoryTestCase


def devinfo_body_problems(body: Mapping[str, Any]) -> list[str]:
    """Everything the simulator finds wrong in a devinfo request body, as it judges it.

    The envelope and the request rules (a 400), then each repository's
    fields and entities by schema, and each entity's issue keys by pattern.
    """
    problems = validation_errors(envelope_schema("devinfo"), body)
    if problems:
        return problems
    problems = devinfo_request_problems(body)
    for repository in body["repositories"]:
        problems += validation_errors(entity_schema("devinfo"), repository)
        for kind in DEVINFO_KINDS:
            for item in repository.get(kind, ()):
                problems += devinfo_entity_problems(kind, item)
    return problems


def commit(commit_id: str, sequence: int = 1, keys: tuple[str, ...] = ("PROJ-1",)) -> dict:
    return {
        "id": commit_id,
        "issueKeys": list(keys),
        "updateSequenceId": sequence,
        "hash": commit_id,
        "author": {"name": "Jane"},
        "authorTimestamp": "2024-09-01T12:00:00.000Z",
        "displayId": commit_id[:7],
        "fileCount": 0,
        "message": f"{keys[0]} fix",
        "url": f"https://git.example.com/c/{commit_id}",
    }


def repository(repository_id: str, sequence: int = 1, **lists: list[dict]) -> dict:
    return {
        "id": repository_id,
        "name": repository_id,
        "url": f"https://git.example.com/{repository_id}",
        "updateSequenceId": sequence,
        **lists,
    }


def entities_of(requests: list[list[dict]]) -> list[tuple[str, str, str, int]]:
    """(repository, kind, id, updateSequenceId) of every entity sent, in order."""
    return [
        (repo["id"], kind, item["id"], item["updateSequenceId"])
        for request in requests
        for repo in request
        for kind in DEVINFO_KINDS
        for item in repo.get(kind, ())
    ]


class MergeTests(unittest.TestCase):
    def test_objects_of_one_repository_are_merged(self) -> None:
        requests = devinfo_requests(
            [
                repository("r1", 1, commits=[commit("c1")]),
                repository("r2", 1, commits=[commit("c9")]),
                repository("r1", 2, commits=[commit("c2", 2)], branches=[]),
            ]
        )
        self.assertEqual(len(requests), 1)
        [r1, r2] = requests[0]
        self.assertEqual([c["id"] for c in r1["commits"]], ["c1", "c2"])
        self.assertEqual([c["id"] for c in r2["commits"]], ["c9"])
        self.assertNotIn("branches", r1)  # empty lists are not sent

    def test_the_newest_version_of_an_entity_is_kept_in_the_place_of_the_first(self) -> None:
        requests = devinfo_requests(
            [
                repository("r1", 5, commits=[commit("c1", 5), commit("c2", 5)]),
                repository("r1", 3, commits=[commit("c1", 3, keys=("OLD-1",))]),
                repository("r1", 7, commits=[commit("c1", 7, keys=("NEW-1",))]),
            ]
        )
        [[merged]] = requests
        self.assertEqual(
            [(c["id"], c["updateSequenceId"], c["issueKeys"]) for c in merged["commits"]],
            [("c1", 7, ["NEW-1"]), ("c2", 5, ["PROJ-1"])],
        )

    def test_repository_fields_come_from_the_highest_sequence(self) -> None:
        newer = {**repository("r1", 9), "name": "renamed"}
        [[merged]] = devinfo_requests([newer, {**repository("r1", 4), "name": "old"}])
        self.assertEqual((merged["name"], merged["updateSequenceId"]), ("renamed", 9))

    def test_a_tie_keeps_the_later_one(self) -> None:
        first = {**commit("c1", 4), "message": "PROJ-1 first"}
        second = {**commit("c1", 4), "message": "PROJ-1 second"}
        [[merged]] = devinfo_requests(
            [repository("r1", 4, commits=[first]), repository("r1", 4, commits=[second])]
        )
        self.assertEqual(merged["commits"][0]["message"], "PROJ-1 second")

    def test_kinds_are_told_apart(self) -> None:
        branch = {"id": "x", "issueKeys": ["PROJ-1"], "updateSequenceId": 1}
        [[merged]] = devinfo_requests(
            [repository("r1", commits=[commit("x")]), repository("r1", branches=[branch])]
        )
        self.assertEqual((len(merged["commits"]), len(merged["branches"])), (1, 1))

    def test_input_is_not_changed(self) -> None:
        given_repositories = [repository("r1", commits=[commit(f"c{n}") for n in range(500)])]
        before = json.dumps(given_repositories)
        devinfo_requests(given_repositories)
        self.assertEqual(json.dumps(given_repositories), before)


class SplitTests(unittest.TestCase):
    def test_at_most_100_repositories_per_request(self) -> None:
        requests = devinfo_requests(
            [repository(f"r{n}", commits=[commit("c")]) for n in range(250)]
        )
        self.assertEqual([len(r) for r in requests], [100, 100, 50])

    def test_at_most_1000_entities_per_request_and_400_of_a_kind_per_repository(self) -> None:
        requests = devinfo_requests(
            [
                repository("a", commits=[commit(f"a{n}") for n in range(1000)]),
                repository("b", commits=[commit(f"b{n}") for n in range(700)]),
            ]
        )
        shape = [[(repo["id"], entity_count(repo)) for repo in request] for request in requests]
        # a takes 400 of each of three requests; b fills the room a leaves, in
        # the first request with room for it, 400 at most.
        self.assertEqual(shape, [[("a", 400), ("b", 400)], [("a", 400), ("b", 300)], [("a", 200)]])
        for request in requests:
            self.assertEqual(devinfo_body_problems({"repositories": request}), [])

    def test_kinds_share_the_room_of_a_request(self) -> None:
        branches = [{**commit(f"b{n}"), "id": f"b{n}"} for n in range(500)]
        requests = devinfo_requests(
            [repository("r", commits=[commit(f"c{n}") for n in range(500)], branches=branches)]
        )
        self.assertEqual(
            [
                [(len(p.get("commits", ())), len(p.get("branches", ()))) for p in r]
                for r in requests
            ],
            [[(400, 400)], [(100, 100)]],
        )
        self.assertTrue(all(p["name"] == "r" for r in requests for p in r))  # fields in each part

    def test_a_repository_without_entities_is_still_sent(self) -> None:
        self.assertEqual(devinfo_requests([repository("r")]), [[repository("r")]])

    def test_nothing_to_send_makes_no_request(self) -> None:
        self.assertEqual(devinfo_requests([]), [])

    def test_a_request_too_large_is_split_in_two(self) -> None:
        halves = split_in_two([repository("a"), repository("b"), repository("c")])
        assert halves is not None
        self.assertEqual([[r["id"] for r in half] for half in halves], [["a"], ["b", "c"]])

    def test_a_single_repository_has_its_entities_split(self) -> None:
        branch = {"id": "b", "issueKeys": ["PROJ-1"], "updateSequenceId": 1}
        halves = split_in_two(
            [repository("r", commits=[commit("1"), commit("2")], branches=[branch])]
        )
        assert halves is not None
        first, second = halves
        self.assertEqual(first, [repository("r", commits=[commit("1")])])
        self.assertEqual(second, [repository("r", commits=[commit("2")], branches=[branch])])

    def test_one_entity_cannot_be_split(self) -> None:
        self.assertIsNone(split_in_two([repository("r", commits=[commit("1")])]))
        self.assertIsNone(split_in_two([repository("r")]))
        self.assertIsNone(split_in_two([]))

    def test_other_entities_go_in_slices_of_100(self) -> None:
        builds = [{"n": n} for n in range(250)]
        self.assertEqual([len(b) for b in request_batches("builds", builds)], [100, 100, 50])
        self.assertEqual(
            request_halves("builds", [{"n": 1}, {"n": 2}, {"n": 3}]),
            (
                [{"n": 1}],
                [{"n": 2}, {"n": 3}],
            ),
        )
        self.assertIsNone(request_halves("builds", [{"n": 1}]))

    def test_body_fields_leave_out_what_is_empty(self) -> None:
        self.assertEqual(bulk_fields(None, {}), {})
        self.assertEqual(
            bulk_fields({"a": "b"}, {"product": "Buildbot"}, {"preventTransitions": True}),
            {
                "preventTransitions": True,
                "properties": {"a": "b"},
                "providerMetadata": {"product": "Buildbot"},
            },
        )


# -- properties ---------------------------------------------------------------

_kinds = st.sampled_from(DEVINFO_KINDS)
_entity = st.tuples(_kinds, st.integers(0, 600), st.integers(0, 5))
_repository_objects = st.lists(
    st.tuples(
        st.integers(0, 120),  # repository
        st.integers(0, 5),  # its sequence
        st.lists(_entity, max_size=30),
    ),
    max_size=60,
)


def build_objects(spec: list[tuple[int, int, list[tuple[str, int, int]]]]) -> list[dict]:
    objects = []
    for repo, sequence, entities in spec:
        lists: dict[str, list[dict]] = {}
        for kind, number, entity_sequence in entities:
            lists.setdefault(kind, []).append(commit(f"e{number}", entity_sequence))
        objects.append(repository(f"r{repo}", sequence, **lists))
    return objects


class SplitPropertyTests(unittest.TestCase):
    @settings(max_examples=150, deadline=None)
    @given(_repository_objects, st.integers(0, 2000))
    def test_nothing_lost_nothing_duplicated_every_request_within_limits(
        self, spec: list, bulk: int
    ) -> None:
        objects = build_objects(spec)
        # A few big repositories too, to reach the limits of a request.
        objects += [repository("big", 1, commits=[commit(f"b{n}") for n in range(bulk)])]
        requests = devinfo_requests(objects)
        expected: dict[tuple[str, str, str], int] = {}
        for obj in objects:
            for kind in DEVINFO_KINDS:
                for item in obj.get(kind, ()):
                    slot = (obj["id"], kind, item["id"])
                    expected[slot] = max(expected.get(slot, -1), item["updateSequenceId"])
        sent = entities_of(requests)
        self.assertEqual(len(sent), len({s[:3] for s in sent}), "an entity sent twice")
        self.assertEqual({s[:3]: s[3] for s in sent}, expected)
        self.assertEqual(
            {r["id"] for request in requests for r in request}, {o["id"] for o in objects}
        )
        for request in requests:
            self.assertLessEqual(len(request), 100)
            self.assertLessEqual(sum(entity_count(r) for r in request), 1000)
            for repo in request:
                for kind in DEVINFO_KINDS:
                    self.assertLessEqual(len(repo.get(kind, ())), 400)
            self.assertEqual(devinfo_request_problems({"repositories": request}), [])
            self.assertEqual(
                validation_errors(envelope_schema("devinfo"), {"repositories": request}), []
            )


class IssueKeyAndLedgerKeyTests(unittest.TestCase):
    def test_a_repository_names_the_keys_of_its_entities(self) -> None:
        branch = {"id": "b", "issueKeys": ["OPS-2"], "updateSequenceId": 1}
        payload = repository(
            "r",
            commits=[commit("c", keys=("PROJ-1", "PROJ-3"))],
            branches=[branch],
            pullRequests=[],
        )
        self.assertEqual(payload_issue_keys(payload), {"PROJ-1", "PROJ-3", "OPS-2"})

    def test_a_devinfo_rejection_names_its_repository(self) -> None:
        self.assertEqual(
            entity_key("devinfo", {"repository": "git.example.com_app-1f"}),
            "git.example.com_app-1f",
        )
        self.assertEqual(
            entity_key("devinfo", {"repository": "r", "kind": "commits", "id": "c1"}),
            "r/commits/c1",
        )
        self.assertEqual(entity_key("builds", {"pipelineId": "p", "buildNumber": 2}), "p#2")


def change_of(number: int) -> ChangeFacts:
    """One of 250 commits to three repositories, each naming a known issue."""
    return ChangeFacts(
        changeid=number,
        revision=f"{number:040x}",
        repository=f"https://git.example.com/team/app{number % 3}.git",
        branch="main",
        author="Jane Doe <jane@example.com>",
        comments=f"PROJ-{number}: change {number}",
        when_timestamp=1_700_000_000 + number,
    )


class ClientTests(MemoryTestCase):
    def test_250_commits_of_3_repositories_are_accepted_and_all_arrive(self) -> None:
        payloads = []
        for number in range(1, 251):
            entities = map_change(change_of(number), DevinfoMapping(), change_page=None)
            assert isinstance(entities, list)
            payloads += [e.payload for e in entities]
        client = self.client()
        result = self.result_of(client.submit("devinfo", payloads))
        bodies = [r.body for r in self.posts()]
        self.assertEqual(len(bodies), 1)  # 3 repositories, 250 entities: one request
        for body in bodies:
            self.assertEqual(devinfo_body_problems(body), [])
        self.assertEqual(result.rejected, ())
        self.assertEqual(sum(len(a["commits"]) for a in result.accepted), 250)
        self.assertEqual(len(self.sim.repositories), 3)
        self.assertEqual(len(self.sim.devinfo_entities), 250)

    def test_more_than_a_request_holds_goes_in_several(self) -> None:
        payloads = [repository("r1", n, commits=[commit(f"{n:040x}", n)]) for n in range(1, 1201)]
        result = self.result_of(self.client().submit_development_information(payloads))
        self.assertEqual(
            [entity_count(r.body["repositories"][0]) for r in self.posts()], [400, 400, 400]
        )
        self.assertEqual(sum(len(a["commits"]) for a in result.accepted), 1200)
        self.assertEqual(len(self.sim.devinfo_entities), 1200)

    def test_prevent_transitions_is_sent_when_given(self) -> None:
        client = self.client()
        payloads = [repository("r1", commits=[commit("c1")])]
        self.result_of(client.submit_development_information(payloads))
        self.result_of(client.submit_development_information(payloads, prevent_transitions=True))
        self.result_of(client.submit_development_information(payloads, prevent_transitions=False))
        self.assertEqual(
            [r.body.get("preventTransitions") for r in self.posts()], [None, True, False]
        )

    def test_413_splits_the_entities_of_one_repository(self) -> None:
        one = len(json.dumps(commit(f"{0:040x}")))
        self.simulator(max_body_bytes=one * 5)
        payloads = [repository("r1", commits=[commit(f"{n:040x}") for n in range(12)])]
        result = self.result_of(self.client().submit_development_information(payloads))
        self.assertEqual(sum(len(a["commits"]) for a in result.accepted), 12)
        self.assertEqual(len(self.sim.devinfo_entities), 12)

    def test_a_single_entity_too_large_is_an_error(self) -> None:
        self.simulator(max_body_bytes=100)
        payloads = [repository("r1", commits=[commit("c1")])]
        with self.assertRaises(JiraRequestError) as raised:
            self.result_of(self.client().submit_development_information(payloads))
        self.assertEqual(raised.exception.status, 413)
