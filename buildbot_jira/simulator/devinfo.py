"""The development information API: ``/jira/devinfo/0.1/cloud/<cloudId>/...``.

A request carries repositories, each with commits, branches and pull
requests; the repository's own fields and each of those entities are stored
(and judged) apart. Its errors come wrapped as ``{"errorMessages": [...]}``.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Mapping
from typing import Any, Final

import attrs

from buildbot_jira.simulator.contract import (
    DEVINFO_ENTITY_KINDS,
    devinfo_entity_schema,
    entity_schema,
    validation_errors,
)
from buildbot_jira.simulator.devops import bulk_body, entity_id
from buildbot_jira.simulator.exchange import Answer, IncomingRequest, error_answer, error_messages
from buildbot_jira.simulator.links import unique
from buildbot_jira.simulator.state import Store, store_newer
from buildbot_jira.simulator.tenant import Tenant

__all__ = ["DevinfoApi", "devinfo_entity_problems", "devinfo_request_problems"]

_USN: Final = "updateSequenceId"
# The contract's limit on the entities of one request, all repositories together.
_MAX_ENTITIES: Final = 1000
# Java's \p{L}[\p{L}\p{Digit}_]{1,255}-\p{Digit}{1,255}: the contract puts
# this pattern on the devinfo issueKeys arrays, where JSON Schema ignores it.
_ISSUE_KEY: Final = re.compile(r"[^\W\d_](?:[^\W\d_]|[0-9_]){1,255}-[0-9]{1,255}")


@functools.cache
def _repository_fields_schema() -> Mapping[str, Any]:
    """A repository's schema without its entity lists' items, judged one by one."""
    schema = copy.deepcopy(dict(entity_schema("devinfo")))
    for kind in DEVINFO_ENTITY_KINDS:
        schema["properties"][kind]["items"] = {}
    return schema


@attrs.frozen
class DevinfoApi:
    """Stores repositories by ID, and their entities keyed (repositoryId, kind, id)."""

    tenant: Tenant
    store: Store = attrs.field(repr=False)

    def submit(self, incoming: IncomingRequest, params: Mapping[str, str]) -> Answer:
        """``POST .../bulk``: store valid repositories and their entities linked to known issues."""
        body = bulk_body(
            incoming, "devinfo", tenant=self.tenant, request_problems=devinfo_request_problems
        )
        if isinstance(body, Answer):
            return body
        accepted: dict[str, dict[str, list[str]]] = {}
        failed: dict[str, dict[str, Any]] = {}
        unknown: list[str] = []
        for index, repository in enumerate(body["repositories"]):
            repository_id = entity_id(repository, f"repositories[{index}]")
            problems = validation_errors(_repository_fields_schema(), repository)
            if problems:
                failed[repository_id] = {"errorMessages": error_messages(*problems)}
                continue
            fields = {k: v for k, v in repository.items() if k not in DEVINFO_ENTITY_KINDS}
            store_newer(self.store.repositories, (repository_id,), fields, _USN)
            done: dict[str, list[str]] = {kind: [] for kind in DEVINFO_ENTITY_KINDS}
            for kind in DEVINFO_ENTITY_KINDS:
                for position, item in enumerate(repository.get(kind, ())):
                    item_id = entity_id(item, f"{kind}[{position}]")
                    problems = devinfo_entity_problems(kind, item)
                    if problems:
                        failed.setdefault(repository_id, {}).setdefault(kind, []).append(
                            {"id": item_id, "errorMessages": error_messages(*problems)}
                        )
                        continue
                    missing = [k for k in item["issueKeys"] if not self.tenant.is_known_issue(k)]
                    unknown += missing
                    if len(missing) == len(item["issueKeys"]):
                        continue  # Jira stores nothing linked only to unknown issues.
                    key = (repository_id, kind, item_id)
                    store_newer(self.store.devinfo_entities, key, item, _USN)
                    done[kind].append(item_id)
            accepted[repository_id] = done
        return Answer(
            202,
            {
                "acceptedDevinfoEntities": accepted,
                "failedDevinfoEntities": failed,
                "unknownIssueKeys": unique(unknown),
            },
        )

    def get_repository(self, incoming: IncomingRequest, params: Mapping[str, str]) -> Answer:
        """``GET .../repository/<repositoryId>``: its fields and every entity stored in it."""
        repository_id = params["repositoryId"]
        stored = self.store.repositories.get(repository_id)
        if stored is None:
            return error_answer(404, f"No repository with ID {repository_id!r}", entity="devinfo")
        answer = dict(stored.current)
        for kind in DEVINFO_ENTITY_KINDS:
            answer[kind] = [
                e.current
                for (repo, k, _), e in self.store.devinfo_entities.items()
                if repo == repository_id and k == kind
            ]
        return Answer(200, answer)

    def delete_repository(self, incoming: IncomingRequest, params: Mapping[str, str]) -> Answer:
        """``DELETE .../repository/<repositoryId>``, with every entity stored in it."""
        repository_id = params["repositoryId"]
        self.store.repositories.pop(repository_id, None)
        for key in [k for k in self.store.devinfo_entities if k[0] == repository_id]:
            del self.store.devinfo_entities[key]
        return Answer(202)


def devinfo_request_problems(body: Mapping[str, Any]) -> list[str]:
    """The devinfo request rules that the schema states only in words."""
    problems = []
    ids = [r.get("id") for r in body["repositories"]]
    duplicates = sorted({i for i in ids if isinstance(i, str) and ids.count(i) > 1})
    if duplicates:
        problems.append(f"$.repositories: duplicate repository IDs {duplicates}")
    total = sum(len(r.get(kind, ())) for r in body["repositories"] for kind in DEVINFO_ENTITY_KINDS)
    if total > _MAX_ENTITIES:
        problems.append(f"$.repositories: {total} entities in all, at most {_MAX_ENTITIES} allowed")
    return problems


def devinfo_entity_problems(kind: str, item: Mapping[str, Any]) -> list[str]:
    """What is wrong with a commit, branch or pull request (``kind``), by schema and pattern."""
    problems = validation_errors(devinfo_entity_schema(kind), item)
    for position, key in enumerate(item.get("issueKeys", ()) if not problems else ()):
        if not isinstance(key, str) or not _ISSUE_KEY.fullmatch(key):
            problems.append(f"$.issueKeys[{position}]: {key!r} is not a valid issue key")
    return problems
