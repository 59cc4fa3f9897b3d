"""Tests of buildbot_jira.simulator.recording: the log of received requests."""

from __future__ import annotations

import json

from twisted.trial import unittest

from buildbot_jira.simulator import DEFAULT_CLIENT_SECRET
from buildbot_jira.simulator.exchange import IncomingRequest
from buildbot_jira.simulator.recording import RequestLog, recorded_body


def incoming(path: str, body: bytes = b"", *, at: float = 0.0) -> IncomingRequest:
    return IncomingRequest(
        method="POST",
        raw_path=path,
        segments=tuple(path.split("/")[1:]),
        headers={},
        body=body,
        site_url="http://jira.example",
        received_at=at,
    )


class RecordedBodyTests(unittest.TestCase):
    def test_a_client_secret_is_never_recorded(self) -> None:
        body = json.dumps({"client_id": "c", "client_secret": DEFAULT_CLIENT_SECRET}).encode()
        self.assertEqual(recorded_body(body), {"client_id": "c", "client_secret": "<redacted>"})

    def test_a_body_that_is_not_json_is_recorded_as_none(self) -> None:
        self.assertIsNone(recorded_body(b""))
        self.assertIsNone(recorded_body(b"client_secret=x"))
        self.assertIsNone(recorded_body(b"\xff\xfe"))
        self.assertEqual(recorded_body(b"[1, 2]"), [1, 2])


class RequestLogTests(unittest.TestCase):
    def test_requests_are_recorded_in_order_and_counted_by_kind(self) -> None:
        log = RequestLog()
        log.record(incoming("/oauth/token", at=1))
        log.record(incoming("/jira/builds/0.1/cloud/c/bulk", b'{"builds": []}', at=2))
        log.record(incoming("/_edge/tenant_info", at=3))
        self.assertEqual([r.timestamp for r in log.requests], [1, 2, 3])
        self.assertEqual(log.requests[1].body, {"builds": []})
        self.assertIsNone(log.requests[1].status)
        self.assertEqual((log.token_requests, log.api_requests), (1, 1))

    def test_waiters_fire_only_when_woken_with_enough_requests(self) -> None:
        log = RequestLog()
        waiter = log.when_received(2)
        log.record(incoming("/a"))
        log.wake_waiters()
        self.assertNoResult(waiter)
        log.record(incoming("/b"))
        self.assertNoResult(waiter)  # recorded, not yet answered
        log.wake_waiters()
        self.successResultOf(waiter)

    def test_observers_hear_decisions_until_they_unsubscribe(self) -> None:
        log = RequestLog()
        heard: list[str] = []
        unsubscribe = log.subscribe(lambda record: heard.append(record.path))
        log.decided(log.record(incoming("/a")))
        unsubscribe()
        log.decided(log.record(incoming("/b")))
        self.assertEqual(heard, ["/a"])
