"""A durable, coalescing, batching queue of updates on their way to Jira.

Reporters hand every update to an :class:`Outbox` and return at once; the
outbox writes it to the master's database, sends it when it can, and forgets
it only once Jira has answered for it. What it guarantees:

- at most one pending update per entity: a newer update replaces an older
  unsent one, and an update never overtakes a newer one already sent or a
  final state (Jira keeps the update with the highest
  ``updateSequenceNumber``; the outbox never sends a lower one after it);
- an idle outbox sends at once; while a request is in flight, further
  updates collect for the next request (at most 100 per request, one entity
  type per request);
- failures that retrying can fix keep the updates, with capped backoff;
  rejections that it cannot fix are logged and dropped;
- a cap on pending updates, dropping the oldest ``in_progress`` updates first.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import attrs
from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from buildbot_jira.jira.client import (
    MAX_ENTITIES_PER_REQUEST,
    EntityType,
    JiraCloud,
    Rejection,
    SubmitResult,
)
from buildbot_jira.jira.errors import (
    JiraAuthError,
    JiraError,
    JiraPermissionError,
    JiraRequestError,
    JiraSiteError,
    JiraUnavailableError,
)

__all__ = ["Outbox", "OutboxStore", "Update"]

log = Logger()

#: The statuses for which a request is dropped: malformed as a whole (400),
#: or one entity too large to send (413, after halving down to one).
_UNFIXABLE = frozenset({400, 413})

#: How many delivered entities the outbox remembers, to refuse stale updates.
REMEMBERED_KEYS = 20_000


@attrs.frozen
class Update:
    """One update of one entity (a build or a deployment) for Jira.

    ``key`` names the entity among all of its type; ``sequence`` is its
    ``updateSequenceNumber``; ``final`` says whether it is a final state;
    ``context`` names the Buildbot build it comes from, for log lines.
    """

    entity: EntityType
    key: str
    payload: Mapping[str, Any]
    sequence: int
    final: bool
    context: str = ""

    @property
    def slot(self) -> tuple[str, str]:
        """The entity this update is of: one pending update per slot."""
        return (self.entity, self.key)

    def to_json(self) -> dict[str, Any]:
        """The update as JSON, for the database."""
        return {
            "entity": self.entity,
            "key": self.key,
            "payload": dict(self.payload),
            "sequence": self.sequence,
            "final": self.final,
            "context": self.context,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Update:
        """An update read back from the database."""
        return cls(
            entity=data["entity"],
            key=str(data["key"]),
            payload=data["payload"],
            sequence=int(data["sequence"]),
            final=bool(data["final"]),
            context=str(data.get("context", "")),
        )


class OutboxStore(Protocol):
    """Where an outbox keeps its pending updates across master restarts."""

    async def load(self) -> list[dict[str, Any]]:
        """The updates saved last time (as JSON dicts)."""

    async def save(self, updates: list[dict[str, Any]]) -> None:
        """Replace what is saved with ``updates``."""


class MemoryStore:
    """An :class:`OutboxStore` in memory, for dry runs and tests."""

    def __init__(self) -> None:
        self.saved: list[dict[str, Any]] = []
        self.saves = 0

    async def load(self) -> list[dict[str, Any]]:
        """What was saved last."""
        return list(json.loads(json.dumps(self.saved)))

    async def save(self, updates: list[dict[str, Any]]) -> None:
        """Keep a copy of ``updates``."""
        self.saves += 1
        self.saved = json.loads(json.dumps(updates))


class StateStore:
    """An :class:`OutboxStore` in the master's database (``master.db.state``).

    Each master keeps its own entry (``pending@<masterid>``), so masters that
    share one database never send or delete each other's updates.
    """

    def __init__(self, *, master: Any, objectid: int, masterid: int) -> None:
        self._master = master
        self._objectid = objectid
        self._name = f"pending@{masterid}"

    async def load(self) -> list[dict[str, Any]]:
        """The updates this master saved last."""
        saved = await self._master.db.state.getState(self._objectid, self._name, [])
        return list(saved) if isinstance(saved, list) else []

    async def save(self, updates: list[dict[str, Any]]) -> None:
        """Replace this master's saved updates."""
        await self._master.db.state.setState(self._objectid, self._name, updates)


