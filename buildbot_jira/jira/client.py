"""The Jira Software Cloud client: cloud ID, the four DevOps APIs, retries.

:class:`JiraCloud` speaks the contract in ``shared/contract`` through the
OAuth 2.0 gateway (``{api_url}/jira/<entity>/0.1/cloud/<cloudId>/...``). It
retries what retrying can fix (no answer, 5xx, 429), waits what Jira asks for
(``Retry-After``), halves a batch that Jira finds too large (413), renews a
refused token once (401), and turns everything else into an error that says
what to check.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import attrs
from twisted.internet import task
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from buildbot_jira.jira.auth import DEFAULT_API_URL, SingleFlight, TokenCache, TokenUnavailable
from buildbot_jira.jira.errors import (
    JiraAuthError,
    JiraPermissionError,
    JiraRequestError,
    JiraSiteError,
    JiraUnavailableError,
)
from buildbot_jira.jira.http import (
    DEFAULT_TIMEOUT,
    HttpResponse,
    HttpTransport,
    TransportError,
    parse_retry_after,
)
from buildbot_jira.jira.model import ENTITY_LISTS, EntityType

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

#: The contract allows 1 to 100 builds, deployments or feature flags per request
#: (and 100 repositories per devinfo request).
MAX_ENTITIES_PER_REQUEST = 100

_PERMISSION_HINT: Mapping[EntityType, str] = {
    "builds": "builds (write:build:jira-software)",
    "deployments": "deployments (write:deployment:jira-software)",
    "devinfo": "development information (write:dev-info:jira)",
    "featureflags": "feature flags (write:feature-flag:jira)",
}


@attrs.frozen
class RetryPolicy:
    """How often and how patiently a request is retried.

    Connection failures, timeouts and 5xx wait ``initial_delay`` seconds,
    growing by ``multiplier`` up to ``max_delay``, each shortened at random by
    up to ``jitter`` (a fraction) so that many masters do not retry in step.
    429 and 503 wait what ``Retry-After`` says, up to ``max_retry_after``.
    ``max_attempts`` counts the first attempt.
    """

    max_attempts: int = attrs.field(default=5, validator=attrs.validators.ge(1))
    initial_delay: float = attrs.field(default=1.0, validator=attrs.validators.ge(0))
    multiplier: float = attrs.field(default=2.0, validator=attrs.validators.ge(1))
    max_delay: float = attrs.field(default=60.0, validator=attrs.validators.ge(0))
    jitter: float = attrs.field(
        default=0.5, validator=[attrs.validators.ge(0), attrs.validators.le(1)]
    )
    max_retry_after: float = attrs.field(default=300.0, validator=attrs.validators.ge(0))

    def backoff(self, retry: int, *, uniform: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry)."""
        delay = min(self.max_delay, self.initial_delay * self.multiplier ** (retry - 1))
        return delay * (1 - self.jitter * uniform())


@attrs.frozen
class Rejection:
    """An entity that Jira did not accept, with Jira's messages."""

    key: Any
    errors: tuple[str, ...]


