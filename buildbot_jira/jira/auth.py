"""OAuth 2.0 client credentials (2LO) for Jira Software Cloud.

A Jira site admin creates a client ID and secret; :class:`TokenCache` trades
them for a short-lived access token at ``{api_url}/oauth/token``, keeps it
until shortly before it expires, and makes sure that any number of callers
waiting for a token cause exactly one token request.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import attrs
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from buildbot_jira.jira.errors import JiraAuthError, JiraUnavailableError
from buildbot_jira.jira.http import (
    DEFAULT_TIMEOUT,
    HttpTransport,
    TransportError,
    parse_retry_after,
)

__all__ = [
    "DEFAULT_API_URL",
    "AccessToken",
    "ClientCredentials",
    "TokenCache",
    "TokenUnavailable",
    "hidden_repr",
]

DEFAULT_API_URL = "https://api.atlassian.com"

T = TypeVar("T")


def hidden_repr(_value: object) -> str:
    """The ``repr`` of a secret field (``attrs.field(repr=hidden_repr)``): never the value."""
    return "'***'"


@attrs.frozen
class ClientCredentials:
    """A client ID and its secret; the secret never shows in a ``repr``."""

    client_id: str = attrs.field(validator=attrs.validators.instance_of(str))
    client_secret: str = attrs.field(validator=attrs.validators.instance_of(str), repr=hidden_repr)

    def redact(self, text: str) -> str:
        """``text`` with the secret blanked out, should a remote echo it."""
        return text.replace(self.client_secret, "***") if self.client_secret else text


@attrs.frozen
class AccessToken:
    """An access token and the clock times between which it is handed out."""

    value: str = attrs.field(repr=hidden_repr)
    obtained_at: float
    expires_at: float
    refresh_at: float

    def usable_at(self, now: float) -> bool:
        """Whether the token may still be handed out at clock time ``now``."""
        return now < self.refresh_at


class TokenUnavailable(JiraUnavailableError):
    """The token endpoint did not answer usefully; retrying later may help.

    Raised for connection failures, timeouts, 5xx and 429, which say nothing
    about the credentials (those are :class:`JiraAuthError`).
    ``retry_after`` is what the server asked for.
    """


class SingleFlight:
    """Runs one coroutine at a time for any number of waiters.

    Every caller that arrives while a run is under way gets that run's
    result (or failure), each through a Deferred of its own so that no
    waiter can disturb another's result.
    """

    def __init__(self) -> None:
        self._waiters: list[defer.Deferred[Any]] | None = None

    @property
    def running(self) -> bool:
        """Whether a run is under way."""
        return self._waiters is not None

    async def run(self, start: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Join the run under way, or start ``start()`` (a coroutine function).

        A caller that joins gets the result of the run under way, whatever
        ``start`` it passed: every run of one SingleFlight must compute the
        same thing.
        """
        waiter: defer.Deferred[T] = defer.Deferred()
        if self._waiters is not None:
            self._waiters.append(waiter)
            return await waiter
        self._waiters = [waiter]
        defer.Deferred.fromCoroutine(start()).addBoth(self._finish)
        return await waiter

    def _finish(self, result: object) -> None:
        waiters, self._waiters = self._waiters or [], None
        for waiter in waiters:
            if isinstance(result, Failure):
                waiter.errback(result)
            else:
                waiter.callback(result)
        # The outcome has been handed to every waiter; returning None keeps
        # Twisted from reporting a handed-on failure as unhandled.


