"""Tests of buildbot_jira.simulator.state: what the simulator stores, and Jira's storing rule."""

from __future__ import annotations

from twisted.trial import unittest

from buildbot_jira.simulator.state import (
    GatingStatus,
    IssuedToken,
    Store,
    StoredEntity,
    store_newer,
)


class TokenValueTests(unittest.TestCase):
    def test_token_validity(self) -> None:
        token = IssuedToken("t", "c", issued_at=0, expires_at=10)
        self.assertTrue(token.is_valid(9.9))
        self.assertFalse(token.is_valid(10))
        token.revoked = True
        self.assertFalse(token.is_valid(0))

    def test_a_token_value_stays_out_of_reprs_and_json(self) -> None:
        store = Store()
        store.add_token(IssuedToken("sim-secret-value", "c", issued_at=0, expires_at=10))
        self.assertIs(store.tokens["sim-secret-value"], store.issued_tokens[0])
        self.assertNotIn("sim-secret-value", repr(store))
        self.assertNotIn("sim-secret-value", repr(store.issued_tokens[0].to_json()))


class StoreNewerTests(unittest.TestCase):
    def test_only_a_greater_sequence_number_replaces_the_stored_value(self) -> None:
        entities: dict[object, StoredEntity] = {}
        self.assertTrue(store_newer(entities, ("p", 1), {"n": 5, "state": "a"}, "n"))
        self.assertFalse(store_newer(entities, ("p", 1), {"n": 5, "state": "b"}, "n"))
        self.assertFalse(store_newer(entities, ("p", 1), {"n": 4, "state": "c"}, "n"))
        self.assertTrue(store_newer(entities, ("p", 1), {"n": 6, "state": "d"}, "n"))
        stored = entities[("p", 1)]
        self.assertEqual(stored.current, {"n": 6, "state": "d"})
        self.assertEqual([v["state"] for v in stored.history], ["a", "d"])
        self.assertEqual(stored.update_sequence_number, 6)

    def test_what_is_stored_is_a_copy_and_single_part_keys_are_plain(self) -> None:
        entities: dict[object, StoredEntity] = {}
        value = {"updateSequenceId": 1, "tags": ["x"]}
        store_newer(entities, ("flag-1",), value, "updateSequenceId")
        value["tags"].append("changed")
        self.assertEqual(list(entities), ["flag-1"])
        self.assertEqual(entities["flag-1"].current["tags"], ["x"])
        self.assertEqual(entities["flag-1"].to_json()["key"], ["flag-1"])


class GatingStatusTests(unittest.TestCase):
    def test_gating_json_links_the_issues_on_the_site(self) -> None:
        gating = GatingStatus("prevented", ("PROJ-1",), updated=0.5)
        self.assertEqual(
            gating.to_json(("deploy", "prod", 7), site_url="https://example.atlassian.net"),
            {
                "deploymentSequenceNumber": 7,
                "pipelineId": "deploy",
                "environmentId": "prod",
                "gatingStatus": "prevented",
                "updatedTimestamp": "1970-01-01T00:00:00.500Z",
                "details": [
                    {
                        "type": "issue",
                        "issueKey": "PROJ-1",
                        "issueLink": "https://example.atlassian.net/browse/PROJ-1",
                    }
                ],
            },
        )
