"""Which HTTP proxy a request goes through, if any: the ``proxy`` argument and the environment.

Pure rules, no I/O. A :class:`ProxyServer` is one ``http://[user:password@]host:port``
proxy; its password never shows in a ``repr``, a message or a sharing key.
:func:`proxy_routes` turns the ``proxy`` argument into :class:`ProxyRoutes`:

- a proxy given explicitly serves every host, this machine included, so that
  the whole path can be rehearsed on one machine;
- ``None`` given explicitly means never a proxy;
- not given (:data:`FROM_ENVIRONMENT`), the variables apply as curl and
  requests read them: ``https_proxy`` / ``HTTPS_PROXY`` for ``https://``
  URLs, ``http_proxy`` / ``HTTP_PROXY`` for plain ``http://`` ones (which
  only a loopback host may have), and ``no_proxy`` / ``NO_PROXY``: host
  names, domain suffixes (with or without a leading dot), ``*``, IP
  addresses, CIDR ranges, each optionally with ``:port``. From the
  environment, loopback goes direct only when ``NO_PROXY`` says so, as
  with curl.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import ipaddress
from collections.abc import Mapping
from typing import Final
from urllib.parse import unquote, urlsplit

import attrs

from buildbot_jira.jira.errors import JiraConfigError

__all__ = [
    "FROM_ENVIRONMENT",
    "FromEnvironment",
    "NoProxyRule",
    "ProxyRoutes",
    "ProxyServer",
    "ProxySetting",
    "parse_no_proxy",
    "proxy_routes",
]


class FromEnvironment(enum.Enum):
    """The ``proxy`` argument was not given: the environment decides."""

    FROM_ENVIRONMENT = "from the environment"

    def __repr__(self) -> str:
        return "FROM_ENVIRONMENT"


#: The ``proxy`` argument's default: ``HTTPS_PROXY`` and ``NO_PROXY`` decide.
FROM_ENVIRONMENT: Final = FromEnvironment.FROM_ENVIRONMENT

_HTTPS_VARIABLES: Final = ("https_proxy", "HTTPS_PROXY")
_HTTP_VARIABLES: Final = ("http_proxy", "HTTP_PROXY")
_NO_PROXY_VARIABLES: Final = ("no_proxy", "NO_PROXY")


def _hidden(value: object) -> str:
    return "None" if value is None else "'***'"


@attrs.frozen(kw_only=True)
class ProxyServer:
    """An HTTP proxy: where it listens and, optionally, the Basic credentials it wants."""

    host: str
    port: int
    user: str | None = None
    password: str | None = attrs.field(default=None, repr=_hidden)

    @classmethod
    def parse(cls, text: str, *, argument: str) -> ProxyServer:
        """``http://[user:password@]host[:port]`` (``http://`` may be left out; port 80 then).

        Raises :class:`JiraConfigError` naming ``argument``; the message
        never quotes the text, which may hold the password.
        """
        text = text.strip()
        if "://" not in text:
            text = "http://" + text  # curl reads "proxy:3128" as an http proxy too
        parts = urlsplit(text)
        try:
            given_port = parts.port
        except ValueError:
            raise JiraConfigError(f"{argument} has an invalid port ({parts.hostname})") from None
        shown = _without_credentials(parts.hostname, given_port)
        if parts.scheme.lower() != "http":
            raise JiraConfigError(
                f"{argument} must be an http:// proxy (https is tunnelled through it), "
                f"not {parts.scheme}:// ({shown})"
            )
        if not parts.hostname or parts.path not in ("", "/") or parts.query or parts.fragment:
            raise JiraConfigError(
                f"{argument} must look like http://host:port or http://user:password@host:port"
            )
        user = unquote(parts.username) if parts.username is not None else None
        password = unquote(parts.password) if parts.password is not None else None
        if password is not None and not user:
            raise JiraConfigError(f"{argument} has a password but no user name ({shown})")
        return cls(host=parts.hostname, port=given_port or 80, user=user or None, password=password)

    @property
    def url(self) -> str:
        """The proxy's address without its credentials: safe for a log line."""
        return _without_credentials(self.host, self.port)

    def authorization(self) -> bytes | None:
        """The ``Proxy-Authorization`` value for the credentials, if any."""
        if self.user is None:
            return None
        pair = f"{self.user}:{self.password or ''}".encode()
        return b"Basic " + base64.b64encode(pair)

    def sharing_key(self) -> tuple[str, int, str | None, str | None]:
        """What tells two proxies apart, with a digest instead of the password."""
        digest = None
        if self.password is not None:
            digest = hashlib.sha256(self.password.encode()).hexdigest()
        return (self.host.lower(), self.port, self.user, digest)


