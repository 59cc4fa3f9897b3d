"""How long an outbox waits after a failed delivery, and how long Jira has been failing.

Pure arithmetic on the times it is given: no reactor, no I/O.
"""

from __future__ import annotations

__all__ = ["FIRST_SUMMARY", "Backoff", "describe_duration"]

#: Seconds into an outage when its first summary is due; each later one
#: comes after twice as long (1, 2, 4, 8 ... minutes).
FIRST_SUMMARY = 60.0


class Backoff:
    """Capped, doubling waits between failed deliveries, and the outage they make up.

    :param initial: the first wait after a failure (seconds).
    :param maximum: the longest wait (seconds); never below ``initial``.
    """

    def __init__(self, *, initial: float, maximum: float) -> None:
        self.configure(initial=initial, maximum=maximum)
        self._current = 0.0
        self._outage_started: float | None = None
        self._next_summary = FIRST_SUMMARY

    def configure(self, *, initial: float, maximum: float) -> None:
        """Change the bounds; the next failure uses them."""
        self.initial = initial
        self.maximum = max(maximum, initial)

    @property
    def in_outage(self) -> bool:
        """Whether the last delivery failed."""
        return self._outage_started is not None

    def failed(self, now: float, retry_after: float | None = None) -> float:
        """A delivery failed at ``now``: the seconds to wait before the next try.

        ``retry_after`` (what Jira asked for) is honoured up to the maximum,
        but never shortens the wait: a proxy that answers ``Retry-After: 0``
        must not turn retries into a busy loop.
        """
        if self._outage_started is None:
            self._outage_started = now
            self._next_summary = FIRST_SUMMARY
        self._current = min(self.maximum, max(self.initial, self._current * 2))
        delay = self._current if retry_after is None else max(self._current, retry_after)
        return min(delay, self.maximum)

    def summary_due(self, now: float) -> float | None:
        """How long the outage has lasted, when a summary of it is due at ``now``; else None.

        Due once the outage is a minute old, then after 2, 4, 8 ... minutes:
        a long outage makes a few lines, not one per retry.
        """
        if self._outage_started is None:
            return None
        lasted = now - self._outage_started
        if lasted < self._next_summary:
            return None
        while self._next_summary <= lasted:
            self._next_summary *= 2
        return lasted

    def answered(self, now: float) -> float | None:
        """Jira answered at ``now``: how long the outage that ends lasted, if there was one."""
        self._current = 0.0
        started, self._outage_started = self._outage_started, None
        return None if started is None else now - started


def describe_duration(seconds: float) -> str:
    """``42 s`` or ``4 min``: how long an outage lasted, for people."""
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"
