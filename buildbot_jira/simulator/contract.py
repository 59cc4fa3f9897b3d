"""The Jira Software Cloud DevOps contract, as JSON schemas.

The schemas under ``buildbot_jira/simulator/schemas/`` are copied from Atlassian's
OpenAPI document (``scripts/extract_schemas.py`` regenerates them, stripping
only the ``description`` and ``example`` annotations). This module loads them
and validates payloads against them, for the simulator and for tests.

Two places of the published document cannot be applied literally, and the
schemas returned here correct them; the shipped files stay exact copies:

- the items of a deployment's ``associations`` carry a ``oneOf`` that lists
  only the issue and service association types, so that a ``commit`` or
  ``repository`` association (which the neighbouring ``anyOf`` allows) would
  always fail. The field's own description says what was meant: the list must
  hold at least one issue or service association. That per-item ``oneOf`` is
  dropped; the list-level rule is the simulator's to check.
- patterns are Java regular expressions: ``\\w`` and ``\\d`` are ASCII-only there,
  and ``\\p{L}`` / ``\\p{Digit}`` exist. Patterns are translated accordingly.

OpenAPI 3.0 schemas are closest to JSON Schema Draft 4 (boolean
``exclusiveMaximum``, no ``const``), so the Draft 4 validator is used, with
the ``date-time``, ``uri``/``url`` and ``int32``/``int64`` formats checked.
"""

from __future__ import annotations

import copy
import datetime
import functools
import json
import re
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from importlib import resources
from typing import Any, Final
from urllib.parse import urlsplit

from jsonschema import Draft4Validator, FormatChecker, ValidationError, validators
from jsonschema.protocols import Validator

from buildbot_jira.jira.model import ENTITY_LISTS, ENTITY_TYPES, EntityType

__all__ = [
    "BULK_PATHS",
    "DEVINFO_ENTITY_KINDS",
    "ENTITY_LISTS",
    "ENTITY_TYPES",
    "EntityType",
    "devinfo_entity_schema",
    "entity_schema",
    "envelope_schema",
    "gating_status_schema",
    "request_schema",
    "response_schema",
    "schemas_from_document",
    "strip_annotations",
    "validation_errors",
]

#: The bulk operation of each entity type, as the contract document names its path.
BULK_PATHS: Final[Mapping[EntityType, str]] = {
    "builds": "/rest/builds/0.1/bulk",
    "deployments": "/rest/deployments/0.1/bulk",
    "devinfo": "/rest/devinfo/0.10/bulk",
    "featureflags": "/rest/featureflags/0.1/bulk",
}

#: The lists of entities inside one devinfo repository.
DEVINFO_ENTITY_KINDS: Final[tuple[str, ...]] = ("commits", "branches", "pullRequests")

_GATING_STATUS_PATH: Final = (
    "/rest/deployments/0.1/pipelines/{pipelineId}/environments/{environmentId}"
    "/deployments/{deploymentSequenceNumber}/gating-status"
)
_ANNOTATIONS: Final = frozenset({"description", "example"})
_JSON: Final = "application/json"
_MAX_MESSAGE: Final = 300


# -- extraction (used by scripts/extract_schemas.py and the tests) ------------


def strip_annotations(schema: Any) -> Any:
    """Return ``schema`` without its ``description`` and ``example`` keywords.

    A property *named* ``description`` (a deployment has one) is kept: only
    keys that are annotations of a schema are removed, never the names listed
    under ``properties``.
    """
    return _strip(schema, names_level=False)


def _strip(node: Any, *, names_level: bool) -> Any:
    if isinstance(node, list):
        return [_strip(item, names_level=False) for item in node]
    if not isinstance(node, dict):
        return node
    if names_level:
        # The keys here are property names, each mapping to a schema.
        return {name: _strip(sub, names_level=False) for name, sub in node.items()}
    return {
        key: _strip(value, names_level=key == "properties")
        for key, value in node.items()
        if key not in _ANNOTATIONS
    }


