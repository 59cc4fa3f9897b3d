"""The simulator on twisted.web: one leaf resource, a quiet Site, tracked connections.

The resource turns each twisted.web request into an
:class:`~buildbot_jira.simulator.exchange.IncomingRequest`, lets a
:class:`Receiver` (the simulator) decide what to do with it, and carries
that out: answer now, answer after a delay on the receiver's clock, or cut
the connection without an answer.
"""

from __future__ import annotations

import json
from typing import Any, Final, Protocol, cast
from urllib.parse import unquote_to_bytes

import attrs
from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import (
    IDelayedCall,
    IListeningPort,
    IOpenSSLServerConnectionCreator,
    IReactorTCP,
    IReactorTime,
    ITCPTransport,
)
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure
from twisted.web import resource, server
from zope.interface import implementer

from buildbot_jira.simulator.exchange import Answer, IncomingRequest, Reception, error_answer
from buildbot_jira.simulator.state import ReceivedRequest

__all__ = [
    "ConnectionTracker",
    "Listening",
    "QuietSite",
    "Receiver",
    "SimulatorResource",
    "listen_tcp",
    "tls_from_pem",
]


class Receiver(Protocol):
    """What the resource serves: decides on requests, and is told once each is dealt with."""

    @property
    def clock(self) -> IReactorTime:
        """Times arrivals and delayed answers."""

    def receive(self, incoming: IncomingRequest) -> Reception:
        """Decide what to do with ``incoming``."""

    def answered(self) -> None:
        """The last reception's answer is written or scheduled, or its connection cut."""


class QuietSite(server.Site):
    """A Site without access log: the simulator records requests itself."""

    noisy = False

    def log(self, request: Any) -> None:
        """Write nothing."""


class SimulatorResource(resource.Resource):
    """The one resource of the simulator: it sees every path, undecoded."""

    isLeaf = True

    def __init__(self, receiver: Receiver) -> None:
        super().__init__()
        self._receiver = receiver

    def render(self, request: server.Request) -> int:
        """Answer ``request`` now, later (delay) or never (drop)."""
        incoming = _incoming(request, received_at=self._receiver.clock.seconds())
        if incoming is None:
            _write(request, error_answer(400, "The path is not valid percent-encoded UTF-8"))
            return server.NOT_DONE_YET
        reception = self._receiver.receive(incoming)
        answer, record = reception.answer, reception.record
        if answer is None:
            # No answer at all: the TCP connection is cut, as a failing proxy does.
            cast(ITCPTransport, request.channel.transport).abortConnection()
        elif record is None or reception.delay <= 0:
            _write(request, answer)
        else:
            self._write_later(request, answer, record, reception.delay)
        # Only now: code waiting for this request runs on at once, and must
        # find it fully dealt with.
        self._receiver.answered()
        return server.NOT_DONE_YET

    def _write_later(
        self, request: server.Request, answer: Answer, record: ReceivedRequest, delay: float
    ) -> None:
        call: IDelayedCall = self._receiver.clock.callLater(delay, _write, request, answer)

        def client_gone(reason: Failure) -> None:
            # Writing to a closed request would fail: give up the answer.
            record.disconnected = True
            if call.active():
                call.cancel()

        request.notifyFinish().addErrback(client_gone)


def _incoming(request: server.Request, *, received_at: float) -> IncomingRequest | None:
    """``request`` as a value; ``None`` if its path is not percent-encoded UTF-8."""
    raw_path = (request.path or b"/").decode("ascii", "replace")
    try:
        segments = tuple(
            unquote_to_bytes(part).decode("utf-8")
            for part in (request.path or b"/").split(b"/")[1:]
        )
    except UnicodeDecodeError:
        return None
    headers = {
        name.decode("latin-1").lower(): values[0].decode("latin-1")
        for name, values in request.requestHeaders.getAllRawHeaders()
    }
    host = headers.get("host") or f"127.0.0.1:{cast(IPv4Address, request.getHost()).port}"
    assert request.content is not None
    return IncomingRequest(
        method=(request.method or b"GET").decode("ascii", "replace"),
        raw_path=raw_path,
        segments=segments,
        headers=headers,
        body=request.content.read(),
        site_url=f"{'https' if request.isSecure() else 'http'}://{host}",
        received_at=received_at,
    )


