"""When a reporter looks for what dead masters left: at start, and when Buildbot marks one inactive.

Buildbot marks a master inactive when it stops cleanly, and when another
master's housekeeping finds it silent for longer than the master expiry
(``buildbot.data.masters.EXPIRE_MINUTES``, 10 by default); either way every
master receives ``('masters', <id>, 'stopped')``. A :class:`MasterWatch`
then asks its outbox to adopt the rows of inactive masters
(:meth:`~buildbot_jira.delivery.outbox.Outbox.adopt`): the database's claim
decides which survivor gets them, so every survivor may ask.
"""

from __future__ import annotations

from typing import Any, Protocol

from twisted.internet import defer
from twisted.logger import Logger

__all__ = ["Adopter", "MasterWatch"]

log = Logger()


class Adopter(Protocol):
    """What a :class:`MasterWatch` asks (an :class:`~buildbot_jira.delivery.outbox.Outbox`)."""

    async def adopt(self) -> int:
        """Take over what inactive masters left; how many updates."""


class MasterWatch:
    """Asks ``outbox`` to adopt at start and after each master that stops; one run at a time.

    :param master: the Buildbot master (its ``mq`` and ``masterid``).
    :param outbox: what adopts.
    :param name: names the reporter in log lines.
    """

    def __init__(self, *, master: Any, outbox: Adopter, name: str) -> None:
        self._master = master
        self._outbox = outbox
        self._name = name
        self._consumer: Any = None
        self._running: defer.Deferred[None] | None = None
        self._again = False

    async def start(self) -> None:
        """Subscribe to masters that stop, and adopt what those already gone left."""
        self._consumer = await self._master.mq.startConsuming(
            self._stopped, ("masters", None, "stopped")
        )
        self.adopt_soon()

    async def stop(self) -> None:
        """Unsubscribe, and wait for an adoption under way."""
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            consumer.stopConsuming()
        self._again = False
        if self._running is not None:
            await self._running

    @property
    def idle(self) -> bool:
        """Whether no adoption runs or waits to."""
        return self._running is None

    def adopt_soon(self) -> None:
        """Adopt now, or once the adoption under way ends (which may have missed a master)."""
        if self._running is not None:
            self._again = True
            return
        running = defer.Deferred.fromCoroutine(self._run())
        if not running.called:
            self._running = running

    def _stopped(self, key: tuple[str, ...], message: dict[str, Any]) -> None:
        if self._consumer is not None and message.get("masterid") != self._master.masterid:
            self.adopt_soon()

    async def _run(self) -> None:
        try:
            while True:
                self._again = False
                try:
                    await self._outbox.adopt()
                except Exception:  # noqa: BLE001 - the next master that stops tries again
                    log.failure(
                        "{name}: could not adopt a stopped master's updates", name=self._name
                    )
                if not self._again or self._consumer is None:
                    return
        finally:
            self._running = None