@attrs.frozen
class SubmitResult:
    """What Jira said of a bulk submission (merged over all the requests sent).

    ``accepted`` holds the keys Jira accepted (for builds ``{"pipelineId",
    "buildNumber"}``, for deployments ``{"pipelineId", "environmentId",
    "deploymentSequenceNumber"}``, for feature flags the flag IDs, for devinfo
    ``{"repository": id, ...entity ids}``).
    """

    entity: EntityType
    accepted: tuple[Any, ...] = ()
    rejected: tuple[Rejection, ...] = ()
    unknown_issue_keys: tuple[str, ...] = ()
    unknown_associations: tuple[Any, ...] = ()

    def merge(self, other: SubmitResult) -> SubmitResult:
        """This result and ``other`` together (for a batch sent in parts)."""
        return SubmitResult(
            entity=self.entity,
            accepted=self.accepted + other.accepted,
            rejected=self.rejected + other.rejected,
            unknown_issue_keys=_unique(self.unknown_issue_keys + other.unknown_issue_keys),
            unknown_associations=self.unknown_associations + other.unknown_associations,
        )

    @classmethod
    def from_response(cls, entity: EntityType, data: object) -> SubmitResult:
        """Parse the body of a 202 answer to a bulk POST of ``entity``.

        A body of an unexpected shape gives an empty result: Jira took the
        request, and what it says of it is only reported.
        """
        try:
            return cls._parse(entity, data)
        except (TypeError, AttributeError, ValueError):
            log.warn("Jira answered a {entity} submission with an unexpected body", entity=entity)
            return cls(entity=entity)

    @classmethod
    def _parse(cls, entity: EntityType, data: object) -> SubmitResult:
        if not isinstance(data, dict):
            return cls(entity=entity)
        unknown_keys = tuple(str(key) for key in data.get("unknownIssueKeys") or ())
        if entity == "devinfo":
            return cls(
                entity=entity,
                accepted=tuple(
                    {"repository": repo, **ids}
                    for repo, ids in (data.get("acceptedDevinfoEntities") or {}).items()
                ),
                rejected=tuple(
                    Rejection(key={"repository": repo}, errors=_devinfo_messages(errors))
                    for repo, errors in (data.get("failedDevinfoEntities") or {}).items()
                ),
                unknown_issue_keys=unknown_keys,
            )
        if entity == "featureflags":
            return cls(
                entity=entity,
                accepted=tuple(data.get("acceptedFeatureFlags") or ()),
                rejected=tuple(
                    Rejection(key=flag, errors=_messages(errors))
                    for flag, errors in (data.get("failedFeatureFlags") or {}).items()
                ),
                unknown_issue_keys=unknown_keys,
            )
        plural = "Builds" if entity == "builds" else "Deployments"
        return cls(
            entity=entity,
            accepted=tuple(data.get(f"accepted{plural}") or ()),
            rejected=tuple(
                Rejection(key=item.get("key"), errors=_messages(item.get("errors")))
                for item in data.get(f"rejected{plural}") or ()
                if isinstance(item, dict)
            ),
            unknown_issue_keys=unknown_keys,
            unknown_associations=tuple(data.get("unknownAssociations") or ()),
        )


