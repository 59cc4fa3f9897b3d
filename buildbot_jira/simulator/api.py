"""What ``api.atlassian.com`` and the site answer: the routes of Jira Cloud's APIs.

One server plays both hosts: the OAuth 2.0 token endpoint, the site's
``tenant_info``, and the builds, deployments, development information and
feature-flag APIs under ``/jira/<entity>/0.1/cloud/<cloudId>/``, each of
which needs a bearer token, the site's cloud ID and the client's permission
for that entity type. Every route is an endpoint that the site's rate limits
(:mod:`~buildbot_jira.simulator.burst`) count.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from buildbot_jira.simulator.builds import BuildsApi
from buildbot_jira.simulator.burst import RateLimits
from buildbot_jira.simulator.deployments import DeploymentsApi
from buildbot_jira.simulator.devinfo import DevinfoApi
from buildbot_jira.simulator.exchange import Answer, IncomingRequest
from buildbot_jira.simulator.featureflags import FeatureFlagsApi
from buildbot_jira.simulator.gateway import Gateway
from buildbot_jira.simulator.routing import Route, Router, gateway_path
from buildbot_jira.simulator.state import Store
from buildbot_jira.simulator.tenant import Tenant

__all__ = ["JiraApi"]

_BUILD: Final = ("pipelines", "{pipelineId}", "builds", "{buildNumber}")
_DEPLOYMENT: Final = (
    "pipelines",
    "{pipelineId}",
    "environments",
    "{environmentId}",
    "deployments",
    "{seq}",
)


class JiraApi:
    """Answers every request to Jira Cloud's hosts (the simulator's own views aside)."""

    def __init__(self, *, tenant: Tenant, store: Store, limits: RateLimits | None = None) -> None:
        self.limits = limits if limits is not None else RateLimits()
        self.gateway = Gateway(tenant=tenant, store=store)
        self.builds = BuildsApi(tenant, store)
        self.deployments = DeploymentsApi(tenant, store)
        self.devinfo = DevinfoApi(tenant, store)
        self.feature_flags = FeatureFlagsApi(tenant, store)
        builds, deployments = self.builds, self.deployments
        devinfo, flags = self.devinfo, self.feature_flags
        self._router = Router(
            [
                Route("POST", ("oauth", "token"), self.gateway.token_endpoint),
                Route("GET", ("_edge", "tenant_info"), self.gateway.tenant_info),
                Route("POST", gateway_path("builds", "bulk"), builds.submit, "builds"),
                Route("GET", gateway_path("builds", *_BUILD), builds.get, "builds"),
                Route("DELETE", gateway_path("builds", *_BUILD), builds.delete, "builds"),
                Route(
                    "POST", gateway_path("deployments", "bulk"), deployments.submit, "deployments"
                ),
                Route(
                    "GET", gateway_path("deployments", *_DEPLOYMENT), deployments.get, "deployments"
                ),
                Route(
                    "DELETE",
                    gateway_path("deployments", *_DEPLOYMENT),
                    deployments.delete,
                    "deployments",
                ),
                Route(
                    "GET",
                    gateway_path("deployments", *_DEPLOYMENT, "gating-status"),
                    deployments.gating_status,
                    "deployments",
                ),
                Route("POST", gateway_path("devinfo", "bulk"), devinfo.submit, "devinfo"),
                Route(
                    "GET",
                    gateway_path("devinfo", "repository", "{repositoryId}"),
                    devinfo.get_repository,
                    "devinfo",
                ),
                Route(
                    "DELETE",
                    gateway_path("devinfo", "repository", "{repositoryId}"),
                    devinfo.delete_repository,
                    "devinfo",
                ),
                Route("POST", gateway_path("featureflags", "bulk"), flags.submit, "featureflags"),
                Route(
                    "GET",
                    gateway_path("featureflags", "flag", "{flagId}"),
                    flags.get,
                    "featureflags",
                ),
                Route(
                    "DELETE",
                    gateway_path("featureflags", "flag", "{flagId}"),
                    flags.delete,
                    "featureflags",
                ),
            ]
        )

    def __repr__(self) -> str:
        return f"<JiraApi {self.gateway!r}>"

    @property
    def routes(self) -> tuple[Route, ...]:
        """Every route of Jira Cloud's hosts that the simulator answers."""
        return self._router.routes

    def answer(self, incoming: IncomingRequest) -> Answer:
        """The answer to ``incoming`` within the rate limits (a burst limit answers 429 first)."""
        matched = self._router.match(incoming)
        route, params = matched if matched is not None else (None, {})
        return self.limits.serve(
            incoming,
            lambda: self._answer(incoming),
            endpoint=None if route is None else route.endpoint(params),
            entity=None if route is None else route.entity,
        )

    def _answer(self, incoming: IncomingRequest) -> Answer:
        """The answer to ``incoming``: 401 for a ``/jira/`` call without a valid token."""
        if incoming.first_segment != "jira":
            return self._router.answer(incoming)
        token = self.gateway.bearer(incoming)
        if token is None:
            return self.gateway.unauthorized()

        def admit(route: Route, params: Mapping[str, str]) -> Answer | None:
            if route.entity is None:
                return None
            return self.gateway.admit(token, route.entity, params["cloudId"])

        return self._router.answer(incoming, guard=admit)
