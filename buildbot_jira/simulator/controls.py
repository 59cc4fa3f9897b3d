"""The controls that make a simulator misbehave: faults, delays and rate limits.

:class:`FaultControls` is the part of :class:`~buildbot_jira.simulator.JiraSimulator`
that tests and ``buildbot-jira simulate`` use to make Jira fail the ways it
does: error answers (any status, ``Retry-After`` in any form, any
``RateLimit-Reason``), dropped connections, slow answers, a burst limit per
endpoint and the near-limit signal. It holds no state of its own: it drives
the simulator's :class:`~buildbot_jira.simulator.faults.FaultPlan` and
:class:`~buildbot_jira.simulator.burst.RateLimits`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from buildbot_jira.simulator.burst import BurstLimit, RateLimits
from buildbot_jira.simulator.faults import FaultPlan, FaultScope
from buildbot_jira.simulator.forwarding import Forwarded
from buildbot_jira.simulator.rate_limits import RateLimitReason, RetryAfterForm

__all__ = ["FaultControls"]


class FaultControls:
    """Faults, delays and rate limits of a simulator that holds ``_faults`` and ``_limits``."""

    _faults: FaultPlan
    _limits: RateLimits

    #: Seconds to wait before each answer (the simulator's own views aside); see set_delay.
    delay = Forwarded[float]("_faults", writable=True)
    #: The burst limit, if there is one; see set_rate_limit.
    rate_limit = Forwarded[BurstLimit | None]("_limits")
    #: Whether successful API answers carry ``X-RateLimit-NearLimit: true``.
    near_limit = Forwarded[bool]("_limits", writable=True)

    def set_delay(self, seconds: float) -> None:
        """Wait ``seconds`` (on ``clock``) before answering each request.

        The request is handled when it arrives; only its answer waits, as
        when the way back is slow. So a client that gives up meanwhile may
        still have had its data stored, as with the real service.
        """
        self._faults.delay = seconds

    def fail_next(
        self,
        count: int,
        status: int,
        *,
        retry_after: float | None = None,
        body: Any = None,
        scope: FaultScope = "api",
        reason: RateLimitReason | None = None,
        retry_after_form: RetryAfterForm = "seconds",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next ``count`` requests within ``scope`` with ``status``.

        ``scope``: ``"api"`` (``/jira/`` calls), ``"token"`` (the token
        endpoint) or ``"any"``. ``retry_after`` tells the seconds to wait:
        as ``Retry-After`` seconds, or with ``retry_after_form`` ``"http-date"``
        as an HTTP date, ``"reset"`` only as ``X-RateLimit-Reset``. ``reason``
        adds ``RateLimit-Reason`` (``jira-per-issue-on-write``,
        ``jira-quota-based``...), ``headers`` any others. ``body`` replaces the
        default error body. The request is not processed. Faults queue up in
        the order they were asked for. Raises ``ValueError`` for an unknown
        ``reason`` or form, or a dated form without ``retry_after``.
        """
        self._faults.fail_next(
            count,
            status,
            retry_after=retry_after,
            body=body,
            scope=scope,
            reason=reason,
            retry_after_form=retry_after_form,
            headers=headers,
        )

    def fail_every(
        self,
        every: int,
        status: int,
        *,
        retry_after: float | None = None,
        scope: FaultScope = "api",
        reason: RateLimitReason | None = None,
        retry_after_form: RetryAfterForm = "seconds",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer every ``every``-th request within ``scope`` with ``status``, until cleared.

        The count starts now and skips requests that a ``fail_next`` or
        ``drop_next`` fault answers. ``every=1`` fails them all (an outage).
        The other arguments are as for :meth:`fail_next`.
        """
        self._faults.fail_every(
            every,
            status,
            retry_after=retry_after,
            scope=scope,
            reason=reason,
            retry_after_form=retry_after_form,
            headers=headers,
        )

    def drop_next(self, count: int, scope: FaultScope = "api") -> None:
        """Abort the connection of the next ``count`` requests within ``scope``.

        The request is not processed and gets no answer at all.
        """
        self._faults.drop_next(count, scope)

    def clear_faults(self) -> None:
        """Forget every fault not yet applied, the recurring one, the delay and ``near_limit``.

        The rate limit stays: it is a setting of the site, not a fault.
        """
        self._faults.clear()
        self._limits.near_limit = False

    def set_rate_limit(
        self,
        requests_per_second: int | None,
        *,
        retry_after: int | None = None,
        scope: FaultScope = "api",
    ) -> None:
        """Limit each endpoint and method to ``requests_per_second`` (``None``: no limit).

        Within any second of ``clock``, one more answers 429 with
        ``Retry-After`` (whole seconds, or ``retry_after``),
        ``RateLimit-Reason: jira-burst-based`` and ``X-RateLimit-Reset``, as
        does every request to it until that wait is over; served answers tell
        the budget left (``X-RateLimit-Limit``, ``-Remaining``, ``-NearLimit``).
        ``scope`` as for faults: ``"api"``, ``"token"``, ``"any"`` (also
        ``tenant_info``). The counts start afresh. Raises ``ValueError`` for
        a limit or wait below 1, or an unknown scope.
        """
        self._limits.rate_limit = (
            None
            if requests_per_second is None
            else BurstLimit(requests_per_second, retry_after=retry_after, scope=scope)
        )
