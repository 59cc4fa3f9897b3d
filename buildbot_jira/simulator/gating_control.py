"""The simulator's change management: ``GET`` and ``POST /_simulator/gating``.

In Jira, Service Management decides whether a gated deployment may go ahead.
The simulator has none, so this control decides instead, while it runs::

    curl -d '{"gatingStatus": "allowed"}' http://127.0.0.1:8099/_simulator/gating
    curl -d '{"gatingStatus": "prevented", "details": ["PROJ-9"], "pipelineId": "...",
              "environmentId": "prod", "deploymentSequenceNumber": 12000}' ...

A body without a deployment's key changes every gated deployment stored and
the status that later ones start with; with one, that deployment alone.
``details`` names the issues that hold the deployment (the change requests).
``GET`` answers the current statuses. Neither is recorded, faulted or delayed,
and neither changes what the simulator received or stores, only what its
change management has decided.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from buildbot_jira.simulator.deployments import DeploymentsApi
from buildbot_jira.simulator.devops import integer, string
from buildbot_jira.simulator.exchange import (
    NOT_JSON,
    Answer,
    IncomingRequest,
    error_answer,
    parse_json,
)
from buildbot_jira.simulator.routing import Route
from buildbot_jira.simulator.state import GATING_STATUSES, Store
from buildbot_jira.simulator.tenant import Tenant

__all__ = ["GATING_PATH", "GatingControl"]

#: Where the control answers.
GATING_PATH: Final = ("_simulator", "gating")

_KEY_FIELDS: Final = ("pipelineId", "environmentId", "deploymentSequenceNumber")


class GatingControl:
    """Plays Jira Service Management's decisions on the deployments that ask for gating."""

    def __init__(self, *, tenant: Tenant, store: Store, deployments: DeploymentsApi) -> None:
        self._tenant = tenant
        self._store = store
        self._deployments = deployments

    def __repr__(self) -> str:
        return f"<GatingControl status={self._tenant.default_gating_status!r}>"

    def routes(self) -> list[Route]:
        """The control's routes."""
        return [Route("GET", GATING_PATH, self.show), Route("POST", GATING_PATH, self.decide)]

    def show(self, incoming: IncomingRequest, params: Mapping[str, str]) -> Answer:
        """``GET /_simulator/gating``: the status later deployments start with, and each one's."""
        return Answer(200, self.to_json(site_url=incoming.site_url))

    def decide(self, incoming: IncomingRequest, params: Mapping[str, str]) -> Answer:
        """``POST /_simulator/gating``: set the status of one gated deployment, or of all."""
        body = parse_json(incoming.body)
        if body is NOT_JSON or not isinstance(body, dict):
            return error_answer(400, "The body must be a JSON object such as " + _EXAMPLE)
        status = body.get("gatingStatus")
        if status not in GATING_STATUSES:
            return error_answer(
                400,
                f"gatingStatus must be one of {', '.join(GATING_STATUSES)}, got {status!r}",
            )
        details = body.get("details", [])
        if not isinstance(details, list) or not all(isinstance(d, str) for d in details):
            return error_answer(400, 'details must be a list of issue keys, such as ["PROJ-9"]')
        given = [field for field in _KEY_FIELDS if field in body]
        now = incoming.received_at
        if not given:
            changed = self._deployments.set_every_gating_status(status, tuple(details), now=now)
        else:
            key = _deployment_key(body)
            if key is None:
                return error_answer(
                    400,
                    "One deployment is named by all of pipelineId, environmentId (strings) and "
                    "deploymentSequenceNumber (an integer); leave all three out to set every one",
                )
            if key not in self._store.gating:
                return error_answer(404, f"No gated deployment with key {list(key)!r}")
            self._deployments.set_gating_status(key, status, tuple(details), now=now)
            changed = [key]
        answer = self.to_json(site_url=incoming.site_url)
        answer["changed"] = [list(key) for key in changed]
        return Answer(200, answer)

    def to_json(self, *, site_url: str) -> dict[str, Any]:
        """The current decisions, as ``GET /_simulator/gating`` answers them."""
        return {
            "gatingStatus": self._tenant.default_gating_status,
            "details": list(self._tenant.default_gating_details),
            "deployments": [
                gating.to_json(key, site_url=site_url) for key, gating in self._store.gating.items()
            ],
        }


_EXAMPLE: Final = '{"gatingStatus": "allowed"}'


def _deployment_key(body: Mapping[str, Any]) -> tuple[str, str, int] | None:
    pipeline = string(body.get("pipelineId"))
    environment = string(body.get("environmentId"))
    number = integer(body.get("deploymentSequenceNumber"))
    if pipeline is None or environment is None or number is None:
        return None
    return pipeline, environment, number
