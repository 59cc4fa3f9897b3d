"""The ``IAgent`` under the transport: each request direct or through its proxy, pooled.

:class:`RoutingAgent` asks :class:`~buildbot_jira.jira.proxy.ProxyRoutes`
for each URL's proxy, then:

- ``https://``: a :class:`~buildbot_jira.jira.tunnel.TlsEndpoint`, through
  the proxy's CONNECT tunnel or direct, with the configured trust roots;
- ``http://`` (a loopback host only) through a proxy: Twisted's
  ``ProxyAgent``, which sends the absolute-URI form a proxy expects;
- ``http://`` direct: a plain TCP connection.

All of them share one connection pool: tunnelled connections are kept and
reused like direct ones, keyed by the target host (and, for plain http
through a proxy, by the proxy).
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.interfaces import IProtocol, IProtocolFactory, IStreamClientEndpoint
from twisted.python.failure import Failure
from twisted.web import client as web_client
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgent, IAgentEndpointFactory, IBodyProducer, IResponse
from zope.interface import implementer

from buildbot_jira.jira.proxy import ProxyRoutes, ProxyServer
from buildbot_jira.jira.trust import TrustPolicy
from buildbot_jira.jira.tunnel import TlsEndpoint, unreachable

__all__ = ["RoutingAgent"]

#: Seconds to wait for a TCP connection (to the proxy or the host); the
#: transport's own timeout bounds the whole exchange anyway.
CONNECT_TIMEOUT = 30


@implementer(IStreamClientEndpoint)
class _NamedEndpoint:
    """An endpoint whose failure to connect names the proxy (or host) it was for."""

    def __init__(self, endpoint: IStreamClientEndpoint, proxy: ProxyServer | None, host: str):
        self._endpoint = endpoint
        self._proxy = proxy
        self._host = host

    def connect(self, protocolFactory: IProtocolFactory) -> defer.Deferred[IProtocol]:
        """Connect, turning a refused or unknown address into a named error."""

        def named(reason: Failure) -> Failure:
            if reason.check(defer.CancelledError):
                return reason
            return Failure(unreachable(reason.value, self._proxy, self._host))

        connecting: defer.Deferred[IProtocol] = self._endpoint.connect(protocolFactory)
        return connecting.addErrback(named)


@implementer(IAgentEndpointFactory)
class _Endpoints:
    """The endpoint for each URL that the pooled ``Agent`` connects to."""

    def __init__(self, reactor: Any, routes: ProxyRoutes, trust: TrustPolicy) -> None:
        self._reactor = reactor
        self._routes = routes
        self._trust = trust

    def endpointForURI(self, uri: web_client.URI) -> IStreamClientEndpoint:
        """TLS (tunnelled or direct) for https, plain TCP for http."""
        scheme, host = uri.scheme.decode("ascii"), uri.host.decode("idna")
        if scheme != "https":
            return _NamedEndpoint(self._tcp(host, uri.port), None, host)
        proxy = self._routes.proxy_for(scheme, host, uri.port)
        transport = (
            self._tcp(host, uri.port) if proxy is None else self._tcp(proxy.host, proxy.port)
        )
        return TlsEndpoint(
            transport_endpoint=transport,
            host=host,
            port=uri.port,
            proxy=proxy,
            trust=self._trust,
        )

    def _tcp(self, host: str, port: int) -> IStreamClientEndpoint:
        return HostnameEndpoint(self._reactor, host, port, timeout=CONNECT_TIMEOUT)


@implementer(IAgent)
class RoutingAgent:
    """Sends each request direct or through its proxy, over one connection pool."""

    def __init__(
        self,
        *,
        reactor: Any,
        pool: web_client.HTTPConnectionPool,
        routes: ProxyRoutes,
        trust: TrustPolicy,
    ) -> None:
        self._reactor = reactor
        self._pool = pool
        self._routes = routes
        self._agent = web_client.Agent.usingEndpointFactory(
            reactor, _Endpoints(reactor, routes, trust), pool=pool
        )
        # One ProxyAgent per proxy: its pool key is its endpoint, so keeping
        # the endpoint keeps the pooled connections.
        self._http_proxies: dict[tuple[str, int], web_client.ProxyAgent] = {}

    def proxy_for(self, uri: bytes) -> ProxyServer | None:
        """The proxy that a request to ``uri`` goes through, or None."""
        parsed = web_client.URI.fromBytes(uri)
        return self._routes.proxy_for(
            parsed.scheme.decode("ascii"), parsed.host.decode("idna"), parsed.port
        )

    def request(
        self,
        method: bytes,
        uri: bytes,
        headers: Headers | None = None,
        bodyProducer: IBodyProducer | None = None,
    ) -> defer.Deferred[IResponse]:
        """Send the request the way its URL's route says."""
        proxy = self.proxy_for(uri)
        if proxy is None or uri.startswith(b"https:"):
            return self._agent.request(method, uri, headers, bodyProducer)
        headers = headers.copy() if headers is not None else Headers()
        authorization = proxy.authorization()
        if authorization is not None:
            headers.setRawHeaders(b"Proxy-Authorization", [authorization])
        return self._http_agent(proxy).request(method, uri, headers, bodyProducer)

    def _http_agent(self, proxy: ProxyServer) -> web_client.ProxyAgent:
        agent = self._http_proxies.get((proxy.host, proxy.port))
        if agent is None:
            endpoint = _NamedEndpoint(
                HostnameEndpoint(self._reactor, proxy.host, proxy.port, timeout=CONNECT_TIMEOUT),
                proxy,
                proxy.host,
            )
            agent = web_client.ProxyAgent(endpoint, self._reactor, pool=self._pool)
            self._http_proxies[(proxy.host, proxy.port)] = agent
        return agent
