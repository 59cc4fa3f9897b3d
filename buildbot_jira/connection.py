"""One client and one token cache per Jira site and credentials, shared in a master.

Every reporter and step of a master that names the same ``api_url`` and
client credentials uses one :class:`~buildbot_jira.jira.auth.TokenCache` (so
one token, renewed once), and those that also name the same site and retry
the same way use one :class:`~buildbot_jira.jira.client.JiraCloud` (so the
cloud ID is looked up once, and one pace and one view of Jira's rate limits
hold for all of them). A :class:`ConnectionPool` hands out counted
references (:class:`JiraConnection`) and closes the HTTP connections when
the last user of them is gone. Each user may give its name (a reporter's or
step's): the shared client's log lines name everyone who shares it.

In a master, the pool is the :class:`JiraConnections` service, which
Buildbot's :class:`~buildbot.util.service.SharedService` keeps once per
master (:func:`connect` finds it). A program without a master
(``buildbot-jira check``) takes a pool of its own with
:func:`open_connection`.

The proxy and the trust roots belong to the transport, so they are part of
the token key; a proxy given as a renderable (its password a secret) is
rendered by :func:`connect`, with the master's secrets providers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar, cast

import attrs
from buildbot.interfaces import IRenderable
from buildbot.util.service import SharedService
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from buildbot_jira.arguments import check_proxy
from buildbot_jira.jira.auth import ClientCredentials, TokenCache
from buildbot_jira.jira.client import JiraCloud
from buildbot_jira.jira.errors import JiraConfigError
from buildbot_jira.jira.http import HttpTransport
from buildbot_jira.jira.proxy import ProxyServer
from buildbot_jira.jira.retry import RetryPolicy
from buildbot_jira.jira.trust import TrustSettings
from buildbot_jira.sites import JiraSite

__all__ = [
    "ConnectionPool",
    "JiraConnection",
    "JiraConnections",
    "client_key",
    "connect",
    "open_connection",
    "render_proxy",
    "token_key",
    "transport_key",
]

T = TypeVar("T")

#: What decides sharing: plain values (a digest of the secret, never the secret).
Key = tuple[Any, ...]


def token_key(site: JiraSite[str]) -> Key:
    """What decides which token cache (and transport) two users share."""
    # A digest, so that the secret itself is kept nowhere but in the credentials.
    digest = hashlib.sha256(site.client_secret.encode("utf-8")).hexdigest()
    return (site.api_url, site.client_id, digest, site.timeout, *transport_key(site))


def transport_key(site: JiraSite[str]) -> Key:
    """What decides how the transport reaches the site: the proxy and the trust roots."""
    proxy = site.proxy.sharing_key() if isinstance(site.proxy, ProxyServer) else site.proxy
    return (proxy, site.ca_bundle, site.ca_bundle_only)


def client_key(site: JiraSite[str], retry: RetryPolicy) -> Key:
    """What decides which client two users share."""
    return (
        *token_key(site),
        site.site,
        site.site_url,
        site.cloud_id,
        site.min_request_interval,
        retry,
    )


@attrs.frozen
class _Keys:
    token: Key
    client: Key


@attrs.define
class _Shared(Generic[T]):
    value: T
    users: int = 0


class JiraConnection:
    """A counted reference to a shared :class:`JiraCloud` and its token cache."""

    def __init__(
        self,
        pool: ConnectionPool,
        site: JiraSite[str],
        client: JiraCloud,
        keys: _Keys,
        user: str | None = None,
    ) -> None:
        self._pool = pool
        self._keys = keys
        self._released = False
        self.site = site
        self.client = client
        #: The name of whoever holds this reference, in the client's log lines.
        self.user = user

    def __repr__(self) -> str:
        return f"<JiraConnection site={self.site.site!r}>"

    async def release(self) -> None:
        """Give the reference back; the last one closes the HTTP connections."""
        if not self._released:
            self._released = True
            if self.user is not None:
                self.client.users.discard(self.user)
            await self._pool.release(self._keys)


class ConnectionPool:
    """Transports and token caches (by :func:`token_key`), clients (by :func:`client_key`).

    :param reactor: does the networking (the global reactor by default).
    :param clock: times requests, retries and tokens (``reactor`` by default).
    :param environ: the environment variables that name a proxy or a CA
        bundle when the site does not (``os.environ`` by default).
    """

    def __init__(
        self,
        *,
        reactor: Any = None,
        clock: IReactorTime | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._reactor = reactor
        self._clock = clock
        self._environ = environ
        self._transports: dict[Key, _Shared[HttpTransport]] = {}
        self._caches: dict[Key, _Shared[TokenCache]] = {}
        self._clients: dict[Key, _Shared[JiraCloud]] = {}

    def __repr__(self) -> str:
        return f"<ConnectionPool clients={len(self._clients)} token caches={len(self._caches)}>"

    def acquire(
        self, site: JiraSite[str], *, retry: RetryPolicy, user: str | None = None
    ) -> JiraConnection:
        """A connection to ``site``, shared with every other user of the same settings.

        ``user`` names the reporter or step that uses it, for the client's log lines.
        """
        keys = _Keys(token=token_key(site), client=client_key(site, retry))
        transport = self._take(
            self._transports,
            keys.token,
            lambda: self._transport(site),
        )
        cache = self._take(
            self._caches,
            keys.token,
            lambda: TokenCache(
                credentials=ClientCredentials(
                    client_id=site.client_id, client_secret=site.client_secret
                ),
                transport=transport,
                api_url=site.api_url,
                timeout=site.timeout,
                site=site.site,
            ),
        )
        client = self._take(
            self._clients,
            keys.client,
            lambda: JiraCloud(
                site=site.site,
                token_cache=cache,
                transport=transport,
                cloud_id=site.cloud_id,
                api_url=site.api_url,
                site_url=site.site_url,
                timeout=site.timeout,
                retry=retry,
                min_request_interval=site.min_request_interval,
            ),
        )
        if user is not None:
            client.users.add(user)
        return JiraConnection(self, site, client, keys, user)

    def _transport(self, site: JiraSite[str]) -> HttpTransport:
        if IRenderable.providedBy(site.proxy):
            raise JiraConfigError("proxy must be rendered before connecting (see connect())")
        return HttpTransport(
            reactor=self._reactor,
            clock=self._clock,
            proxy=site.proxy,
            trust=TrustSettings(ca_bundle=site.ca_bundle, ca_bundle_only=site.ca_bundle_only),
            environ=self._environ,
        )

    async def release(self, keys: _Keys) -> None:
        """Drop one user of ``keys``; close the transport that nobody uses any more."""
        self._drop(self._clients, keys.client)
        self._drop(self._caches, keys.token)
        transport = self._drop(self._transports, keys.token)
        if transport is not None:
            await transport.close()

    async def close(self) -> None:
        """Close every transport, used or not: the pool's owner is stopping."""
        transports = [shared.value for shared in self._transports.values()]
        self._transports.clear()
        self._caches.clear()
        self._clients.clear()
        for transport in transports:
            await transport.close()

    @staticmethod
    def _take(table: dict[Key, _Shared[T]], key: Key, make: Callable[[], T]) -> T:
        shared = table.get(key)
        if shared is None:
            shared = table[key] = _Shared(make())
        shared.users += 1
        return shared.value

    @staticmethod
    def _drop(table: dict[Key, _Shared[T]], key: Key) -> T | None:
        """The value of ``key`` when its last user is gone, else None."""
        shared = table.get(key)
        if shared is None:
            return None  # the pool was closed while the connection was in use
        shared.users -= 1
        if shared.users > 0:
            return None
        del table[key]
        return shared.value


