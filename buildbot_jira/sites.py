"""Where a Jira site is and how to authenticate to it: one description for every user.

A :class:`JiraSite` is what the reporters, the deployment gate and
``buildbot-jira check`` know of a site connection. The services hold it with
the credentials as ``master.cfg`` gives them (strings or renderables such as
``util.Secret``) and render them into a ``JiraSite[str]`` when they start;
:mod:`buildbot_jira.connection` builds clients from a rendered one.

:func:`take_site` checks the site arguments that every service takes
(:data:`SITE_ARGUMENTS`, one meaning each). This module holds values and
their checks only, so that checking a configuration needs no client, token
cache or transport.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, TypeVar, cast

import attrs

from buildbot_jira.arguments import (
    Check,
    check_ca_bundle,
    check_flag,
    check_number,
    check_optional_text,
    check_proxy,
    check_renderable,
    check_site,
    take_checked,
)
from buildbot_jira.jira.auth import DEFAULT_API_URL, hidden_repr
from buildbot_jira.jira.errors import JiraConfigError
from buildbot_jira.jira.http import DEFAULT_TIMEOUT, check_base_url
from buildbot_jira.jira.proxy import FROM_ENVIRONMENT, FromEnvironment, ProxyServer, ProxySetting
from buildbot_jira.jira.rate_limits import DEFAULT_MIN_REQUEST_INTERVAL, MAX_REQUEST_INTERVAL

__all__ = ["SITE_ARGUMENTS", "Credential", "JiraSite", "take_site"]

#: What the credentials are: ``Any`` as configured (a string or a renderable),
#: ``str`` once rendered.
Credential = TypeVar("Credential")


def _proxy_repr(proxy: object) -> str:
    # A ProxyServer hides its own password; a renderable is named by its type only.
    if proxy is None or isinstance(proxy, ProxyServer | FromEnvironment):
        return repr(proxy)
    return f"<{type(proxy).__name__}>"


@attrs.frozen(kw_only=True)
class JiraSite(Generic[Credential]):
    """A Jira site, the OAuth client credentials for it, and how to reach it.

    :param site: the site's host name, such as ``example.atlassian.net``.
    :param client_id: the OAuth client ID.
    :param client_secret: the OAuth client secret; never in a ``repr``.
    :param cloud_id: the site's cloud ID; looked up when None.
    :param api_url: the OAuth 2.0 gateway.
    :param site_url: where the site answers ``/_edge/tenant_info``
        (``https://<site>`` when None).
    :param timeout: seconds to wait for each answer.
    :param min_request_interval: seconds between two requests to one endpoint
        of the site while busy (0: no pacing of our own).
    :param proxy: the HTTP proxy for every host (a
        :class:`~buildbot_jira.jira.proxy.ProxyServer`, or a renderable that
        :func:`buildbot_jira.connection.connect` renders), None for none, or
        :data:`~buildbot_jira.jira.proxy.FROM_ENVIRONMENT` (``HTTPS_PROXY``
        and ``NO_PROXY`` decide). Its password is never in a ``repr``.
    :param ca_bundle: a PEM file of certificate authorities to trust besides
        the system's (``REQUESTS_CA_BUNDLE`` or ``SSL_CERT_FILE`` when None).
    :param ca_bundle_only: trust the bundle's authorities alone.
    """

    site: str
    client_id: Credential
    client_secret: Credential = attrs.field(repr=hidden_repr)
    cloud_id: str | None = None
    api_url: str = DEFAULT_API_URL
    site_url: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    min_request_interval: float = DEFAULT_MIN_REQUEST_INTERVAL
    # A renderable until connect() renders it: never shown, it may hold a password.
    proxy: ProxySetting | Any = attrs.field(default=FROM_ENVIRONMENT, repr=_proxy_repr)
    ca_bundle: str | None = None
    ca_bundle_only: bool = False

    def rendered(self, client_id: str, client_secret: str) -> JiraSite[str]:
        """The same site with the credentials given as rendered strings."""
        # evolve() keeps the type argument of its input; the result holds
        # strings only, which is what JiraSite[str] promises.
        return attrs.evolve(
            cast("JiraSite[str]", self), client_id=client_id, client_secret=client_secret
        )


_SITE_CHECKS: Mapping[str, Check] = {
    "cloud_id": check_optional_text,
    "api_url": lambda v, a: check_base_url(v, argument=a),
    "site_url": lambda v, a: None if v is None else check_base_url(v, argument=a),
    "timeout": lambda v, a: check_number(v, a, minimum=1),
    "min_request_interval": lambda v, a: check_number(
        v, a, minimum=0, maximum=MAX_REQUEST_INTERVAL
    ),
    "ca_bundle": check_ca_bundle,
    "ca_bundle_only": check_flag,
}

#: What every Jira service takes with one meaning: the site, its credentials
#: and how to reach it. One dict of these can be given to every service.
SITE_ARGUMENTS: tuple[str, ...] = ("site", "client_id", "client_secret", *_SITE_CHECKS, "proxy")


def take_site(
    site: object, client_id: object, client_secret: object, arguments: dict[str, Any]
) -> JiraSite[Any]:
    """Check the site and credentials, and take the site arguments out of ``arguments``.

    The credentials stay as given (strings or renderables), and so does a
    renderable ``proxy``. ``proxy`` given as None means no proxy at all,
    unlike the other arguments, for which None is the default.
    """
    proxy: Any = FROM_ENVIRONMENT
    if "proxy" in arguments:
        proxy = check_proxy(arguments.pop("proxy"), "proxy")
    checked = take_checked(arguments, _SITE_CHECKS)
    if checked.get("ca_bundle_only") and "ca_bundle" not in checked:
        raise JiraConfigError(
            "ca_bundle_only=True needs ca_bundle, the PEM file of the authorities to trust"
        )
    return JiraSite(
        site=check_site(site),
        client_id=check_renderable(client_id, "client_id", required=True),
        client_secret=check_renderable(client_secret, "client_secret", required=True),
        proxy=proxy,
        **checked,
    )
