"""The simulator's own pages: never recorded, faulted or delayed.

``GET /_simulator/`` answers an index of every page, control and API route,
``GET /_simulator/state`` everything received and stored as JSON,
``GET /_simulator/issues`` the stored entities per issue, and ``GET /`` (or
``/_simulator/view``) the issue view, rendered by
:mod:`buildbot_jira.simulator.issue_view` from the :class:`IssuePage` built
here. The views change nothing; the controls handed in (such as
:mod:`~buildbot_jira.simulator.gating_control`) are served beside them and
listed in the index. Access tokens are left out of every view.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from buildbot_jira.simulator.burst import RateLimits
from buildbot_jira.simulator.contract import DEVINFO_ENTITY_KINDS
from buildbot_jira.simulator.exchange import Answer, IncomingRequest
from buildbot_jira.simulator.faults import FaultPlan
from buildbot_jira.simulator.issue_view import (
    InRepository,
    IssueActivity,
    IssuePage,
    render_page,
)
from buildbot_jira.simulator.links import associated_issue_keys, listed_issue_keys, unique
from buildbot_jira.simulator.recording import RequestLog
from buildbot_jira.simulator.routing import Route, Router
from buildbot_jira.simulator.state import Store, StoredEntity
from buildbot_jira.simulator.tenant import Tenant

__all__ = ["SimulatorViews", "is_view_path"]

#: The sections of an issue in ``/_simulator/issues``, in order: the devinfo
#: kinds are named as in the contract.
_SECTIONS: Final = ("builds", "deployments", "featureFlags", *DEVINFO_ENTITY_KINDS)
_PAGE_HEADERS: Final = {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}

#: What each of the simulator's own paths is for, as the index tells it.
_DESCRIPTIONS: Final[Mapping[str, str]] = {
    "GET /": (
        "the issue view: builds, deployments, pull requests, branches, commits and "
        "feature flags per issue, as Jira shows them"
    ),
    "GET /_simulator/": "this index",
    "GET /_simulator/view": "the issue view (as /)",
    "GET /_simulator/state": "everything received and stored, as JSON",
    "GET /_simulator/issues": (
        "the stored builds, deployments, feature flags, commits, branches and pull "
        "requests, per issue"
    ),
    "GET /_simulator/gating": "the gating status of each gated deployment, and of new ones",
    "POST /_simulator/gating": (
        'set gating: {"gatingStatus": "allowed"} for every gated deployment and new ones, '
        "or with pipelineId, environmentId and deploymentSequenceNumber for one; "
        '"details": ["PROJ-9"] names the issues that hold it'
    ),
}


def is_view_path(incoming: IncomingRequest) -> bool:
    """Whether ``incoming`` asks for one of the simulator's own views (``/``, ``/_simulator/``)."""
    return incoming.first_segment == "_simulator" or incoming.segments == ("",)


