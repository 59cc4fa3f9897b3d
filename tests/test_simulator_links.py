"""Tests of buildbot_jira.simulator.links: the issues and services an entity names."""

from __future__ import annotations

from typing import Any

import pytest

from buildbot_jira.simulator.links import (
    associated_issue_keys,
    listed_issue_keys,
    service_keys,
    unique,
)


def test_listed_issue_keys_are_the_strings_of_the_issue_keys_list() -> None:
    assert listed_issue_keys({"issueKeys": ["PROJ-1", 5, "PROJ-1", "ABC-2"]}) == [
        "PROJ-1",
        "PROJ-1",
        "ABC-2",
    ]


def test_associated_issue_keys_join_both_forms_without_repeats() -> None:
    deployment = {
        "issueKeys": ["PROJ-1"],
        "associations": [
            {"associationType": "issueIdOrKeys", "values": ["PROJ-2", "PROJ-1"]},
            {"associationType": "issueKeys", "values": ["PROJ-3"]},
            {"associationType": "serviceIdOrKeys", "values": ["svc"]},
            {"associationType": "commit", "values": [{"commitHash": "ab", "repositoryId": "r"}]},
        ],
    }
    assert associated_issue_keys(deployment) == ["PROJ-1", "PROJ-2", "PROJ-3"]
    assert service_keys(deployment) == ["svc"]


@pytest.mark.parametrize(
    "entity",
    [
        None,
        "PROJ-1",
        {"issueKeys": "PROJ-1"},
        {"issueKeys": None, "associations": None},
        {"associations": ["PROJ-1", {"associationType": "issueIdOrKeys", "values": "PROJ-1"}]},
    ],
)
def test_a_value_of_the_wrong_shape_names_nothing(entity: Any) -> None:
    assert listed_issue_keys(entity) == []
    assert associated_issue_keys(entity) == []
    assert service_keys(entity) == []


def test_unique_keeps_the_first_order() -> None:
    assert unique(["b", "a", "b", "c", "a"]) == ["b", "a", "c"]
