"""The feature flags API: ``/jira/featureflags/0.1/cloud/<cloudId>/...``."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from buildbot_jira.simulator.contract import entity_schema, validation_errors
from buildbot_jira.simulator.devops import bulk_body, entity_id, found
from buildbot_jira.simulator.exchange import Answer, IncomingRequest, error_messages
from buildbot_jira.simulator.links import unique
from buildbot_jira.simulator.state import Store, store_newer
from buildbot_jira.simulator.tenant import Tenant

__all__ = ["FeatureFlagsApi"]


@attrs.frozen
class FeatureFlagsApi:
    """Stores feature flags by ID."""

    tenant: Tenant
    store: Store = attrs.field(repr=False)

    def submit(self, incoming: IncomingRequest, params: Mapping[str, str]) -> Answer:
        """``POST .../bulk``: judge each flag; store those linked to a known issue."""
        body = bulk_body(incoming, "featureflags", tenant=self.tenant)
        if isinstance(body, Answer):
            return body
        accepted: list[str] = []
        failed: dict[str, list[dict[str, str]]] = {}
        unknown: list[str] = []
        for index, flag in enumerate(body["flags"]):
            flag_id = entity_id(flag, f"flags[{index}]")
            problems = validation_errors(entity_schema("featureflags"), flag)
            if problems:
                failed[flag_id] = error_messages(*problems)
                continue
            missing = [k for k in flag["issueKeys"] if not self.tenant.is_known_issue(k)]
            unknown += missing
            if len(missing) == len(flag["issueKeys"]):
                continue  # Jira stores nothing linked only to unknown issues.
            store_newer(self.store.feature_flags, (flag_id,), flag, "updateSequenceId")
            accepted.append(flag_id)
        return Answer(
            202,
            {
                "acceptedFeatureFlags": accepted,
                "failedFeatureFlags": failed,
                "unknownIssueKeys": unique(unknown),
            },
        )

    def get(self, incoming: IncomingRequest, params: Mapping[str, str]) -> Answer:
        """``GET .../flag/<flagId>``."""
        flag_id = params["flagId"]
        return found(self.store.feature_flags.get(flag_id), f"No feature flag with ID {flag_id!r}")

    def delete(self, incoming: IncomingRequest, params: Mapping[str, str]) -> Answer:
        """``DELETE .../flag/<flagId>``."""
        self.store.feature_flags.pop(params["flagId"], None)
        return Answer(202)