#: What the ``proxy`` argument holds once checked.
ProxySetting = ProxyServer | FromEnvironment | None


def _without_credentials(host: str | None, port: int | None) -> str:
    if host is None:
        return "http://?"
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}" if port is None else f"http://{shown}:{port}"


def _normal_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


@attrs.frozen
class NoProxyRule:
    """One entry of ``NO_PROXY``: every host (``*``), a name and its subdomains, or addresses.

    ``port`` limits the rule to one port when given.
    """

    name: str | None = None
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    port: int | None = None
    everything: bool = False

    def matches(self, host: str, port: int) -> bool:
        """Whether a request to ``host``:``port`` goes direct by this rule."""
        if self.port is not None and self.port != port:
            return False
        if self.everything:
            return True
        host = _normal_host(host)
        if self.network is not None:
            try:
                return ipaddress.ip_address(host) in self.network
            except ValueError:
                return False
        assert self.name is not None
        return host == self.name or host.endswith("." + self.name)


def parse_no_proxy(text: str) -> tuple[NoProxyRule, ...]:
    """The rules of a ``NO_PROXY`` value (commas or spaces between entries).

    An entry that is none of the known forms is skipped, as curl does: a typo
    there must not stop a master from starting.
    """
    rules: list[NoProxyRule] = []
    for entry in text.replace(",", " ").split():
        rule = _no_proxy_rule(entry.strip().lower())
        if rule is not None:
            rules.append(rule)
    return tuple(rules)


def _no_proxy_rule(entry: str) -> NoProxyRule | None:
    if entry == "*":
        return NoProxyRule(everything=True)
    port: int | None = None
    host = entry
    if entry.startswith("["):  # [v6]:port or [v6]
        inside, _, rest = entry[1:].partition("]")
        host = inside
        if rest.startswith(":") and rest[1:].isdigit():
            port = int(rest[1:])
    elif entry.count(":") == 1:
        name, _, number = entry.partition(":")
        if not number.isdigit():
            return None
        host, port = name, int(number)
    try:
        return NoProxyRule(network=ipaddress.ip_network(host, strict=False), port=port)
    except ValueError:
        pass
    name = host.removeprefix("*.").lstrip(".").rstrip(".")
    if not name or ":" in name or "/" in name:
        return None
    return NoProxyRule(name=name, port=port)


@attrs.frozen
class ProxyRoutes:
    """The proxy for each URL: an explicit one for all, or the environment's rules."""

    #: Serves every host when set (the ``proxy`` argument).
    explicit: ProxyServer | None = None
    https: ProxyServer | None = None
    http: ProxyServer | None = None
    no_proxy: tuple[NoProxyRule, ...] = ()

    def proxy_for(self, scheme: str, host: str, port: int) -> ProxyServer | None:
        """The proxy to reach ``scheme://host:port`` through, or None to go direct."""
        if self.explicit is not None:
            return self.explicit
        proxy = self.https if scheme == "https" else self.http
        if proxy is None or any(rule.matches(host, port) for rule in self.no_proxy):
            return None
        return proxy

    def sharing_key(self) -> tuple[object, ...]:
        """What tells two sets of routes apart, without a password."""
        return (
            None if self.explicit is None else self.explicit.sharing_key(),
            None if self.https is None else self.https.sharing_key(),
            None if self.http is None else self.http.sharing_key(),
            self.no_proxy,
        )


def proxy_routes(setting: ProxySetting, environ: Mapping[str, str]) -> ProxyRoutes:
    """The routes for a checked ``proxy`` argument, reading ``environ`` when it was not given.

    Raises :class:`JiraConfigError` naming the variable when one is not a proxy URL.
    """
    if isinstance(setting, ProxyServer):
        return ProxyRoutes(explicit=setting)
    if setting is None:
        return ProxyRoutes()
    no_proxy = _first(environ, _NO_PROXY_VARIABLES)
    return ProxyRoutes(
        https=_from_variables(environ, _HTTPS_VARIABLES),
        http=_from_variables(environ, _HTTP_VARIABLES),
        no_proxy=parse_no_proxy(no_proxy[1]) if no_proxy else (),
    )


def _first(environ: Mapping[str, str], names: tuple[str, ...]) -> tuple[str, str] | None:
    # The lower-case name first, as curl reads it and as requests lets it win.
    for name in names:
        value = environ.get(name, "").strip()
        if value:
            return name, value
    return None


def _from_variables(environ: Mapping[str, str], names: tuple[str, ...]) -> ProxyServer | None:
    found = _first(environ, names)
    if found is None:
        return None
    name, value = found
    return ProxyServer.parse(value, argument=f"the environment variable {name}")
