"""How ``buildbot-jira check`` ends: its exit codes, the failure that carries one, and
which error means which.

An error of the client or the token cache becomes a :class:`CheckFailed`
through :data:`CAUSES`, a table keyed by the error classes of
:mod:`buildbot_jira.jira.errors` (a subclass finds its nearest class), so
the taxonomy stays the one place that sorts errors.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Final, TextIO

from buildbot_jira.jira.errors import (
    JiraAuthError,
    JiraPermissionError,
    JiraRequestError,
    JiraSiteError,
    JiraUnavailableError,
)
from buildbot_jira.jira.model import EntityType
from buildbot_jira.jira.transport_errors import (
    ProxyAuthError,
    ProxyRefusedError,
    ProxyTimeoutError,
    ProxyUnreachableError,
    TlsVerificationError,
    TransportError,
)

__all__ = [
    "CAUSES",
    "EXIT_CODES",
    "EXIT_CREDENTIALS",
    "EXIT_OK",
    "EXIT_PERMISSION",
    "EXIT_PROXY_AUTH",
    "EXIT_REJECTED",
    "EXIT_TLS",
    "EXIT_UNEXPECTED",
    "EXIT_UNKNOWN_SITE",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "PERMISSION_NAMES",
    "CheckFailed",
    "explain",
    "missing_permission",
    "needing_permission",
    "report_failure",
]

EXIT_OK: Final = 0
EXIT_UNEXPECTED: Final = 1
EXIT_USAGE: Final = 2
EXIT_UNKNOWN_SITE: Final = 3
EXIT_CREDENTIALS: Final = 4
EXIT_PERMISSION: Final = 5
EXIT_REJECTED: Final = 6
EXIT_UNREACHABLE: Final = 7
EXIT_PROXY_AUTH: Final = 8
EXIT_TLS: Final = 9

#: Every exit code of ``buildbot-jira check`` and the likely cause it names.
EXIT_CODES: Final[Mapping[int, str]] = {
    EXIT_OK: "the credentials work",
    EXIT_UNEXPECTED: "unexpected error",
    EXIT_USAGE: "usage error or no client secret",
    EXIT_UNKNOWN_SITE: "wrong site name (or cloud ID)",
    EXIT_CREDENTIALS: "wrong credentials",
    EXIT_PERMISSION: "missing permission",
    EXIT_REJECTED: "unknown issue key, or the test build was rejected",
    EXIT_UNREACHABLE: "unreachable host (or Jira unavailable), or the proxy down or refusing",
    EXIT_PROXY_AUTH: "proxy authentication required (wrong proxy user or password)",
    EXIT_TLS: "TLS verification failed (a proxy re-signing TLS needs --ca-bundle)",
}

#: Error class -> exit code and the cause that the check prints.
CAUSES: Final[Mapping[type[Exception], tuple[int, str]]] = {
    JiraSiteError: (EXIT_UNKNOWN_SITE, "wrong site name"),
    JiraAuthError: (EXIT_CREDENTIALS, "wrong credentials"),
    JiraPermissionError: (EXIT_PERMISSION, "missing permission"),
    JiraRequestError: (EXIT_REJECTED, "request rejected"),
    JiraUnavailableError: (EXIT_UNREACHABLE, "unreachable host"),
    # No answer at all, should a transport error ever arrive unwrapped.
    TransportError: (EXIT_UNREACHABLE, "unreachable host"),
    ProxyUnreachableError: (EXIT_UNREACHABLE, "proxy unreachable"),
    ProxyRefusedError: (EXIT_UNREACHABLE, "proxy refused the connection"),
    ProxyTimeoutError: (EXIT_UNREACHABLE, "proxy timeout"),
    ProxyAuthError: (EXIT_PROXY_AUTH, "proxy authentication required"),
    TlsVerificationError: (EXIT_TLS, "TLS verification failed"),
}

#: Each kind of data's permission, named as a Jira admin ticks it when
#: creating OAuth credentials (Jira settings > Apps > OAuth credentials).
PERMISSION_NAMES: Final[Mapping[EntityType, str]] = {
    "builds": "Builds",
    "deployments": "Deployments",
    "devinfo": "Development information",
    "featureflags": "Feature flags",
}

#: The client's retries end in a plain "unavailable" that quotes the last
#: failure: these words in it say the proxy was the cause.
_PROXY_CAUSES: Final = (
    ("is unreachable", "proxy unreachable"),
    ("refused CONNECT", "proxy refused the connection"),
    ("without answering CONNECT", "proxy refused the connection"),
    ("through the proxy", "proxy timeout"),
)


class CheckFailed(Exception):
    """A step failed: ``exit_code``, the likely ``cause`` and what Jira or the network said."""

    def __init__(self, exit_code: int, cause: str, detail: str) -> None:
        super().__init__(f"{cause}: {detail}")
        self.exit_code = exit_code
        self.cause = cause
        self.detail = detail


def _cause(error: Exception) -> tuple[int, str]:
    for kind in type(error).__mro__:
        if kind in CAUSES:
            return CAUSES[kind]
    return EXIT_UNEXPECTED, "unexpected error"


def explain(error: Exception, site: str) -> CheckFailed:
    """The exit code, likely cause and detail of an error met while checking ``site``."""
    # Some texts end with a full stop, some not; ours add sentences after them.
    detail = str(error).rstrip(". ")
    code, cause = _cause(error)
    if code == EXIT_REJECTED and isinstance(error, JiraRequestError) and error.status == 404:
        # The gateway answers 404 for a cloud ID that names no site.
        return CheckFailed(
            EXIT_UNKNOWN_SITE,
            "wrong cloud ID",
            f"{detail}. The cloud ID does not name a site: leave out --cloud-id to look it up",
        )
    if code == EXIT_UNKNOWN_SITE:
        detail += _site_hint(site)
    elif code == EXIT_PROXY_AUTH:
        detail += (
            ". Check the user and password of --proxy http://user:password@host:port "
            "(or of HTTPS_PROXY)"
        )
    elif code == EXIT_TLS:
        detail += (
            ". Give the certificate authority's PEM file with --ca-bundle (ca_bundle in "
            "master.cfg), or set SSL_CERT_FILE"
        )
    elif code == EXIT_UNREACHABLE and "the proxy " in detail:
        cause = next((named for words, named in _PROXY_CAUSES if words in detail), cause)
        detail += (
            ". Check --proxy (or HTTPS_PROXY and NO_PROXY): the proxy must be running and "
            "allow CONNECT to the Jira host's port"
        )
    elif code == EXIT_UNREACHABLE:
        detail += (
            ". Check the host names (--site, --api-url, --site-url), this machine's "
            "network, proxy and firewall, and https://status.atlassian.com" + _site_hint(site)
        )
    elif code == EXIT_UNEXPECTED:
        detail = f"{type(error).__name__}: {detail}"
    return CheckFailed(code, cause, detail)


def missing_permission(error: JiraPermissionError, entity: EntityType) -> CheckFailed:
    """The failure of a step refused (403) for want of ``entity``'s permission, named."""
    name = PERMISSION_NAMES[entity]
    return CheckFailed(
        EXIT_PERMISSION,
        "missing permission",
        f'The credentials lack the "{name}" permission. {str(error).rstrip(". ")}',
    )


def needing_permission(
    entity: EntityType, step: Callable[[], Awaitable[str]]
) -> Callable[[], Awaitable[str]]:
    """``step``, with a 403 turned into :func:`missing_permission` for ``entity``."""

    async def checked() -> str:
        try:
            return await step()
        except JiraPermissionError as error:
            raise missing_permission(error, entity) from None

    return checked


def _site_hint(site: str) -> str:
    if "." in site:
        return ""
    return f". A Jira Cloud site name looks like {site}.atlassian.net"


def report_failure(failure: CheckFailed, err: TextIO) -> None:
    """Print the failure: the cause and exit code, then the detail."""
    err.write(
        f"buildbot-jira check: {failure.cause} (exit code {failure.exit_code})\n"
        f"  {failure.detail}\n"
    )
    err.flush()
