"""The builds API: ``/jira/builds/0.1/cloud/<cloudId>/...``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from buildbot_jira.simulator.contract import entity_schema, validation_errors
from buildbot_jira.simulator.devops import (
    bulk_body,
    found,
    integer,
    path_integer,
    string,
)
from buildbot_jira.simulator.exchange import Answer, IncomingRequest, error_answer, error_messages
from buildbot_jira.simulator.links import listed_issue_keys, unique
from buildbot_jira.simulator.state import Store, store_newer
from buildbot_jira.simulator.tenant import Tenant

__all__ = ["BuildsApi"]


@attrs.frozen
class BuildsApi:
    """Stores builds keyed (pipelineId, buildNumber) and answers for them."""

    tenant: Tenant
    store: Store = attrs.field(repr=False)

    def submit(self, incoming: IncomingRequest, params: Mapping[str, str]) -> Answer:
        """``POST .../bulk``: judge each build; store those linked to a known issue."""
        body = bulk_body(incoming, "builds", tenant=self.tenant)
        if isinstance(body, Answer):
            return body
        accepted: list[dict[str, Any]] = []
        rejected: list[dict[str, Any]] = []
        unknown: list[str] = []
        for build in body["builds"]:
            key = {
                "pipelineId": string(build.get("pipelineId")),
                "buildNumber": integer(build.get("buildNumber")),
            }
            problems = validation_errors(entity_schema("builds"), build)
            if problems:
                rejected.append({"key": key, "errors": error_messages(*problems)})
                continue
            issue_keys = listed_issue_keys(build)
            missing = [k for k in issue_keys if not self.tenant.is_known_issue(k)]
            unknown += missing
            if len(missing) == len(issue_keys):
                continue  # Jira stores nothing linked only to unknown issues.
            stored_key = (build["pipelineId"], build["buildNumber"])
            store_newer(self.store.builds, stored_key, build, "updateSequenceNumber")
            accepted.append(key)
        return Answer(
            202,
            {
                "acceptedBuilds": accepted,
                "rejectedBuilds": rejected,
                "unknownIssueKeys": unique(unknown),
            },
        )

    def get(self, incoming: IncomingRequest, params: Mapping[str, str]) -> Answer:
        """``GET .../pipelines/<pipelineId>/builds/<buildNumber>``."""
        key = _build_key(params)
        if key is None:
            return _not_a_number(params)
        return found(self.store.builds.get(key), f"No build with key {key!r}")

    def delete(self, incoming: IncomingRequest, params: Mapping[str, str]) -> Answer:
        """``DELETE .../pipelines/<pipelineId>/builds/<buildNumber>``."""
        key = _build_key(params)
        if key is None:
            return _not_a_number(params)
        self.store.builds.pop(key, None)
        return Answer(202)


def _build_key(params: Mapping[str, str]) -> tuple[str, int] | None:
    number = path_integer(params["buildNumber"])
    return None if number is None else (params["pipelineId"], number)


def _not_a_number(params: Mapping[str, str]) -> Answer:
    return error_answer(400, f"Build number must be an integer, got {params['buildNumber']!r}")
