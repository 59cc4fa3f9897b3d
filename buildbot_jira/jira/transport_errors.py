"""The errors of a request that got no HTTP answer from Jira, sorted by likely cause.

Part of the taxonomy of :mod:`buildbot_jira.jira.errors`: an unreachable,
refusing or silent proxy is like an unreachable Jira (retryable, the update
kept); a proxy that wants other credentials (407) or a certificate that is
not trusted needs a person to change the configuration (not retryable, the
update kept until it is fixed). Messages name hosts, ports and status lines,
never credentials.
"""

from __future__ import annotations

from buildbot_jira.jira.errors import JiraError, JiraUnavailableError

__all__ = [
    "ProxyAuthError",
    "ProxyRefusedError",
    "ProxyTimeoutError",
    "ProxyUnreachableError",
    "TlsVerificationError",
    "TransportError",
]

_PROXY_HINT = (
    "Check the proxy argument (or the HTTPS_PROXY and NO_PROXY environment variables): "
    "the proxy must be running and allow CONNECT to the Jira host on port 443."
)


class TransportError(JiraUnavailableError):
    """The request got no HTTP answer: refused, reset, timed out, or unreadable.

    Retrying may help, as for any :class:`JiraUnavailableError`. The message
    names the method, host and path and the kind of failure; it never
    contains headers or bodies, so it cannot carry a secret.
    """


class ProxyUnreachableError(TransportError):
    """The proxy could not be reached: connection refused, unknown host, or reset."""

    summary = "proxy unreachable"
    hint = _PROXY_HINT


class ProxyRefusedError(TransportError):
    """The proxy answered the CONNECT with something other than 200; the message quotes it."""

    summary = "proxy refused the connection"
    hint = _PROXY_HINT


class ProxyTimeoutError(TransportError):
    """No answer through the proxy in time: the proxy, or Jira behind it, is silent."""

    summary = "proxy timeout"
    hint = _PROXY_HINT


class ProxyAuthError(JiraError):
    """407: the proxy wants other credentials. A configuration problem, not an outage."""

    summary = "proxy authentication required"
    hint = (
        "Check the proxy's user and password in the proxy argument "
        "(http://user:password@host:port) or in HTTPS_PROXY."
    )


class TlsVerificationError(JiraError):
    """The server's certificate was not trusted, or not for the host asked for.

    Not retryable: a proxy that re-signs TLS with a company certificate
    authority needs its PEM file given as ``ca_bundle``.
    """

    summary = "TLS verification failed"
    hint = (
        "If a proxy or firewall re-signs TLS with your company's certificate authority, give "
        "its PEM file as ca_bundle (buildbot-jira check --ca-bundle), or set SSL_CERT_FILE."
    )