def schemas_from_document(document: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Extract the shipped schemas from the contract's OpenAPI document.

    Returns file name -> schema: ``<entity>.json`` (bulk request body),
    ``<entity>.response.json`` (its 202 answer) and
    ``deployments.gating-status.json`` (the 200 answer of gating-status).
    """
    paths = document["paths"]
    files: dict[str, dict[str, Any]] = {}
    for entity in ENTITY_TYPES:
        operation = paths[BULK_PATHS[entity]]["post"]
        request = operation["requestBody"]["content"][_JSON]["schema"]
        response = operation["responses"]["202"]["content"][_JSON]["schema"]
        files[f"{entity}.json"] = strip_annotations(request)
        files[f"{entity}.response.json"] = strip_annotations(response)
    gating = paths[_GATING_STATUS_PATH]["get"]["responses"]["200"]["content"][_JSON]["schema"]
    files["deployments.gating-status.json"] = strip_annotations(gating)
    return files


# -- loading ------------------------------------------------------------------


@functools.cache
def _shipped(name: str) -> dict[str, Any]:
    folder = resources.files("buildbot_jira.simulator").joinpath("schemas")
    text = folder.joinpath(name).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def _check_entity(entity: str) -> None:
    if entity not in ENTITY_TYPES:
        raise ValueError(f"unknown entity type {entity!r}: expected one of {ENTITY_TYPES}")


def request_schema(entity: EntityType) -> Mapping[str, Any]:
    """The schema of the body of ``entity``'s bulk POST.

    The object is shared and cached (compiled validators are cached along
    with it): treat it as read-only, and ``copy.deepcopy`` it to change it.
    """
    _check_entity(entity)
    return _request_schema(entity)


@functools.cache
def _request_schema(entity: EntityType) -> Mapping[str, Any]:
    schema = copy.deepcopy(_shipped(f"{entity}.json"))
    if entity == "deployments":
        items = schema["properties"]["deployments"]["items"]
        # See the module docstring: this oneOf would reject commit associations.
        items["properties"]["associations"]["items"].pop("oneOf", None)
    return schema


def entity_schema(entity: EntityType) -> Mapping[str, Any]:
    """The schema of one entity of ``entity``'s bulk request.

    That is one item of ``builds``, ``deployments`` or ``flags``; for
    ``devinfo``, one repository (with its commits, branches and pull
    requests). Shared and cached: treat it as read-only.
    """
    schema: Mapping[str, Any] = request_schema(entity)["properties"][ENTITY_LISTS[entity]]["items"]
    return schema


def envelope_schema(entity: EntityType) -> Mapping[str, Any]:
    """The part of the request schema that holds for the request as a whole.

    It is :func:`request_schema` with each entity reduced to "an object":
    Jira answers 400 to a request that fails it, whereas an entity that fails
    :func:`entity_schema` is only rejected on its own (202). Shared and cached.
    """
    _check_entity(entity)
    return _envelope_schema(entity)


@functools.cache
def _envelope_schema(entity: EntityType) -> Mapping[str, Any]:
    schema = copy.deepcopy(dict(request_schema(entity)))
    schema["properties"][ENTITY_LISTS[entity]]["items"] = {"type": "object"}
    if entity == "devinfo":
        # Within a repository too, only the shape of the lists is the request's
        # business; each commit, branch or pull request is judged on its own.
        repository = copy.deepcopy(dict(entity_schema("devinfo")))
        for kind in DEVINFO_ENTITY_KINDS:
            repository["properties"][kind]["items"] = {"type": "object"}
        schema["properties"]["repositories"]["items"] = {
            "type": "object",
            "properties": {kind: repository["properties"][kind] for kind in DEVINFO_ENTITY_KINDS},
        }
    return schema


def devinfo_entity_schema(kind: str) -> Mapping[str, Any]:
    """The schema of one commit, branch or pull request (``kind`` in
    :data:`DEVINFO_ENTITY_KINDS`) of a devinfo repository. Shared and cached."""
    if kind not in DEVINFO_ENTITY_KINDS:
        raise ValueError(f"unknown devinfo entity kind {kind!r}: expected {DEVINFO_ENTITY_KINDS}")
    schema: Mapping[str, Any] = entity_schema("devinfo")["properties"][kind]["items"]
    return schema


def response_schema(entity: EntityType) -> Mapping[str, Any]:
    """The schema of the 202 answer to ``entity``'s bulk POST. Shared and cached."""
    _check_entity(entity)
    return _shipped(f"{entity}.response.json")


def gating_status_schema() -> Mapping[str, Any]:
    """The schema of the 200 answer of a deployment's gating-status. Shared."""
    return _shipped("deployments.gating-status.json")


# -- validation ---------------------------------------------------------------


def _java_regex(pattern: str) -> re.Pattern[str]:
    """Compile a Java regular expression of the contract with Java's meaning."""
    if r"\p{" in pattern:
        # \p{L} is any Unicode letter; \p{Digit} is an ASCII digit in Java.
        translated = pattern.replace(r"\p{L}", r"[^\W\d_]").replace(r"\p{Digit}", "[0-9]")
        return re.compile(translated)
    # Java's \w and \d are ASCII-only unless asked otherwise.
    return re.compile(pattern, re.ASCII)


_compiled_patterns: dict[str, re.Pattern[str]] = {}


def _pattern(
    validator: Validator, pattern: str, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if not isinstance(instance, str):
        return
    compiled = _compiled_patterns.get(pattern)
    if compiled is None:
        compiled = _compiled_patterns[pattern] = _java_regex(pattern)
    if not compiled.search(instance):
        yield ValidationError(f"{_short(instance)} does not match {pattern!r}")


_FORMATS = FormatChecker(formats=())
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)


@_FORMATS.checks("date-time")
def _is_date_time(instance: object) -> bool:
    if not isinstance(instance, str):
        return True
    if not _RFC3339.fullmatch(instance):
        return False
    try:
        datetime.datetime.fromisoformat(instance.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _is_absolute_url(instance: object) -> bool:
    if not isinstance(instance, str):
        return True
    try:
        parts = urlsplit(instance)
    except ValueError:
        return False
    return bool(parts.scheme and parts.netloc) and not any(c.isspace() for c in instance)


for _name in ("uri", "url", "URL"):
    _FORMATS.checks(_name)(_is_absolute_url)


def _integer_range(bits: int) -> Any:
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    def check(instance: object) -> bool:
        return not isinstance(instance, int) or low <= instance <= high

    return check


_FORMATS.checks("int32")(_integer_range(32))
_FORMATS.checks("int64")(_integer_range(64))

_ContractValidator = validators.extend(Draft4Validator, validators={"pattern": _pattern})

# Keyed by id(); the schema is held too, so that its id cannot be reused
# while the entry lives. Bounded, for callers that build schemas on the fly.
_VALIDATOR_CACHE_SIZE: Final = 64
_validators: OrderedDict[int, tuple[Mapping[str, Any], Validator]] = OrderedDict()


def _validator(schema: Mapping[str, Any]) -> Validator:
    entry = _validators.get(id(schema))
    if entry is not None and entry[0] is schema:
        _validators.move_to_end(id(schema))
        return entry[1]
    validator: Validator = _ContractValidator(schema, format_checker=_FORMATS)
    _validators[id(schema)] = (schema, validator)
    if len(_validators) > _VALIDATOR_CACHE_SIZE:
        _validators.popitem(last=False)
    return validator


def validation_errors(schema: Mapping[str, Any], instance: Any) -> list[str]:
    """Check ``instance`` against ``schema``; return readable messages.

    Each message starts with the JSON path of the faulty value
    (``$.builds[3].state: 'done' is not one of [...]``). An empty list means
    valid. Compiled validators are cached per schema object.
    """
    errors = _validator(schema).iter_errors(instance)
    return [f"{leaf.json_path}: {_message(leaf)}" for error in errors for leaf in _leaves(error)]


def _leaves(error: ValidationError) -> list[ValidationError]:
    """The errors that say what is wrong, for an ``anyOf``/``oneOf`` failure.

    "Not valid under any of the given schemas" does not help; the errors of
    the alternative that came closest do. Closest: fewest errors, then the
    deepest one (an alternative whose discriminator matched fails deeper).
    """
    if not error.context:
        return [error]
    alternatives: dict[Any, list[ValidationError]] = {}
    for sub in error.context:
        alternatives.setdefault(sub.relative_schema_path[0], []).append(sub)
    closest = min(
        alternatives.values(),
        key=lambda subs: (len(subs), -max(len(sub.path) for sub in subs)),
    )
    return [leaf for sub in closest for leaf in _leaves(sub)]


def _message(error: ValidationError) -> str:
    keyword, limit, instance = error.validator, error.validator_value, error.instance
    # Templates for the size keywords, whose default messages repeat the whole
    # (possibly huge) value.
    if keyword in ("maxItems", "minItems") and isinstance(instance, list):
        bound = "at most" if keyword == "maxItems" else "at least"
        return f"has {len(instance)} items, {bound} {limit} allowed"
    if keyword in ("maxLength", "minLength") and isinstance(instance, str):
        bound = "at most" if keyword == "maxLength" else "at least"
        return f"is {len(instance)} characters long, {bound} {limit} allowed"
    if keyword in ("maxProperties", "minProperties") and isinstance(instance, dict):
        bound = "at most" if keyword == "maxProperties" else "at least"
        return f"has {len(instance)} members, {bound} {limit} allowed"
    if keyword == "type":
        return f"{_short(instance)} is not of type {limit!r}"
    if keyword == "format":
        return f"{_short(instance)} is not a valid {limit!r}"
    message = error.message
    return message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 3] + "..."


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