@attrs.frozen
class GatingStatus:
    """Jira's gating decision for one deployment.

    ``status`` is one of ``allowed``, ``prevented``, ``awaiting``, ``invalid``;
    ``details`` lists the issues that hold the deployment (``issueKey``,
    ``issueLink``).
    """

    status: str
    details: tuple[Mapping[str, Any], ...] = ()
    updated: str | None = None

    @classmethod
    def from_response(cls, data: object) -> GatingStatus:
        """Parse a gating-status answer."""
        if not isinstance(data, dict) or not isinstance(data.get("gatingStatus"), str):
            return cls(status="invalid")
        details = tuple(d for d in data.get("details") or () if isinstance(d, dict))
        return cls(
            status=data["gatingStatus"], details=details, updated=data.get("updatedTimestamp")
        )


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
    :param clock: times the waits between retries (the transport's clock by default).
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
        retry: RetryPolicy = RetryPolicy(),
        clock: IReactorTime | None = None,
        uniform: Callable[[], float] = random.random,
    ) -> None:
        self.site = site
        self.api_url = api_url.rstrip("/")
        self.site_url = (site_url or f"https://{site}").rstrip("/")
        self.timeout = timeout
        self.retry = retry
        self.tokens = token_cache
        self._transport = transport
        self._clock = clock if clock is not None else transport.clock
        self._uniform = uniform
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
        cloud_id = None
        if response.status == 200:
            try:
                cloud_id = response.json().get("cloudId")
            except (ValueError, AttributeError):
                cloud_id = None
        if not isinstance(cloud_id, str) or not cloud_id:
            raise JiraSiteError(
                f"Jira site {self.site!r} did not answer with a cloud ID at {url} "
                f"(HTTP {response.status}). The site name is probably wrong: it is the "
                "host name of your Jira, such as example.atlassian.net"
            )
        log.info("Jira site {site} has cloud ID {cloud_id}", site=self.site, cloud_id=cloud_id)
        return cloud_id

    async def _url(self, entity: str, path: str) -> str:
        cloud_id = await self.get_cloud_id()
        return f"{self.api_url}/jira/{entity}/0.1/cloud/{quote(cloud_id, safe='')}/{path}"

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
    ) -> SubmitResult:
        """Send development information (repositories with commits, branches, PRs)."""
        return await self.submit("devinfo", repositories, properties, provider_metadata)

    async def submit(
        self,
        entity: EntityType,
        items: Sequence[Mapping[str, Any]],
        properties: Mapping[str, str] | None = None,
        provider_metadata: Mapping[str, str] | None = None,
    ) -> SubmitResult:
        """Send ``items`` of ``entity`` in as many bulk requests as it takes.

        Batches are at most 100 entities; a batch that Jira finds too large
        (413) is halved and both halves are sent.
        """
        if entity not in ENTITY_LISTS:
            raise ValueError(f"unknown entity type {entity!r}")
        result = SubmitResult(entity=entity)
        for start in range(0, len(items), MAX_ENTITIES_PER_REQUEST):
            batch = list(items[start : start + MAX_ENTITIES_PER_REQUEST])
            part = await self._submit_halving(entity, batch, properties, provider_metadata)
            result = result.merge(part)
        return result

    async def _submit_halving(
        self,
        entity: EntityType,
        batch: list[Mapping[str, Any]],
        properties: Mapping[str, str] | None,
        provider_metadata: Mapping[str, str] | None,
    ) -> SubmitResult:
        body: dict[str, Any] = {ENTITY_LISTS[entity]: batch}
        if properties:
            body["properties"] = dict(properties)
        if provider_metadata:
            body["providerMetadata"] = dict(provider_metadata)
        try:
            response = await self._api("POST", entity, "bulk", body)
        except _TooLarge:
            if len(batch) == 1:
                raise JiraRequestError(
                    f"Jira site {self.site!r} found a single {entity} entity too large "
                    "(HTTP 413); it cannot be sent",
                    status=413,
                ) from None
            middle = len(batch) // 2
            log.info(
                "Jira found {count} {entity} too large for one request; sending halves",
                count=len(batch),
                entity=entity,
            )
            first = await self._submit_halving(
                entity, batch[:middle], properties, provider_metadata
            )
            second = await self._submit_halving(
                entity, batch[middle:], properties, provider_metadata
            )
            return first.merge(second)
        return SubmitResult.from_response(entity, _json_or_none(response))

    # -- reading and deleting ------------------------------------------------

    async def get_build(self, pipeline_id: str, build_number: int) -> dict[str, Any] | None:
        """The build Jira holds under that key, or None."""
        path = f"pipelines/{_segment(pipeline_id)}/builds/{int(build_number)}"
        return await self._get("builds", path)

    async def delete_build(self, pipeline_id: str, build_number: int) -> None:
        """Delete one build from Jira."""
        path = f"pipelines/{_segment(pipeline_id)}/builds/{int(build_number)}"
        await self._api("DELETE", "builds", path, None)

    async def get_deployment(
        self, pipeline_id: str, environment_id: str, sequence_number: int
    ) -> dict[str, Any] | None:
        """The deployment Jira holds under that key, or None."""
        return await self._get(
            "deployments", _deployment_path(pipeline_id, environment_id, sequence_number)
        )

    async def delete_deployment(
        self, pipeline_id: str, environment_id: str, sequence_number: int
    ) -> None:
        """Delete one deployment from Jira."""
        path = _deployment_path(pipeline_id, environment_id, sequence_number)
        await self._api("DELETE", "deployments", path, None)

    async def get_gating_status(
        self, pipeline_id: str, environment_id: str, sequence_number: int
    ) -> GatingStatus | None:
        """Jira's gating status of a deployment, or None while Jira has none (404)."""
        path = _deployment_path(pipeline_id, environment_id, sequence_number) + "/gating-status"
        data = await self._get("deployments", path)
        return None if data is None else GatingStatus.from_response(data)

    async def _get(self, entity: EntityType, path: str) -> dict[str, Any] | None:
        response = await self._api("GET", entity, path, None, not_found_ok=True)
        if response.status == 404:
            return None
        data = _json_or_none(response)
        return data if isinstance(data, dict) else None

    # -- one call, with authentication and retries ---------------------------

    async def _api(
        self,
        method: str,
        entity: EntityType,
        path: str,
        body: object,
        not_found_ok: bool = False,
    ) -> HttpResponse:
        url = await self._url(entity, path)
        response = await self._send(method, url, body=body, authenticated=True)
        status = response.status
        if 200 <= status < 300 or (status == 404 and not_found_ok):
            return response
        messages = _error_messages(response)
        quoted = f": {'; '.join(messages)}" if messages else ""
        what = f"{method} {entity} on Jira site {self.site!r}"
        if status == 413:
            raise _TooLarge()
        if status == 403:
            raise JiraPermissionError(
                f"{what} was refused (HTTP 403{quoted}). The OAuth credentials lack the "
                f"permission to write {_PERMISSION_HINT[entity]}; a Jira admin can grant it "
                "under Settings > Apps > OAuth credentials",
                status=status,
                messages=messages,
            )
        if 300 <= status < 400:
            raise JiraRequestError(
                f"{what} was answered with a redirect (HTTP {status}) to "
                f"{response.header('Location')!r}, which is not followed. The site may have "
                "been renamed: check site, site_url and api_url",
                status=status,
            )
        if status == 400:
            raise JiraRequestError(
                f"{what} was rejected as malformed (HTTP 400{quoted})",
                status=status,
                messages=messages,
            )
        raise JiraRequestError(
            f"{what} failed (HTTP {status}{quoted})", status=status, messages=messages
        )

    async def _send(
        self, method: str, url: str, *, body: object = None, authenticated: bool
    ) -> HttpResponse:
        """Send until there is an answer worth returning, or retries run out.

        Returns any answer that is not 401, 429 or 5xx; the caller judges it.
        """
        renewed = False
        retries = 0
        while True:
            retry_after: float | None = None
            try:
                headers = {}
                token = ""
                if authenticated:
                    token = await self.tokens.get_token()
                    headers["Authorization"] = f"Bearer {token}"
                response = await self._transport.request(
                    method, url, json_body=body, headers=headers, timeout=self.timeout
                )
            except (TransportError, TokenUnavailable) as failure:
                reason = str(failure)
                retry_after = getattr(failure, "retry_after", None)
            else:
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
                if response.status in (429, 503):
                    retry_after = parse_retry_after(response.header("Retry-After"))
            retries += 1
            if retries >= self.retry.max_attempts:
                raise JiraUnavailableError(
                    f"Jira site {self.site!r} is unavailable after {retries} attempts: {reason}",
                    retry_after=retry_after,
                )
            if retry_after is not None:
                # Never less than the first backoff: "Retry-After: 0" is no busy loop.
                delay = min(max(retry_after, self.retry.initial_delay), self.retry.max_retry_after)
            else:
                delay = self.retry.backoff(retries, uniform=self._uniform)
            log.debug(
                "{reason}; retrying in {delay:.1f} s ({retries} of {limit})",
                reason=reason,
                delay=delay,
                retries=retries,
                limit=self.retry.max_attempts - 1,
            )
            await task.deferLater(self._clock, delay, lambda: None)


