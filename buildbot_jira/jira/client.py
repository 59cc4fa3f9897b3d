"""The Jira Software Cloud client: cloud ID, the four DevOps APIs, retries.

:class:`JiraCloud` sends builds, deployments, development information and
feature flags through Atlassian's OAuth 2.0 gateway
(``{api_url}/jira/<entity>/0.1/cloud/<cloudId>/...``), as the Jira Software
Cloud API defines them. It paces its requests to the site's
:class:`~buildbot_jira.jira.rate_limits.RateLimits`, retries what retrying
can fix (no answer, 5xx, 429, an unavailable token endpoint), halves a batch
that Jira finds too large (413), renews a refused token once (401), and
turns everything else into a :class:`~buildbot_jira.jira.errors.JiraError`.
Jira's answers are read into the value classes of
:mod:`~buildbot_jira.jira.results`; this module re-exports them, with
:class:`~buildbot_jira.jira.retry.RetryPolicy`. URL paths are built by
:mod:`~buildbot_jira.jira.paths`, request bodies by :mod:`~buildbot_jira.jira.batches`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from twisted.internet import task
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from buildbot_jira.jira import batches
from buildbot_jira.jira.auth import DEFAULT_API_URL, SingleFlight, TokenCache
from buildbot_jira.jira.batches import MAX_ENTITIES_PER_REQUEST
from buildbot_jira.jira.errors import (
    JiraAuthError,
    JiraError,
    JiraRequestError,
    JiraSiteError,
    JiraUnavailableError,
)
from buildbot_jira.jira.http import DEFAULT_TIMEOUT, HttpResponse, HttpTransport
from buildbot_jira.jira.model import ENTITY_LISTS, EntityType
from buildbot_jira.jira.pacing import Pacer
from buildbot_jira.jira.paths import api_path, build_path, deployment_path, segment
from buildbot_jira.jira.rate_limit_headers import LimitSignal
from buildbot_jira.jira.rate_limits import (
    DEFAULT_MIN_REQUEST_INTERVAL,
    Endpoint,
    RateLimits,
    payload_issue_keys,
)
from buildbot_jira.jira.results import GatingStatus, Rejection, SubmitResult, request_error
from buildbot_jira.jira.retry import RetryPolicy
from buildbot_jira.jira.users import ClientUsers

__all__ = [
    "MAX_ENTITIES_PER_REQUEST",
    "EntityType",
    "GatingStatus",
    "JiraCloud",
    "Rejection",
    "RetryPolicy",
    "SubmitResult",
]

log = Logger()

_DEFAULT_RETRY = RetryPolicy()


class _TooLarge(Exception):
    """413: the request carried too many entities."""


class JiraCloud:
    """A client of one Jira Software Cloud site's DevOps APIs.

    :param site: the site's host name, such as ``example.atlassian.net``.
    :param token_cache: access tokens for the site's OAuth credentials.
    :param transport: the HTTP transport (shared with the token cache).
    :param cloud_id: the site's cloud ID; looked up once when not given.
    :param api_url: the OAuth gateway (``https://api.atlassian.com``).
    :param site_url: where the site answers ``/_edge/tenant_info``
        (``https://<site>`` by default).
    :param timeout: seconds to wait for each request.
    :param retry: how to retry what retrying can fix.
    :param min_request_interval: seconds between two requests to one endpoint
        while busy (0: no pacing); see :attr:`limits`.
    :param clock: times the waits between retries (the transport's clock by default).
    :param uniform: random numbers in [0, 1) for the jitter of the waits.

    Its log lines begin with the names in :attr:`users`, who share it.
    """

    def __init__(
        self,
        *,
        site: str,
        token_cache: TokenCache,
        transport: HttpTransport,
        cloud_id: str | None = None,
        api_url: str = DEFAULT_API_URL,
        site_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy = _DEFAULT_RETRY,
        min_request_interval: float = DEFAULT_MIN_REQUEST_INTERVAL,
        clock: IReactorTime | None = None,
        uniform: Callable[[], float] = random.random,
    ) -> None:
        self.site = site
        self.api_url = api_url.rstrip("/")
        self.site_url = (site_url or f"https://{site}").rstrip("/")
        self.timeout = timeout
        self.retry = retry
        self.tokens = token_cache
        #: The site's pacing and rate limits, shared by every user of this client.
        self.limits = RateLimits(min_interval=min_request_interval)
        #: Who uses this client: its log lines name them.
        self.users = ClientUsers()
        self._transport = transport
        self._clock = clock if clock is not None else transport.clock
        self._uniform = uniform
        self._pacer = Pacer(site=site, limits=self.limits, clock=self._clock, users=self.users)
        self._cloud_id = cloud_id
        self._cloud_id_flight = SingleFlight()

    def __repr__(self) -> str:
        return f"<JiraCloud site={self.site!r} api_url={self.api_url!r}>"

    # -- the site -----------------------------------------------------------

    async def get_cloud_id(self) -> str:
        """The site's cloud ID, looked up once through ``/_edge/tenant_info``."""
        if self._cloud_id is None:
            self._cloud_id = await self._cloud_id_flight.run(self._lookup_cloud_id)
        return self._cloud_id

    async def _lookup_cloud_id(self) -> str:
        url = f"{self.site_url}/_edge/tenant_info"
        response = await self._send("GET", url, authenticated=False)
        data = response.json_or_none() if response.status == 200 else None
        cloud_id = data.get("cloudId") if isinstance(data, dict) else None
        if not isinstance(cloud_id, str) or not cloud_id:
            raise JiraSiteError(
                f"Jira site {self.site!r} did not answer with a cloud ID at {url} "
                f"(HTTP {response.status}). The site name is probably wrong: it is the "
                "host name of your Jira, such as example.atlassian.net"
            )
        found = "{users}: Jira site {site} has cloud ID {cloud_id}"
        log.info(found, users=self.users, site=self.site, cloud_id=cloud_id)
        return cloud_id

    async def _url(self, entity: str, path: str) -> str:
        cloud_id = await self.get_cloud_id()
        return api_path(self.api_url, entity, cloud_id, path)

    # -- submissions --------------------------------------------------------

    async def submit_builds(
        self,
        builds: Sequence[Mapping[str, Any]],
        *,
        properties: Mapping[str, str] | None = None,
        provider_metadata: Mapping[str, str] | None = None,
    ) -> SubmitResult:
        """Send builds (BuildData dicts); more than 100 go in several requests."""
        return await self.submit("builds", builds, properties, provider_metadata)

    async def submit_deployments(
        self,
        deployments: Sequence[Mapping[str, Any]],
        *,
        properties: Mapping[str, str] | None = None,
        provider_metadata: Mapping[str, str] | None = None,
    ) -> SubmitResult:
        """Send deployments (DeploymentData dicts)."""
        return await self.submit("deployments", deployments, properties, provider_metadata)

    async def submit_feature_flags(
        self,
        flags: Sequence[Mapping[str, Any]],
        *,
        properties: Mapping[str, str] | None = None,
    ) -> SubmitResult:
        """Send feature flags."""
        return await self.submit("featureflags", flags, properties, None)

    async def submit_development_information(
        self,
        repositories: Sequence[Mapping[str, Any]],
        *,
        properties: Mapping[str, str] | None = None,
        provider_metadata: Mapping[str, str] | None = None,
        prevent_transitions: bool | None = None,
    ) -> SubmitResult:
        """Send development information (repositories with commits, branches, PRs).

        ``prevent_transitions``, unless None, is the bodies' ``preventTransitions``.
        """
        extra = {} if prevent_transitions is None else {"preventTransitions": prevent_transitions}
        return await self.submit("devinfo", repositories, properties, provider_metadata, extra)

    async def submit(
        self,
        entity: EntityType,
        items: Sequence[Mapping[str, Any]],
        properties: Mapping[str, str] | None = None,
        provider_metadata: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> SubmitResult:
        """Send ``items`` of ``entity`` in as many bulk requests as it takes.

        Batches are at most 100 entities (development information is merged
        and split by :func:`~buildbot_jira.jira.devinfo.devinfo_requests`); a
        batch that Jira finds too large (413) is halved and both halves are
        sent. ``extra`` holds more fields of every request body.
        """
        if entity not in ENTITY_LISTS:
            raise ValueError(f"unknown entity type {entity!r}")
        fields = batches.bulk_fields(properties, provider_metadata, extra)
        result = SubmitResult(entity=entity)
        for batch in batches.request_batches(entity, items):
            result = result.merge(await self._submit_halving(entity, batch, fields))
        return result

    async def _submit_halving(
        self, entity: EntityType, batch: list[dict[str, Any]], fields: Mapping[str, Any]
    ) -> SubmitResult:
        body = {ENTITY_LISTS[entity]: batch, **fields}
        issue_keys = frozenset().union(*(payload_issue_keys(item) for item in batch))
        try:
            response = await self._api("POST", entity, "bulk", body, issue_keys=issue_keys)
        except _TooLarge:
            halves = batches.request_halves(entity, batch)
            if halves is None:
                raise JiraRequestError(
                    f"Jira site {self.site!r} found a single {entity} entity too large "
                    "(HTTP 413); it cannot be sent",
                    status=413,
                ) from None
            log.info(
                "{users}: Jira found {count} {entity} too large for one request; sending halves",
                users=self.users,
                count=len(batch),
                entity=entity,
            )
            first = await self._submit_halving(entity, halves[0], fields)
            return first.merge(await self._submit_halving(entity, halves[1], fields))
        body_read = response.json_or_none()
        return SubmitResult.from_response(entity, body_read, source=str(self.users))

    # -- reading and deleting ------------------------------------------------

    async def get_build(self, pipeline_id: str, build_number: int) -> dict[str, Any] | None:
        """The build Jira holds under that key, or None."""
        path = build_path(pipeline_id, build_number)
        return await self._get("builds", path)

    async def delete_build(self, pipeline_id: str, build_number: int) -> None:
        """Delete one build from Jira."""
        path = build_path(pipeline_id, build_number)
        await self._api("DELETE", "builds", path, None)

    async def get_deployment(
        self, pipeline_id: str, environment_id: str, sequence_number: int
    ) -> dict[str, Any] | None:
        """The deployment Jira holds under that key, or None."""
        path = deployment_path(pipeline_id, environment_id, sequence_number)
        return await self._get("deployments", path)

    async def delete_deployment(
        self, pipeline_id: str, environment_id: str, sequence_number: int
    ) -> None:
        """Delete one deployment from Jira."""
        path = deployment_path(pipeline_id, environment_id, sequence_number)
        await self._api("DELETE", "deployments", path, None)

    async def get_repository(self, repository_id: str) -> dict[str, Any] | None:
        """The development information Jira holds for one repository, or None."""
        return await self._get("devinfo", f"repository/{segment(repository_id)}")

    async def get_feature_flag(self, flag_id: str) -> dict[str, Any] | None:
        """The feature flag Jira holds under that ID, or None."""
        return await self._get("featureflags", f"flag/{segment(flag_id)}")

    async def get_gating_status(
        self, pipeline_id: str, environment_id: str, sequence_number: int
    ) -> GatingStatus | None:
        """Jira's gating status of a deployment, or None while Jira has none (404)."""
        path = deployment_path(pipeline_id, environment_id, sequence_number) + "/gating-status"
        data = await self._get("deployments", path)
        return None if data is None else GatingStatus.from_response(data)

    async def _get(self, entity: EntityType, path: str) -> dict[str, Any] | None:
        response = await self._api("GET", entity, path, None, not_found_ok=True)
        data = None if response.status == 404 else response.json_or_none()
        return data if isinstance(data, dict) else None

    # -- one call, with authentication and retries ---------------------------

    async def _api(
        self,
        method: str,
        entity: EntityType,
        path: str,
        body: object,
        not_found_ok: bool = False,
        issue_keys: frozenset[str] = frozenset(),
    ) -> HttpResponse:
        url = await self._url(entity, path)
        endpoint = (entity, method)
        response = await self._send(
            method, url, body=body, authenticated=True, endpoint=endpoint, issue_keys=issue_keys
        )
        if 200 <= response.status < 300 or (response.status == 404 and not_found_ok):
            return response
        if response.status == 413:
            raise _TooLarge()
        raise request_error(
            response.status,
            response.json_or_none(),
            what=f"{method} {entity} on Jira site {self.site!r}",
            entity=entity,
            location=response.header("Location"),
        )

    async def _send(
        self,
        method: str,
        url: str,
        *,
        body: object = None,
        authenticated: bool,
        endpoint: Endpoint | None = None,
        issue_keys: frozenset[str] = frozenset(),
    ) -> HttpResponse:
        """Send until there is an answer worth returning, or retries run out.

        Returns any answer that is not 401, 429 or 5xx; the caller judges it.
        A request to an ``endpoint`` waits its turn in :attr:`limits`, which
        learn from every answer. What retrying cannot fix (credentials refused
        at the token endpoint) is raised at once, and so is a 429 that waiting
        here would not cure (:meth:`~buildbot_jira.jira.pacing.Pacer.hand_back`).
        """
        renewed = False
        retries = 0
        while True:
            retry_after: float | None = None
            limited: LimitSignal | None = None  # the last answer was a 429
            try:
                token = await self._pacer.take_turn(
                    endpoint, issue_keys, self.tokens.get_token if authenticated else None
                )
                headers = {"Authorization": f"Bearer {token}"} if authenticated else {}
                response = await self._transport.request(
                    method, url, json_body=body, headers=headers, timeout=self.timeout
                )
            except JiraError as failure:
                # No answer, or no token for now: the taxonomy says whether
                # trying again can help.
                if not failure.retryable:
                    raise
                reason = str(failure)
                retry_after = failure.retry_after
            else:
                signal = self._pacer.observe(endpoint, issue_keys, response)
                if response.status == 401 and authenticated:
                    self.tokens.invalidate(token)
                    if renewed:
                        raise JiraAuthError(
                            f"Jira site {self.site!r} refused a newly issued access token for "
                            f"client ID {self.tokens.credentials.client_id!r} (HTTP 401). The "
                            "credentials may have been revoked, or belong to another site"
                        )
                    renewed = True
                    continue
                if response.status != 429 and response.status < 500:
                    return response
                reason = f"{method} {url} answered HTTP {response.status}"
                retry_after = signal.wait
                if signal.limited:
                    limited = signal
                    self._pacer.hand_back(
                        method, endpoint, signal, issue_keys, longest=self.retry.max_retry_after
                    )
            retries += 1
            if retries >= self.retry.max_attempts:
                if limited is not None:
                    raise self._pacer.rate_limited(method, endpoint, limited, retries)
                raise JiraUnavailableError(
                    f"Jira site {self.site!r} is unavailable after {retries} attempts: {reason}",
                    retry_after=retry_after,
                )
            delay = self.retry.delay(retries, retry_after=retry_after, uniform=self._uniform)
            log.debug(
                "{users}: {reason}; retrying in {delay:.1f} s ({retries} of {limit})",
                users=self.users,
                reason=reason,
                delay=delay,
                retries=retries,
                limit=self.retry.max_attempts - 1,
            )
            await task.deferLater(self._clock, delay, lambda: None)
