"""What the four DevOps APIs share: the bulk request envelope, entity keys, lookups.

A bulk POST that is too big (413), not JSON (415, 400) or whose envelope
breaks the contract (400) is refused as a whole; a well-formed request
answers 202 even when some of its entities are rejected.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final, cast

from buildbot_jira.simulator.contract import EntityType, envelope_schema, validation_errors
from buildbot_jira.simulator.exchange import (
    NOT_JSON,
    Answer,
    IncomingRequest,
    error_answer,
    parse_json,
)
from buildbot_jira.simulator.state import StoredEntity
from buildbot_jira.simulator.tenant import Tenant

__all__ = [
    "MAX_MESSAGES",
    "bulk_body",
    "entity_id",
    "found",
    "integer",
    "path_integer",
    "string",
]

# A 400 lists at most this many problems: a request of 100 bad entities
# would otherwise answer with thousands of lines.
MAX_MESSAGES: Final = 20


def bulk_body(
    incoming: IncomingRequest,
    entity: EntityType,
    *,
    tenant: Tenant,
    request_problems: Callable[[Mapping[str, Any]], list[str]] | None = None,
) -> Answer | dict[str, Any]:
    """The request body if it is a well-formed bulk request of ``entity`` data, else a 4xx.

    ``request_problems`` adds the rules of a request as a whole that the
    envelope schema cannot state; it sees only bodies that the schema allows.
    """
    limit = tenant.max_body_bytes
    if limit is not None and len(incoming.body) > limit:
        return error_answer(
            413,
            f"The request is larger than {limit} bytes; send fewer entities per request",
            entity=entity,
        )
    content_type = incoming.header("content-type").split(";")[0].strip().lower()
    if content_type != "application/json":
        return error_answer(415, "Content-Type must be application/json", entity=entity)
    body = parse_json(incoming.body)
    if body is NOT_JSON:
        return error_answer(400, "The request body is not valid JSON", entity=entity)
    problems = validation_errors(envelope_schema(entity), body)
    if request_problems is not None and not problems:
        problems = request_problems(body)
    if problems:
        return error_answer(400, *problems[:MAX_MESSAGES], entity=entity)
    return cast(dict[str, Any], body)


def string(value: Any) -> str | None:
    """``value`` if it is a string, else ``None`` (for the keys of rejected entities)."""
    return value if isinstance(value, str) else None


def integer(value: Any) -> int | None:
    """``value`` if it is an integer (``bool`` is not), else ``None``."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def entity_id(entity: Mapping[str, Any], fallback: str) -> str:
    """The ``id`` of ``entity`` if it is a string, else ``fallback`` (its place in the request)."""
    value = entity.get("id")
    return value if isinstance(value, str) else fallback


def path_integer(segment: str) -> int | None:
    """The integer that a path segment spells (a build or sequence number), else ``None``."""
    return int(segment) if re.fullmatch(r"-?[0-9]+", segment) else None


def found(entity: StoredEntity | None, message: str) -> Answer:
    """200 with the entity's current value, or 404 with ``message``."""
    return error_answer(404, message) if entity is None else Answer(200, entity.current)