class SimulatorViews:
    """Reads the simulator's settings, log, faults and store; changes none of them."""

    def __init__(
        self,
        *,
        tenant: Tenant,
        store: Store,
        log: RequestLog,
        faults: FaultPlan,
        limits: RateLimits | None = None,
        controls: Iterable[Route] = (),
        api_routes: Iterable[Route] = (),
    ) -> None:
        self._tenant = tenant
        self._limits = limits if limits is not None else RateLimits()
        self._store = store
        self._log = log
        self._faults = faults
        self._api_routes = tuple(api_routes)
        self._router = Router(
            [
                Route("GET", ("",), self._page),
                Route("GET", ("_simulator",), self._index),
                Route("GET", ("_simulator", ""), self._index),
                Route("GET", ("_simulator", "view"), self._page),
                Route("GET", ("_simulator", "state"), self._state_json),
                Route("GET", ("_simulator", "issues"), self._issues_json),
                *controls,
            ]
        )

    def __repr__(self) -> str:
        return f"<SimulatorViews cloud_id={self._tenant.cloud_id!r}>"

    def answer(self, incoming: IncomingRequest) -> Answer:
        """The answer to a request for a view (see :func:`is_view_path`)."""
        return self._router.answer(incoming)

    def _index(self, incoming: IncomingRequest, params: Mapping[str, str]) -> Answer:
        return Answer(200, self.index(url=incoming.site_url))

    def index(self, *, url: str) -> dict[str, Any]:
        """What ``GET /_simulator/`` answers: every page, control and API route at ``url``."""
        cloud_id = self._tenant.cloud_id
        own = [
            {
                "method": route.method,
                "url": url + _path(route.pattern, cloud_id),
                "what": _DESCRIPTIONS.get(f"{route.method} {_path(route.pattern, cloud_id)}", ""),
            }
            for route in self._router.routes
            if route.pattern != ("_simulator",)  # the same index as /_simulator/
        ]
        api = [
            {"method": route.method, "url": url + _path(route.pattern, cloud_id)}
            for route in self._api_routes
        ]
        return {
            "simulator": "Jira Cloud simulator",
            "apiUrl": url,
            "siteUrl": url,
            "cloudId": cloud_id,
            "clientIds": sorted(self._tenant.clients),
            "pages": own,
            "api": api,
        }

    def _state_json(self, incoming: IncomingRequest, params: Mapping[str, str]) -> Answer:
        return Answer(200, self.state())

    def _issues_json(self, incoming: IncomingRequest, params: Mapping[str, str]) -> Answer:
        return Answer(200, self.issues())

    def _page(self, incoming: IncomingRequest, params: Mapping[str, str]) -> Answer:
        page = render_page(self.page(url=incoming.site_url))
        return Answer(200, page.encode("utf-8"), _PAGE_HEADERS)

    def linked(
        self,
        entities: Iterable[StoredEntity],
        issue_keys: Callable[[Mapping[str, Any]], list[str]],
        issue_key: str,
    ) -> list[dict[str, Any]]:
        """The current value of each of ``entities`` that names ``issue_key``."""
        if not self._tenant.is_known_issue(issue_key):
            return []  # Jira links nothing to an issue that does not exist.
        wanted = issue_key.upper()
        return [e.current for e in entities if wanted in (k.upper() for k in issue_keys(e.current))]

    def state(self) -> dict[str, Any]:
        """Everything received and stored, as ``GET /_simulator/state`` answers it."""
        tenant, store, log = self._tenant, self._store, self._log
        known = tenant.known_projects
        return {
            "cloudId": tenant.cloud_id,
            "knownProjects": None if known is None else sorted(known),
            **self._faults.to_json(),
            "rateLimits": self._limits.to_json(),
            "counts": {
                "requests": len(log.requests),
                "tokenRequests": log.token_requests,
                "apiRequests": log.api_requests,
                "issuedTokens": len(store.issued_tokens),
                "builds": len(store.builds),
                "deployments": len(store.deployments),
                "featureFlags": len(store.feature_flags),
                "repositories": len(store.repositories),
                "devinfoEntities": len(store.devinfo_entities),
            },
            "requests": [r.to_json() for r in log.requests],
            "tokens": [t.to_json() for t in store.issued_tokens],
            "builds": [e.to_json() for e in store.builds.values()],
            "deployments": [e.to_json() for e in store.deployments.values()],
            "gating": [
                {"key": list(key), **gating.to_json(key, site_url="")}
                for key, gating in store.gating.items()
            ],
            "featureFlags": [e.to_json() for e in store.feature_flags.values()],
            "repositories": [e.to_json() for e in store.repositories.values()],
            "devinfoEntities": [e.to_json() for e in store.devinfo_entities.values()],
        }

    def issues(self) -> dict[str, dict[str, list[dict[str, Any]]]]:
        """Per known issue key, the stored entities linked to it (``/_simulator/issues``).

        Each issue has every section, empty or not: ``builds``, ``deployments``,
        ``featureFlags``, and the devinfo kinds ``commits``, ``branches`` and
        ``pullRequests``.
        """
        view: dict[str, dict[str, list[dict[str, Any]]]] = {}

        def add(section: str, entity: StoredEntity, keys: list[str]) -> None:
            for key in self._known_keys(keys):
                sections = view.setdefault(key, {name: [] for name in _SECTIONS})
                sections[section].append(entity.current)

        store = self._store
        for entity in store.builds.values():
            add("builds", entity, listed_issue_keys(entity.current))
        for entity in store.deployments.values():
            add("deployments", entity, associated_issue_keys(entity.current))
        for entity in store.feature_flags.values():
            add("featureFlags", entity, listed_issue_keys(entity.current))
        for (_, kind, _), entity in store.devinfo_entities.items():
            add(kind, entity, listed_issue_keys(entity.current))
        return dict(sorted(view.items()))

    def development(self) -> dict[str, dict[str, list[InRepository]]]:
        """Per known issue key and devinfo kind, its entities with the repository of each."""
        linked: dict[str, dict[str, list[InRepository]]] = {}
        for (repository_id, kind, _), entity in self._store.devinfo_entities.items():
            stored = self._store.repositories.get(repository_id)
            repository = stored.current if stored is not None else {"id": repository_id}
            for key in self._known_keys(listed_issue_keys(entity.current)):
                kinds = linked.setdefault(key, {})
                kinds.setdefault(kind, []).append(InRepository(entity.current, repository))
        return linked

    def page(self, *, url: str) -> IssuePage:
        """What the issue view shows now, as served at ``url``."""
        known = self._tenant.known_projects
        development = self.development()
        kinds = [kind for _, kind, _ in self._store.devinfo_entities]

        def in_repositories(key: str, kind: str) -> tuple[InRepository, ...]:
            return tuple(development.get(key, {}).get(kind, ()))

        return IssuePage(
            url=url,
            issues=tuple(
                IssueActivity(
                    key=key,
                    builds=tuple(sections["builds"]),
                    deployments=tuple(sections["deployments"]),
                    feature_flags=tuple(sections["featureFlags"]),
                    commits=in_repositories(key, "commits"),
                    branches=in_repositories(key, "branches"),
                    pull_requests=in_repositories(key, "pullRequests"),
                )
                for key, sections in self.issues().items()
            ),
            known_projects=None if known is None else tuple(sorted(known)),
            client_ids=tuple(sorted(self._tenant.clients)),
            requests=len(self._log.requests),
            builds=len(self._store.builds),
            deployments=len(self._store.deployments),
            unknown_keys=self._unknown_keys(),
            feature_flags=len(self._store.feature_flags),
            commits=kinds.count("commits"),
            branches=kinds.count("branches"),
            pull_requests=kinds.count("pullRequests"),
        )

    def _known_keys(self, keys: Iterable[str]) -> list[str]:
        """``keys`` of issues that exist, upper case, each once."""
        return unique(k.upper() for k in keys if self._tenant.is_known_issue(k))

    def _unknown_keys(self) -> dict[str, int]:
        """Issue keys of accepted bulk requests that the site does not know.

        Each counts the builds and deployments that named it, each once: a
        build sent in progress and then finished is one build, not two.
        """
        named: dict[str, set[str]] = {}
        for request in self._log.requests:
            if request.status != 202 or not isinstance(request.body, dict):
                continue
            for section in ("builds", "deployments"):
                entities = request.body.get(section)
                for entity in entities if isinstance(entities, list) else ():
                    for key in associated_issue_keys(entity):
                        if not self._tenant.is_known_issue(key):
                            named.setdefault(key.upper(), set()).add(_identity(section, entity))
        return {key: len(entities) for key, entities in sorted(named.items())}


def _path(pattern: tuple[str, ...], cloud_id: str) -> str:
    """The path of a route, with the site's cloud ID in its place."""
    return "/" + "/".join(cloud_id if part == "{cloudId}" else part for part in pattern)


def _identity(section: str, entity: Any) -> str:
    """What tells one build or deployment from another in a request body, as text.

    Text, since the values come from the wire and may be of any JSON type.
    """
    if not isinstance(entity, dict):
        return json.dumps([section, entity], sort_keys=True, default=str)
    if section == "builds":
        parts = [entity.get("pipelineId"), entity.get("buildNumber")]
    else:
        pipeline, environment = entity.get("pipeline"), entity.get("environment")
        parts = [
            pipeline.get("id") if isinstance(pipeline, dict) else pipeline,
            environment.get("id") if isinstance(environment, dict) else environment,
            entity.get("deploymentSequenceNumber"),
        ]
    return json.dumps([section, *parts], sort_keys=True, default=str)