def _write(request: server.Request, answer: Answer) -> None:
    request.setResponseCode(answer.status)
    for name, value in answer.headers.items():
        request.setHeader(name, value)
    if isinstance(answer.body, bytes):
        # A page (the issue view): its headers carry the content type.
        request.write(answer.body)
    elif answer.body is not None:
        request.setHeader("Content-Type", "application/json")
        request.write(json.dumps(answer.body).encode("utf-8"))
    request.finish()


_CONNECTION_DONE: Final = Failure(ConnectionDone())


class _TrackedConnection(ProtocolWrapper):
    """A connection that tells its factory once it is closed for good."""

    def connectionLost(self, reason: Failure = _CONNECTION_DONE) -> None:
        """Close the HTTP channel first, then report: a pending request has
        noticed that its client is gone by the time the waiters run."""
        super().connectionLost(reason)
        cast(ConnectionTracker, self.factory).connection_closed()


class ConnectionTracker(WrappingFactory):
    """Keeps the open connections, so that stopping can close them all."""

    protocol = _TrackedConnection

    def __init__(self, site: server.Site) -> None:
        super().__init__(site)
        self._idle_waiters: list[defer.Deferred[None]] = []

    def connection_closed(self) -> None:
        """Fire the waiters once no connection is left."""
        if not self.protocols:
            waiters, self._idle_waiters = self._idle_waiters, []
            for waiter in waiters:
                waiter.callback(None)

    def when_idle(self) -> defer.Deferred[None]:
        """Fires once no connection is open (at once if none is)."""
        if not self.protocols:
            return defer.succeed(None)
        waiter: defer.Deferred[None] = defer.Deferred()
        self._idle_waiters.append(waiter)
        return waiter

    def close_all(self) -> defer.Deferred[None]:
        """Close every open connection; fires once all are closed."""
        idle = self.when_idle()
        for wrapper in list(self.protocols):
            wrapper.transport.loseConnection()
        return idle


@attrs.frozen
class Listening:
    """A Site listening on a TCP port: its base ``url`` and its connections."""

    url: str
    port: IListeningPort
    connections: ConnectionTracker = attrs.field(repr=False)


@implementer(IOpenSSLServerConnectionCreator)
class _ServerContext:
    """Server TLS from PEM bytes, loaded through cryptography (pyOpenSSL's own types are going)."""

    def __init__(self, key_pem: bytes, chain_pem: bytes) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization
        from OpenSSL import SSL

        chain = x509.load_pem_x509_certificates(chain_pem)
        self._context = SSL.Context(SSL.TLS_SERVER_METHOD)
        self._context.use_certificate(chain[0])
        for certificate in chain[1:]:
            self._context.add_extra_chain_cert(certificate)
        self._context.use_privatekey(serialization.load_pem_private_key(key_pem, None))  # type: ignore[arg-type]

    def serverConnectionForTLS(self, tlsProtocol: Any) -> Any:
        """A connection of the one OpenSSL context."""
        from OpenSSL import SSL

        return SSL.Connection(self._context, None)


def tls_from_pem(key_pem: bytes, chain_pem: bytes) -> Any:
    """Server TLS options for :func:`listen_tcp` from a private key and a certificate chain."""
    return _ServerContext(key_pem, chain_pem)


def listen_tcp(
    site: server.Site,
    *,
    reactor: IReactorTCP,
    port: int,
    interface: str,
    tls: Any = None,
) -> Listening:
    """Serve ``site`` on ``interface``:``port`` (0: any free port).

    ``tls``, server TLS options (:func:`tls_from_pem`, or Twisted's own such as
    ``PrivateCertificate.options()``), serves HTTPS instead of plain HTTP.
    """
    factory = ConnectionTracker(site)
    # TLS outside the tracker: closing a tracked connection closes its TLS too.
    serving: Any = factory if tls is None else TLSMemoryBIOFactory(tls, False, factory)
    listening = reactor.listenTCP(port, serving, interface=interface)
    # A wildcard address is no URL to give a client: name the loopback instead.
    host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(interface, interface)  # noqa: S104
    if ":" in host:
        host = f"[{host}]"
    scheme = "http" if tls is None else "https"
    url = f"{scheme}://{host}:{listening.getHost().port}"  # type: ignore[attr-defined]
    return Listening(url=url, port=listening, connections=factory)
