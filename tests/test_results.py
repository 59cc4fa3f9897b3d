"""Jira's answers read into values: submission results, gating status, refusals."""

from __future__ import annotations

from twisted.trial import unittest

from buildbot_jira.jira.errors import JiraPermissionError, JiraRequestError
from buildbot_jira.jira.results import (
    GatingStatus,
    Rejection,
    SubmitResult,
    error_messages,
    request_error,
)
from tests.support import captured_log


class SubmitResultTests(unittest.TestCase):
    def test_merge_keeps_everything_and_unique_keys(self) -> None:
        a = SubmitResult(entity="builds", accepted=(1,), unknown_issue_keys=("A-1",))
        b = SubmitResult(entity="builds", accepted=(2,), unknown_issue_keys=("A-1", "B-2"))
        merged = a.merge(b)
        self.assertEqual(merged.accepted, (1, 2))
        self.assertEqual(merged.unknown_issue_keys, ("A-1", "B-2"))

    def test_unexpected_bodies_parse_to_empty_results(self) -> None:
        self.assertEqual(SubmitResult.from_response("builds", None).accepted, ())
        self.assertEqual(SubmitResult.from_response("deployments", []).rejected, ())

    def test_a_body_of_the_wrong_shape_is_logged_and_empty(self) -> None:
        with captured_log() as lines:
            result = SubmitResult.from_response("builds", {"rejectedBuilds": 5})
        self.assertEqual(result, SubmitResult(entity="builds"))
        self.assertTrue(any("unexpected body" in line for line in lines))

    def test_deployments_answer(self) -> None:
        key = {"pipelineId": "p", "environmentId": "e", "deploymentSequenceNumber": 3}
        result = SubmitResult.from_response(
            "deployments",
            {
                "acceptedDeployments": [key],
                "rejectedDeployments": [{"key": key, "errors": [{"message": "bad state"}]}],
                "unknownIssueKeys": ["NOPE-1"],
                "unknownAssociations": [{"associationType": "issueIdOrKeys", "values": ["X-1"]}],
            },
        )
        self.assertEqual(result.accepted, (key,))
        self.assertEqual(result.rejected, (Rejection(key=key, errors=("bad state",)),))
        self.assertEqual(result.unknown_issue_keys, ("NOPE-1",))
        self.assertEqual(len(result.unknown_associations), 1)

    def test_feature_flags_answer(self) -> None:
        result = SubmitResult.from_response(
            "featureflags",
            {
                "acceptedFeatureFlags": ["f1"],
                "failedFeatureFlags": {"f2": [{"message": "no key"}]},
            },
        )
        self.assertEqual(result.accepted, ("f1",))
        self.assertEqual(result.rejected, (Rejection(key="f2", errors=("no key",)),))

    def test_devinfo_answer_names_the_failed_entities(self) -> None:
        result = SubmitResult.from_response(
            "devinfo",
            {
                "acceptedDevinfoEntities": {"r1": {"commits": ["c1"]}},
                "failedDevinfoEntities": {
                    "r2": {
                        "errorMessages": [{"message": "repository too big"}],
                        "commits": [{"id": "c9", "errorMessages": [{"message": "no hash"}]}],
                    }
                },
            },
        )
        self.assertEqual(result.accepted, ({"repository": "r1", "commits": ["c1"]},))
        self.assertEqual(
            result.rejected,
            (
                Rejection(
                    key={"repository": "r2"}, errors=("repository too big", "commits c9: no hash")
                ),
            ),
        )


class GatingStatusTests(unittest.TestCase):
    def test_an_answer_is_read(self) -> None:
        status = GatingStatus.from_response(
            {
                "gatingStatus": "prevented",
                "details": [{"issueKey": "CHG-1", "issueLink": "https://x/browse/CHG-1"}, "junk"],
                "updatedTimestamp": "2026-11-28T10:00:00.000Z",
            }
        )
        self.assertEqual(status.status, "prevented")
        self.assertEqual([d["issueKey"] for d in status.details], ["CHG-1"])
        self.assertEqual(status.updated, "2026-11-28T10:00:00.000Z")

    def test_an_answer_without_a_status_is_invalid(self) -> None:
        self.assertEqual(GatingStatus.from_response({"details": []}).status, "invalid")
        self.assertEqual(GatingStatus.from_response(None).status, "invalid")


class RefusalTests(unittest.TestCase):
    def test_error_texts_in_each_of_jiras_shapes(self) -> None:
        self.assertEqual(error_messages([{"message": "a"}, "b"]), ("a", "b"))
        self.assertEqual(error_messages({"errorMessages": ["c"]}), ("c",))
        self.assertEqual(error_messages({"message": "d"}), ("d",))
        self.assertEqual(error_messages({"other": 1}), ())
        self.assertEqual(error_messages(None), ())

    def test_403_names_the_permission_of_that_entity(self) -> None:
        error = request_error(403, None, what="POST devinfo", entity="devinfo")
        self.assertIsInstance(error, JiraPermissionError)
        self.assertIn("write:dev-info:jira", str(error))
        self.assertTrue(error.configuration_problem)

    def test_a_redirect_names_where_it_leads(self) -> None:
        error = request_error(
            301, None, what="POST builds", entity="builds", location="https://new.example.net/"
        )
        self.assertEqual(type(error), JiraRequestError)
        self.assertIn("'https://new.example.net/', which is not followed", str(error))
        self.assertTrue(error.keeps_update)

    def test_400_quotes_jira_and_drops_the_update(self) -> None:
        error = request_error(400, [{"message": "bad envelope"}], what="POST", entity="builds")
        self.assertEqual(str(error), "POST was rejected as malformed (HTTP 400: bad envelope)")
        self.assertEqual(error.messages, ("bad envelope",))
        self.assertFalse(error.keeps_update)

    def test_any_other_status_is_a_failure_that_keeps_the_update(self) -> None:
        error = request_error(404, {"message": "Not Found"}, what="GET", entity="builds")
        self.assertEqual(str(error), "GET failed (HTTP 404: Not Found)")
        self.assertEqual(error.status, 404)
        self.assertTrue(error.keeps_update)
