"""A TLS connection to a host, directly or through an HTTP proxy's CONNECT tunnel.

Twisted's ``ProxyAgent`` speaks plain HTTP to a proxy only; HTTPS through a
proxy needs a tunnel: connect to the proxy, ask ``CONNECT host:443``, read
its answer, then start TLS to the real host on the same connection, the
certificate checked for that host (never for the proxy). :class:`TlsEndpoint`
does this (without the CONNECT when there is no proxy) and hands the
connection to the HTTP client only once the TLS handshake is complete, so
that each failure can be told apart and named: the proxy unreachable,
refusing (its status line quoted), wanting credentials (407), or a
certificate that is not trusted (its issuer named).
"""

from __future__ import annotations

from typing import Any, Final

from twisted.internet import defer, error
from twisted.internet.interfaces import (
    IHandshakeListener,
    IProtocol,
    IProtocolFactory,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from zope.interface import implementer

from buildbot_jira.jira.proxy import ProxyServer
from buildbot_jira.jira.transport_errors import (
    ProxyAuthError,
    ProxyRefusedError,
    ProxyUnreachableError,
    TlsVerificationError,
    TransportError,
)
from buildbot_jira.jira.trust import CertificateProblem, TrustPolicy

__all__ = ["TlsEndpoint", "connect_request", "unreachable"]

#: A proxy's answer to CONNECT is a status line and a few headers; more is not an answer.
MAX_ANSWER_BYTES: Final = 16 * 1024


def connect_request(host: str, port: int, proxy: ProxyServer) -> bytes:
    """The CONNECT request that opens a tunnel to ``host``:``port`` through ``proxy``."""
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    lines = [f"CONNECT {authority} HTTP/1.1".encode(), f"Host: {authority}".encode()]
    authorization = proxy.authorization()
    if authorization is not None:
        lines.append(b"Proxy-Authorization: " + authorization)
    return b"\r\n".join([*lines, b"", b""])


def unreachable(
    reason: BaseException | None, proxy: ProxyServer | None, host: str
) -> TransportError:
    """The error for a connection that could not be made to ``proxy`` (or ``host``)."""
    if proxy is None:
        return TransportError(f"cannot connect to {host}: {_text(reason)}")
    what = (
        "connection refused" if isinstance(reason, error.ConnectionRefusedError) else _text(reason)
    )
    if isinstance(reason, error.DNSLookupError):
        what = f"its host name {proxy.host!r} is not known"
    return ProxyUnreachableError(
        f"the proxy {proxy.url} is unreachable ({what}): is it running, and is the address right?"
    )


def _text(reason: BaseException | None) -> str:
    lines = str(reason).strip().splitlines()
    return f"{type(reason).__name__}: {lines[0]}" if lines else type(reason).__name__


@implementer(IHandshakeListener)
class _TunnelProtocol(Protocol):
    """Asks for the tunnel (when there is a proxy), starts TLS, then passes everything on."""

    def __init__(
        self,
        endpoint: TlsEndpoint,
        factory: IProtocolFactory,
        ready: defer.Deferred[IProtocol],
    ) -> None:
        self._endpoint = endpoint
        self._factory = factory
        self._ready = ready
        self._answer = b""
        self._state = "new"
        self._problem = CertificateProblem()
        self._inner: IProtocol | None = None

    def connectionMade(self) -> None:
        """Ask the proxy for the tunnel, or start TLS at once when there is none."""
        proxy = self._endpoint.proxy
        if proxy is None:
            self._start_tls()
        else:
            self._state = "connect"
            assert self.transport is not None
            self.transport.write(connect_request(self._endpoint.host, self._endpoint.port, proxy))

    def dataReceived(self, data: bytes) -> None:
        """The proxy's answer while tunnelling, the HTTP client's data once open."""
        if self._inner is not None:
            self._inner.dataReceived(data)
            return
        if self._state != "connect":
            return  # TLS is being set up: no application data arrives yet
        self._answer += data
        head, found, rest = self._answer.partition(b"\r\n\r\n")
        if not found:
            if len(self._answer) > MAX_ANSWER_BYTES:
                self._fail(ProxyRefusedError(f"{self._proxy_url()} sent no HTTP answer to CONNECT"))
            return
        status_line = head.split(b"\r\n", 1)[0].decode("latin-1", "replace").strip()
        failure = self._refusal(status_line)
        if failure is not None:
            self._fail(failure)
        elif rest:
            # Bytes before our TLS hello: nothing a real tunnel would send.
            self._fail(ProxyRefusedError(f"{self._proxy_url()} sent data before the tunnel opened"))
        else:
            self._start_tls()

    def _refusal(self, status_line: str) -> Exception | None:
        parts = status_line.split(None, 2)
        code = parts[1] if len(parts) > 1 and parts[0].startswith("HTTP/") else ""
        target = f"{self._endpoint.host}:{self._endpoint.port}"
        if code == "200":
            return None
        # Some proxies (tinyproxy) answer a refused CONNECT with 401: the Jira
        # host never saw the request, so it is the proxy's credentials too.
        if code in ("401", "407"):
            return ProxyAuthError(
                f"the proxy {self._proxy_url()} answered {status_line!r} to CONNECT {target}: "
                "proxy authentication required: check the proxy's user and password"
            )
        return ProxyRefusedError(
            f"the proxy {self._proxy_url()} refused CONNECT {target}: it answered {status_line!r}"
        )

    def _proxy_url(self) -> str:
        proxy = self._endpoint.proxy
        return "the proxy" if proxy is None else proxy.url

    def _start_tls(self) -> None:
        self._state = "tls"
        creator = self._endpoint.trust.creator_for(self._endpoint.host, self._problem)
        self.transport.startTLS(creator)  # type: ignore[union-attr]

    def handshakeCompleted(self) -> None:
        """The certificate was verified for the host: the HTTP client may talk now."""
        self._state = "open"
        assert self.transport is not None
        inner = self._factory.buildProtocol(self.transport.getPeer())
        if inner is None:
            self.transport.loseConnection()
            self._fail_ready(TransportError("the HTTP client declined the connection"))
            return
        self._inner = inner
        inner.makeConnection(self.transport)
        if not self._ready.called:
            self._ready.callback(inner)

    def connectionLost(self, reason: Failure = error.ConnectionDone) -> None:  # type: ignore[assignment]
        """Tell the HTTP client, or the endpoint's caller if the connection never opened."""
        if self._inner is not None:
            self._inner.connectionLost(reason)
            return
        if self._state == "tls":
            self._fail_ready(self._tls_failure(reason.value))
        elif self._state == "connect":
            proxy = self._proxy_url()
            self._fail_ready(
                ProxyRefusedError(f"{proxy} closed the connection without answering CONNECT")
            )
        else:
            self._fail_ready(TransportError(f"connection lost: {_text(reason.value)}"))

    def _tls_failure(self, reason: BaseException | None) -> Exception:
        host = self._endpoint.host
        through = (
            ""
            if self._endpoint.proxy is None
            else f" (through the proxy {self._endpoint.proxy.url})"
        )
        trusted = self._endpoint.trust.description
        if self._problem.reason is not None:
            return TlsVerificationError(
                f"TLS verification failed for {host}{through}: {self._problem.reason} "
                f"(certificate issued by {self._problem.issuer}, checked against {trusted}). "
                "If a proxy re-signs TLS with your company's certificate authority, give its "
                "PEM file as ca_bundle"
            )
        if type(reason).__name__ == "VerificationError":  # service_identity's: wrong host name
            return TlsVerificationError(
                f"TLS verification failed for {host}{through}: the certificate is not valid "
                f"for {host}. If a proxy re-signs TLS, give its certificate authority as ca_bundle"
            )
        return TransportError(f"TLS handshake with {host}{through} failed: {_text(reason)}")

    def _fail(self, failure: Exception) -> None:
        self._fail_ready(failure)
        assert self.transport is not None
        self.transport.abortConnection()  # type: ignore[attr-defined]

    def _fail_ready(self, failure: Exception) -> None:
        if not self._ready.called:
            self._ready.errback(Failure(failure))


class _OneProtocol:
    """The factory of the one protocol that a connection to the proxy (or host) runs."""

    def __init__(self, protocol: _TunnelProtocol) -> None:
        self._protocol = protocol

    def buildProtocol(self, addr: Any) -> _TunnelProtocol:
        return self._protocol

    def doStart(self) -> None:
        """Nothing to start."""

    def doStop(self) -> None:
        """Nothing to stop."""


@implementer(IStreamClientEndpoint)
class TlsEndpoint:
    """Connects to ``host``:``port`` over TLS, through ``proxy``'s tunnel when one is given.

    :param transport_endpoint: where the TCP connection goes: the proxy, or the host.
    """

    def __init__(
        self,
        *,
        transport_endpoint: IStreamClientEndpoint,
        host: str,
        port: int,
        proxy: ProxyServer | None,
        trust: TrustPolicy,
    ) -> None:
        self._transport_endpoint = transport_endpoint
        self.host = host
        self.port = port
        self.proxy = proxy
        self.trust = trust

    def __repr__(self) -> str:
        through = "" if self.proxy is None else f" via {self.proxy.url}"
        return f"<TlsEndpoint {self.host}:{self.port}{through}>"

    def connect(self, protocolFactory: IProtocolFactory) -> defer.Deferred[IProtocol]:
        """Fires with the HTTP client's protocol once TLS to the host is up."""
        connecting: defer.Deferred[Any] | None = None
        tunnel: _TunnelProtocol | None = None

        def cancel(ready: defer.Deferred[IProtocol]) -> None:
            if connecting is not None and not connecting.called:
                connecting.cancel()
            elif tunnel is not None and tunnel.transport is not None:
                tunnel.transport.abortConnection()  # type: ignore[attr-defined]
            # Returning without firing ``ready`` lets it fail with CancelledError.

        ready: defer.Deferred[IProtocol] = defer.Deferred(cancel)
        tunnel = _TunnelProtocol(self, protocolFactory, ready)
        connecting = self._transport_endpoint.connect(_OneProtocol(tunnel))  # type: ignore[arg-type]

        def not_connected(reason: Failure) -> None:
            if not ready.called:
                if reason.check(defer.CancelledError, error.ConnectingCancelledError):
                    ready.errback(Failure(defer.CancelledError()))
                else:
                    ready.errback(Failure(unreachable(reason.value, self.proxy, self.host)))

        connecting.addErrback(not_connected)
        return ready
