"""The deployments API, with gating: ``/jira/deployments/0.1/cloud/<cloudId>/...``.

A deployment that carries the ``initiate_deployment_gating`` command starts
out with the site's gating status (``awaiting`` unless the tenant says
otherwise); what Jira Service Management decides later is set with
``JiraSimulator.set_gating_status`` or ``POST /_simulator/gating``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import attrs

from buildbot_jira.simulator.contract import entity_schema, validation_errors
from buildbot_jira.simulator.devops import bulk_body, found, integer, path_integer, string
from buildbot_jira.simulator.exchange import Answer, IncomingRequest, error_answer, error_messages
from buildbot_jira.simulator.links import (
    ISSUE_ASSOCIATIONS,
    associated_issue_keys,
    service_keys,
    unique,
)
from buildbot_jira.simulator.state import (
    GATING_STATUSES,
    GatingStatus,
    Store,
    check_gating_status,
    store_newer,
)
from buildbot_jira.simulator.tenant import Tenant

__all__ = ["GATING_COMMAND", "GATING_STATUSES", "DeploymentsApi", "deployment_problems"]

#: The command by which a deployment asks to be gated.
GATING_COMMAND: Final = "initiate_deployment_gating"

# The contract's limit on the values of all of a deployment's associations.
_MAX_ASSOCIATION_VALUES: Final = 500

_DeploymentKey = tuple[str, str, int]


@attrs.frozen
class DeploymentsApi:
    """Stores deployments keyed (pipelineId, environmentId, sequence number)."""

    tenant: Tenant
    store: Store = attrs.field(repr=False)

    def submit(self, incoming: IncomingRequest, params: Mapping[str, str]) -> Answer:
        """``POST .../bulk``: judge each deployment; store those linked to an issue or service."""
        body = bulk_body(incoming, "deployments", tenant=self.tenant)
        if isinstance(body, Answer):
            return body
        accepted: list[dict[str, Any]] = []
        rejected: list[dict[str, Any]] = []
        unknown: list[str] = []
        unknown_associations: dict[str, list[str]] = {}
        for deployment in body["deployments"]:
            key = _key_json(deployment)
            problems = validation_errors(entity_schema("deployments"), deployment)
            problems += deployment_problems(deployment) if not problems else []
            if problems:
                rejected.append({"key": key, "errors": error_messages(*problems)})
                continue
            issue_keys = associated_issue_keys(deployment)
            missing = [k for k in issue_keys if not self.tenant.is_known_issue(k)]
            unknown += missing
            for association in deployment.get("associations", ()):
                if association["associationType"] in ISSUE_ASSOCIATIONS:
                    unknown_associations.setdefault(association["associationType"], []).extend(
                        v for v in association["values"] if not self.tenant.is_known_issue(v)
                    )
            if len(missing) == len(issue_keys) and not service_keys(deployment):
                continue  # Jira stores nothing linked only to unknown issues.
            stored_key = (key["pipelineId"], key["environmentId"], key["deploymentSequenceNumber"])
            if store_newer(self.store.deployments, stored_key, deployment, "updateSequenceNumber"):
                self._start_gating(stored_key, deployment, now=incoming.received_at)
            accepted.append(key)
        return Answer(
            202,
            {
                "acceptedDeployments": accepted,
                "rejectedDeployments": rejected,
                "unknownIssueKeys": unique(unknown),
                "unknownAssociations": [
                    {"associationType": kind, "values": unique(values)}
                    for kind, values in unknown_associations.items()
                    if values
                ],
            },
        )

    def _start_gating(
        self, key: _DeploymentKey, deployment: Mapping[str, Any], *, now: float
    ) -> None:
        commands = deployment.get("commands", ())
        wants_gating = any(
            isinstance(c, dict) and c.get("command") == GATING_COMMAND for c in commands
        )
        if wants_gating and key not in self.store.gating:
            tenant = self.tenant
            self.store.gating[key] = GatingStatus(
                tenant.default_gating_status, tenant.default_gating_details, now
            )

    def get(self, incoming: IncomingRequest, params: Mapping[str, str]) -> Answer:
        """``GET .../pipelines/<p>/environments/<e>/deployments/<seq>``."""
        key = _key(params)
        if key is None:
            return _not_a_number(params)
        return found(self.store.deployments.get(key), f"No deployment with key {key!r}")

    def delete(self, incoming: IncomingRequest, params: Mapping[str, str]) -> Answer:
        """``DELETE .../pipelines/<p>/environments/<e>/deployments/<seq>``, with its gating."""
        key = _key(params)
        if key is None:
            return _not_a_number(params)
        self.store.deployments.pop(key, None)
        self.store.gating.pop(key, None)
        return Answer(202)

    def gating_status(self, incoming: IncomingRequest, params: Mapping[str, str]) -> Answer:
        """``GET .../deployments/<seq>/gating-status``: 404 until Jira has gating data."""
        key = _key(params)
        if key is None:
            return _not_a_number(params)
        gating = self.store.gating.get(key)
        if gating is None:
            return error_answer(404, f"No gating status for deployment {key!r}")
        return Answer(200, gating.to_json(key, site_url=incoming.site_url))

    def set_gating_status(
        self, key: _DeploymentKey, status: str, details: tuple[str, ...], *, now: float
    ) -> None:
        """Set the gating status of the stored deployment ``key``.

        Raises ``KeyError`` if no such deployment is stored, ``ValueError``
        for a status that the contract does not define.
        """
        check_gating_status(status)
        if key not in self.store.deployments:
            raise KeyError(f"no deployment stored with key {key!r}")
        self.store.gating[key] = GatingStatus(status, details, now)

    def set_every_gating_status(
        self, status: str, details: tuple[str, ...], *, now: float
    ) -> list[_DeploymentKey]:
        """Set the status of every gated deployment stored, and of those gated later.

        Returns the keys of the deployments changed. Raises ``ValueError``
        for a status that the contract does not define.
        """
        self.tenant.default_gating_status = check_gating_status(status)
        self.tenant.default_gating_details = details
        for key in self.store.gating:
            self.store.gating[key] = GatingStatus(status, details, now)
        return list(self.store.gating)


def deployment_problems(deployment: Mapping[str, Any]) -> list[str]:
    """What the contract says of deployments in words rather than in schema.

    ``deployment`` must be valid by the schema already.
    """
    associations = deployment.get("associations", ())
    problems = []
    total = sum(len(a["values"]) for a in associations)
    if total > _MAX_ASSOCIATION_VALUES:
        problems.append(
            f"$.associations: has {total} values in all, at most {_MAX_ASSOCIATION_VALUES} allowed"
        )
    if not (associated_issue_keys(deployment) or service_keys(deployment)):
        problems.append(
            "$: a deployment must be associated with at least one issue or service: "
            "give 'associations' of type issueIdOrKeys or serviceIdOrKeys (or 'issueKeys')"
        )
    return problems


def _key(params: Mapping[str, str]) -> _DeploymentKey | None:
    number = path_integer(params["seq"])
    return None if number is None else (params["pipelineId"], params["environmentId"], number)


def _not_a_number(params: Mapping[str, str]) -> Answer:
    return error_answer(400, f"Sequence number must be an integer, got {params['seq']!r}")


def _key_json(deployment: Mapping[str, Any]) -> dict[str, Any]:
    """The key of a deployment as the answer names it (``None`` for what is missing)."""
    pipeline = deployment.get("pipeline")
    environment = deployment.get("environment")
    return {
        "pipelineId": string(pipeline.get("id")) if isinstance(pipeline, dict) else None,
        "environmentId": string(environment.get("id")) if isinstance(environment, dict) else None,
        "deploymentSequenceNumber": integer(deployment.get("deploymentSequenceNumber")),
    }
