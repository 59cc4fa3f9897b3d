"""A durable, coalescing, batching queue of updates on their way to Jira.

Reporters hand every update to an :class:`Outbox` and return at once; the
outbox writes it to the master's database, sends it when it can, and forgets
it only once Jira has answered for it. Which update goes when is the
:class:`~buildbot_jira.delivery.ledger.Ledger`'s business (coalescing,
ordering, batches, the cap); the outbox drives it on the reactor:

- an idle outbox sends after the current reactor turn, so that the updates
  one event makes go together; a busy one sends at most one request per
  entity type and pacing interval, carrying everything pending (up to 100),
  and none while Jira's rate limits hold that endpoint back
  (:mod:`~buildbot_jira.delivery.pacing`); meanwhile updates collect;
- everything is saved before it is sent, so a master that dies loses nothing:
  each change writes the rows of the slots it touched, never the whole
  outbox (:mod:`~buildbot_jira.delivery.store`);
- what a master that died left is adopted by another (:meth:`Outbox.adopt`):
  its updates are sent, and the builds it left in progress get a final state;
- failures that retrying or a configuration fix can cure keep the updates,
  with capped backoff that honours ``Retry-After``; rejections of the data
  itself are logged and dropped;
- :meth:`Outbox.stop` gives a request in flight a grace period and keeps the
  rest saved for the next start.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from buildbot_jira.delivery.backoff import Backoff, describe_duration
from buildbot_jira.delivery.client import DeliveryClient
from buildbot_jira.delivery.durable import DurableLedger
from buildbot_jira.delivery.interrupted import Interrupt
from buildbot_jira.delivery.ledger import REMEMBERED_KEYS, Slot, Update
from buildbot_jira.delivery.pacing import held_updates, limits_hold_back, next_batch
from buildbot_jira.delivery.reports import log_dropped, log_dry_run, log_outage, log_result
from buildbot_jira.delivery.store import MemoryStore, OutboxStore
from buildbot_jira.jira.client import SubmitResult
from buildbot_jira.jira.errors import JiraError, JiraRateLimitedError
from buildbot_jira.jira.model import EntityType

__all__ = ["REMEMBERED_KEYS", "DeliveryClient", "MemoryStore", "Outbox", "OutboxStore", "Update"]

log = Logger()

#: The most updates an outbox keeps waiting (the reporters' ``outbox_size``).
DEFAULT_CAP = 10_000
#: The first wait after a failed delivery, in seconds (``min_backoff``).
DEFAULT_INITIAL_BACKOFF = 5.0
#: The longest wait between two attempts, in seconds (``max_backoff``).
DEFAULT_MAX_BACKOFF = 300.0
#: How long a stopping outbox waits for a request in flight (``shutdown_grace``).
DEFAULT_GRACE = 10.0


class Outbox:
    """Delivers updates to one Jira site, in the background, without losing any.

    :param client: the site's client.
    :param store: where pending updates are saved before they are sent.
    :param clock: times batching, backoff waits and the shutdown grace period.
    :param cap: the most pending updates kept; beyond it the oldest
        ``in_progress`` updates are dropped first.
    :param initial_backoff: the first wait after a failed delivery (seconds).
    :param max_backoff: the longest wait between attempts (seconds).
    :param grace: how long :meth:`stop` waits for a request in flight.
    :param dry_run: log what would be sent and send nothing.
    :param name: names the outbox in log lines (the reporter's name).
    :param on_result: called with each :class:`SubmitResult` (for tests and
        summaries).
    :param interrupt: the final update of an entity whose master's run ended
        before it did (its last update and why), or None to send nothing;
        without it such entities are forgotten. Assignable.
    """

    def __init__(
        self,
        *,
        client: DeliveryClient,
        store: OutboxStore,
        clock: IReactorTime,
        cap: int = DEFAULT_CAP,
        initial_backoff: float = DEFAULT_INITIAL_BACKOFF,
        max_backoff: float = DEFAULT_MAX_BACKOFF,
        grace: float = DEFAULT_GRACE,
        dry_run: bool = False,
        name: str = "jira",
        on_result: Callable[[SubmitResult], None] | None = None,
        interrupt: Interrupt | None = None,
    ) -> None:
        self.client = client
        self.name = name
        self.dry_run = dry_run
        self.interrupt = interrupt
        self._ledger = DurableLedger(store=store, cap=cap, name=name, dropped=self._count_drops)
        self._clock = clock
        self._backoff = Backoff(initial=initial_backoff, maximum=max_backoff)
        self._grace = grace
        self._on_result = on_result
        self._running = False
        self._sending: defer.Deferred[None] | None = None
        self._kick_call: IDelayedCall | None = None
        self._save_call: IDelayedCall | None = None
        self._backoff_call: IDelayedCall | None = None
        self._held_during_outage = 0
        #: Counters for logs, summaries and tests.
        self.requests_sent = 0
        self.delivered = 0
        self.dropped = 0

    def configure(self, *, initial_backoff: float, max_backoff: float, grace: float) -> None:
        """Change the backoff bounds and the shutdown grace period."""
        self._backoff.configure(initial=initial_backoff, maximum=max_backoff)
        self._grace = grace

    def __repr__(self) -> str:
        return f"<Outbox {self.name!r} site={self.client.site!r} pending={len(self)}>"

    def __len__(self) -> int:
        return len(self._ledger)

    @property
    def cap(self) -> int:
        """The most updates kept; a new cap applies from the next update."""
        return self._ledger.rules.cap

    @cap.setter
    def cap(self, cap: int) -> None:
        self._ledger.rules.cap = cap

    @property
    def pending(self) -> Mapping[Slot, Update]:
        """Updates waiting to be sent (not those in flight), oldest first."""
        return self._ledger.rules.pending

    @property
    def in_flight(self) -> Mapping[Slot, Update]:
        """Updates of the request under way (or about to be), if any."""
        return self._ledger.rules.in_flight

    @property
    def open(self) -> Mapping[Slot, Update]:
        """Entities delivered ``in_progress`` whose final state has not been, oldest first."""
        return self._ledger.open

    # -- life cycle -----------------------------------------------------------

    async def start(self) -> None:
        """Load what an earlier run left pending and start sending.

        When the master is starting, the builds of its earlier run are over:
        those it left in progress get their final state now (``interrupt``).
        """
        kept = await self._ledger.load(self.interrupt)
        # Only now: a write before the load would lose what it reads.
        self._running = True
        if kept > 0:
            log.info(
                "{name}: {count} updates left pending by the last run will be sent",
                name=self.name,
                count=kept,
            )
        self._kick()
        self._save_soon()

    async def adopt(self) -> int:
        """Take over what masters that Buildbot marks inactive left; how many updates.

        Their pending updates are sent, with the usual guarantees, and the
        builds they left in progress get a final state (``interrupt``).
        """
        if not self._running:
            return 0
        adopted = await self._ledger.adopt(self.interrupt)
        self._kick()
        self._save_soon()
        return adopted

    async def flush(self) -> bool:
        """Save every update taken so far; False if a write failed (it is retried soon)."""
        return await self._ledger.flush()

    def close(self, entity: str, key: str) -> None:
        """The entity will get no final state (its result is not reported): forget it."""
        if self._ledger.close((entity, key)):
            self._save_soon()

    async def stop(self) -> None:
        """Wait up to the grace period for a request in flight; keep the rest saved."""
        self._running = False
        for call in (self._kick_call, self._backoff_call, self._save_call):
            if call is not None and call.active():
                call.cancel()
        self._kick_call = self._backoff_call = self._save_call = None
        sending = self._sending
        if sending is not None:

            def give_up() -> None:
                log.info(
                    "{name}: a request to Jira did not finish within {grace} s; its updates "
                    "stay saved for the next start",
                    name=self.name,
                    grace=self._grace,
                )
                sending.cancel()

            timer = self._clock.callLater(self._grace, give_up)
            # Never fails: the delivery's own errback has taken any failure.
            await sending
            if timer.active():
                timer.cancel()
        self._ledger.restore()
        await self._ledger.flush()

    # -- taking updates ---------------------------------------------------------

    def put(self, update: Update) -> None:
        """Queue ``update``; it is saved, then sent, in the background. Never blocks."""
        admission = self._ledger.put(update)
        if not admission.accepted:
            log.debug(
                "{name}: ignored update {seq} of {key}: it is not newer than {have}",
                name=self.name,
                seq=update.sequence,
                key=update.key,
                have=admission.newest,
            )
            return
        self._kick()
        call = self._kick_call
        if call is None or not call.active() or call.getTime() > self._clock.seconds():
            # Nothing sends this turn (a backoff, a request or the pace holds
            # it): save now, so that a master that dies meanwhile loses nothing.
            self._save_soon()

    def _count_drops(self, dropped: Sequence[Update]) -> None:
        self.dropped += len(dropped)
        log.warn(
            "{name}: more than {cap} updates wait for Jira; dropped the {count} oldest "
            "({finals} of them final states)",
            name=self.name,
            cap=self.cap,
            count=len(dropped),
            finals=sum(1 for update in dropped if update.final),
        )

    # -- sending ------------------------------------------------------------

    def _save_soon(self) -> None:
        if not self._running or (self._save_call is not None and self._save_call.active()):
            return
        self._save_call = self._clock.callLater(
            0, lambda: defer.Deferred.fromCoroutine(self._ledger.flush())
        )

    def _kick(self) -> None:
        """Send when the pace allows: at the soonest after this reactor turn.

        Never within the current turn, so that updates made together go together.
        """
        if not self._running or self._sending is not None or not self._ledger.rules.pending:
            return
        if self._backoff_call is not None and self._backoff_call.active():
            return
        now = self._clock.seconds()
        upcoming = next_batch(self._ledger.rules, self.client.limits, now)
        if upcoming is None:
            return
        delay = upcoming.delay(now)
        call = self._kick_call
        if call is not None and call.active():
            if call.getTime() <= now + delay:
                return
            call.cancel()  # an entity type that may go sooner came
        self._kick_call = self._clock.callLater(delay, self._send_next)

    def _send_next(self) -> None:
        self._kick_call = None
        if not self._running or self._sending is not None or not self._ledger.rules.pending:
            return
        self._sending = defer.Deferred.fromCoroutine(self._deliver_batch())
        self._sending.addErrback(self._delivery_crashed)
        self._sending.addBoth(self._sent_batch)

    def _delivery_crashed(self, failure: Failure) -> None:
        if not failure.check(defer.CancelledError):
            log.failure("{name}: delivery failed", failure, name=self.name)

    def _sent_batch(self, _: object) -> None:
        self._sending = None
        self._kick()

    async def _deliver_batch(self) -> None:
        # Saved before sent: a master that dies now sends it again on restart.
        await self._ledger.flush()
        now = self._clock.seconds()
        upcoming = next_batch(self._ledger.rules, self.client.limits, now)
        if not self._running or upcoming is None or upcoming.delay(now) > 0:
            return  # the limits changed meanwhile: the next kick waits for them
        held = held_updates(self.client.limits, now)
        batch = self._ledger.take_batch(upcoming.entity, held=held)
        if not batch:
            return
        entity = batch[0].entity
        started = self._clock.seconds()
        try:
            if self.dry_run:
                result = self._dry_run(entity, batch)
            else:
                self.requests_sent += 1
                result = await self.client.submit(entity, [u.payload for u in batch])
        except JiraError as failure:
            self._not_delivered(entity, batch, failure)
        except defer.CancelledError:
            self._ledger.restore()
            raise
        except Exception:  # noqa: BLE001 - a bug must not strand the batch
            log.failure("{name}: unexpected error while sending to Jira", name=self.name)
            self._failed("unexpected error (see the traceback above)", None)
        else:
            self._ledger.settle()
            self._report(entity, batch, result, self._clock.seconds() - started)
        await self._ledger.flush()

    def _dry_run(self, entity: EntityType, batch: list[Update]) -> SubmitResult:
        log_dry_run(self.name, entity, batch)
        return SubmitResult(entity=entity)

    def _not_delivered(self, entity: EntityType, batch: list[Update], failure: JiraError) -> None:
        """Sort a refusal by what it means for the batch: keep and retry, or drop."""
        if not failure.keeps_update:
            # The request as a whole is at fault: sending it again cannot help.
            self._ledger.settle()
            log_dropped(self.name, entity, batch, failure)
            return
        limits_hold = limits_hold_back(self.client.limits, entity, self._clock.seconds())
        if isinstance(failure, JiraRateLimitedError) and limits_hold:
            # The client logged the episode, and its limits schedule the next
            # try (the rest of the site goes on meanwhile): no backoff.
            self._ledger.restore()
            log.debug("{name}: {error}; the batch waits its turn", name=self.name, error=failure)
            return
        # A configuration problem (credentials, permission, a renamed site)
        # keeps the batch too: fixing it delivers what waits.
        reason = str(failure)
        if failure.configuration_problem:
            reason = f"configuration problem: {reason}"
        # Only an unavailable Jira tells when to come back.
        self._failed(reason, failure.retry_after)

    def _failed(self, reason: str, retry_after: float | None) -> None:
        """Keep the batch in flight pending (unless newer came); wait before the next try."""
        self._ledger.restore()
        now = self._clock.seconds()
        started = not self._backoff.in_outage
        delay = self._backoff.failed(now, retry_after)
        self._held_during_outage = len(self)
        log_outage(
            self.name,
            held=len(self),
            reason=reason,
            delay=delay,
            started=started,
            lasted=self._backoff.summary_due(now),
        )
        if self._running:
            self._backoff_call = self._clock.callLater(delay, self._end_backoff)

    def _end_backoff(self) -> None:
        self._backoff_call = None
        self._kick()

    def _report(
        self, entity: EntityType, batch: list[Update], result: SubmitResult, seconds: float
    ) -> None:
        outage = self._backoff.answered(self._clock.seconds())
        self.delivered += len(batch)
        if outage is not None:
            log.info(
                "{name}: Jira answers again; delivered {count} updates held during "
                "{duration} of Jira errors",
                name=self.name,
                count=self._held_during_outage,
                duration=describe_duration(outage),
            )
        if not self.dry_run:  # a dry run said what it did not send
            log_result(self.name, entity, batch, result, seconds)
        if self._on_result is not None:
            self._on_result(result)
