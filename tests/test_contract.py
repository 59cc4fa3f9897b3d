"""Tests of buildbot_jira.simulator.contract: the shipped schemas and validation."""

from __future__ import annotations

import copy
import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from buildbot_jira.simulator import contract

CONTRACT = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "contract"
    / "jira-software-devops-openapi.json"
)


def _document() -> dict[str, Any]:
    if not CONTRACT.exists():
        pytest.skip(f"the contract document is not at {CONTRACT}")
    document: dict[str, Any] = json.loads(CONTRACT.read_text("utf-8"))
    return document


def _shipped(name: str) -> Any:
    return json.loads(
        resources.files("buildbot_jira.simulator")
        .joinpath("schemas")
        .joinpath(name)
        .read_text("utf-8")
    )


def _request_in_document(document: dict[str, Any], entity: str) -> Any:
    operation = document["paths"][contract.BULK_PATHS[entity]]["post"]  # type: ignore[index]
    return operation["requestBody"]["content"]["application/json"]["schema"]


def valid_build(**changes: Any) -> dict[str, Any]:
    build = {
        "pipelineId": "main-ci",
        "buildNumber": 42,
        "displayName": "main-ci #42",
        "url": "https://ci.example.com/builders/1/builds/42",
        "state": "successful",
        "lastUpdated": "2024-09-01T12:00:00.000Z",
        "updateSequenceNumber": 1,
        "issueKeys": ["PROJ-1"],
    }
    build.update(changes)
    return build


def valid_deployment(**changes: Any) -> dict[str, Any]:
    deployment = {
        "deploymentSequenceNumber": 7,
        "updateSequenceNumber": 1,
        "displayName": "deploy #7",
        "url": "https://ci.example.com/builders/2/builds/7",
        "description": "deploy to staging",
        "lastUpdated": "2024-09-01T12:00:00+02:00",
        "state": "successful",
        "pipeline": {"id": "deploy", "displayName": "deploy", "url": "https://ci.example.com/b/2"},
        "environment": {"id": "stg", "displayName": "Staging", "type": "staging"},
        "associations": [{"associationType": "issueIdOrKeys", "values": ["PROJ-1"]}],
    }
    deployment.update(changes)
    return deployment


# -- the shipped schemas ------------------------------------------------------


def test_shipped_schemas_equal_the_contract_document() -> None:
    document = _document()
    expected = contract.schemas_from_document(document)
    shipped_dir = resources.files("buildbot_jira.simulator").joinpath("schemas")
    shipped = {p.name for p in shipped_dir.iterdir() if p.name.endswith(".json")}
    assert shipped == set(expected)
    for name, schema in expected.items():
        assert _shipped(name) == schema, f"{name} differs from the contract document"


@pytest.mark.parametrize("entity", contract.ENTITY_TYPES)
def test_shipped_request_schema_differs_from_the_document_only_by_annotations(
    entity: str,
) -> None:
    raw = _request_in_document(_document(), entity)
    shipped = _shipped(f"{entity}.json")
    text = json.dumps(shipped)
    assert '"example"' not in text
    # Every constraint is there: compare the two with annotations dropped by
    # an independent walk.
    assert _constraints(shipped) == _constraints(raw)


