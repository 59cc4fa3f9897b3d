"""Test counts read from build properties."""

from __future__ import annotations

import pytest

from buildbot_jira.mapping.test_counts import MAX_COUNT, property_count


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (12, 12),
        (" 7 ", 7),
        ("0", 0),
        (True, None),
        (-1, None),
        ("12a", None),
        ("\u0663", None),  # a digit, but not an ASCII one
        (None, None),
        (3.5, None),
        (2**70, MAX_COUNT),
        (str(2**70), MAX_COUNT),
    ],
)
def test_a_property_gives_a_count_or_none(value: object, expected: int | None) -> None:
    assert property_count(value) == expected
