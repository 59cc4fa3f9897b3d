"""Where a Jira site is and how to authenticate to it: one description for every user.

A :class:`JiraSite` is what the reporters, the deployment gate and
``buildbot-jira check`` know of a site connection. The services hold it with
the credentials as ``master.cfg`` gives them (strings or renderables such as
``util.Secret``) and render them into a ``JiraSite[str]`` when they start;
:mod:`buildbot_jira.connection` builds clients from a rendered one.

This module holds values only, so that checking a configuration needs no
client, token cache or transport.
"""

from __future__ import annotations

from typing import Generic, TypeVar, cast

import attrs

from buildbot_jira.jira.auth import DEFAULT_API_URL, hidden_repr
from buildbot_jira.jira.http import DEFAULT_TIMEOUT
from buildbot_jira.jira.rate_limits import DEFAULT_MIN_REQUEST_INTERVAL

__all__ = ["Credential", "JiraSite"]

#: What the credentials are: ``Any`` as configured (a string or a renderable),
#: ``str`` once rendered.
Credential = TypeVar("Credential")


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
    """

    site: str
    client_id: Credential
    client_secret: Credential = attrs.field(repr=hidden_repr)
    cloud_id: str | None = None
    api_url: str = DEFAULT_API_URL
    site_url: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    min_request_interval: float = DEFAULT_MIN_REQUEST_INTERVAL

    def rendered(self, client_id: str, client_secret: str) -> JiraSite[str]:
        """The same site with the credentials given as rendered strings."""
        # evolve() keeps the type argument of its input; the result holds
        # strings only, which is what JiraSite[str] promises.
        return attrs.evolve(
            cast("JiraSite[str]", self), client_id=client_id, client_secret=client_secret
        )
