"""The CONNECT tunnel in memory: what it asks the proxy, each refusal named, TLS for the real host.

The transport runs on a ``MemoryReactorClock``: the test plays the proxy by
reading what the client wrote and writing the proxy's answers back, and
stands in for the TLS layer by recording ``startTLS`` and announcing the
handshake, so that every step is seen and no byte leaves the process.
"""

from __future__ import annotations

import base64
from typing import Any

from twisted.internet import defer, error
from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial import unittest

from buildbot_jira.jira.http import HttpResponse, HttpTransport
from buildbot_jira.jira.proxy import ProxyServer
from buildbot_jira.jira.transport_errors import (
    ProxyAuthError,
    ProxyRefusedError,
    ProxyTimeoutError,
    ProxyUnreachableError,
)

PASSWORD = "tunnel-secret-5e2b"
PROXY = ProxyServer(host="10.1.1.1", port=3128, user="ci", password=PASSWORD)
URL = "https://api.atlassian.com/oauth/token"


class TlsCapableTransport(StringTransport):
    """A StringTransport that records the TLS it was asked to start."""

    tls: Any = None

    def startTLS(self, contextFactory: Any, normal: bool = True) -> None:
        self.tls = contextFactory


class TunnelTests(unittest.TestCase):
    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.transport = HttpTransport(reactor=self.reactor, proxy=PROXY, environ={})
        self.addCleanup(lambda: defer.Deferred.fromCoroutine(self.transport.close()))

    def send(self, url: str = URL) -> defer.Deferred[HttpResponse]:
        return defer.Deferred.fromCoroutine(self.transport.request("GET", url, timeout=10))

    def connect(self) -> tuple[Any, TlsCapableTransport]:
        """Accept the newest connection attempt as the proxy: its protocol and wire."""
        factory = self.reactor.tcpClients[-1][2]
        protocol = factory.buildProtocol(IPv4Address("TCP", "10.1.1.1", 3128))
        wire = TlsCapableTransport()
        protocol.makeConnection(wire)
        return protocol, wire

    def refuse(self, answer: bytes) -> Exception:
        sending = self.send()
        protocol, wire = self.connect()
        protocol.dataReceived(answer)
        failure = self.failureResultOf(sending)
        self.assertIsNone(wire.tls)  # no TLS to a host the proxy refused
        message = str(failure.value)
        self.assertNotIn(PASSWORD, message)
        self.assertNotIn(base64.b64encode(f"ci:{PASSWORD}".encode()).decode(), message)
        return failure.value

    def test_the_tunnel_goes_to_the_proxy_and_asks_connect_with_credentials(self) -> None:
        self.send()
        port = self.reactor.tcpClients[0][1]
        self.assertEqual(port, 3128)  # the proxy's port, not Jira's 443
        _, wire = self.connect()
        self.assertEqual(
            wire.value(),
            b"CONNECT api.atlassian.com:443 HTTP/1.1\r\nHost: api.atlassian.com:443\r\n"
            b"Proxy-Authorization: Basic "
            + base64.b64encode(f"ci:{PASSWORD}".encode())
            + b"\r\n\r\n",
        )

    def test_after_200_tls_starts_for_the_real_host_then_http_goes_through(self) -> None:
        sending = self.send()
        protocol, wire = self.connect()
        wire.clear()
        protocol.dataReceived(b"HTTP/1.1 200 Connection established\r\n\r\n")
        self.assertIsNotNone(wire.tls)
        # Twisted's options verify the certificate for this name (service_identity).
        self.assertEqual(wire.tls._options._hostnameASCII, "api.atlassian.com")
        self.assertEqual(wire.value(), b"")  # nothing before the handshake is done
        protocol.handshakeCompleted()
        request = wire.value()
        self.assertTrue(request.startswith(b"GET /oauth/token HTTP/1.1\r\n"), request)
        self.assertNotIn(b"Proxy-Authorization", request)  # for the proxy only, never Jira
        protocol.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
        self.assertEqual(self.successResultOf(sending).json(), {})
        # The tunnelled connection is pooled: the next request reuses it.
        wire.clear()
        self.send()
        self.assertEqual(len(self.reactor.tcpClients), 1)
        self.assertTrue(wire.value().startswith(b"GET /oauth/token HTTP/1.1\r\n"))

    def test_407_is_a_proxy_authentication_error(self) -> None:
        failure = self.refuse(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
        self.assertIsInstance(failure, ProxyAuthError)
        self.assertFalse(failure.retryable)
        self.assertTrue(failure.keeps_update)
        self.assertIn(
            "proxy authentication required: check the proxy's user and password", str(failure)
        )
        self.assertIn(f"GET {URL}: the proxy http://10.1.1.1:3128 answered", str(failure))

    def test_another_status_is_a_refusal_that_quotes_the_status_line(self) -> None:
        failure = self.refuse(b"HTTP/1.1 403 Forbidden\r\nX-Why: policy\r\n\r\n")
        self.assertIsInstance(failure, ProxyRefusedError)
        self.assertTrue(failure.retryable)
        self.assertIn(
            "refused CONNECT api.atlassian.com:443: it answered 'HTTP/1.1 403 Forbidden'",
            str(failure),
        )

    def test_an_answer_in_pieces_is_read_whole(self) -> None:
        sending = self.send()
        protocol, _ = self.connect()
        for piece in (b"HTTP/1.1 50", b"2 Bad Gateway\r\n", b"\r\n"):
            protocol.dataReceived(piece)
        self.assertIn("'HTTP/1.1 502 Bad Gateway'", str(self.failureResultOf(sending).value))

    def test_a_proxy_that_closes_without_answering_is_named(self) -> None:
        sending = self.send()
        protocol, _ = self.connect()
        protocol.connectionLost(Failure(error.ConnectionDone()))
        failure = self.failureResultOf(sending, ProxyRefusedError)
        self.assertIn("closed the connection without answering CONNECT", str(failure.value))

    def test_a_refused_connection_to_the_proxy_is_proxy_unreachable(self) -> None:
        sending = self.send()
        connector = self.reactor.connectors[-1]
        factory = self.reactor.tcpClients[-1][2]
        factory.clientConnectionFailed(connector, Failure(error.ConnectionRefusedError()))
        self.reactor.advance(1)  # the endpoint gives up on its last address
        failure = self.failureResultOf(sending, ProxyUnreachableError)
        self.assertIn(
            "the proxy http://10.1.1.1:3128 is unreachable (connection refused)", str(failure.value)
        )
        self.assertNotIn(PASSWORD, str(failure.value))

    def test_a_silent_proxy_times_out_naming_the_proxy_and_the_connection_is_aborted(self) -> None:
        sending = self.send()
        _, wire = self.connect()
        self.reactor.advance(10)
        failure = self.failureResultOf(sending, ProxyTimeoutError)
        self.assertIn(
            "no answer within 10 s through the proxy http://10.1.1.1:3128", str(failure.value)
        )
        self.assertTrue(failure.value.retryable)
        self.assertTrue(wire.disconnecting or wire.disconnected)
