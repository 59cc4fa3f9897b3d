"""A local stand-in for Jira Software Cloud, behind its OAuth 2.0 gateway.

``JiraSimulator`` speaks the DevOps contract (``buildbot_jira.simulator.contract``) the
way Jira Cloud does through ``api.atlassian.com``: the client-credentials
token endpoint, the site's ``tenant_info``, and the builds, deployments,
development information and feature-flag APIs under
``/jira/<entity>/0.1/cloud/<cloudId>/``. One server plays both the API host
and the site. Tests, the demo and users' dry runs use it::

    simulator = JiraSimulator(known_projects=("PROJ",))
    running = await simulator.listen()
    ...  # point the reporter at running.url, then look at simulator.builds
    await running.stop()

It stores what it accepts with Jira's rule (a newer ``updateSequenceNumber``
wins; an older one is ignored yet reported as accepted) and keeps every
stored version, answers gating status for deployments that ask for gating,
and can inject faults: error answers (with ``Retry-After``), slow answers,
dropped connections, revoked tokens.

Everything it received and stored is readable from Python and, without
authentication, as JSON from ``GET /_simulator/state`` and
``GET /_simulator/issues``, and as a page in the style of Jira's development
panel from ``GET /`` (or ``/_simulator/view``; see :mod:`buildbot_jira.simulator.issue_view`).
Nothing under ``/_simulator/``, nor ``/``, changes state, is delayed, faulted
or recorded.

Client secrets are never recorded, shown or logged: a token request's body is
kept with its ``client_secret`` replaced, and access tokens are left out of
every ``repr`` and of the JSON views.
"""

from __future__ import annotations

import copy
import datetime
import functools
import json
import re
import secrets
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, Final, Literal, TypeAlias, cast
from urllib.parse import unquote_to_bytes

import attrs
from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import (
    IDelayedCall,
    IListeningPort,
    IReactorTCP,
    IReactorTime,
    ITCPTransport,
)
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.python.failure import Failure
from twisted.web import resource, server

from buildbot_jira.simulator.contract import (
    DEVINFO_ENTITY_KINDS,
    ENTITY_TYPES,
    EntityType,
    devinfo_entity_schema,
    entity_schema,
    envelope_schema,
    validation_errors,
)
from buildbot_jira.simulator.issue_view import render_simulator_page

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_CLOUD_ID",
    "DEFAULT_PROJECTS",
    "GATING_STATUSES",
    "Answer",
    "FaultScope",
    "GatingStatus",
    "IssuedToken",
    "JiraSimulator",
    "ReceivedRequest",
    "RunningSimulator",
    "StoredEntity",
]

DEFAULT_CLIENT_ID: Final = "sim-client-id"
DEFAULT_CLIENT_SECRET: Final = "sim-client-secret"  # noqa: S105 - a published test credential
DEFAULT_CLOUD_ID: Final = "00000000-0000-4000-8000-00000000c10d"
DEFAULT_PROJECTS: Final = ("PROJ", "DEMO", "ABC")

#: The gating statuses that the contract defines.
GATING_STATUSES: Final = ("allowed", "prevented", "awaiting", "invalid")

FaultScope: TypeAlias = Literal["api", "token", "any"]

_AUDIENCE: Final = "api.atlassian.com"
_GATING_COMMAND: Final = "initiate_deployment_gating"
_REDACTED: Final = "<redacted>"
# A 400 lists at most this many problems: a request of 100 bad entities
# would otherwise answer with thousands of lines.
_MAX_MESSAGES: Final = 20

_SCOPES: Final[Mapping[str, str]] = {
    "builds": "read:build:jira-software write:build:jira-software",
    "deployments": "read:deployment:jira-software write:deployment:jira-software",
    "devinfo": "read:dev-info:jira write:dev-info:jira",
    "featureflags": "read:feature-flag:jira write:feature-flag:jira",
}
_USN: Final[Mapping[str, str]] = {
    "builds": "updateSequenceNumber",
    "deployments": "updateSequenceNumber",
    "devinfo": "updateSequenceId",
    "featureflags": "updateSequenceId",
}
# Java's \p{L}[\p{L}\p{Digit}_]{1,255}-\p{Digit}{1,255}: the contract puts
# this pattern on the devinfo issueKeys arrays, where JSON Schema ignores it.
_DEVINFO_ISSUE_KEY: Final = re.compile(r"[^\W\d_](?:[^\W\d_]|[0-9_]){1,255}-[0-9]{1,255}")


# -- value classes --------------------------------------------------------------


@attrs.define
class ReceivedRequest:
    """One request that the simulator received (``/_simulator/`` ones aside).

    ``body`` is the parsed JSON body, if it was JSON, with any
    ``client_secret`` redacted. ``status`` is the status answered, ``None``
    while undecided or when the connection was dropped on purpose (``fault``
    is then ``"drop"``; a faulted answer has ``fault`` ``"fail"``).
    ``disconnected`` tells that the client went away before a delayed answer.
    """

    method: str
    path: str
    timestamp: float
    body: Any = None
    status: int | None = None
    fault: Literal["fail", "drop"] | None = None
    disconnected: bool = False

    def to_json(self) -> dict[str, Any]:
        """This request as a JSON object."""
        return {
            "method": self.method,
            "path": self.path,
            "timestamp": self.timestamp,
            "status": self.status,
            "fault": self.fault,
            "disconnected": self.disconnected,
            "body": self.body,
        }


@attrs.define
class IssuedToken:
    """An access token that the simulator issued (the value stays out of ``repr``)."""

    access_token: str = attrs.field(repr=False)
    client_id: str
    issued_at: float
    expires_at: float
    revoked: bool = False

    def is_valid(self, now: float) -> bool:
        """Whether the token may still be used at time ``now``."""
        return not self.revoked and now < self.expires_at

    def to_json(self) -> dict[str, Any]:
        """This token's facts as a JSON object, without the token itself."""
        return {
            "clientId": self.client_id,
            "issuedAt": self.issued_at,
            "expiresAt": self.expires_at,
            "revoked": self.revoked,
        }


@attrs.define
class StoredEntity:
    """An entity in store: its current value and every version stored, in order.

    ``history[-1]`` is ``current``. A version is appended only when its
    sequence number is greater than the stored one, so the history's numbers
    strictly increase.
    """

    key: tuple[Any, ...]
    current: dict[str, Any]
    history: list[dict[str, Any]] = attrs.field(factory=list)
    usn_field: str = "updateSequenceNumber"

    @property
    def update_sequence_number(self) -> int:
        """The sequence number of the current value."""
        return int(self.current[self.usn_field])

    def to_json(self) -> dict[str, Any]:
        """This entity as a JSON object (``key`` as a list)."""
        return {"key": list(self.key), "current": self.current, "history": self.history}


