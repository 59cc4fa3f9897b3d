"""A service's site credentials rendered, or what keeps them from being rendered.

``master.cfg`` names the client ID and secret as renderables (``util.Secret``)
that the master's secrets providers resolve when a service is configured. A
secret that no provider holds makes Buildbot's rendering raise, and a service
that lets that escape from ``reconfigService`` fails the whole master, at
start and on reconfig. :func:`render_credentials` turns that into a value
that says which argument and which secret could not be rendered, so that the
reporter can log it and stay idle instead.
"""

from __future__ import annotations

import re
from typing import Any

import attrs
from buildbot.process.properties import Properties

from buildbot_jira.sites import JiraSite

__all__ = [
    "UnrenderedCredential",
    "render_credentials",
    "shown_argument",
]


@attrs.frozen
class UnrenderedCredential:
    """A credential of a service that could not be rendered.

    :param argument: the service's argument (``client_id`` or ``client_secret``).
    :param secret: the secret it names, as ``master.cfg`` wrote it
        (``util.Secret('jira-client-secret')``); never its value.
    :param reason: what the secrets providers answered.
    """

    argument: str
    secret: str
    reason: str

    def message(self, service: str) -> str:
        """The error to log for the service named ``service``, with what to do."""
        return (
            f"{service}: cannot render {self.argument}={self.secret}: {self.reason}. "
            f"{service} stays idle and reports nothing to Jira; add the secret to the "
            "master's secrets provider (for SecretInAFile, a file named after the "
            "secret in its directory), then restart the master (buildbot restart)"
        )


def describe_secret(renderable: object) -> str:
    """How ``master.cfg`` names a credential, without its value."""
    name = getattr(renderable, "secret_name", None)
    if isinstance(name, str):
        return f"util.Secret({name!r})"
    # A plain string never fails to render: this is some other renderable,
    # whose type is all that may be shown.
    return f"<{type(renderable).__name__}>"


async def render_credentials(
    master: Any, site: JiraSite[Any]
) -> JiraSite[str] | UnrenderedCredential:
    """``site`` with its client ID and secret rendered, or the first that cannot be."""
    rendered: dict[str, str] = {}
    for argument in ("client_id", "client_secret"):
        renderable = getattr(site, argument)
        properties = Properties()
        properties.master = master
        try:
            value = await properties.render(renderable)
        except KeyError as missing:
            # Buildbot's text: "secret key NAME is not found in any provider".
            reason = str(missing.args[0]) if missing.args else "not found"
            return UnrenderedCredential(argument, describe_secret(renderable), reason)
        except Exception as problem:  # noqa: BLE001 - any provider failure keeps the master up
            # Only the exception's type: its text might quote what it read.
            reason = f"the secrets provider failed ({type(problem).__name__})"
            return UnrenderedCredential(argument, describe_secret(renderable), reason)
        rendered[argument] = str(value)
    return site.rendered(rendered["client_id"], rendered["client_secret"])


_URL_CREDENTIALS = re.compile(r"(//)[^/@]*@")


def shown_argument(name: str, value: Any) -> Any:
    """An argument as the web UI and log lines may show it: never a secret.

    The client secret is hidden whole; a proxy URL keeps its host and port
    but not its user and password.
    """
    if name == "client_secret":
        return "***"
    if name == "proxy" and isinstance(value, str):
        return _URL_CREDENTIALS.sub(r"\1***@", value)
    return value
