"""How long the Jira client waits before it tries a failed request again.

Pure arithmetic, no clock: :class:`RetryPolicy` says how many attempts a
request gets and how long each wait between them is, from exponential
backoff with jitter or from the ``Retry-After`` that Jira sent.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import attrs

__all__ = ["RetryPolicy"]


@attrs.frozen
class RetryPolicy:
    """How often and how patiently a request is retried.

    Connection failures, timeouts and 5xx wait ``initial_delay`` seconds,
    growing by ``multiplier`` up to ``max_delay``, each shortened at random by
    up to ``jitter`` (a fraction) so that many masters do not retry in step.
    429 and 503 wait what ``Retry-After`` says, up to ``max_retry_after``.
    ``max_attempts`` counts the first attempt.
    """

    max_attempts: int = attrs.field(default=5, validator=attrs.validators.ge(1))
    initial_delay: float = attrs.field(default=1.0, validator=attrs.validators.ge(0))
    multiplier: float = attrs.field(default=2.0, validator=attrs.validators.ge(1))
    max_delay: float = attrs.field(default=60.0, validator=attrs.validators.ge(0))
    jitter: float = attrs.field(
        default=0.5, validator=[attrs.validators.ge(0), attrs.validators.le(1)]
    )
    max_retry_after: float = attrs.field(default=300.0, validator=attrs.validators.ge(0))

    def backoff(self, retry: int, *, uniform: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry)."""
        delay = min(self.max_delay, self.initial_delay * self.multiplier ** (retry - 1))
        return delay * (1 - self.jitter * uniform())

    def delay(
        self,
        retry: int,
        *,
        retry_after: float | None = None,
        uniform: Callable[[], float] = random.random,
    ) -> float:
        """Seconds to wait before retry number ``retry``, honouring ``retry_after``.

        What Jira asked for is waited, up to ``max_retry_after``; without it,
        the :meth:`backoff`.
        """
        if retry_after is None:
            return self.backoff(retry, uniform=uniform)
        # Never less than the first backoff: "Retry-After: 0" is no busy loop.
        return min(max(retry_after, self.initial_delay), self.max_retry_after)