def _constraints(node: Any, path: str = "$") -> set[str]:
    """Every keyword and value of a schema, annotations aside.

    Told apart by their values, not their position: a description annotation
    is text, whereas a property named "description" maps to a schema.
    """
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "description" and isinstance(value, str):
                continue
            is_schema = path.endswith(".properties") and isinstance(value, dict)
            if key == "example" and not (is_schema and "type" in value):
                continue
            found.add(f"{path}.{key}")
            found |= _constraints(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found |= _constraints(value, f"{path}[{index}]")
    else:
        found.add(f"{path}={node!r}")
    return found


def test_stripping_keeps_a_property_named_description() -> None:
    item = contract.entity_schema("deployments")
    assert "description" in item["required"]
    assert item["properties"]["description"] == {"maxLength": 255, "type": "string"}


def test_strip_annotations_removes_only_annotations() -> None:
    schema = {
        "description": "gone",
        "example": 1,
        "type": "object",
        "properties": {"description": {"type": "string", "description": "gone too"}},
    }
    assert contract.strip_annotations(schema) == {
        "type": "object",
        "properties": {"description": {"type": "string"}},
    }


def test_entity_schema_is_the_item_of_the_entity_list() -> None:
    assert contract.entity_schema("builds")["title"] == "BuildData"
    assert contract.entity_schema("deployments")["title"] == "DeploymentData"
    assert contract.entity_schema("featureflags")["title"] == "FeatureFlagData"
    assert contract.entity_schema("devinfo")["title"] == "Repository"
    assert contract.devinfo_entity_schema("commits")["title"] == "Commit"


def test_unknown_entity_type_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown entity type 'issues'"):
        contract.request_schema("issues")  # type: ignore[arg-type]


# -- validation ---------------------------------------------------------------


def test_a_valid_build_has_no_errors() -> None:
    assert contract.validation_errors(contract.entity_schema("builds"), valid_build()) == []


def test_a_missing_required_field_is_named() -> None:
    build = valid_build()
    del build["displayName"]
    errors = contract.validation_errors(contract.entity_schema("builds"), build)
    assert errors == ["$: 'displayName' is a required property"]


def test_a_bad_state_is_reported_with_its_path() -> None:
    errors = contract.validation_errors(contract.entity_schema("builds"), valid_build(state="ok"))
    assert len(errors) == 1
    assert errors[0].startswith("$.state: 'ok' is not one of ['pending'")


def test_more_than_100_builds_is_one_short_message() -> None:
    errors = contract.validation_errors(
        contract.request_schema("builds"), {"builds": [valid_build()] * 101}
    )
    assert errors == ["$.builds: has 101 items, at most 100 allowed"]


@pytest.mark.parametrize("key", ["PROJ 1", "PROJ-", "-1", "ÄBC-1", "PROJ-1x"])
def test_issue_keys_follow_the_java_pattern(key: str) -> None:
    errors = contract.validation_errors(
        contract.entity_schema("builds"), valid_build(issueKeys=[key])
    )
    assert len(errors) == 1
    assert errors[0].startswith("$.issueKeys[0]: ")


def test_a_good_issue_key_with_underscore_and_digits_passes() -> None:
    build = valid_build(issueKeys=["MY_PROJ2-123"])
    assert contract.validation_errors(contract.entity_schema("builds"), build) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("lastUpdated", "yesterday"),
        ("lastUpdated", "2024-13-01T00:00:00Z"),
        ("url", "not a url"),
        ("buildNumber", 2**63),
        ("displayName", "x" * 256),
    ],
)
def test_formats_and_limits_are_checked(field: str, value: Any) -> None:
    errors = contract.validation_errors(
        contract.entity_schema("builds"), valid_build(**{field: value})
    )
    assert len(errors) == 1
    assert errors[0].startswith(f"$.{field}: ")


def test_long_values_are_not_repeated_in_messages() -> None:
    errors = contract.validation_errors(
        contract.entity_schema("builds"), valid_build(displayName="x" * 5000)
    )
    assert errors == ["$.displayName: is 5000 characters long, at most 255 allowed"]


def test_a_commit_association_is_accepted_despite_the_documents_oneof() -> None:
    deployment = valid_deployment(
        associations=[
            {"associationType": "issueIdOrKeys", "values": ["PROJ-1"]},
            {"associationType": "commit", "values": [{"commitHash": "abc", "repositoryId": "r"}]},
        ]
    )
    assert contract.validation_errors(contract.entity_schema("deployments"), deployment) == []
    # The literal document schema would refuse it: the correction is needed.
    literal = _shipped("deployments.json")["properties"]["deployments"]["items"]
    assert contract.validation_errors(literal, deployment) != []


def test_an_association_error_names_the_faulty_value() -> None:
    deployment = valid_deployment(
        associations=[{"associationType": "issueIdOrKeys", "values": ["no key"]}]
    )
    errors = contract.validation_errors(contract.entity_schema("deployments"), deployment)
    assert len(errors) == 1
    assert errors[0].startswith("$.associations[0].values[0]: 'no key' does not match")


def test_envelope_schema_leaves_entities_to_the_entity_schema() -> None:
    envelope = contract.envelope_schema("builds")
    assert contract.validation_errors(envelope, {"builds": [{"state": "nonsense"}]}) == []
    assert contract.validation_errors(envelope, {"builds": ["not an object"]}) == [
        "$.builds[0]: 'not an object' is not of type 'object'"
    ]
    assert contract.validation_errors(envelope, {"builds": []}) == [
        "$.builds: has 0 items, at least 1 allowed"
    ]
    too_many = {f"k{i}": "v" for i in range(6)}
    errors = contract.validation_errors(envelope, {"builds": [{}], "properties": too_many})
    assert errors == ["$.properties: has 6 members, at most 5 allowed"]


def test_validators_are_cached_per_schema_object() -> None:
    schema = contract.entity_schema("builds")
    assert contract._validator(schema) is contract._validator(schema)
    changed = copy.deepcopy(dict(schema))
    assert contract._validator(changed) is not contract._validator(schema)


def test_response_schemas_describe_the_202_answers() -> None:
    answer = {
        "acceptedBuilds": [{"pipelineId": "p", "buildNumber": 1}],
        "rejectedBuilds": [
            {"key": {"pipelineId": "p", "buildNumber": 2}, "errors": [{"message": "bad"}]}
        ],
        "unknownIssueKeys": ["NOPE-1"],
    }
    assert contract.validation_errors(contract.response_schema("builds"), answer) == []
    answer["rejectedBuilds"] = [{"key": {"pipelineId": "p"}, "errors": []}]
    assert contract.validation_errors(contract.response_schema("builds"), answer) == [
        "$.rejectedBuilds[0].key: 'buildNumber' is a required property"
    ]
    gating = contract.gating_status_schema()
    assert gating["properties"]["gatingStatus"]["enum"] == [
        "allowed",
        "prevented",
        "awaiting",
        "invalid",
    ]