@attrs.define
class GatingStatus:
    """The gating status of a deployment, as Jira Service Management sets it.

    ``details`` are the keys of the issues that hold the deployment.
    """

    status: str
    details: tuple[str, ...]
    updated: float


@attrs.frozen
class Answer:
    """An HTTP answer: status, body and extra headers.

    The body is JSON (``None`` for none), or ``bytes`` sent as they are with
    the ``Content-Type`` that ``headers`` give.
    """

    status: int
    body: Any = None
    headers: Mapping[str, str] = attrs.field(factory=dict)


@attrs.define
class _Fault:
    kind: Literal["fail", "drop"]
    remaining: int
    scope: FaultScope
    status: int = 0
    retry_after: float | None = None
    body: Any = None


@attrs.define
class _RecurringFault:
    """Every ``every``-th request within ``scope`` fails with ``status``."""

    every: int
    scope: FaultScope
    status: int
    retry_after: float | None = None
    seen: int = 0


@attrs.frozen
class _Incoming:
    method: str
    raw_path: str
    segments: tuple[str, ...]
    headers: Mapping[str, str]
    body: bytes
    site_url: str

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


_DROP: Final = object()
_Handler: TypeAlias = Callable[[_Incoming, Mapping[str, str]], Answer]


@attrs.frozen
class _Route:
    method: str
    pattern: tuple[str, ...]
    handler: str
    entity: EntityType | None = None

    def match(self, segments: Sequence[str]) -> dict[str, str] | None:
        if len(segments) != len(self.pattern):
            return None
        params: dict[str, str] = {}
        for part, segment in zip(self.pattern, segments, strict=True):
            if part.startswith("{"):
                params[part[1:-1]] = segment
            elif part != segment:
                return None
        return params


def _gateway(entity: str, *tail: str) -> tuple[str, ...]:
    return ("jira", entity, "0.1", "cloud", "{cloudId}", *tail)


_DEPLOYMENT: Final = (
    "pipelines",
    "{pipelineId}",
    "environments",
    "{environmentId}",
    "deployments",
    "{seq}",
)
_ROUTES: Final = (
    _Route("POST", ("oauth", "token"), "_token"),
    _Route("GET", ("_edge", "tenant_info"), "_tenant_info"),
    _Route("GET", ("_simulator", "state"), "_state_view"),
    _Route("GET", ("_simulator", "issues"), "_issues_view"),
    _Route("GET", ("",), "_page_view"),
    _Route("GET", ("_simulator", "view"), "_page_view"),
    _Route("POST", _gateway("builds", "bulk"), "_submit_builds", "builds"),
    _Route(
        "GET",
        _gateway("builds", "pipelines", "{pipelineId}", "builds", "{buildNumber}"),
        "_get_build",
        "builds",
    ),
    _Route(
        "DELETE",
        _gateway("builds", "pipelines", "{pipelineId}", "builds", "{buildNumber}"),
        "_delete_build",
        "builds",
    ),
    _Route("POST", _gateway("deployments", "bulk"), "_submit_deployments", "deployments"),
    _Route("GET", _gateway("deployments", *_DEPLOYMENT), "_get_deployment", "deployments"),
    _Route("DELETE", _gateway("deployments", *_DEPLOYMENT), "_delete_deployment", "deployments"),
    _Route(
        "GET", _gateway("deployments", *_DEPLOYMENT, "gating-status"), "_get_gating", "deployments"
    ),
    _Route("POST", _gateway("devinfo", "bulk"), "_submit_devinfo", "devinfo"),
    _Route(
        "GET", _gateway("devinfo", "repository", "{repositoryId}"), "_get_repository", "devinfo"
    ),
    _Route(
        "DELETE",
        _gateway("devinfo", "repository", "{repositoryId}"),
        "_delete_repository",
        "devinfo",
    ),
    _Route("POST", _gateway("featureflags", "bulk"), "_submit_flags", "featureflags"),
    _Route("GET", _gateway("featureflags", "flag", "{flagId}"), "_get_flag", "featureflags"),
    _Route("DELETE", _gateway("featureflags", "flag", "{flagId}"), "_delete_flag", "featureflags"),
)


def _errors(*messages: str) -> list[dict[str, str]]:
    """The contract's ErrorMessages body."""
    return [{"message": message} for message in messages]


def _error(status: int, *messages: str, entity: str | None = None) -> Answer:
    if entity == "devinfo":
        # The devinfo API wraps its ErrorMessages in an object.
        return Answer(status, {"errorMessages": _errors(*messages)})
    return Answer(status, _errors(*messages))


def _oauth_error(status: int, error: str, description: str) -> Answer:
    return Answer(status, {"error": error, "error_description": description})


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _timestamp(seconds: float) -> str:
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@functools.cache
def _repository_fields_schema() -> Mapping[str, Any]:
    """A repository's schema without its entity lists' items, judged one by one."""
    schema = copy.deepcopy(dict(entity_schema("devinfo")))
    for kind in DEVINFO_ENTITY_KINDS:
        schema["properties"][kind]["items"] = {}
    return schema


# -- the simulator --------------------------------------------------------------


