"""Tests of buildbot_jira.simulator.gateway: tokens, tenant_info and who may call, over HTTP."""

from __future__ import annotations

import json

from buildbot_jira.simulator import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_CLOUD_ID,
)

from .test_contract import valid_build, valid_deployment
from .test_simulator import (
    BUILDS,
    CREDENTIALS,
    DEPLOYMENTS,
    SimulatorTestCase,
    run,
)


class TokenTests(SimulatorTestCase):
    """The client-credentials token endpoint."""

    @run
    async def test_valid_credentials_get_a_bearer_token(self) -> None:
        reply = await self.request("POST", "/oauth/token", CREDENTIALS)
        self.assertEqual(reply.status, 200)
        self.assertEqual(reply.body["token_type"], "Bearer")
        self.assertEqual(reply.body["expires_in"], 3600)
        self.assertIn("write:build:jira-software", reply.body["scope"])
        self.assertEqual(
            [t.access_token for t in self.simulator.issued_tokens], [reply.body["access_token"]]
        )
        self.assertEqual(self.simulator.token_requests, 1)

    @run
    async def test_bad_secret_is_401_access_denied(self) -> None:
        reply = await self.request(
            "POST", "/oauth/token", {**CREDENTIALS, "client_secret": "wrong"}
        )
        self.assertEqual(reply.status, 401)
        self.assertEqual(
            reply.body, {"error": "access_denied", "error_description": "Unauthorized"}
        )
        self.assertEqual(self.simulator.issued_tokens, [])

    @run
    async def test_unknown_client_is_401(self) -> None:
        reply = await self.request("POST", "/oauth/token", {**CREDENTIALS, "client_id": "who"})
        self.assertEqual(reply.status, 401)

    @run
    async def test_bad_grant_audience_or_body_is_an_oauth_error(self) -> None:
        grant = await self.request(
            "POST", "/oauth/token", {**CREDENTIALS, "grant_type": "password"}
        )
        self.assertEqual((grant.status, grant.body["error"]), (403, "unauthorized_client"))
        audience = await self.request(
            "POST", "/oauth/token", {**CREDENTIALS, "audience": "example.com"}
        )
        self.assertEqual((audience.status, audience.body["error"]), (403, "access_denied"))
        missing = await self.request("POST", "/oauth/token", {"grant_type": "client_credentials"})
        self.assertEqual((missing.status, missing.body["error"]), (400, "invalid_request"))
        garbage = await self.request("POST", "/oauth/token", data=b"client_id=x")
        self.assertEqual(garbage.status, 400)
        self.assertEqual(self.simulator.issued_tokens, [])

    @run
    async def test_token_expires_by_the_clock(self) -> None:
        _, running = await self.start(token_lifetime=60)
        token = await self.token(running)
        path = BUILDS
        ok = await self.request(
            "POST", path, {"builds": [valid_build()]}, token=token, running=running
        )
        self.assertEqual(ok.status, 202)
        self.clock.advance(59)
        still = await self.request(
            "GET",
            f"/jira/builds/0.1/cloud/{DEFAULT_CLOUD_ID}/pipelines/main-ci/builds/42",
            token=token,
            running=running,
        )
        self.assertEqual(still.status, 200)
        self.clock.advance(1)
        expired = await self.request(
            "POST", path, {"builds": [valid_build()]}, token=token, running=running
        )
        self.assertEqual(expired.status, 401)
        fresh = await self.token(running)
        again = await self.request(
            "POST", path, {"builds": [valid_build()]}, token=fresh, running=running
        )
        self.assertEqual(again.status, 202)

    @run
    async def test_secrets_are_not_recorded_nor_shown(self) -> None:
        token = await self.token()
        await self.post_builds(valid_build(), token=token)
        state = await self.request("GET", "/_simulator/state")
        text = json.dumps(state.body)
        self.assertNotIn(DEFAULT_CLIENT_SECRET, text)
        self.assertNotIn(token, text)
        self.assertEqual(self.simulator.requests[0].body["client_secret"], "<redacted>")
        self.assertNotIn(token, repr(self.simulator.issued_tokens))
        self.assertNotIn(DEFAULT_CLIENT_SECRET, repr(self.simulator))


class GatewayTests(SimulatorTestCase):
    """What a /jira/ call needs: a valid token, the cloud ID, the permission."""

    @run
    async def test_tenant_info_answers_the_cloud_id(self) -> None:
        reply = await self.request("GET", "/_edge/tenant_info")
        self.assertEqual((reply.status, reply.body), (200, {"cloudId": DEFAULT_CLOUD_ID}))

    @run
    async def test_api_needs_a_token(self) -> None:
        reply = await self.request("POST", BUILDS, {"builds": [valid_build()]})
        self.assertEqual(reply.status, 401)
        bogus = await self.request("POST", BUILDS, {"builds": [valid_build()]}, token="made-up")
        self.assertEqual(bogus.status, 401)
        self.assertEqual(self.simulator.builds, {})

    @run
    async def test_revoked_tokens_are_refused_and_new_ones_work(self) -> None:
        token = await self.token()
        self.simulator.revoke_tokens()
        reply = await self.post_builds(valid_build(), token=token)
        self.assertEqual(reply.status, 401)
        self.assertEqual((await self.post_builds(valid_build())).status, 202)

    @run
    async def test_wrong_cloud_id_is_404(self) -> None:
        token = await self.token()
        path = BUILDS.replace(DEFAULT_CLOUD_ID, "another-cloud")
        reply = await self.request("POST", path, {"builds": [valid_build()]}, token=token)
        self.assertEqual(reply.status, 404)
        self.assertEqual(self.simulator.builds, {})

    @run
    async def test_client_without_permission_is_403(self) -> None:
        simulator, running = await self.start(permissions={DEFAULT_CLIENT_ID: ["deployments"]})
        token = await self.token(running)
        refused = await self.request(
            "POST", BUILDS, {"builds": [valid_build()]}, token=token, running=running
        )
        self.assertEqual(refused.status, 403)
        self.assertEqual(len(refused.body), 1)
        self.assertIn("builds", refused.body[0]["message"])
        allowed = await self.request(
            "POST",
            DEPLOYMENTS,
            {"deployments": [valid_deployment()]},
            token=token,
            running=running,
        )
        self.assertEqual(allowed.status, 202)
        self.assertEqual(simulator.builds, {})
