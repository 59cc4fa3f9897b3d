"""Tests of buildbot_jira.simulator.exchange: requests and answers as values."""

from __future__ import annotations

from twisted.trial import unittest

from buildbot_jira.simulator.exchange import (
    NOT_JSON,
    Answer,
    IncomingRequest,
    error_answer,
    error_messages,
    parse_json,
)


class ExchangeTests(unittest.TestCase):
    def test_error_bodies_take_the_shape_of_their_api(self) -> None:
        self.assertEqual(error_messages("a", "b"), [{"message": "a"}, {"message": "b"}])
        self.assertEqual(error_answer(400, "bad"), Answer(400, [{"message": "bad"}]))
        self.assertEqual(
            error_answer(400, "bad", entity="devinfo"),
            Answer(400, {"errorMessages": [{"message": "bad"}]}),
        )

    def test_parse_json_tells_what_is_not_json(self) -> None:
        self.assertEqual(parse_json(b'{"a": [1]}'), {"a": [1]})
        self.assertIs(parse_json(b"{nope"), NOT_JSON)
        self.assertIs(parse_json(b"\xff"), NOT_JSON)

    def test_headers_are_found_in_any_case(self) -> None:
        request = IncomingRequest(
            method="GET",
            raw_path="/",
            segments=("",),
            headers={"content-type": "application/json"},
            body=b"",
            site_url="http://jira.example",
            received_at=0.0,
        )
        self.assertEqual(request.header("Content-Type"), "application/json")
        self.assertEqual(request.header("Authorization"), "")
        self.assertEqual(request.first_segment, "")

    def test_headers_added_to_an_answer_win_and_leave_the_original_alone(self) -> None:
        answer = Answer(202, {"ok": True}, {"Allow": "GET", "X-One": "1"})
        added = answer.with_headers({"X-One": "2", "X-Two": "2"})
        self.assertEqual(
            added, Answer(202, {"ok": True}, {"Allow": "GET", "X-One": "2", "X-Two": "2"})
        )
        self.assertEqual(answer.headers, {"Allow": "GET", "X-One": "1"})
        self.assertIs(answer.with_headers({}), answer)
