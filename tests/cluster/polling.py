"""Waiting, with the real reactor running, for what another process does.

``tests.support.until`` turns the reactor every 2 ms, which suits a
condition in this process; a condition that another process answers (a
master's log or REST API) is asked less often, so that the asking does not
take the processor the masters need.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from twisted.internet import reactor, task

T = TypeVar("T")

#: Seconds between two questions.
INTERVAL = 0.1


async def until_answered(
    check: Callable[[], Awaitable[T]], *, seconds: float, what: str, interval: float = INTERVAL
) -> T:
    """Ask ``check()`` every ``interval`` seconds until its answer is true; that answer.

    An exception of ``check()`` ends the wait at once. Fails with an
    ``AssertionError`` naming ``what`` after ``seconds``.
    """
    deadline = reactor.seconds() + seconds
    while True:
        value = await check()
        if value:
            return value
        if reactor.seconds() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {seconds:g} s")
        await task.deferLater(reactor, interval, lambda: None)