class JiraSimulator:
    """Jira Software Cloud's DevOps APIs and OAuth 2.0 gateway, in memory.

    ``clients`` maps client IDs to secrets. ``known_projects`` lists the
    project keys whose issues exist (``None``: every project exists).
    ``permissions`` maps a client ID to the entity types (``builds``,
    ``deployments``, ``devinfo``, ``featureflags``) it may use; a client
    missing from it may use none (``None``: every client may use all).
    ``clock`` times token expiry, answer delays and timestamps.
    ``max_body_bytes`` makes bigger bulk requests answer 413.
    """

    def __init__(
        self,
        *,
        clients: Mapping[str, str] | None = None,
        cloud_id: str = DEFAULT_CLOUD_ID,
        known_projects: Collection[str] | None = DEFAULT_PROJECTS,
        token_lifetime: int = 3600,
        permissions: Mapping[str, Collection[str]] | None = None,
        clock: IReactorTime | None = None,
        max_body_bytes: int | None = None,
    ) -> None:
        if clock is None:
            from twisted.internet import reactor

            clock = cast(IReactorTime, reactor)
        self.clients: dict[str, str] = dict(
            clients if clients is not None else {DEFAULT_CLIENT_ID: DEFAULT_CLIENT_SECRET}
        )
        self.cloud_id = cloud_id
        self.known_projects: frozenset[str] | None = (
            None if known_projects is None else frozenset(p.upper() for p in known_projects)
        )
        self.token_lifetime = token_lifetime
        self.permissions: dict[str, frozenset[str]] | None = None
        if permissions is not None:
            self.permissions = {client: frozenset(kinds) for client, kinds in permissions.items()}
            unknown = set().union(*self.permissions.values()) - set(ENTITY_TYPES)
            if unknown:
                raise ValueError(
                    f"unknown entity types {sorted(unknown)} in permissions: "
                    f"use {', '.join(ENTITY_TYPES)}"
                )
        self.clock = clock
        self.max_body_bytes = max_body_bytes
        #: Seconds to wait before each answer (``/_simulator/`` aside); see set_delay.
        self.delay: float = 0.0

        self.requests: list[ReceivedRequest] = []
        self.issued_tokens: list[IssuedToken] = []
        self.builds: dict[tuple[str, int], StoredEntity] = {}
        self.deployments: dict[tuple[str, str, int], StoredEntity] = {}
        self.gating: dict[tuple[str, str, int], GatingStatus] = {}
        self.feature_flags: dict[str, StoredEntity] = {}
        self.repositories: dict[str, StoredEntity] = {}
        #: Commits, branches and pull requests, keyed (repositoryId, kind, id).
        self.devinfo_entities: dict[tuple[str, str, str], StoredEntity] = {}

        self._tokens: dict[str, IssuedToken] = {}
        self._faults: list[_Fault] = []
        self._recurring: _RecurringFault | None = None
        self._waiters: list[tuple[int, defer.Deferred[None]]] = []
        self._observers: list[Callable[[ReceivedRequest], None]] = []

    def __repr__(self) -> str:
        return f"<JiraSimulator cloud_id={self.cloud_id!r} clients={sorted(self.clients)!r}>"

    # -- observation --------------------------------------------------------

    @property
    def token_requests(self) -> int:
        """How many requests reached the token endpoint (faulted ones included)."""
        return sum(1 for r in self.requests if r.path.startswith("/oauth/"))

    @property
    def api_requests(self) -> int:
        """How many requests reached ``/jira/`` (faulted ones included)."""
        return sum(1 for r in self.requests if r.path.startswith("/jira/"))

    def when_received(self, count: int) -> defer.Deferred[None]:
        """A Deferred that fires once ``count`` requests in all have been received."""
        waiter: defer.Deferred[None] = defer.Deferred()
        if len(self.requests) >= count:
            waiter.callback(None)
        else:
            self._waiters.append((count, waiter))
        return waiter

    def subscribe(self, observer: Callable[[ReceivedRequest], None]) -> Callable[[], None]:
        """Call ``observer`` with each request once its answer is decided.

        Returns a function that unsubscribes it.
        """
        self._observers.append(observer)
        return lambda: self._observers.remove(observer)

    def is_known_issue(self, issue_key: str) -> bool:
        """Whether ``issue_key`` names an issue that exists on this site.

        A numeric issue ID is taken as existing: there is no way to tell.
        """
        if self.known_projects is None or issue_key.isdigit():
            return True
        project, _, _ = issue_key.rpartition("-")
        return project.upper() in self.known_projects

    def builds_for_issue(self, issue_key: str) -> list[dict[str, Any]]:
        """The current value of every stored build linked to ``issue_key``."""
        return self._linked(self.builds.values(), _build_issue_keys, issue_key)

    def deployments_for_issue(self, issue_key: str) -> list[dict[str, Any]]:
        """The current value of every stored deployment linked to ``issue_key``."""
        return self._linked(self.deployments.values(), _deployment_issue_keys, issue_key)

    def feature_flags_for_issue(self, issue_key: str) -> list[dict[str, Any]]:
        """The current value of every stored feature flag linked to ``issue_key``."""
        return self._linked(self.feature_flags.values(), _build_issue_keys, issue_key)

    def _linked(
        self,
        entities: Iterable[StoredEntity],
        issue_keys: Callable[[Mapping[str, Any]], list[str]],
        issue_key: str,
    ) -> list[dict[str, Any]]:
        if not self.is_known_issue(issue_key):
            return []  # Jira links nothing to an issue that does not exist.
        wanted = issue_key.upper()
        return [e.current for e in entities if wanted in (k.upper() for k in issue_keys(e.current))]

    def gating_status(
        self, pipeline_id: str, environment_id: str, sequence_number: int
    ) -> GatingStatus | None:
        """The gating status of a deployment, if Jira has gating data for it."""
        return self.gating.get((pipeline_id, environment_id, sequence_number))

    def state(self) -> dict[str, Any]:
        """Everything received and stored, as ``GET /_simulator/state`` answers it."""
        return {
            "cloudId": self.cloud_id,
            "knownProjects": None if self.known_projects is None else sorted(self.known_projects),
            "delay": self.delay,
            "pendingFaults": [
                {"kind": f.kind, "remaining": f.remaining, "scope": f.scope, "status": f.status}
                for f in self._faults
            ],
            "recurringFault": None
            if self._recurring is None
            else {
                "every": self._recurring.every,
                "scope": self._recurring.scope,
                "status": self._recurring.status,
            },
            "counts": {
                "requests": len(self.requests),
                "tokenRequests": self.token_requests,
                "apiRequests": self.api_requests,
                "issuedTokens": len(self.issued_tokens),
                "builds": len(self.builds),
                "deployments": len(self.deployments),
                "featureFlags": len(self.feature_flags),
                "repositories": len(self.repositories),
                "devinfoEntities": len(self.devinfo_entities),
            },
            "requests": [r.to_json() for r in self.requests],
            "tokens": [t.to_json() for t in self.issued_tokens],
            "builds": [e.to_json() for e in self.builds.values()],
            "deployments": [e.to_json() for e in self.deployments.values()],
            "gating": [
                {"key": list(key), **self._gating_json(key, gating, site_url="")}
                for key, gating in self.gating.items()
            ],
            "featureFlags": [e.to_json() for e in self.feature_flags.values()],
            "repositories": [e.to_json() for e in self.repositories.values()],
            "devinfoEntities": [e.to_json() for e in self.devinfo_entities.values()],
        }

    def issues(self) -> dict[str, dict[str, list[dict[str, Any]]]]:
        """Per known issue key, the stored entities linked to it (``/_simulator/issues``)."""
        view: dict[str, dict[str, list[dict[str, Any]]]] = {}

        def add(section: str, entity: StoredEntity, keys: list[str]) -> None:
            for key in _unique(k.upper() for k in keys if self.is_known_issue(k)):
                sections = view.setdefault(
                    key, {"builds": [], "deployments": [], "featureFlags": [], "development": []}
                )
                sections[section].append(entity.current)

        for entity in self.builds.values():
            add("builds", entity, _build_issue_keys(entity.current))
        for entity in self.deployments.values():
            add("deployments", entity, _deployment_issue_keys(entity.current))
        for entity in self.feature_flags.values():
            add("featureFlags", entity, _build_issue_keys(entity.current))
        for entity in self.devinfo_entities.values():
            add("development", entity, _build_issue_keys(entity.current))
        return dict(sorted(view.items()))

    # -- control ------------------------------------------------------------

    def set_delay(self, seconds: float) -> None:
        """Wait ``seconds`` (on ``clock``) before answering each request.

        The request is handled when it arrives; only its answer waits, as
        when the way back is slow. So a client that gives up meanwhile may
        still have had its data stored, as with the real service.
        """
        if seconds < 0:
            raise ValueError(f"a delay cannot be negative, got {seconds}")
        self.delay = seconds

    def fail_next(
        self,
        count: int,
        status: int,
        *,
        retry_after: float | None = None,
        body: Any = None,
        scope: FaultScope = "api",
    ) -> None:
        """Answer the next ``count`` requests within ``scope`` with ``status``.

        ``scope``: ``"api"`` (``/jira/`` calls), ``"token"`` (the token
        endpoint) or ``"any"``. ``retry_after`` adds a ``Retry-After`` header
        (seconds). ``body`` replaces the default error body. The request is
        not processed. Faults queue up in the order they were asked for.
        """
        self._add_fault(
            _Fault("fail", count, scope, status=status, retry_after=retry_after, body=body)
        )

    def fail_every(
        self,
        every: int,
        status: int,
        *,
        retry_after: float | None = None,
        scope: FaultScope = "api",
    ) -> None:
        """Answer every ``every``-th request within ``scope`` with ``status``, until cleared.

        The count starts now and skips requests that a ``fail_next`` or
        ``drop_next`` fault answers. ``every=1`` fails them all (an outage).
        """
        if every < 1:
            raise ValueError(f"every must be at least 1, got {every}")
        if scope not in ("api", "token", "any"):
            raise ValueError(f"scope must be 'api', 'token' or 'any', got {scope!r}")
        self._recurring = _RecurringFault(every, scope, status, retry_after)

    def drop_next(self, count: int, scope: FaultScope = "api") -> None:
        """Abort the connection of the next ``count`` requests within ``scope``.

        The request is not processed and gets no answer at all.
        """
        self._add_fault(_Fault("drop", count, scope))

    def _add_fault(self, fault: _Fault) -> None:
        if fault.remaining < 1:
            raise ValueError(f"count must be at least 1, got {fault.remaining}")
        if fault.scope not in ("api", "token", "any"):
            raise ValueError(f"scope must be 'api', 'token' or 'any', got {fault.scope!r}")
        self._faults.append(fault)

    def clear_faults(self) -> None:
        """Forget every fault not yet applied, the recurring one, and the delay."""
        self._faults.clear()
        self._recurring = None
        self.delay = 0.0

    def revoke_tokens(self) -> None:
        """Make every token issued so far invalid (later ones work)."""
        for token in self.issued_tokens:
            token.revoked = True

    def issue_token(self, client_id: str = DEFAULT_CLIENT_ID) -> str:
        """Issue an access token for ``client_id`` without an HTTP request."""
        if client_id not in self.clients:
            raise KeyError(f"unknown client ID {client_id!r}")
        now = self.clock.seconds()
        value = "sim-" + secrets.token_urlsafe(24)
        token = IssuedToken(value, client_id, now, now + self.token_lifetime)
        self._tokens[value] = token
        self.issued_tokens.append(token)
        return value

    def set_gating_status(
        self,
        pipeline_id: str,
        environment_id: str,
        sequence_number: int,
        status: str,
        details: Iterable[str] = (),
    ) -> None:
        """Set a stored deployment's gating status (``details``: issue keys holding it).

        Raises ``KeyError`` if no such deployment is stored, ``ValueError``
        for a status that the contract does not define.
        """
        if status not in GATING_STATUSES:
            raise ValueError(f"gating status must be one of {GATING_STATUSES}, got {status!r}")
        key = (pipeline_id, environment_id, sequence_number)
        if key not in self.deployments:
            raise KeyError(f"no deployment stored with key {key!r}")
        self.gating[key] = GatingStatus(status, tuple(details), self.clock.seconds())

    # -- serving ------------------------------------------------------------

    def resource(self) -> resource.Resource:
        """The twisted.web resource that answers every request to this simulator.

        Tests can serve it without sockets, through
        ``treq.testing.RequestTraversalAgent``.
        """
        return _SimulatorResource(self)

    def site(self) -> server.Site:
        """A twisted.web Site serving this simulator."""
        return _QuietSite(self.resource())

    async def listen(
        self,
        reactor: IReactorTCP | None = None,
        port: int = 0,
        interface: str = "127.0.0.1",
    ) -> RunningSimulator:
        """Listen on ``interface``:``port`` (0: any free port) until ``stop()``."""
        if reactor is None:
            from twisted.internet import reactor as global_reactor

            reactor = cast(IReactorTCP, global_reactor)
        factory = _ConnectionTracker(self.site())
        listening = reactor.listenTCP(port, cast(Any, factory), interface=interface)
        host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(interface, interface)  # noqa: S104
        if ":" in host:
            host = f"[{host}]"
        url = f"http://{host}:{listening.getHost().port}"  # type: ignore[attr-defined]
        return RunningSimulator(simulator=self, url=url, port=listening, connections=factory)

    # -- request handling (called by _SimulatorResource) --------------------

    def _receive(self, incoming: _Incoming) -> tuple[ReceivedRequest | None, Answer | object]:
        """Decide the answer to a request: an Answer, or _DROP.

        The ReceivedRequest is None for the side-effect-free views (/_simulator/ and /).
        """
        if incoming.segments[:1] == ("_simulator",) or incoming.segments == ("",):
            return None, self._route(incoming)
        record = ReceivedRequest(
            method=incoming.method,
            path=incoming.raw_path,
            timestamp=self.clock.seconds(),
            body=_recorded_body(incoming.body),
        )
        self.requests.append(record)
        fault = self._take_fault(incoming)
        answer: Answer | object
        if fault is None:
            answer = self._route(incoming)
        elif fault.kind == "drop":
            record.fault, answer = "drop", _DROP
        else:
            record.fault, answer = "fail", self._fault_answer(fault)
        if isinstance(answer, Answer):
            record.status = answer.status
        for observer in list(self._observers):
            observer(record)
        return record, answer

    def _wake_waiters(self) -> None:
        """Fire the when_received() waiters that are due.

        Called once the answer is written or scheduled: code that waits runs
        on at once, and must find the request fully handled.
        """
        ready = [w for w in self._waiters if len(self.requests) >= w[0]]
        self._waiters = [w for w in self._waiters if len(self.requests) < w[0]]
        for _, waiter in ready:
            waiter.callback(None)

    def _take_fault(self, incoming: _Incoming) -> _Fault | None:
        first = incoming.segments[0] if incoming.segments else ""
        scope = {"jira": "api", "oauth": "token"}.get(first)
        for fault in self._faults:
            if fault.scope == "any" or fault.scope == scope:
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        recurring = self._recurring
        if recurring is not None and recurring.scope in ("any", scope):
            recurring.seen += 1
            if recurring.seen % recurring.every == 0:
                return _Fault(
                    "fail",
                    1,
                    recurring.scope,
                    status=recurring.status,
                    retry_after=recurring.retry_after,
                )
        return None

    def _fault_answer(self, fault: _Fault) -> Answer:
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = format(fault.retry_after, "g")
        body = fault.body
        if body is None:
            body = _errors(f"Simulated failure: HTTP {fault.status}")
        return Answer(fault.status, body, headers)

    def _route(self, incoming: _Incoming) -> Answer:
        if incoming.segments[:1] == ("jira",):
            unauthorized = self._check_token(incoming)
            if unauthorized is not None:
                return unauthorized
        allowed: list[str] = []
        for route in _ROUTES:
            params = route.match(incoming.segments)
            if params is None:
                continue
            if route.method != incoming.method:
                allowed.append(route.method)
                continue
            refused = self._check_gateway(incoming, route, params)
            if refused is not None:
                return refused
            handler = cast(_Handler, getattr(self, route.handler))
            return handler(incoming, params)
        if allowed:
            return Answer(
                405,
                _errors(f"Method {incoming.method} is not allowed here"),
                {"Allow": ", ".join(allowed)},
            )
        return Answer(404, _errors(f"No resource at {incoming.raw_path}"))

    def _check_token(self, incoming: _Incoming) -> Answer | None:
        scheme, _, value = incoming.header("authorization").partition(" ")
        token = self._tokens.get(value.strip()) if scheme.lower() == "bearer" else None
        if token is not None and token.is_valid(self.clock.seconds()):
            return None
        return Answer(
            401,
            {"code": 401, "message": "Unauthorized"},
            {"WWW-Authenticate": 'Bearer realm="api.atlassian.com"'},
        )

    def _check_gateway(
        self, incoming: _Incoming, route: _Route, params: Mapping[str, str]
    ) -> Answer | None:
        if route.entity is None:
            return None
        if params["cloudId"] != self.cloud_id:
            return Answer(404, {"code": 404, "message": "Not Found"})
        token = self._tokens[incoming.header("authorization").partition(" ")[2].strip()]
        if not self._may_use(token.client_id, route.entity):
            return _error(
                403,
                f"The credentials of client {token.client_id!r} lack the permission "
                f"to use {route.entity} data; grant it in Jira's OAuth credentials settings",
            )
        return None

    def _may_use(self, client_id: str, entity: str) -> bool:
        if self.permissions is None:
            return True
        return entity in self.permissions.get(client_id, frozenset())

    # -- token and site -----------------------------------------------------

    def _token(self, incoming: _Incoming, params: Mapping[str, str]) -> Answer:
        body = _parse_json(incoming.body)
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
        if body["audience"] != _AUDIENCE:
            return _oauth_error(
                403, "access_denied", f"Service not enabled within domain: {body['audience']}"
            )
        client_id = body["client_id"]
        expected = self.clients.get(client_id)
        if expected is None or not secrets.compare_digest(expected, body["client_secret"]):
            return _oauth_error(401, "access_denied", "Unauthorized")
        entities = (
            ENTITY_TYPES
            if self.permissions is None
            else sorted(self.permissions.get(client_id, ()))
        )
        return Answer(
            200,
            {
                "access_token": self.issue_token(client_id),
                "expires_in": self.token_lifetime,
                "token_type": "Bearer",
                "scope": " ".join(_SCOPES[e] for e in entities if e in _SCOPES),
            },
        )

    def _tenant_info(self, incoming: _Incoming, params: Mapping[str, str]) -> Answer:
        return Answer(200, {"cloudId": self.cloud_id})

    def _state_view(self, incoming: _Incoming, params: Mapping[str, str]) -> Answer:
        return Answer(200, self.state())

    def _issues_view(self, incoming: _Incoming, params: Mapping[str, str]) -> Answer:
        return Answer(200, self.issues())

    def _page_view(self, incoming: _Incoming, params: Mapping[str, str]) -> Answer:
        return Answer(
            200,
            render_simulator_page(self, url=incoming.site_url).encode("utf-8"),
            {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"},
        )

    # -- bulk submissions ---------------------------------------------------

    def _bulk_body(self, incoming: _Incoming, entity: EntityType) -> Answer | dict[str, Any]:
        """The request body if it is a well-formed bulk request, else a 4xx."""
        if self.max_body_bytes is not None and len(incoming.body) > self.max_body_bytes:
            return _error(
                413,
                f"The request is larger than {self.max_body_bytes} bytes; "
                "send fewer entities per request",
                entity=entity,
            )
        content_type = incoming.header("content-type").split(";")[0].strip().lower()
        if content_type != "application/json":
            return _error(415, "Content-Type must be application/json", entity=entity)
        body = _parse_json(incoming.body)
        if body is _NOT_JSON:
            return _error(400, "The request body is not valid JSON", entity=entity)
        problems = validation_errors(envelope_schema(entity), body)
        if entity == "devinfo" and not problems:
            problems = _devinfo_request_problems(body)
        if problems:
            return _error(400, *problems[:_MAX_MESSAGES], entity=entity)
        return cast(dict[str, Any], body)

    def _submit_builds(self, incoming: _Incoming, params: Mapping[str, str]) -> Answer:
        body = self._bulk_body(incoming, "builds")
        if isinstance(body, Answer):
            return body
        accepted: list[dict[str, Any]] = []
        rejected: list[dict[str, Any]] = []
        unknown: list[str] = []
        for build in body["builds"]:
            key = {
                "pipelineId": _string(build.get("pipelineId")),
                "buildNumber": _integer(build.get("buildNumber")),
            }
            problems = validation_errors(entity_schema("builds"), build)
            if problems:
                rejected.append({"key": key, "errors": _errors(*problems)})
                continue
            issue_keys = _build_issue_keys(build)
            missing = [k for k in issue_keys if not self.is_known_issue(k)]
            unknown += missing
            if len(missing) == len(issue_keys):
                continue
            self._store(self.builds, (build["pipelineId"], build["buildNumber"]), build, "builds")
            accepted.append(key)
        return Answer(
            202,
            {
                "acceptedBuilds": accepted,
                "rejectedBuilds": rejected,
                "unknownIssueKeys": _unique(unknown),
            },
        )

    def _submit_deployments(self, incoming: _Incoming, params: Mapping[str, str]) -> Answer:
        body = self._bulk_body(incoming, "deployments")
        if isinstance(body, Answer):
            return body
        accepted: list[dict[str, Any]] = []
        rejected: list[dict[str, Any]] = []
        unknown: list[str] = []
        unknown_associations: dict[str, list[str]] = {}
        for deployment in body["deployments"]:
            key = _deployment_key_json(deployment)
            problems = validation_errors(entity_schema("deployments"), deployment)
            problems += _deployment_problems(deployment) if not problems else []
            if problems:
                rejected.append({"key": key, "errors": _errors(*problems)})
                continue
            issue_keys = _deployment_issue_keys(deployment)
            missing = [k for k in issue_keys if not self.is_known_issue(k)]
            unknown += missing
            for association in deployment.get("associations", ()):
                if association["associationType"] in ("issueKeys", "issueIdOrKeys"):
                    unknown_associations.setdefault(association["associationType"], []).extend(
                        v for v in association["values"] if not self.is_known_issue(v)
                    )
            if len(missing) == len(issue_keys) and not _service_keys(deployment):
                continue
            stored_key = (key["pipelineId"], key["environmentId"], key["deploymentSequenceNumber"])
            if self._store(self.deployments, stored_key, deployment, "deployments"):
                self._start_gating(stored_key, deployment)
            accepted.append(key)
        return Answer(
            202,
            {
                "acceptedDeployments": accepted,
                "rejectedDeployments": rejected,
                "unknownIssueKeys": _unique(unknown),
                "unknownAssociations": [
                    {"associationType": kind, "values": _unique(values)}
                    for kind, values in unknown_associations.items()
                    if values
                ],
            },
        )

    def _start_gating(self, key: tuple[str, str, int], deployment: Mapping[str, Any]) -> None:
        commands = deployment.get("commands", ())
        wants_gating = any(
            isinstance(c, dict) and c.get("command") == _GATING_COMMAND for c in commands
        )
        if wants_gating and key not in self.gating:
            self.gating[key] = GatingStatus("awaiting", (), self.clock.seconds())

    def _submit_flags(self, incoming: _Incoming, params: Mapping[str, str]) -> Answer:
        body = self._bulk_body(incoming, "featureflags")
        if isinstance(body, Answer):
            return body
        accepted: list[str] = []
        failed: dict[str, list[dict[str, str]]] = {}
        unknown: list[str] = []
        for index, flag in enumerate(body["flags"]):
            flag_id = flag.get("id") if isinstance(flag.get("id"), str) else f"flags[{index}]"
            problems = validation_errors(entity_schema("featureflags"), flag)
            if problems:
                failed[flag_id] = _errors(*problems)
                continue
            missing = [k for k in flag["issueKeys"] if not self.is_known_issue(k)]
            unknown += missing
            if len(missing) == len(flag["issueKeys"]):
                continue
            self._store(self.feature_flags, (flag_id,), flag, "featureflags")
            accepted.append(flag_id)
        return Answer(
            202,
            {
                "acceptedFeatureFlags": accepted,
                "failedFeatureFlags": failed,
                "unknownIssueKeys": _unique(unknown),
            },
        )

    def _submit_devinfo(self, incoming: _Incoming, params: Mapping[str, str]) -> Answer:
        body = self._bulk_body(incoming, "devinfo")
        if isinstance(body, Answer):
            return body
        accepted: dict[str, dict[str, list[str]]] = {}
        failed: dict[str, dict[str, Any]] = {}
        unknown: list[str] = []
        for index, repository in enumerate(body["repositories"]):
            repository_id = repository.get("id")
            if not isinstance(repository_id, str):
                repository_id = f"repositories[{index}]"
            problems = validation_errors(_repository_fields_schema(), repository)
            if problems:
                failed[repository_id] = {"errorMessages": _errors(*problems)}
                continue
            fields = {k: v for k, v in repository.items() if k not in DEVINFO_ENTITY_KINDS}
            self._store(self.repositories, (repository_id,), fields, "devinfo")
            done: dict[str, list[str]] = {kind: [] for kind in DEVINFO_ENTITY_KINDS}
            for kind in DEVINFO_ENTITY_KINDS:
                for position, item in enumerate(repository.get(kind, ())):
                    item_id = (
                        item.get("id")
                        if isinstance(item.get("id"), str)
                        else (f"{kind}[{position}]")
                    )
                    problems = _devinfo_entity_problems(kind, item)
                    if problems:
                        failed.setdefault(repository_id, {}).setdefault(kind, []).append(
                            {"id": item_id, "errorMessages": _errors(*problems)}
                        )
                        continue
                    missing = [k for k in item["issueKeys"] if not self.is_known_issue(k)]
                    unknown += missing
                    if len(missing) == len(item["issueKeys"]):
                        continue
                    self._store(
                        self.devinfo_entities, (repository_id, kind, item_id), item, "devinfo"
                    )
                    done[kind].append(item_id)
            accepted[repository_id] = done
        return Answer(
            202,
            {
                "acceptedDevinfoEntities": accepted,
                "failedDevinfoEntities": failed,
                "unknownIssueKeys": _unique(unknown),
            },
        )

    def _store(
        self,
        store: dict[Any, StoredEntity],
        key: tuple[Any, ...],
        value: Mapping[str, Any],
        entity: str,
    ) -> bool:
        """Store ``value`` if it is newer than what is stored (Jira's rule).

        Returns whether it was stored. An older or equal sequence number is
        ignored, silently: Jira reports such an entity as accepted all the same.
        """
        usn_field = _USN[entity]
        # A copy: the caller's dict must not change what is stored.
        version = copy.deepcopy(dict(value))
        stored_key = key[0] if len(key) == 1 else key
        current = store.get(stored_key)
        if current is not None and version[usn_field] <= current.update_sequence_number:
            return False
        if current is None:
            store[stored_key] = StoredEntity(key, version, [version], usn_field)
        else:
            current.current = version
            current.history.append(version)
        return True

    # -- reads and deletes --------------------------------------------------

    def _get_build(self, incoming: _Incoming, params: Mapping[str, str]) -> Answer:
        key = _build_key(params)
        if key is None:
            return _error(400, f"Build number must be an integer, got {params['buildNumber']!r}")
        return _found(self.builds.get(key), f"No build with key {key!r}")

    def _delete_build(self, incoming: _Incoming, params: Mapping[str, str]) -> Answer:
        key = _build_key(params)
        if key is None:
            return _error(400, f"Build number must be an integer, got {params['buildNumber']!r}")
        self.builds.pop(key, None)
        return Answer(202)

    def _get_deployment(self, incoming: _Incoming, params: Mapping[str, str]) -> Answer:
        key = _deployment_key(params)
        if key is None:
            return _error(400, f"Sequence number must be an integer, got {params['seq']!r}")
        return _found(self.deployments.get(key), f"No deployment with key {key!r}")

    def _delete_deployment(self, incoming: _Incoming, params: Mapping[str, str]) -> Answer:
        key = _deployment_key(params)
        if key is None:
            return _error(400, f"Sequence number must be an integer, got {params['seq']!r}")
        self.deployments.pop(key, None)
        self.gating.pop(key, None)
        return Answer(202)

    def _get_gating(self, incoming: _Incoming, params: Mapping[str, str]) -> Answer:
        key = _deployment_key(params)
        if key is None:
            return _error(400, f"Sequence number must be an integer, got {params['seq']!r}")
        gating = self.gating.get(key)
        if gating is None:
            return _error(404, f"No gating status for deployment {key!r}")
        return Answer(200, self._gating_json(key, gating, site_url=incoming.site_url))

    def _gating_json(
        self, key: tuple[str, str, int], gating: GatingStatus, *, site_url: str
    ) -> dict[str, Any]:
        pipeline_id, environment_id, sequence_number = key
        return {
            "deploymentSequenceNumber": sequence_number,
            "pipelineId": pipeline_id,
            "environmentId": environment_id,
            "gatingStatus": gating.status,
            "updatedTimestamp": _timestamp(gating.updated),
            "details": [
                {"type": "issue", "issueKey": issue, "issueLink": f"{site_url}/browse/{issue}"}
                for issue in gating.details
            ],
        }

    def _get_flag(self, incoming: _Incoming, params: Mapping[str, str]) -> Answer:
        flag_id = params["flagId"]
        return _found(self.feature_flags.get(flag_id), f"No feature flag with ID {flag_id!r}")

    def _delete_flag(self, incoming: _Incoming, params: Mapping[str, str]) -> Answer:
        self.feature_flags.pop(params["flagId"], None)
        return Answer(202)

    def _get_repository(self, incoming: _Incoming, params: Mapping[str, str]) -> Answer:
        repository_id = params["repositoryId"]
        stored = self.repositories.get(repository_id)
        if stored is None:
            return _error(404, f"No repository with ID {repository_id!r}", entity="devinfo")
        answer = dict(stored.current)
        for kind in DEVINFO_ENTITY_KINDS:
            answer[kind] = [
                e.current
                for (repo, k, _), e in self.devinfo_entities.items()
                if repo == repository_id and k == kind
            ]
        return Answer(200, answer)

    def _delete_repository(self, incoming: _Incoming, params: Mapping[str, str]) -> Answer:
        repository_id = params["repositoryId"]
        self.repositories.pop(repository_id, None)
        for key in [k for k in self.devinfo_entities if k[0] == repository_id]:
            del self.devinfo_entities[key]
        return Answer(202)


# -- entity helpers -------------------------------------------------------------

_NOT_JSON: Final = object()


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError is a ValueError too
        return _NOT_JSON


def _recorded_body(body: bytes) -> Any:
    parsed = _parse_json(body) if body else None
    if parsed is _NOT_JSON:
        return None
    if isinstance(parsed, dict) and "client_secret" in parsed:
        parsed["client_secret"] = _REDACTED
    return parsed


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _found(entity: StoredEntity | None, message: str) -> Answer:
    return _error(404, message) if entity is None else Answer(200, entity.current)


def _build_key(params: Mapping[str, str]) -> tuple[str, int] | None:
    number = params["buildNumber"]
    if not re.fullmatch(r"-?[0-9]+", number):
        return None
    return params["pipelineId"], int(number)


def _deployment_key(params: Mapping[str, str]) -> tuple[str, str, int] | None:
    if not re.fullmatch(r"-?[0-9]+", params["seq"]):
        return None
    return params["pipelineId"], params["environmentId"], int(params["seq"])


def _deployment_key_json(deployment: Mapping[str, Any]) -> dict[str, Any]:
    pipeline = deployment.get("pipeline")
    environment = deployment.get("environment")
    return {
        "pipelineId": _string(pipeline.get("id")) if isinstance(pipeline, dict) else None,
        "environmentId": _string(environment.get("id")) if isinstance(environment, dict) else None,
        "deploymentSequenceNumber": _integer(deployment.get("deploymentSequenceNumber")),
    }


def _build_issue_keys(entity: Mapping[str, Any]) -> list[str]:
    """The issue keys of a build, feature flag, commit, branch or pull request."""
    return [k for k in entity.get("issueKeys", ()) if isinstance(k, str)]


def _deployment_issue_keys(deployment: Mapping[str, Any]) -> list[str]:
    """A deployment's issue keys, in the older ``issueKeys`` form and in associations."""
    keys = _build_issue_keys(deployment)
    for association in deployment.get("associations", ()):
        if association.get("associationType") in ("issueKeys", "issueIdOrKeys"):
            keys += [v for v in association.get("values", ()) if isinstance(v, str)]
    return _unique(keys)


def _service_keys(deployment: Mapping[str, Any]) -> list[str]:
    return [
        value
        for association in deployment.get("associations", ())
        if association.get("associationType") == "serviceIdOrKeys"
        for value in association.get("values", ())
    ]


def _deployment_problems(deployment: Mapping[str, Any]) -> list[str]:
    """What the contract says of deployments in words rather than in schema."""
    associations = deployment.get("associations", ())
    problems = []
    total = sum(len(a["values"]) for a in associations)
    if total > 500:
        problems.append(f"$.associations: has {total} values in all, at most 500 allowed")
    linked = bool(_deployment_issue_keys(deployment) or _service_keys(deployment))
    if not linked:
        problems.append(
            "$: a deployment must be associated with at least one issue or service: "
            "give 'associations' of type issueIdOrKeys or serviceIdOrKeys (or 'issueKeys')"
        )
    return problems


def _devinfo_request_problems(body: Mapping[str, Any]) -> list[str]:
    """The devinfo request rules that the schema states only in words."""
    problems = []
    ids = [r.get("id") for r in body["repositories"]]
    duplicates = sorted({i for i in ids if isinstance(i, str) and ids.count(i) > 1})
    if duplicates:
        problems.append(f"$.repositories: duplicate repository IDs {duplicates}")
    total = sum(len(r.get(kind, ())) for r in body["repositories"] for kind in DEVINFO_ENTITY_KINDS)
    if total > 1000:
        problems.append(f"$.repositories: {total} entities in all, at most 1000 allowed")
    return problems


def _devinfo_entity_problems(kind: str, item: Mapping[str, Any]) -> list[str]:
    problems = validation_errors(devinfo_entity_schema(kind), item)
    for position, key in enumerate(item.get("issueKeys", ()) if not problems else ()):
        if not isinstance(key, str) or not _DEVINFO_ISSUE_KEY.fullmatch(key):
            problems.append(f"$.issueKeys[{position}]: {key!r} is not a valid issue key")
    return problems


# -- twisted.web ----------------------------------------------------------------


class _QuietSite(server.Site):
    """A Site without access log: the simulator records requests itself."""

    noisy = False

    def log(self, request: Any) -> None:
        """Write nothing."""


class _SimulatorResource(resource.Resource):
    """The one resource of the simulator: it sees every path, undecoded."""

    isLeaf = True

    def __init__(self, simulator: JiraSimulator) -> None:
        super().__init__()
        self._simulator = simulator

    def render(self, request: server.Request) -> int:
        """Answer ``request`` now, later (delay) or never (drop)."""
        incoming = _incoming(request)
        if incoming is None:
            _write(request, _error(400, "The path is not valid percent-encoded UTF-8"))
            return server.NOT_DONE_YET
        record, answer = self._simulator._receive(incoming)
        if answer is _DROP:
            # No answer at all: the TCP connection is cut, as a failing proxy does.
            cast(ITCPTransport, request.channel.transport).abortConnection()
            self._simulator._wake_waiters()
            return server.NOT_DONE_YET
        assert isinstance(answer, Answer)
        delay = self._simulator.delay
        if record is None or delay <= 0:
            _write(request, answer)
        else:
            self._write_later(request, answer, record, delay)
        self._simulator._wake_waiters()
        return server.NOT_DONE_YET

    def _write_later(
        self, request: server.Request, answer: Answer, record: ReceivedRequest, delay: float
    ) -> None:
        call: IDelayedCall = self._simulator.clock.callLater(delay, _write, request, answer)

        def client_gone(reason: Failure) -> None:
            # Writing to a closed request would fail: give up the answer.
            record.disconnected = True
            if call.active():
                call.cancel()

        request.notifyFinish().addErrback(client_gone)


def _incoming(request: server.Request) -> _Incoming | None:
    raw_path = (request.path or b"/").decode("ascii", "replace")
    try:
        segments = tuple(
            unquote_to_bytes(part).decode("utf-8")
            for part in (request.path or b"/").split(b"/")[1:]
        )
    except UnicodeDecodeError:
        return None
    headers = {
        name.decode("latin-1").lower(): values[0].decode("latin-1")
        for name, values in request.requestHeaders.getAllRawHeaders()
    }
    host = headers.get("host") or f"127.0.0.1:{cast(IPv4Address, request.getHost()).port}"
    assert request.content is not None
    return _Incoming(
        method=(request.method or b"GET").decode("ascii", "replace"),
        raw_path=raw_path,
        segments=segments,
        headers=headers,
        body=request.content.read(),
        site_url=f"http://{host}",
    )


def _write(request: server.Request, answer: Answer) -> None:
    request.setResponseCode(answer.status)
    for name, value in answer.headers.items():
        request.setHeader(name, value)
    if isinstance(answer.body, bytes):
        # A page (the issue view): its headers carry the content type.
        request.write(answer.body)
    elif answer.body is not None:
        request.setHeader("Content-Type", "application/json")
        request.write(json.dumps(answer.body).encode("utf-8"))
    request.finish()


_CONNECTION_DONE: Final = Failure(ConnectionDone())


class _TrackedConnection(ProtocolWrapper):
    """A connection that tells its factory once it is closed for good."""

    def connectionLost(self, reason: Failure = _CONNECTION_DONE) -> None:
        """Close the HTTP channel first, then report: a pending request has
        noticed that its client is gone by the time the waiters run."""
        super().connectionLost(reason)
        cast(_ConnectionTracker, self.factory).connection_closed()


class _ConnectionTracker(WrappingFactory):
    """Keeps the open connections, so that stopping can close them all."""

    protocol = _TrackedConnection

    def __init__(self, site: server.Site) -> None:
        super().__init__(site)
        self._idle_waiters: list[defer.Deferred[None]] = []

    def connection_closed(self) -> None:
        """Fire the waiters once no connection is left."""
        if not self.protocols:
            waiters, self._idle_waiters = self._idle_waiters, []
            for waiter in waiters:
                waiter.callback(None)

    def when_idle(self) -> defer.Deferred[None]:
        """Fires once no connection is open (at once if none is)."""
        if not self.protocols:
            return defer.succeed(None)
        waiter: defer.Deferred[None] = defer.Deferred()
        self._idle_waiters.append(waiter)
        return waiter

    def close_all(self) -> defer.Deferred[None]:
        """Close every open connection; fires once all are closed."""
        idle = self.when_idle()
        for wrapper in list(self.protocols):
            wrapper.transport.loseConnection()
        return idle


@attrs.define
class RunningSimulator:
    """A simulator listening on a port: ``url`` is both the API and the site URL."""

    simulator: JiraSimulator
    url: str
    port: IListeningPort
    connections: _ConnectionTracker = attrs.field(repr=False)

    def when_idle(self) -> defer.Deferred[None]:
        """A Deferred that fires once no client connection is open.

        Tests use it to know that the simulator has seen a client go away.
        """
        return self.connections.when_idle()

    async def stop(self) -> None:
        """Stop listening and close open connections (pending answers are dropped)."""
        await defer.maybeDeferred(self.port.stopListening)
        await self.connections.close_all()
