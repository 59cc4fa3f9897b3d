"""What an outbox logs of Jira's answers: what was sent, refused or dropped; dry runs."""

from __future__ import annotations

import json
from collections.abc import Sequence

from twisted.logger import Logger

from buildbot_jira.delivery.backoff import describe_duration
from buildbot_jira.delivery.ledger import Update, entity_key
from buildbot_jira.jira.errors import JiraError
from buildbot_jira.jira.model import EntityType
from buildbot_jira.jira.results import SubmitResult

__all__ = ["log_dropped", "log_dry_run", "log_outage", "log_result"]

log = Logger()


def log_result(
    name: str, entity: EntityType, batch: Sequence[Update], result: SubmitResult, seconds: float
) -> None:
    """Log Jira's answer to ``batch`` (outbox ``name``): what it refused, naming the builds."""
    log.debug(
        "{name}: sent {count} {entity} ({keys}) in {seconds:.2f} s: {accepted} accepted",
        name=name,
        count=len(batch),
        entity=entity,
        keys=", ".join(u.key for u in batch),
        seconds=seconds,
        accepted=len(result.accepted),
    )
    contexts = {u.key: u.context for u in batch}
    for rejection in result.rejected:
        log.error(
            "{name}: Jira rejected {entity} {key} of {build}: {errors}",
            name=name,
            entity=entity,
            key=json.dumps(rejection.key, sort_keys=True),
            build=_context(contexts, entity_key(entity, rejection.key)),
            errors="; ".join(rejection.errors) or "no reason given",
        )
    if result.unknown_issue_keys:
        log.warn(
            "{name}: Jira does not know the issue keys {keys}; builds linked only to "
            "unknown keys are not shown in Jira",
            name=name,
            keys=", ".join(result.unknown_issue_keys),
        )


def _context(contexts: dict[str, str], key: str) -> str:
    """The context of the update ``key``, or of the first within it (a devinfo repository)."""
    found = contexts.get(key) or next(
        (context for slot, context in contexts.items() if slot.startswith(f"{key}/")), None
    )
    return found or "an unknown build"


def log_dropped(name: str, entity: EntityType, batch: Sequence[Update], failure: JiraError) -> None:
    """Log a batch that Jira refused as a whole, and that is dropped."""
    log.error(
        "{name}: Jira rejected {count} {entity} and they are dropped: {error} (builds: {builds})",
        name=name,
        count=len(batch),
        entity=entity,
        error=str(failure),
        builds=", ".join(u.context for u in batch),
    )


def log_dry_run(name: str, entity: EntityType, batch: Sequence[Update]) -> None:
    """Log each payload of ``batch`` that a dry run does not send."""
    for update in batch:
        log.info(
            "{name}: dry run, not sent: {entity} {payload}",
            name=name,
            entity=entity,
            payload=json.dumps(update.payload, sort_keys=True),
        )


def log_outage(
    name: str, *, held: int, reason: str, delay: float, started: bool, lasted: float | None
) -> None:
    """Log a failed delivery: once when an outage starts, then summaries as it goes on.

    ``started``: this failure starts the outage; ``lasted``: how long it has
    lasted, when a summary is due (see :meth:`~buildbot_jira.delivery.backoff.Backoff.summary_due`).
    Other retries log nothing: a long outage makes a few lines, not one per retry.
    """
    if started:
        log.warn(
            "{name}: {count} updates for Jira are held and retried in {delay:.0f} s: {reason}",
            name=name,
            count=held,
            delay=delay,
            reason=reason,
        )
    elif lasted is not None:
        log.warn(
            "{name}: still holding {count} updates for Jira: {reason}, for {duration}",
            name=name,
            count=held,
            reason=reason,
            duration=describe_duration(lasted),
        )
