"""A local stand-in for Jira Software Cloud, behind its OAuth 2.0 gateway.

``JiraSimulator`` speaks the DevOps contract (:mod:`buildbot_jira.simulator.contract`)
the way Jira Cloud does through ``api.atlassian.com``: the client-credentials
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
enforces Jira's burst rate limit if asked to, and can inject faults: error
answers (with ``Retry-After``, any ``RateLimit-Reason``), slow answers,
dropped connections, revoked tokens.

Everything it received and stored is readable from Python and, without
authentication, as JSON from ``GET /_simulator/state`` and
``GET /_simulator/issues``, and as a page in the style of Jira's development
panel from ``GET /`` (or ``/_simulator/view``; see :mod:`buildbot_jira.simulator.issue_view`);
``GET /_simulator/`` lists them all. ``POST /_simulator/gating`` plays Jira
Service Management's decision on gated deployments
(:mod:`~buildbot_jira.simulator.gating_control`). Nothing under
``/_simulator/``, nor ``/``, changes what was received or stored, is delayed,
faulted or recorded.

``JiraSimulator`` composes the parts, each in a module of its own: the
site's settings (:mod:`~buildbot_jira.simulator.tenant`), what it stores
(:mod:`~buildbot_jira.simulator.state`) and received
(:mod:`~buildbot_jira.simulator.recording`), the faults to inject
(:mod:`~buildbot_jira.simulator.faults`), the rate limits
(:mod:`~buildbot_jira.simulator.burst`), the APIs
(:mod:`~buildbot_jira.simulator.api`), its own views
(:mod:`~buildbot_jira.simulator.views`) and twisted.web
(:mod:`~buildbot_jira.simulator.web`).

Client secrets are never recorded, shown or logged: a token request's body is
kept with its ``client_secret`` replaced, and access tokens are left out of
every ``repr`` and of the JSON views.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, cast

import attrs
from twisted.internet import defer
from twisted.internet.interfaces import IListeningPort, IReactorTCP, IReactorTime
from twisted.web import resource, server

from buildbot_jira.simulator import links
from buildbot_jira.simulator.api import JiraApi
from buildbot_jira.simulator.burst import BurstLimit, RateLimits
from buildbot_jira.simulator.contract import DEVINFO_ENTITY_KINDS
from buildbot_jira.simulator.controls import FaultControls
from buildbot_jira.simulator.exchange import Answer, IncomingRequest, Reception
from buildbot_jira.simulator.faults import FaultPlan
from buildbot_jira.simulator.forwarding import Forwarded
from buildbot_jira.simulator.gating_control import GatingControl
from buildbot_jira.simulator.recording import RequestLog
from buildbot_jira.simulator.state import (
    GatingStatus,
    IssuedToken,
    ReceivedRequest,
    Store,
    StoredEntity,
)
from buildbot_jira.simulator.tenant import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_CLOUD_ID,
    DEFAULT_PROJECTS,
    Tenant,
)
from buildbot_jira.simulator.views import SimulatorViews, is_view_path
from buildbot_jira.simulator.web import (
    ConnectionTracker,
    QuietSite,
    SimulatorResource,
    listen_tcp,
)

__all__ = ["JiraSimulator", "RunningSimulator"]


class JiraSimulator(FaultControls):
    """Jira Software Cloud's DevOps APIs and OAuth 2.0 gateway, in memory.

    ``clients`` maps client IDs to secrets. ``known_projects`` lists the
    project keys whose issues exist (``None``: every project exists).
    ``permissions`` maps a client ID to the entity types (``builds``,
    ``deployments``, ``devinfo``, ``featureflags``) it may use; a client
    missing from it may use none (``None``: every client may use all).
    ``clock`` times token expiry, answer delays and timestamps.
    ``max_body_bytes`` makes bigger bulk requests answer 413.
    ``rate_limit`` is a burst limit of requests per second per API
    endpoint (see :meth:`set_rate_limit`). ``default_gating_status`` is the
    status that a deployment asking to be gated starts with (see
    :meth:`set_gating_status`, and ``POST /_simulator/gating``).

    These settings, and ``clock``, may be changed at any time. The faults
    and rate limits are set with :class:`FaultControls`' methods.
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
        rate_limit: int | None = None,
        default_gating_status: str = "awaiting",
    ) -> None:
        if clock is None:
            from twisted.internet import reactor

            clock = cast(IReactorTime, reactor)
        self.clock: IReactorTime = clock
        tenant = Tenant(
            clients=clients if clients is not None else {DEFAULT_CLIENT_ID: DEFAULT_CLIENT_SECRET},
            cloud_id=cloud_id,
            known_projects=known_projects,
            token_lifetime=token_lifetime,
            permissions=permissions,
            max_body_bytes=max_body_bytes,
            default_gating_status=default_gating_status,
        )
        self._tenant = tenant
        self._store = Store()
        self._log = RequestLog()
        self._faults = FaultPlan()
        self._limits = RateLimits(None if rate_limit is None else BurstLimit(rate_limit))
        self._api = JiraApi(tenant=tenant, store=self._store, limits=self._limits)
        gating = GatingControl(tenant=tenant, store=self._store, deployments=self._api.deployments)
        self._views = SimulatorViews(
            tenant=tenant,
            store=self._store,
            log=self._log,
            faults=self._faults,
            limits=self._limits,
            controls=gating.routes(),
            api_routes=self._api.routes,
        )

    def __repr__(self) -> str:
        return f"<JiraSimulator cloud_id={self.cloud_id!r} clients={sorted(self.clients)!r}>"

    # -- settings, and what it received and stores ---------------------------

    #: Client IDs and their secrets.
    clients = Forwarded[dict[str, str]]("_tenant", writable=True)
    #: The site's cloud ID.
    cloud_id = Forwarded[str]("_tenant", writable=True)
    #: The project keys whose issues exist, upper case (``None``: every project).
    known_projects = Forwarded[frozenset[str] | None]("_tenant", writable=True)
    #: Seconds that an access token lives.
    token_lifetime = Forwarded[int]("_tenant", writable=True)
    #: Per client ID, the entity types it may use (``None``: all, for every client).
    permissions = Forwarded[dict[str, frozenset[str]] | None]("_tenant", writable=True)
    #: The size above which a bulk request answers 413 (``None``: no limit).
    max_body_bytes = Forwarded[int | None]("_tenant", writable=True)
    #: The gating status that a deployment asking to be gated starts with.
    default_gating_status = Forwarded[str]("_tenant", writable=True)

    #: Every request received, in order (the simulator's own views aside).
    requests = Forwarded[list[ReceivedRequest]]("_log")
    #: Every access token issued, in order.
    issued_tokens = Forwarded[list[IssuedToken]]("_store")
    #: Stored builds, keyed (pipelineId, buildNumber).
    builds = Forwarded[dict[tuple[str, int], StoredEntity]]("_store")
    #: Stored deployments, keyed (pipelineId, environmentId, deploymentSequenceNumber).
    deployments = Forwarded[dict[tuple[str, str, int], StoredEntity]]("_store")
    #: Gating statuses, keyed as the deployments are.
    gating = Forwarded[dict[tuple[str, str, int], GatingStatus]]("_store")
    #: Stored feature flags, by ID.
    feature_flags = Forwarded[dict[str, StoredEntity]]("_store")
    #: Stored repositories (their own fields), by ID.
    repositories = Forwarded[dict[str, StoredEntity]]("_store")
    #: Commits, branches and pull requests, keyed (repositoryId, kind, id).
    devinfo_entities = Forwarded[dict[tuple[str, str, str], StoredEntity]]("_store")

    # -- observation --------------------------------------------------------

    #: How many requests reached the token endpoint (faulted ones included).
    token_requests = Forwarded[int]("_log")
    #: How many requests reached ``/jira/`` (faulted ones included).
    api_requests = Forwarded[int]("_log")

    def when_received(self, count: int) -> defer.Deferred[None]:
        """A Deferred that fires once ``count`` requests in all have been received.

        It fires once the answer of the ``count``-th request is written or
        scheduled, so code that waits finds that request fully handled.
        """
        return self._log.when_received(count)

    def subscribe(self, observer: Callable[[ReceivedRequest], None]) -> Callable[[], None]:
        """Call ``observer`` with each request once its answer is decided.

        Returns a function that unsubscribes it.
        """
        return self._log.subscribe(observer)

    def is_known_issue(self, issue_key: str) -> bool:
        """Whether ``issue_key`` names an issue that exists on this site.

        A numeric issue ID is taken as existing: there is no way to tell.
        """
        return self._tenant.is_known_issue(issue_key)

    def builds_for_issue(self, issue_key: str) -> list[dict[str, Any]]:
        """The current value of every stored build linked to ``issue_key``."""
        return self._views.linked(self.builds.values(), links.listed_issue_keys, issue_key)

    def deployments_for_issue(self, issue_key: str) -> list[dict[str, Any]]:
        """The current value of every stored deployment linked to ``issue_key``."""
        return self._views.linked(self.deployments.values(), links.associated_issue_keys, issue_key)

    def feature_flags_for_issue(self, issue_key: str) -> list[dict[str, Any]]:
        """The current value of every stored feature flag linked to ``issue_key``."""
        return self._views.linked(self.feature_flags.values(), links.listed_issue_keys, issue_key)

    def devinfo_entities_for_issue(
        self, issue_key: str, kind: str | None = None
    ) -> list[dict[str, Any]]:
        """The current value of every stored commit, branch or pull request linked to ``issue_key``.

        ``kind`` keeps one kind (``commits``, ``branches`` or ``pullRequests``,
        as the contract names them); ``None`` keeps all three. Raises
        ``ValueError`` for another kind.
        """
        if kind is not None and kind not in DEVINFO_ENTITY_KINDS:
            raise ValueError(f"kind must be one of {', '.join(DEVINFO_ENTITY_KINDS)}, got {kind!r}")
        entities = [e for key, e in self.devinfo_entities.items() if kind in (None, key[1])]
        return self._views.linked(entities, links.listed_issue_keys, issue_key)

    def gating_status(
        self, pipeline_id: str, environment_id: str, sequence_number: int
    ) -> GatingStatus | None:
        """The gating status of a deployment, if Jira has gating data for it."""
        return self.gating.get((pipeline_id, environment_id, sequence_number))

    def state(self) -> dict[str, Any]:
        """Everything received and stored, as ``GET /_simulator/state`` answers it."""
        return self._views.state()

    def issues(self) -> dict[str, dict[str, list[dict[str, Any]]]]:
        """Per known issue key, the stored entities linked to it (``/_simulator/issues``)."""
        return self._views.issues()

    # -- control ------------------------------------------------------------

    def revoke_tokens(self) -> None:
        """Make every token issued so far invalid (later ones work)."""
        self._api.gateway.revoke_tokens()

    def issue_token(self, client_id: str = DEFAULT_CLIENT_ID) -> str:
        """Issue an access token for ``client_id`` without an HTTP request."""
        return self._api.gateway.issue_token(client_id, now=self.clock.seconds())

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
        self._api.deployments.set_gating_status(
            (pipeline_id, environment_id, sequence_number),
            status,
            tuple(details),
            now=self.clock.seconds(),
        )

    # -- serving ------------------------------------------------------------

    def receive(self, incoming: IncomingRequest) -> Reception:
        """Decide what to do with ``incoming``: record it, then fault it or answer it.

        The simulator's own views are answered without being recorded.
        Observers hear of the request once its answer is decided.
        """
        if is_view_path(incoming):
            return Reception(None, self._views.answer(incoming))
        record = self._log.record(incoming)
        fault = self._faults.take(incoming)
        answer: Answer | None
        if fault is None:
            answer = self._api.answer(incoming)
        elif fault.kind == "drop":
            record.fault, answer = "drop", None
        else:
            record.fault, answer = "fail", fault.answer(now=incoming.received_at)
        if answer is not None:
            record.status = answer.status
        self._log.decided(record)
        return Reception(record, answer, self._faults.delay)

    def answered(self) -> None:
        """Tell that the last reception's answer is written or scheduled, or its connection cut.

        Fires the :meth:`when_received` waiters that are due.
        """
        self._log.wake_waiters()

    def resource(self) -> resource.Resource:
        """The twisted.web resource that answers every request to this simulator.

        Tests can serve it without sockets, through
        ``treq.testing.RequestTraversalAgent``.
        """
        return SimulatorResource(self)

    def site(self) -> server.Site:
        """A twisted.web Site serving this simulator."""
        return QuietSite(self.resource())

    async def listen(
        self,
        reactor: IReactorTCP | None = None,
        port: int = 0,
        interface: str = "127.0.0.1",
        tls: Any = None,
    ) -> RunningSimulator:
        """Listen on ``interface``:``port`` (0: any free port) until ``stop()``.

        ``tls``, Twisted's server TLS options (``PrivateCertificate.options()``,
        ``CertificateOptions``), serves HTTPS: the running simulator's ``url``
        is then ``https://``, and a client trusts it through ``ca_bundle``.
        """
        if reactor is None:
            from twisted.internet import reactor as global_reactor

            reactor = cast(IReactorTCP, global_reactor)
        listening = listen_tcp(
            self.site(), reactor=reactor, port=port, interface=interface, tls=tls
        )
        return RunningSimulator(
            simulator=self,
            url=listening.url,
            port=listening.port,
            connections=listening.connections,
        )


@attrs.define
class RunningSimulator:
    """A simulator listening on a port: ``url`` is both the API and the site URL."""

    simulator: JiraSimulator
    url: str
    port: IListeningPort
    connections: ConnectionTracker = attrs.field(repr=False)

    def when_idle(self) -> defer.Deferred[None]:
        """A Deferred that fires once no client connection is open.

        Tests use it to know that the simulator has seen a client go away.
        """
        return self.connections.when_idle()

    async def stop(self) -> None:
        """Stop listening and close open connections (pending answers are dropped)."""
        await defer.maybeDeferred(self.port.stopListening)
        await self.connections.close_all()