class TokenCache:
    """Access tokens for one set of client credentials on one Jira site.

    :param credentials: the client ID and secret created by a Jira site admin.
    :param transport: the HTTP transport to send the token requests with.
    :param api_url: the OAuth gateway, ``https://api.atlassian.com`` for Jira Cloud.
    :param clock: the clock that decides when a token must be renewed.
    :param margin: renew a token this many seconds before it expires; never
        more than half the token's lifetime.
    :param timeout: seconds to wait for the token endpoint.
    :param site: the Jira site, named in error messages.
    """

    def __init__(
        self,
        *,
        credentials: ClientCredentials,
        transport: HttpTransport,
        api_url: str = DEFAULT_API_URL,
        clock: IReactorTime | None = None,
        margin: float = 60.0,
        timeout: float = DEFAULT_TIMEOUT,
        site: str = "",
    ) -> None:
        if margin < 0:
            raise ValueError("margin must not be negative")
        self.credentials = credentials
        self.api_url = api_url.rstrip("/")
        self.site = site
        self._transport = transport
        self._clock = clock if clock is not None else transport.clock
        self._margin = margin
        self._timeout = timeout
        self._token: AccessToken | None = None
        self._flight = SingleFlight()
        #: How many token requests this cache has sent (for logs and tests).
        self.requests_sent = 0

    def __repr__(self) -> str:
        return (
            f"<TokenCache site={self.site!r} client_id={self.credentials.client_id!r} "
            f"api_url={self.api_url!r}>"
        )

    @property
    def current(self) -> AccessToken | None:
        """The token held now, usable or not."""
        return self._token

    async def get_token(self) -> str:
        """A valid access token, from the cache or from one new token request."""
        token = self._token
        if token is not None and token.usable_at(self._clock.seconds()):
            return token.value
        fetched = await self._flight.run(self._fetch)
        return fetched.value

    def invalidate(self, token: str) -> None:
        """Forget ``token`` (Jira answered 401 to it); a newer token is kept."""
        if self._token is not None and self._token.value == token:
            self._token = None

    async def _fetch(self) -> AccessToken:
        body = {
            "audience": "api.atlassian.com",
            "grant_type": "client_credentials",
            "client_id": self.credentials.client_id,
            "client_secret": self.credentials.client_secret,
        }
        self.requests_sent += 1
        try:
            response = await self._transport.request(
                "POST", f"{self.api_url}/oauth/token", json_body=body, timeout=self._timeout
            )
        except TransportError as failure:
            raise TokenUnavailable(f"{self._who()}: token request failed: {failure}") from None
        if response.status == 429 or response.status >= 500:
            raise TokenUnavailable(
                f"{self._who()}: the token endpoint answered HTTP {response.status}",
                retry_after=parse_retry_after(response.header("Retry-After")),
            )
        if response.status != 200:
            raise JiraAuthError(self._refusal(response.status, response.body))
        try:
            data = response.json()
            value = data["access_token"]
            lifetime = float(data["expires_in"])
            if not isinstance(value, str) or not value or lifetime <= 0:
                raise ValueError
        except (ValueError, KeyError, TypeError):
            raise JiraAuthError(
                f"{self._who()}: the token endpoint answered 200 without a usable "
                "access_token and expires_in; check api_url"
            ) from None
        now = self._clock.seconds()
        margin = min(self._margin, lifetime / 2)
        token = AccessToken(
            value=value,
            obtained_at=now,
            expires_at=now + lifetime,
            refresh_at=now + lifetime - margin,
        )
        self._token = token
        return token

    def _who(self) -> str:
        site = f"Jira site {self.site!r}, " if self.site else ""
        return f"{site}client ID {self.credentials.client_id!r}"

    def _refusal(self, status: int, body: bytes) -> str:
        detail = ""
        try:
            data = _json_object(body)
            parts = [str(data[name]) for name in ("error", "error_description") if data.get(name)]
            detail = ": " + ": ".join(parts) if parts else ""
        except ValueError:
            pass
        message = (
            f"{self._who()}: Jira refused the OAuth client credentials "
            f"(HTTP {status}{detail}). Check the client ID and secret under Jira "
            "Settings > Apps > OAuth credentials, and that api_url is right"
        )
        return self.credentials.redact(message)


def _json_object(body: bytes) -> dict[str, Any]:
    data = json.loads(body.decode("utf-8", "replace"))
    if not isinstance(data, dict):
        raise ValueError("not an object")
    return data
