"""One client and one token cache per Jira site and credentials, shared in a master.

Every reporter and step of a master that names the same ``api_url`` and
client ID uses one :class:`~buildbot_jira.jira.auth.TokenCache` (so one token,
renewed once), and those that also name the same site use one
:class:`~buildbot_jira.jira.client.JiraCloud` (so the cloud ID is looked up once).
:func:`acquire` hands out a counted reference; :meth:`JiraConnection.release`
closes the connections when the last user is gone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import attrs
from twisted.internet.interfaces import IReactorTime

from buildbot_jira.jira.auth import DEFAULT_API_URL, ClientCredentials, TokenCache
from buildbot_jira.jira.client import JiraCloud, RetryPolicy
from buildbot_jira.jira.http import HttpTransport

__all__ = ["JiraConnection", "SiteSettings", "acquire"]


def _hidden(_value: object) -> str:
    return "'***'"


@attrs.frozen
class SiteSettings:
    """Where a Jira site is and how to authenticate to it."""

    site: str
    client_id: str
    client_secret: str = attrs.field(repr=_hidden)
    api_url: str = DEFAULT_API_URL
    site_url: str | None = None
    cloud_id: str | None = None
    timeout: float = 30.0
    token_margin: float = 60.0
    retry: RetryPolicy = attrs.field(factory=RetryPolicy)

    def credentials(self) -> ClientCredentials:
        """The OAuth client credentials."""
        return ClientCredentials(client_id=self.client_id, client_secret=self.client_secret)

    def _secret_digest(self) -> str:
        return hashlib.sha256(self.client_secret.encode("utf-8")).hexdigest()

    def token_key(self) -> tuple[Any, ...]:
        """What decides which token cache is shared."""
        return (
            self.api_url,
            self.client_id,
            self._secret_digest(),
            self.timeout,
            self.token_margin,
        )

    def client_key(self) -> tuple[Any, ...]:
        """What decides which client is shared."""
        return (*self.token_key(), self.site, self.site_url, self.cloud_id, self.retry)


class JiraConnection:
    """A counted reference to a shared :class:`JiraCloud` and its token cache."""

    def __init__(
        self, registry: _Registry, settings: SiteSettings, client: JiraCloud, keys: _Keys
    ) -> None:
        self._registry = registry
        self._keys = keys
        self._released = False
        self.settings = settings
        self.client = client

    def __repr__(self) -> str:
        return f"<JiraConnection site={self.settings.site!r}>"

    async def release(self) -> None:
        """Give the reference back; the last one closes the HTTP connections."""
        if not self._released:
            self._released = True
            await self._registry.release(self._keys)


@attrs.frozen
class _Keys:
    token: tuple[Any, ...]
    client: tuple[Any, ...]


@attrs.define
class _Shared:
    value: Any
    users: int = 0


class _Registry:
    """Shared transports and token caches (by token key) and clients (by client key)."""

    def __init__(self) -> None:
        self._transports: dict[tuple[Any, ...], _Shared] = {}
        self._caches: dict[tuple[Any, ...], _Shared] = {}
        self._clients: dict[tuple[Any, ...], _Shared] = {}

    def acquire(
        self, settings: SiteSettings, *, reactor: Any = None, clock: IReactorTime | None = None
    ) -> JiraConnection:
        # Tests run several reactors and clocks in one process: never share across them.
        scope = (id(reactor), id(clock))
        keys = _Keys(token=(*scope, *settings.token_key()), client=(*scope, *settings.client_key()))
        transport: HttpTransport = self._take(
            self._transports, keys.token, lambda: HttpTransport(reactor=reactor, clock=clock)
        )
        cache: TokenCache = self._take(
            self._caches,
            keys.token,
            lambda: TokenCache(
                credentials=settings.credentials(),
                transport=transport,
                api_url=settings.api_url,
                margin=settings.token_margin,
                timeout=settings.timeout,
                site=settings.site,
            ),
        )
        client: JiraCloud = self._take(
            self._clients,
            keys.client,
            lambda: JiraCloud(
                site=settings.site,
                token_cache=cache,
                transport=transport,
                cloud_id=settings.cloud_id,
                api_url=settings.api_url,
                site_url=settings.site_url,
                timeout=settings.timeout,
                retry=settings.retry,
            ),
        )
        return JiraConnection(self, settings, client, keys)

    @staticmethod
    def _take(
        table: dict[tuple[Any, ...], _Shared], key: tuple[Any, ...], make: Callable[[], Any]
    ) -> Any:
        shared = table.get(key)
        if shared is None:
            shared = table[key] = _Shared(make())
        shared.users += 1
        return shared.value

    @staticmethod
    def _drop(table: dict[tuple[Any, ...], _Shared], key: tuple[Any, ...]) -> Any:
        shared = table[key]
        shared.users -= 1
        if shared.users > 0:
            return None
        del table[key]
        return shared.value

    async def release(self, keys: _Keys) -> None:
        self._drop(self._clients, keys.client)
        self._drop(self._caches, keys.token)
        transport = self._drop(self._transports, keys.token)
        if transport is not None:
            await transport.close()


_registry = _Registry()


def acquire(
    settings: SiteSettings, *, reactor: Any = None, clock: IReactorTime | None = None
) -> JiraConnection:
    """A connection to the site of ``settings``, shared with every other user of it."""
    return _registry.acquire(settings, reactor=reactor, clock=clock)
