"""The HTTP transport under the token cache and the Jira client.

One place decides how buildbot-jira talks HTTP: treq over a persistent
connection pool (or over any ``IAgent`` handed in, such as an in-memory one in
tests), a timeout on the whole exchange (headers and body) measured on an
injectable clock, redirects never followed (a POST must never turn into a
GET), answers cut off at :data:`MAX_RESPONSE_BYTES`, and, through
:func:`check_base_url`, plain ``http://`` refused unless the host is this
machine, so that secrets never travel in clear text across a network.
Requests go direct or through an HTTP proxy (:mod:`~buildbot_jira.jira.proxy`,
:mod:`~buildbot_jira.jira.routing`), certificates are checked against the
configured trust roots (:mod:`~buildbot_jira.jira.trust`).
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import attrs
import treq
from treq.client import HTTPClient
from twisted.internet import defer, error
from twisted.internet.interfaces import IConsumer, IReactorTime
from twisted.web import client as web_client
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgent, IBodyProducer
from zope.interface import implementer

from buildbot_jira.jira.errors import JiraConfigError, JiraError
from buildbot_jira.jira.proxy import FROM_ENVIRONMENT, ProxyServer, ProxySetting, proxy_routes

# Re-exported: the auth and client modules read Retry-After from here.
from buildbot_jira.jira.rate_limit_headers import parse_retry_after
from buildbot_jira.jira.routing import RoutingAgent
from buildbot_jira.jira.transport_errors import ProxyAuthError, ProxyTimeoutError, TransportError
from buildbot_jira.jira.trust import TrustPolicy, TrustSettings

__all__ = [
    "DEFAULT_TIMEOUT",
    "HttpResponse",
    "HttpTransport",
    "QuietConnectionPool",
    "TransportError",
    "check_base_url",
    "is_loopback_host",
    "parse_retry_after",
]

#: Jira's answers are small JSON documents; anything larger is cut off here
#: rather than held in the master's memory.
MAX_RESPONSE_BYTES = 4 * 1024 * 1024

#: Seconds to wait for one request to Jira, unless configured otherwise.
DEFAULT_TIMEOUT = 30.0


@attrs.frozen
class HttpResponse:
    """An HTTP answer, read in full."""

    status: int
    headers: Mapping[str, str]
    body: bytes = attrs.field(repr=lambda body: f"<{len(body)} bytes>")

    def header(self, name: str) -> str | None:
        """The first value of the header ``name`` (case-insensitive), if any."""
        return self.headers.get(name.lower())

    def json(self) -> Any:
        """The body parsed as JSON; ``ValueError`` when it is not JSON."""
        return json.loads(self.body.decode("utf-8"))

    def json_or_none(self) -> Any:
        """The body parsed as JSON, or None when it is not JSON."""
        try:
            return self.json()
        except ValueError:
            return None


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` names this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(url: object, *, argument: str) -> str:
    """Validate a base URL from the configuration and return it without a trailing slash.

    ``https://`` is required, except for a loopback host (the simulator), so
    that client secrets and tokens are never sent in clear text off the
    machine.
    """
    if not isinstance(url, str) or not url:
        raise JiraConfigError(f"{argument} must be a URL string, not {url!r}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise JiraConfigError(f"{argument} must be an https:// URL, not {url!r}")
    if parts.query or parts.fragment:
        raise JiraConfigError(f"{argument} must not have a query or fragment: {url!r}")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise JiraConfigError(
            f"{argument} {url!r} uses plain http:// to a host other than this machine; "
            "use https:// so that credentials are never sent in clear text"
        )
    return url.rstrip("/")


def _describe(method: bytes | str, url: str) -> str:
    parts = urlsplit(url)
    method_text = method.decode() if isinstance(method, bytes) else method
    return f"{method_text} {parts.scheme}://{parts.netloc}{parts.path}"


class _QuietClientFactory(web_client._HTTP11ClientFactory):
    """Twisted's factory for one HTTP connection, without its start and stop lines."""

    # Each new connection would log "Starting factory" and "Stopping factory":
    # during an outage, one pair per retry, burying the lines that matter.
    noisy = False


class QuietConnectionPool(web_client.HTTPConnectionPool):
    """An ``HTTPConnectionPool`` whose connections log nothing of their own."""

    _factory = _QuietClientFactory


