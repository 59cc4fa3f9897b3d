"""The benchmarks' shared command line: argument types, and running one on the reactor."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import Any

from twisted.internet import defer, task

__all__ = ["count", "counts", "react", "seconds", "seconds_list"]


def count(text: str) -> int:
    """An argument that must be a whole number of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def counts(text: str) -> list[int]:
    """A comma-separated list of :func:`count` arguments."""
    return [count(part) for part in text.split(",") if part.strip()]


def seconds(text: str) -> float:
    """An argument that must be a finite number of seconds, 0 or more."""
    value = float(text)
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, got {text}")
    return value


def seconds_list(text: str) -> list[float]:
    """A comma-separated list of :func:`seconds` arguments (empty: none)."""
    return [seconds(part) for part in text.split(",") if part.strip()]


def react(
    run: Callable[[Any, argparse.Namespace], Awaitable[None]], args: argparse.Namespace
) -> None:
    """Run ``run(reactor, args)`` on the global reactor, then exit (1 after a traceback)."""

    async def main(reactor: Any) -> None:
        await run(reactor, args)

    task.react(lambda reactor: defer.Deferred.fromCoroutine(main(reactor)))