def _rejection_text(rejection: Rejection) -> str:
    return "; ".join(rejection.errors) or "no reason given"


class Outbox:
    """Delivers updates to one Jira site, in the background, without losing any.

    :param client: the site's client.
    :param store: where pending updates are saved before they are sent.
    :param clock: times backoff waits and the shutdown grace period.
    :param cap: the most pending updates kept; beyond it the oldest
        ``in_progress`` updates are dropped first.
    :param initial_backoff: the first wait after a failed delivery (seconds).
    :param max_backoff: the longest wait between attempts (seconds).
    :param grace: how long :meth:`stop` waits for a request in flight.
    :param dry_run: log what would be sent and send nothing.
    :param on_result: called with each :class:`SubmitResult` (for tests and
        summaries).
    """

    def __init__(
        self,
        *,
        client: JiraCloud,
        store: OutboxStore,
        clock: IReactorTime,
        cap: int = 10_000,
        initial_backoff: float = 5.0,
        max_backoff: float = 300.0,
        grace: float = 10.0,
        dry_run: bool = False,
        name: str = "jira",
        on_result: Callable[[SubmitResult], None] | None = None,
    ) -> None:
        self.client = client
        self.cap = cap
        self.name = name
        self.dry_run = dry_run
        self._store = store
        self._clock = clock
        self._initial_backoff = initial_backoff
        self._max_backoff = max_backoff
        self._grace = grace
        self._on_result = on_result
        self._pending: dict[tuple[str, str], Update] = {}
        self._in_flight: dict[tuple[str, str], Update] = {}
        # The highest sequence sent per slot, and whether it was final.
        self._sent: collections.OrderedDict[tuple[str, str], tuple[int, bool]] = (
            collections.OrderedDict()
        )
        self._running = False
        self._sending: defer.Deferred[None] | None = None
        self._kick_call: IDelayedCall | None = None
        self._save_call: IDelayedCall | None = None
        self._backoff: float = 0.0
        self._backoff_call: IDelayedCall | None = None
        self._outage_started: float | None = None
        self._held_during_outage = 0
        self._saving: defer.Deferred[None] | None = None
        self._saves_wanted = 0
        self._saves_done = 0
        #: Counters for logs, summaries and tests.
        self.requests_sent = 0
        self.delivered = 0
        self.dropped = 0

    def configure(self, *, initial_backoff: float, max_backoff: float, grace: float) -> None:
        """Change the backoff bounds and the shutdown grace period."""
        self._initial_backoff = initial_backoff
        self._max_backoff = max(max_backoff, initial_backoff)
        self._grace = grace

    def __repr__(self) -> str:
        return f"<Outbox {self.name!r} site={self.client.site!r} pending={len(self)}>"

    def __len__(self) -> int:
        # An entity can be both in flight and pending (a newer update came).
        in_flight_only = sum(1 for slot in self._in_flight if slot not in self._pending)
        return len(self._pending) + in_flight_only

    @property
    def pending(self) -> Mapping[tuple[str, str], Update]:
        """Updates waiting to be sent (not those in flight)."""
        return self._pending

    # -- life cycle -----------------------------------------------------------

    async def start(self) -> None:
        """Load what an earlier run left pending and start sending."""
        restored = 0
        for data in await self._store.load():
            try:
                update = Update.from_json(data)
            except (KeyError, TypeError, ValueError):
                log.warn("{name}: skipped an unreadable saved update", name=self.name)
                continue
            if self._accept(update):
                restored += 1
        # Only now: a save before the load would overwrite what it reads.
        self._running = True
        if restored:
            log.info(
                "{name}: {count} updates left pending by the last run will be sent",
                name=self.name,
                count=restored,
            )
        self._kick()

    async def stop(self) -> None:
        """Wait up to the grace period for a request in flight; keep the rest saved."""
        self._running = False
        for call in (self._kick_call, self._backoff_call, self._save_call):
            if call is not None and call.active():
                call.cancel()
        self._kick_call = self._backoff_call = self._save_call = None
        if self._sending is not None:
            sending = self._sending
            waiter: defer.Deferred[None] = defer.Deferred()
            sending.addBoth(lambda _: waiter.callback(None) if not waiter.called else None)
            timer = self._clock.callLater(
                self._grace, lambda: waiter.callback(None) if not waiter.called else None
            )
            await waiter
            if timer.active():
                timer.cancel()
            if not sending.called:
                log.info(
                    "{name}: a request to Jira did not finish within {grace} s; its updates "
                    "stay saved for the next start",
                    name=self.name,
                    grace=self._grace,
                )
                sending.cancel()
        self._restore_in_flight()
        await self._save()

    # -- taking updates ---------------------------------------------------------

    def put(self, update: Update) -> None:
        """Queue ``update``; it is saved, then sent, in the background. Never blocks."""
        if not self._accept(update):
            return
        self._enforce_cap()
        self._kick()
        if self._kick_call is None or not self._kick_call.active():
            # Nothing is about to send (a backoff or a request is under way):
            # save now, so that a master that dies meanwhile loses nothing.
            self._save_soon()

    def _accept(self, update: Update) -> bool:
        slot = update.slot
        newest = self._newest(slot)
        if newest is not None:
            sequence, final = newest
            if update.sequence <= sequence or (final and not update.final):
                log.debug(
                    "{name}: ignored update {seq} of {key}: it is not newer than {have}",
                    name=self.name,
                    seq=update.sequence,
                    key=update.key,
                    have=sequence,
                )
                return False
        self._pending[slot] = update
        return True

    def _newest(self, slot: tuple[str, str]) -> tuple[int, bool] | None:
        for source in (self._pending, self._in_flight):
            if slot in source:
                return (source[slot].sequence, source[slot].final)
        return self._sent.get(slot)

    def _enforce_cap(self) -> None:
        excess = len(self) - self.cap
        if excess <= 0:
            return
        # Oldest in_progress updates first; final states only when nothing else is left.
        victims = [s for s, u in self._pending.items() if not u.final][:excess]
        # In-progress updates in flight cannot be dropped now, but they leave
        # when their request ends (or come back and are dropped then): no
        # final state goes for their sake.
        leaving = sum(
            1 for s, u in self._in_flight.items() if not u.final and s not in self._pending
        )
        finals_needed = max(0, excess - len(victims) - leaving)
        victims += [s for s, u in self._pending.items() if u.final][:finals_needed]
        if not victims:
            return
        finals = 0
        for slot in victims:
            finals += self._pending.pop(slot).final
        self.dropped += len(victims)
        log.warn(
            "{name}: more than {cap} updates wait for Jira; dropped the {count} oldest "
            "({finals} of them final states)",
            name=self.name,
            cap=self.cap,
            count=len(victims),
            finals=finals,
        )

    # -- sending ------------------------------------------------------------

    def _save_soon(self) -> None:
        if not self._running or (self._save_call is not None and self._save_call.active()):
            return
        self._save_call = self._clock.callLater(
            0, lambda: defer.Deferred.fromCoroutine(self._save())
        )

    def _kick(self) -> None:
        """Send soon: after this reactor turn, so that updates made together go together."""
        if not self._running or self._sending is not None or not self._pending:
            return
        if self._backoff_call is not None and self._backoff_call.active():
            return
        if self._kick_call is None or not self._kick_call.active():
            self._kick_call = self._clock.callLater(0, self._send_next)

    def _send_next(self) -> None:
        self._kick_call = None
        if not self._running or self._sending is not None or not self._pending:
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

    def _take_batch(self) -> list[Update]:
        entity = next(iter(self._pending.values())).entity
        batch = [u for u in self._pending.values() if u.entity == entity]
        batch = batch[:MAX_ENTITIES_PER_REQUEST]
        for update in batch:
            del self._pending[update.slot]
            self._in_flight[update.slot] = update
        return batch

    async def _deliver_batch(self) -> None:
        # Saved before sent: a master that dies now sends it again on restart.
        await self._save()
        if not self._running or not self._pending:
            return
        batch = self._take_batch()
        entity = batch[0].entity
        started = self._clock.seconds()
        try:
            if self.dry_run:
                result = self._dry_run(entity, batch)
            else:
                self.requests_sent += 1
                result = await self.client.submit(entity, [u.payload for u in batch])
        except JiraUnavailableError as failure:
            self._failed(batch, str(failure), failure.retry_after)
        except JiraPermissionError as failure:
            # Fixing the permission in Jira delivers what waits: keep it.
            self._failed(batch, f"configuration problem: {failure}", None)
        except JiraAuthError as failure:
            self._failed(batch, f"configuration problem: {failure}", None)
        except JiraSiteError as failure:
            self._failed(batch, f"configuration problem: {failure}", None)
        except JiraRequestError as failure:
            if failure.status not in _UNFIXABLE:
                # A redirect (renamed site), 404 (wrong cloud ID or api_url)...:
                # fixing the configuration delivers what waits.
                self._failed(batch, f"configuration problem: {failure}", None)
                return
            # The request as a whole is malformed: sending it again cannot help.
            self._settle(batch)
            log.error(
                "{name}: Jira rejected {count} {entity} and they are dropped: {error} "
                "(builds: {builds})",
                name=self.name,
                count=len(batch),
                entity=entity,
                error=str(failure),
                builds=", ".join(u.context for u in batch),
            )
        except JiraError as failure:
            self._failed(batch, str(failure), None)
        except defer.CancelledError:
            self._restore_in_flight()
            raise
        except Exception:  # noqa: BLE001 - a bug must not strand the batch
            log.failure("{name}: unexpected error while sending to Jira", name=self.name)
            self._failed(batch, "unexpected error (see the traceback above)", None)
        else:
            self._settle(batch)
            self._report(entity, batch, result, self._clock.seconds() - started)
        await self._save()

    def _dry_run(self, entity: EntityType, batch: list[Update]) -> SubmitResult:
        for update in batch:
            log.info(
                "{name}: dry run, not sent: {entity} {payload}",
                name=self.name,
                entity=entity,
                payload=json.dumps(update.payload, sort_keys=True),
            )
        return SubmitResult(entity=entity)

    def _settle(self, batch: Iterable[Update]) -> None:
        """Jira answered for ``batch``: remember what was sent, forget the updates."""
        for update in batch:
            self._in_flight.pop(update.slot, None)
            self._sent[update.slot] = (update.sequence, update.final)
            self._sent.move_to_end(update.slot)
        while len(self._sent) > REMEMBERED_KEYS:
            self._sent.popitem(last=False)

    def _failed(self, batch: list[Update], reason: str, retry_after: float | None) -> None:
        """Keep ``batch`` pending (unless newer updates came) and wait before the next try."""
        self._restore_in_flight()
        if self._outage_started is None:
            self._outage_started = self._clock.seconds()
        self._held_during_outage = len(self)
        self._backoff = min(self._max_backoff, max(self._initial_backoff, self._backoff * 2))
        # Retry-After is honoured, but never shortens the backoff: a proxy that
        # answers "Retry-After: 0" must not turn retries into a busy loop.
        delay = self._backoff if retry_after is None else max(self._backoff, retry_after)
        delay = min(delay, self._max_backoff)
        log.warn(
            "{name}: {count} updates for Jira are held and retried in {delay:.0f} s: {reason}",
            name=self.name,
            count=len(self),
            delay=delay,
            reason=reason,
        )
        if self._running:
            self._backoff_call = self._clock.callLater(delay, self._end_backoff)

    def _end_backoff(self) -> None:
        self._backoff_call = None
        self._kick()

    def _restore_in_flight(self) -> None:
        for slot, update in self._in_flight.items():
            newer = self._pending.get(slot)
            if newer is None or newer.sequence < update.sequence:
                self._pending[slot] = update
        self._in_flight.clear()
        self._enforce_cap()

    def _report(
        self, entity: EntityType, batch: list[Update], result: SubmitResult, seconds: float
    ) -> None:
        self._backoff = 0.0
        self.delivered += len(batch)
        log.debug(
            "{name}: sent {count} {entity} ({keys}) in {seconds:.2f} s: {accepted} accepted",
            name=self.name,
            count=len(batch),
            entity=entity,
            keys=", ".join(u.key for u in batch),
            seconds=seconds,
            accepted=len(result.accepted),
        )
        if self._outage_started is not None:
            log.info(
                "{name}: Jira answers again; delivered {count} updates held during "
                "{duration} of Jira errors",
                name=self.name,
                count=self._held_during_outage,
                duration=_duration(self._clock.seconds() - self._outage_started),
            )
            self._outage_started = None
        contexts = {u.key: u.context for u in batch}
        for rejection in result.rejected:
            log.error(
                "{name}: Jira rejected {entity} {key} of {build}: {errors}",
                name=self.name,
                entity=entity,
                key=json.dumps(rejection.key, sort_keys=True),
                build=contexts.get(_key_text(entity, rejection.key), "an unknown build"),
                errors=_rejection_text(rejection),
            )
        if result.unknown_issue_keys:
            log.warn(
                "{name}: Jira does not know the issue keys {keys}; builds linked only to "
                "unknown keys are not shown in Jira",
                name=self.name,
                keys=", ".join(result.unknown_issue_keys),
            )
        if self._on_result is not None:
            self._on_result(result)

    # -- saving ---------------------------------------------------------------

    async def _save(self) -> None:
        """Save what is pending now; returns once a save that began after the call ends.

        Saves never overlap: callers that arrive during a save wait for it
        and share one more save after it.
        """
        self._saves_wanted += 1
        wanted = self._saves_wanted
        while self._saves_done < wanted:
            saving = self._saving
            if saving is None:
                saving = defer.Deferred.fromCoroutine(self._write())
                if not saving.called:  # a store may save at once
                    self._saving = saving
                    saving.addBoth(self._save_finished)
            # _write never fails and resolves to None, so any number of
            # callers may wait on the same Deferred.
            await saving

    def _save_finished(self, result: object) -> object:
        self._saving = None
        return result

    async def _write(self) -> None:
        generation = self._saves_wanted
        snapshot = [u.to_json() for u in (*self._in_flight.values(), *self._pending.values())]
        try:
            await self._store.save(snapshot)
        except Exception:  # noqa: BLE001 - a failed save must not stop delivery
            log.failure("{name}: could not save pending Jira updates", name=self.name)
        finally:
            self._saves_done = max(self._saves_done, generation)


def _duration(seconds: float) -> str:
    """``42 s`` or ``4 min``: how long an outage lasted, for people."""
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _key_text(entity: str, key: object) -> str:
    if isinstance(key, Mapping):
        if entity == "builds":
            return f"{key.get('pipelineId')}#{key.get('buildNumber')}"
        if entity == "deployments":
            return (
                f"{key.get('pipelineId')}#{key.get('environmentId')}"
                f"#{key.get('deploymentSequenceNumber')}"
            )
    return str(key)