class HttpTransport:
    """Sends HTTP requests for buildbot-jira and reads their answers in full.

    :param reactor: does the networking (the global reactor by default).
    :param clock: times the requests out (``reactor`` by default), so that
        tests can drive timeouts with ``twisted.internet.task.Clock``.
    :param agent: sends the requests instead of an ``Agent`` over a pool of
        persistent connections of our own; ``treq.testing.RequestTraversalAgent``
        serves a ``twisted.web`` resource in memory, without sockets. An
        agent handed in is its owner's to close, and ``proxy`` and ``trust``
        do not apply to it.
    :param proxy: the HTTP proxy for every host, None for none, or (by
        default) the proxy that ``HTTPS_PROXY`` and ``NO_PROXY`` name.
    :param trust: the certificate authorities to trust besides (or instead
        of) the system's.
    :param environ: the environment variables to read (``os.environ`` by default).

    Raises :class:`JiraConfigError` when a proxy variable or the CA bundle is wrong.
    Call :meth:`close` when done, to close the pooled connections.
    """

    def __init__(
        self,
        *,
        reactor: Any = None,
        clock: IReactorTime | None = None,
        agent: IAgent | None = None,
        proxy: ProxySetting = FROM_ENVIRONMENT,
        trust: TrustSettings | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor as global_reactor

            reactor = global_reactor
        self._clock: IReactorTime = clock if clock is not None else reactor
        self._pool: web_client.HTTPConnectionPool | None = None
        self._router: RoutingAgent | None = None
        if agent is None:
            environ = os.environ if environ is None else environ
            self._pool = QuietConnectionPool(reactor, persistent=True)
            self._pool.maxPersistentPerHost = 4
            # Idle connections are closed by us long before a proxy or Jira
            # would drop them half-open.
            self._pool.cachedConnectionTimeout = 60
            agent = self._router = RoutingAgent(
                reactor=reactor,
                pool=self._pool,
                routes=proxy_routes(proxy, environ),
                trust=TrustPolicy(trust or TrustSettings(), environ),
            )
        self._http = HTTPClient(agent)

    @property
    def clock(self) -> IReactorTime:
        """The clock that times requests out."""
        return self._clock

    async def request(
        self,
        method: str,
        url: str,
        *,
        json_body: object = None,
        headers: Mapping[str, str] | None = None,
        timeout: float,
    ) -> HttpResponse:
        """Send one request and read the whole answer, within ``timeout`` seconds.

        Raises :class:`TransportError` when no complete answer arrives.
        """
        send_headers = {"Accept": "application/json", **(headers or {})}
        data: _WholeBody | None = None
        if json_body is not None:
            data = _WholeBody(
                json.dumps(json_body, separators=(",", ":"), ensure_ascii=False).encode()
            )
            send_headers["Content-Type"] = "application/json"

        async def exchange() -> HttpResponse:
            response = await self._http.request(
                method,
                url,
                data=data,
                headers=Headers({key: [value] for key, value in send_headers.items()}),
                allow_redirects=False,
            )
            body = await _read_capped(response)
            names = {
                name.decode("latin-1").lower(): values[0].decode("latin-1")
                for name, values in response.headers.getAllRawHeaders()
                if values
            }
            return HttpResponse(status=response.code, headers=names, body=body)

        what = _describe(method, url)
        proxy = None if self._router is None else self._router.proxy_for(url.encode("ascii"))
        exchange_d = defer.Deferred.fromCoroutine(exchange())
        timed_out = False

        def time_out() -> None:
            nonlocal timed_out
            timed_out = True
            exchange_d.cancel()

        timer = self._clock.callLater(timeout, time_out)
        try:
            response = await exchange_d
        except defer.CancelledError:
            if timed_out:
                raise _timed_out(what, timeout, proxy) from None
            raise  # cancelled by our caller: let it know
        except JiraError as failure:
            # The route named the cause (proxy, tunnel, certificate): add the request.
            raise type(failure)(f"{what}: {failure}") from None
        except Exception as failure:  # noqa: BLE001 - see below
            # Whatever the network did (refused, reset, cancelled while
            # connecting, unreadable answer), the request got no answer.
            if timed_out:
                raise _timed_out(what, timeout, proxy) from None
            if _is_cancellation(failure):
                raise defer.CancelledError() from None  # our caller cancelled
            raise TransportError(f"{what}: {_failure_text(failure)}") from None
        finally:
            if timer.active():
                timer.cancel()
        if proxy is not None and response.status == 407:
            # Plain http through a proxy: the 407 is the proxy's, not Jira's.
            raise ProxyAuthError(
                f"{what}: the proxy {proxy.url} answered HTTP 407: proxy authentication "
                "required: check the proxy's user and password"
            )
        return response

    async def close(self) -> None:
        """Close the pooled connections (an agent handed in is left alone)."""
        if self._pool is not None:
            await self._pool.closeCachedConnections()


@implementer(IBodyProducer)
class _WholeBody:
    """A request body that is already in memory, written at once.

    treq would wrap bytes in a ``FileBodyProducer``, which writes them in
    chunks scheduled on the global reactor: needless for a JSON body that is
    whole in memory anyway, and it would tie an agent that runs on another
    clock (or in memory) to the global reactor.
    """

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.length = len(data)

    def startProducing(self, consumer: IConsumer) -> defer.Deferred[None]:
        """Write the whole body to ``consumer``."""
        consumer.write(self._data)
        return defer.succeed(None)

    def pauseProducing(self) -> None:
        """Nothing to pause: the body is written in one go."""

    def resumeProducing(self) -> None:
        """Nothing to resume: the body is written in one go."""

    def stopProducing(self) -> None:
        """Nothing to stop: the body is written in one go."""


def _timed_out(what: str, timeout: float, proxy: ProxyServer | None) -> TransportError:
    if proxy is None:
        return TransportError(f"{what}: no answer within {timeout:g} s")
    return ProxyTimeoutError(
        f"{what}: no answer within {timeout:g} s through the proxy {proxy.url}: "
        "the proxy, or Jira behind it, does not answer"
    )


def _is_cancellation(exception: BaseException) -> bool:
    """Whether a network failure is only the trace of a cancelled request."""
    if isinstance(exception, defer.CancelledError | error.ConnectingCancelledError):
        return True
    if isinstance(exception, web_client.ResponseFailed | web_client.ResponseNeverReceived):
        return any(_is_cancellation(reason.value) for reason in exception.reasons)
    return False


def _failure_text(exception: BaseException) -> str:
    if isinstance(exception, web_client.ResponseFailed | web_client.ResponseNeverReceived):
        reasons = "; ".join(_failure_text(r.value) for r in exception.reasons)
        return f"connection failed ({reasons})"
    text = str(exception).strip().splitlines()
    return f"{type(exception).__name__}: {text[0]}" if text else type(exception).__name__


async def _read_capped(response: Any) -> bytes:
    chunks: list[bytes] = []
    size = 0

    def collect(chunk: bytes) -> None:
        nonlocal size
        if size < MAX_RESPONSE_BYTES:
            chunks.append(chunk[: MAX_RESPONSE_BYTES - size])
            size += len(chunk)

    await treq.collect(response, collect)
    return b"".join(chunks)
