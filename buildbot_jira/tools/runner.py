"""Running one command on the global reactor, and the exit status of Ctrl-C.

The commands that talk to the network (``demo``, ``check``) are coroutines
given a reactor; :func:`run_on_reactor` runs one to completion and turns its
outcome into an exit status.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Awaitable, Callable
from typing import Any, Final

from twisted.python.failure import Failure

__all__ = ["INTERRUPTED", "run_on_reactor"]

#: The exit status of a command stopped by Ctrl-C (128 + SIGINT), as shells report it.
INTERRUPTED: Final = 130


def run_on_reactor(start: Callable[[Any], Awaitable[int]]) -> int:
    """Run ``start(reactor)`` on the global reactor until it returns; its exit code.

    A crash is shown with its traceback and gives 1; Ctrl-C, which stops the
    reactor before ``start`` has returned, gives 130.
    """
    from twisted.internet import defer
    from twisted.internet import reactor as global_reactor
    from twisted.internet.error import ReactorNotRunning

    reactor: Any = global_reactor
    outcome: dict[str, Any] = {}

    def finish(result: object) -> None:
        outcome["result"] = result
        # Already stopping after Ctrl-C, or a service stopped it: nothing to do.
        with contextlib.suppress(ReactorNotRunning):
            reactor.stop()

    def begin() -> None:
        defer.Deferred.fromCoroutine(_as_coroutine(start, reactor)).addBoth(finish)

    reactor.callWhenRunning(begin)
    reactor.run()
    result = outcome.get("result", INTERRUPTED)
    if isinstance(result, Failure):
        result.printTraceback(file=sys.stderr)
        return 1
    return int(result)


async def _as_coroutine(start: Callable[[Any], Awaitable[int]], reactor: Any) -> int:
    """``start(reactor)`` as a coroutine, which ``Deferred.fromCoroutine`` needs."""
    return await start(reactor)
