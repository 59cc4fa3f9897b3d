"""Test counts as build properties give them: ``tests_passed`` and the like (pure)."""

from __future__ import annotations

__all__ = ["MAX_COUNT", "property_count"]

#: Each count stays far below int64, so that their total does too.
MAX_COUNT = 2**60


def property_count(value: object) -> int | None:
    """A test count from a property (a number or a string of digits), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value >= 0:
        return min(value, MAX_COUNT)
    text = value.strip() if isinstance(value, str) else ""
    if text.isascii() and text.isdigit():
        return min(int(text), MAX_COUNT)
    return None