def _segment(value: str) -> str:
    return quote(str(value), safe="")


def _deployment_path(pipeline_id: str, environment_id: str, sequence_number: int) -> str:
    return (
        f"pipelines/{_segment(pipeline_id)}/environments/{_segment(environment_id)}"
        f"/deployments/{int(sequence_number)}"
    )


def _json_or_none(response: HttpResponse) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _messages(errors: object) -> tuple[str, ...]:
    if not isinstance(errors, list):
        return ()
    return tuple(
        str(error.get("message", "")) if isinstance(error, dict) else str(error) for error in errors
    )


def _devinfo_messages(errors: object) -> tuple[str, ...]:
    if not isinstance(errors, dict):
        return ()
    found = list(_messages(errors.get("errorMessages")))
    for kind in ("commits", "branches", "pullRequests"):
        for item in errors.get(kind) or ():
            if isinstance(item, dict):
                found.extend(
                    f"{kind} {item.get('id')}: {m}" for m in _messages(item.get("errorMessages"))
                )
    return tuple(found)


def _error_messages(response: HttpResponse) -> tuple[str, ...]:
    """Jira's error texts from an error answer (``[{message}]`` or ``{errorMessages}``)."""
    data = _json_or_none(response)
    if isinstance(data, list):
        return _messages(data)
    if isinstance(data, dict):
        if isinstance(data.get("errorMessages"), list):
            return tuple(str(m) for m in data["errorMessages"])
        if isinstance(data.get("message"), str):
            return (data["message"],)
    return ()


def _unique(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))