class JiraConnections(SharedService):
    """The master's :class:`ConnectionPool`; :func:`connect` finds it (or adds it).

    Buildbot starts shared services first and stops them last, so every
    reporter and step has released its connections when this closes what
    is left.
    """

    def __init__(self) -> None:
        super().__init__()
        self._pool: ConnectionPool | None = None

    def acquire(
        self, site: JiraSite[str], *, retry: RetryPolicy, user: str | None = None
    ) -> JiraConnection:
        """A connection to ``site`` from the master's pool."""
        if self._pool is None:
            self._pool = ConnectionPool(reactor=self.master.reactor)
        return self._pool.acquire(site, retry=retry, user=user)

    def stopService(self) -> defer.Deferred[None]:
        """Stop, then close whatever connections are left."""

        async def stop() -> None:
            await super(JiraConnections, self).stopService()
            pool, self._pool = self._pool, None
            if pool is not None:
                await pool.close()

        return defer.Deferred.fromCoroutine(stop())


async def connect(
    master: Any, site: JiraSite[str], *, retry: RetryPolicy, user: str | None = None
) -> JiraConnection:
    """A connection to ``site``, shared with every other user of it in ``master``.

    ``user`` is the name of the reporter or step that asks (its log lines name it).
    """
    connections = cast(JiraConnections, await JiraConnections.getService(master))
    return connections.acquire(await render_proxy(master, site), retry=retry, user=user)


async def render_proxy(master: Any, site: JiraSite[str]) -> JiraSite[str]:
    """``site`` with a renderable ``proxy`` rendered (secrets from ``master``) and checked.

    Raises :class:`JiraConfigError` when the proxy cannot be rendered or is
    not a proxy URL; the message never quotes the rendered value.
    """
    if not IRenderable.providedBy(site.proxy):
        return site
    # Buildbot's own way to render a secret outside a build (BuildbotService.renderSecrets).
    from buildbot.process.properties import Properties

    properties = Properties()
    properties.master = master
    try:
        value = await properties.render(site.proxy)
    except (KeyError, ValueError, TypeError) as problem:
        raise JiraConfigError(f"proxy could not be rendered: {problem}") from None
    return attrs.evolve(site, proxy=check_proxy(None if value is None else str(value), "proxy"))


def open_connection(
    site: JiraSite[str], *, retry: RetryPolicy, reactor: Any = None
) -> JiraConnection:
    """A connection with a pool of its own, for a program that runs no master.

    Releasing it closes its HTTP connections.
    """
    return ConnectionPool(reactor=reactor).acquire(site, retry=retry)
