"""The HTTP transport: in memory through an injected agent, and over loopback TCP."""

from __future__ import annotations

import json
from typing import Any

from treq.client import HTTPClient
from twisted.internet import defer, reactor, task
from twisted.trial import unittest
from twisted.web import client as web_client
from twisted.web import server
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgent, IBodyProducer, IResponse
from twisted.web.resource import Resource
from zope.interface import implementer

from buildbot_jira.jira.errors import JiraConfigError, JiraUnavailableError
from buildbot_jira.jira.http import (
    MAX_RESPONSE_BYTES,
    HttpResponse,
    HttpTransport,
    TransportError,
    check_base_url,
    is_loopback_host,
    parse_retry_after,
)
from tests.support import (
    captured_log,
    coroutine_test,
    drive,
    flush,
    memory_agent,
    start_simulator,
)

TOKEN = "token-value-that-must-stay-secret"


class Service(Resource):
    """Answers by path: echo, a redirect, an oversized body, or never."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []
        self.gone: list[str] = []

    def render(self, request: server.Request) -> bytes | int:
        path = (request.path or b"").decode()
        self.paths.append(path)
        if path == "/echo":
            request.setResponseCode(201)
            request.setHeader("X-Answer", "yes")
            assert request.content is not None
            return json.dumps(
                {
                    "method": (request.method or b"").decode(),
                    "content-type": request.getHeader("content-type"),
                    "content-length": request.getHeader("content-length"),
                    "accept": request.getHeader("accept"),
                    "body": request.content.read().decode(),
                }
            ).encode()
        if path == "/redirect":
            request.setResponseCode(302)
            request.setHeader("Location", "/elsewhere")
            return b""
        if path == "/big":
            return b"x" * (MAX_RESPONSE_BYTES + 1000)
        # "/silent": no answer, until the client gives up.
        request.notifyFinish().addErrback(lambda _: self.gone.append(path))
        return server.NOT_DONE_YET


@implementer(IAgent)
class RecordingAgent:
    """An agent that notes each request and hands it on."""

    def __init__(self, agent: IAgent) -> None:
        self.agent = agent
        self.requests: list[tuple[bytes, bytes]] = []

    def request(
        self,
        method: bytes,
        uri: bytes,
        headers: Headers | None = None,
        bodyProducer: IBodyProducer | None = None,
    ) -> defer.Deferred[IResponse]:
        self.requests.append((method, uri))
        return self.agent.request(method, uri, headers, bodyProducer)


class MemoryTransportTests(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = task.Clock()
        self.service = Service()
        self.agent = RecordingAgent(memory_agent(self.service, self.clock))
        self.transport = HttpTransport(clock=self.clock, agent=self.agent)

    def request(self, method: str, path: str, **options: Any) -> defer.Deferred[HttpResponse]:
        options.setdefault("timeout", 30)
        return defer.Deferred.fromCoroutine(
            self.transport.request(method, "https://jira.example.com" + path, **options)
        )

    def test_the_injected_agent_carries_the_request_and_the_answer(self) -> None:
        response = drive(self.clock, self.request("POST", "/echo", json_body={"a": "é", "b": [1]}))
        self.assertEqual(self.agent.requests, [(b"POST", b"https://jira.example.com/echo")])
        self.assertEqual(response.status, 201)
        self.assertEqual(response.header("x-ANSWER"), "yes")
        self.assertIsNone(response.header("X-Missing"))
        seen = response.json()
        self.assertEqual(seen["method"], "POST")
        self.assertEqual(seen["content-type"], "application/json")
        self.assertEqual(seen["accept"], "application/json")
        self.assertEqual(seen["body"], '{"a":"é","b":[1]}')
        self.assertEqual(int(seen["content-length"]), len(seen["body"].encode()))

    def test_no_answer_arrives_before_the_bytes_move(self) -> None:
        sending = self.request("GET", "/echo")
        self.assertFalse(sending.called)
        self.assertEqual(self.service.paths, [])
        flush(self.clock)
        self.assertEqual(self.successResultOf(sending).status, 201)

    def test_close_leaves_an_injected_agent_working(self) -> None:
        self.successResultOf(defer.Deferred.fromCoroutine(self.transport.close()))
        self.assertEqual(drive(self.clock, self.request("GET", "/echo")).status, 201)
        self.assertEqual(len(self.agent.requests), 1)

    def test_a_redirect_is_returned_not_followed(self) -> None:
        response = drive(self.clock, self.request("POST", "/redirect", json_body={"x": 1}))
        self.assertEqual(response.status, 302)
        self.assertEqual(response.header("Location"), "/elsewhere")
        self.assertEqual(self.service.paths, ["/redirect"])

    def test_a_large_answer_is_cut_off(self) -> None:
        response = drive(self.clock, self.request("GET", "/big"))
        self.assertEqual(len(response.body), MAX_RESPONSE_BYTES)
        self.assertIn(f"<{MAX_RESPONSE_BYTES} bytes>", repr(response))
        self.assertNotIn("xxxx", repr(response))  # the body stays out of the repr

    def test_a_request_times_out_on_the_clock_and_names_no_header(self) -> None:
        sending = self.request(
            "GET", "/silent?q=1", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
        )
        flush(self.clock)
        self.clock.advance(4.9)
        self.assertFalse(sending.called)
        self.clock.advance(0.1)
        failure = self.failureResultOf(sending, TransportError)
        message = str(failure.value)
        self.assertEqual(message, "GET https://jira.example.com/silent: no answer within 5 s")
        self.assertTrue(failure.value.retryable)
        self.assertNotIn(TOKEN, repr(failure.value))
        flush(self.clock)
        self.assertEqual(self.service.gone, ["/silent"])  # the connection was let go
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_a_request_cancelled_by_its_caller_is_cancelled_not_failed(self) -> None:
        sending = self.request("GET", "/silent")
        flush(self.clock)
        sending.cancel()
        self.failureResultOf(sending, defer.CancelledError)
        self.assertEqual(self.clock.getDelayedCalls(), [])  # the timeout is gone too

    def test_a_request_cancelled_before_it_left_is_cancelled(self) -> None:
        sending = self.request("GET", "/echo")
        sending.cancel()
        self.failureResultOf(sending, defer.CancelledError)
        flush(self.clock)
        self.assertEqual(self.service.paths, [])


class LoopbackTransportTests(unittest.TestCase):
    @coroutine_test
    async def test_the_default_pool_keeps_a_connection_until_close(self) -> None:
        running = await start_simulator(self)
        transport = HttpTransport(reactor=reactor)
        for _ in range(2):
            response = await transport.request("GET", running.url + "/_edge/tenant_info", timeout=5)
            self.assertEqual(response.json(), {"cloudId": running.simulator.cloud_id})
        idle = running.when_idle()
        self.assertFalse(idle.called)  # the connection is kept for the next request
        await transport.close()
        await idle

    @coroutine_test
    async def test_a_refused_connection_is_a_transport_error(self) -> None:
        running = await start_simulator(self)
        await running.stop()
        transport = HttpTransport(reactor=reactor)
        self.addCleanup(lambda: defer.Deferred.fromCoroutine(transport.close()))
        with self.assertRaises(TransportError) as raised:
            await transport.request("GET", running.url + "/x?secret=1", timeout=5)
        message = str(raised.exception)
        self.assertIn(f"GET {running.url}/x: ", message)
        self.assertIn("ConnectionRefusedError", message)
        self.assertNotIn("secret", message)

    @coroutine_test
    async def test_a_connection_logs_no_starting_or_stopping_factory(self) -> None:
        running = await start_simulator(self)
        url = running.url + "/_edge/tenant_info"
        with captured_log() as lines:
            transport = HttpTransport(reactor=reactor)
            idle = running.when_idle()
            await transport.request("GET", url, timeout=5)
            await transport.close()
            await idle
        self.assertEqual([line for line in lines if "factory" in line.lower()], [])

        # Twisted's own pool logs each connection: the lines the transport leaves out.
        with captured_log() as noisy:
            pool = web_client.HTTPConnectionPool(reactor)
            client = HTTPClient(web_client.Agent(reactor, pool=pool))
            await (await client.get(url)).content()
            await pool.closeCachedConnections()
        self.assertTrue(any(line.startswith("Starting factory") for line in noisy), noisy)


class ValueTests(unittest.TestCase):
    def test_a_transport_error_is_jira_unavailable(self) -> None:
        problem = TransportError("GET https://x/: no answer within 1 s")
        self.assertIsInstance(problem, JiraUnavailableError)
        self.assertTrue(problem.retryable)
        self.assertTrue(problem.keeps_update)
        self.assertIsNone(problem.retry_after)

    def test_response_json_and_header(self) -> None:
        response = HttpResponse(status=200, headers={"retry-after": "3"}, body=b'{"a": 1}')
        self.assertEqual(response.json(), {"a": 1})
        self.assertEqual(response.header("Retry-After"), "3")
        self.assertIn("body=<8 bytes>", repr(response))
        self.assertNotIn('"a"', repr(response))
        with self.assertRaises(ValueError):
            HttpResponse(status=200, headers={}, body=b"<html>").json()

    def test_retry_after_in_seconds_only(self) -> None:
        self.assertEqual(parse_retry_after("7"), 7.0)
        self.assertEqual(parse_retry_after(" 2.5 "), 2.5)
        self.assertEqual(parse_retry_after("0"), 0.0)
        for value in (None, "", "soon", "-1", "inf", "nan", "Wed, 21 Oct 2026 07:28:00 GMT"):
            self.assertIsNone(parse_retry_after(value), value)


class UrlTests(unittest.TestCase):
    def test_plain_http_is_refused_off_this_machine(self) -> None:
        with self.assertRaises(JiraConfigError) as raised:
            check_base_url("http://jira.example.com", argument="api_url")
        self.assertIn("api_url", str(raised.exception))
        with self.assertRaises(JiraConfigError):
            check_base_url("http://10.0.0.5:8080", argument="site_url")

    def test_loopback_and_https_are_accepted(self) -> None:
        self.assertEqual(
            check_base_url("http://127.0.0.1:8099/", argument="a"), "http://127.0.0.1:8099"
        )
        self.assertEqual(check_base_url("http://[::1]:1", argument="a"), "http://[::1]:1")
        self.assertEqual(check_base_url("http://localhost", argument="a"), "http://localhost")
        self.assertEqual(
            check_base_url("https://api.atlassian.com", argument="a"), "https://api.atlassian.com"
        )
        self.assertTrue(is_loopback_host("127.8.9.1"))
        self.assertFalse(is_loopback_host("128.0.0.1"))

    def test_not_a_url_is_refused(self) -> None:
        for value in (None, 42, "", "ftp://x", "api.atlassian.com"):
            with self.assertRaises(JiraConfigError):
                check_base_url(value, argument="api_url")
