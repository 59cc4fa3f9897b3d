"""Atlassian's OAuth 2.0 gateway in front of the site, and the site's ``tenant_info``.

The client-credentials token endpoint issues bearer tokens; every ``/jira/``
call must carry a valid one, name the site's cloud ID, and come from a
client with the permission for that entity type. Access tokens are issued
by the simulator alone and never appear in a ``repr``.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Final

from buildbot_jira.simulator.exchange import Answer, IncomingRequest, error_answer, parse_json
from buildbot_jira.simulator.state import IssuedToken, Store
from buildbot_jira.simulator.tenant import Tenant

__all__ = ["AUDIENCE", "Gateway"]

#: The ``audience`` that a token request must name.
AUDIENCE: Final = "api.atlassian.com"

# The scopes that the permission for each entity type grants.
_SCOPES: Final[Mapping[str, str]] = {
    "builds": "read:build:jira-software write:build:jira-software",
    "deployments": "read:deployment:jira-software write:deployment:jira-software",
    "devinfo": "read:dev-info:jira write:dev-info:jira",
    "featureflags": "read:feature-flag:jira write:feature-flag:jira",
}


def _oauth_error(status: int, error: str, description: str) -> Answer:
    return Answer(status, {"error": error, "error_description": description})


class Gateway:
    """Issues tokens for the ``tenant``'s clients and admits the calls that carry them."""

    def __init__(self, *, tenant: Tenant, store: Store) -> None:
        self._tenant = tenant
        self._store = store

    def __repr__(self) -> str:
        return f"<Gateway cloud_id={self._tenant.cloud_id!r}>"

    def issue_token(self, client_id: str, *, now: float) -> str:
        """Issue an access token for ``client_id`` at time ``now``; returns its value.

        Raises ``KeyError`` for a client the site does not have.
        """
        if client_id not in self._tenant.clients:
            raise KeyError(f"unknown client ID {client_id!r}")
        value = "sim-" + secrets.token_urlsafe(24)
        expires_at = now + self._tenant.token_lifetime
        self._store.add_token(IssuedToken(value, client_id, now, expires_at))
        return value

    def revoke_tokens(self) -> None:
        """Make every token issued so far invalid (later ones work)."""
        for token in self._store.issued_tokens:
            token.revoked = True

    def token_endpoint(self, incoming: IncomingRequest, params: Mapping[str, str]) -> Answer:
        """``POST /oauth/token``: the client-credentials grant."""
        body = parse_json(incoming.body)
        if not isinstance(body, dict):
            return _oauth_error(400, "invalid_request", "The body must be a JSON object")
        missing = [
            name
            for name in ("grant_type", "client_id", "client_secret", "audience")
            if not isinstance(body.get(name), str)
        ]
        if missing:
            return _oauth_error(400, "invalid_request", f"Missing {', '.join(missing)}")
        if body["grant_type"] != "client_credentials":
            return _oauth_error(
                403,
                "unauthorized_client",
                f"Grant type {body['grant_type']!r} not allowed for the client.",
            )
        if body["audience"] != AUDIENCE:
            return _oauth_error(
                403, "access_denied", f"Service not enabled within domain: {body['audience']}"
            )
        client_id = body["client_id"]
        expected = self._tenant.clients.get(client_id)
        if expected is None or not secrets.compare_digest(expected, body["client_secret"]):
            return _oauth_error(401, "access_denied", "Unauthorized")
        granted = self._tenant.granted(client_id)
        return Answer(
            200,
            {
                "access_token": self.issue_token(client_id, now=incoming.received_at),
                "expires_in": self._tenant.token_lifetime,
                "token_type": "Bearer",
                "scope": " ".join(_SCOPES[e] for e in granted if e in _SCOPES),
            },
        )

    def tenant_info(self, incoming: IncomingRequest, params: Mapping[str, str]) -> Answer:
        """``GET /_edge/tenant_info``: the site's cloud ID, without authentication."""
        return Answer(200, {"cloudId": self._tenant.cloud_id})

    def bearer(self, incoming: IncomingRequest) -> IssuedToken | None:
        """The valid token that ``incoming`` carries, if it carries one."""
        scheme, _, value = incoming.header("authorization").partition(" ")
        token = self._store.tokens.get(value.strip()) if scheme.lower() == "bearer" else None
        if token is not None and token.is_valid(incoming.received_at):
            return token
        return None

    def unauthorized(self) -> Answer:
        """The gateway's answer to a call without a valid token."""
        return Answer(
            401,
            {"code": 401, "message": "Unauthorized"},
            {"WWW-Authenticate": f'Bearer realm="{AUDIENCE}"'},
        )

    def admit(self, token: IssuedToken, entity: str, cloud_id: str) -> Answer | None:
        """Refuse a call on ``entity`` data of site ``cloud_id`` that ``token`` may not make."""
        if cloud_id != self._tenant.cloud_id:
            return Answer(404, {"code": 404, "message": "Not Found"})
        if not self._tenant.may_use(token.client_id, entity):
            return error_answer(
                403,
                f"The credentials of client {token.client_id!r} lack the permission "
                f"to use {entity} data; grant it in Jira's OAuth credentials settings",
            )
        return None
