"""``buildbot-jira check``: prove a Jira site's OAuth credentials before master.cfg uses them.

The check walks the path every report takes, one step at a time, and
prints each step as it goes:

1. look up the site's cloud ID (``/_edge/tenant_info``); a cloud ID given
   with ``--cloud-id`` is compared with it, since the gateway answers a read
   with a wrong cloud ID as it answers a read of a build that does not exist;
2. trade the client ID and secret for an access token;
3. with ``--issue KEY``, send one build, clearly labelled as a test, linked
   to that issue, and read Jira's verdict; without it, read a build that does
   not exist, which proves the builds permission without writing anything;
4. with ``--deployments``, ``--devinfo`` and ``--feature-flags``, the same
   read for the deployments, development information and feature flags
   permissions: a deployment, a repository and a feature flag that do not
   exist (404 proves the permission, 403 names the one missing).

It exits 0 only when every step worked, and otherwise with the code of the
first failure (see :data:`EXIT_CODES`), after a message that names the
likely cause. The client secret comes from a file, a prompt that does not
echo it, or an environment variable, never from the command line, and never
shows in the output. Reading
the options is :mod:`~buildbot_jira.tools.check_arguments`, the exit codes
and causes :mod:`~buildbot_jira.tools.check_outcomes`; the client is the
one the reporters use, from a :class:`buildbot_jira.connection.ConnectionPool`.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, TextIO, cast

import attrs

from buildbot_jira.connection import ConnectionPool
from buildbot_jira.jira.client import JiraCloud
from buildbot_jira.jira.errors import JiraError
from buildbot_jira.jira.model import BuildData, EntityType, iso_timestamp
from buildbot_jira.jira.results import SubmitResult
from buildbot_jira.jira.retry import RetryPolicy
from buildbot_jira.simulator.contract import entity_schema, validation_errors
from buildbot_jira.sites import JiraSite
from buildbot_jira.tools.check_arguments import (
    DEFAULT_SECRET_VARIABLE,
    CheckSettings,
    SecretPrompt,
    add_arguments,
    read_secret,
    read_settings,
)
from buildbot_jira.tools.check_outcomes import (
    EXIT_CODES,
    EXIT_CREDENTIALS,
    EXIT_OK,
    EXIT_PERMISSION,
    EXIT_PROXY_AUTH,
    EXIT_REJECTED,
    EXIT_TLS,
    EXIT_UNEXPECTED,
    EXIT_UNKNOWN_SITE,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    CheckFailed,
    explain,
    needing_permission,
    report_failure,
)

__all__ = [
    "DEFAULT_SECRET_VARIABLE",
    "EXIT_CODES",
    "EXIT_CREDENTIALS",
    "EXIT_OK",
    "EXIT_PERMISSION",
    "EXIT_PROXY_AUTH",
    "EXIT_REJECTED",
    "EXIT_TLS",
    "EXIT_UNEXPECTED",
    "EXIT_UNKNOWN_SITE",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "TEST_DISPLAY_NAME",
    "TEST_PIPELINE_ID",
    "CheckFailed",
    "CheckSettings",
    "SecretPrompt",
    "add_arguments",
    "check_site",
    "labelled_test_build",
    "read_secret",
    "read_settings",
    "report_failure",
    "run",
    "run_settings",
]

#: The test build's pipeline and build number: every check replaces the last
#: test build rather than piling up new ones on the issue.
TEST_PIPELINE_ID: Final = "buildbot-jira-check"
TEST_BUILD_NUMBER: Final = 1
TEST_DISPLAY_NAME: Final = "buildbot-jira check (test build)"

# The check is interactive: a person waits for it, so it gives a failing
# host one quick second chance rather than the reporters' patient retries.
_RETRY: Final = RetryPolicy(max_attempts=2, initial_delay=1.0, max_delay=2.0, max_retry_after=5.0)
_REDACT_MIN: Final = 8


async def run(
    args: argparse.Namespace,
    *,
    out: TextIO,
    err: TextIO,
    environ: Mapping[str, str],
    reactor: Any = None,
    prompt: SecretPrompt | None = None,
) -> int:
    """Run ``buildbot-jira check`` with parsed ``args``; returns the exit code.

    ``prompt`` asks for the secret (without echo) when no file or variable
    gives it; leave it out when nobody is at a terminal.
    """
    try:
        settings = read_settings(args, environ, prompt)
    except CheckFailed as failure:
        report_failure(failure, err)
        return failure.exit_code
    return await run_settings(settings, out=out, err=err, reactor=reactor)


async def run_settings(
    settings: CheckSettings, *, out: TextIO, err: TextIO, reactor: Any = None
) -> int:
    """Check ``settings`` already read (see :func:`read_settings`); returns the exit code."""
    secret = settings.site.client_secret
    # Whatever a remote echoes or an error quotes, the secret never reaches the screen.
    return await check_site(
        settings,
        out=cast(TextIO, _Redacting(out, secret)),
        err=cast(TextIO, _Redacting(err, secret)),
        reactor=reactor,
    )


def labelled_test_build(issue: str, *, now: float, url: str) -> dict[str, Any]:
    """The test build that ``--issue`` sends: labelled as a test, valid against the contract."""
    build = BuildData(
        pipeline_id=TEST_PIPELINE_ID,
        build_number=TEST_BUILD_NUMBER,
        # Milliseconds: a later check replaces this test build, never loses to it.
        update_sequence_number=int(now * 1000),
        display_name=TEST_DISPLAY_NAME,
        url=url,
        state="successful",
        last_updated=iso_timestamp(now),
        issue_keys=(issue,),
        description=(
            "Sent by `buildbot-jira check` to prove that Buildbot's OAuth credentials work. "
            "Not a real build; the next check replaces it."
        ),
        label="buildbot-jira check",
    )
    return build.to_json()


async def check_site(
    settings: CheckSettings,
    *,
    out: TextIO,
    err: TextIO,
    reactor: Any = None,
    now: Callable[[], float] = time.time,
) -> int:
    """Check ``settings`` step by step, printing each; returns the exit code."""
    site = settings.site
    pool = ConnectionPool(reactor=reactor, environ=settings.environ)
    client = pool.acquire(site, retry=_RETRY).client
    # Another client of the same pool (same token, same connections) that
    # looks the cloud ID up, to hold a given one against.
    lookup = None if site.cloud_id is None else pool.acquire(_without_cloud_id(site), retry=_RETRY)
    notes: list[str] = []
    steps = _steps(settings, client, None if lookup is None else lookup.client, now, notes)
    out.write(
        f"Checking Jira site {site.site} with client ID {site.client_id!r} "
        f"(secret from {settings.secret_source})\n"
    )
    try:
        for number, (label, step) in enumerate(steps, start=1):
            out.write(f"[{number}/{len(steps)}] {label} ... ")
            out.flush()
            try:
                outcome = await step()
            except Exception as error:  # noqa: BLE001 - every error becomes an exit code
                failure = error if isinstance(error, CheckFailed) else explain(error, site.site)
                out.write("FAILED\n")
                out.flush()
                report_failure(failure, err)
                return failure.exit_code
            out.write(outcome + "\n")
            out.flush()
    finally:
        await pool.close()
    out.write(_success_text(settings, notes))
    out.flush()
    return EXIT_OK


_Step = tuple[str, Callable[[], Awaitable[str]]]


def _without_cloud_id(site: JiraSite[str]) -> JiraSite[str]:
    return attrs.evolve(site, cloud_id=None)


def _steps(
    settings: CheckSettings,
    client: JiraCloud,
    lookup: JiraCloud | None,
    now: Callable[[], float],
    notes: list[str],
) -> list[_Step]:
    """The steps of this check, each a label and a coroutine function giving its outcome.

    ``lookup`` is a client that looks the cloud ID up, when one is given;
    ``notes`` collects what the success text must add.
    """

    async def cloud_id() -> str:
        found = await client.get_cloud_id()
        if lookup is None:
            return found
        outcome, confirmed = await _confirm_cloud_id(found, lookup)
        if not confirmed and settings.issue is None:
            notes.append(
                "The cloud ID is not confirmed, and Jira answers a read with a wrong cloud ID "
                "as a read of a missing build: add --issue KEY to prove it with a test build."
            )
        return outcome

    async def token() -> str:
        await client.tokens.get_token()
        current = client.tokens.current
        lifetime = "" if current is None else _lifetime(current.expires_at - current.obtained_at)
        return f"ok{lifetime}"

    async def send_test_build() -> str:
        assert settings.issue is not None
        url = settings.buildbot_url or f"{client.site_url}/browse/{settings.issue}"
        payload = labelled_test_build(settings.issue, now=now(), url=url)
        problems = validation_errors(entity_schema("builds"), payload)
        if problems:
            raise CheckFailed(
                EXIT_REJECTED,
                "the test build is not valid",
                "; ".join(problems) + " (check --buildbot-url)",
            )
        result = await client.submit_builds([payload])
        return _verdict(settings.issue, result)

    async def read_build() -> str:
        await client.get_build(TEST_PIPELINE_ID, 0)
        return "ok (read a build; add --issue KEY to send a test build)"

    async def read_deployment() -> str:
        await client.get_deployment(TEST_PIPELINE_ID, TEST_PIPELINE_ID, 0)
        return "ok (read a deployment)"

    async def read_repository() -> str:
        await client.get_repository(TEST_PIPELINE_ID)
        return "ok (read a repository)"

    async def read_feature_flag() -> str:
        await client.get_feature_flag(TEST_PIPELINE_ID)
        return "ok (read a feature flag)"

    site = settings.site
    steps: list[_Step] = [
        (f"cloud ID of {site.site}", cloud_id),
        (f"access token for client ID {site.client_id!r}", token),
    ]
    if settings.issue is not None:
        label = f"builds permission: test build for {settings.issue}"
        steps.append((label, needing_permission("builds", send_test_build)))
    else:
        steps.append(("builds permission", needing_permission("builds", read_build)))
    # Reads of what does not exist: 404 proves the permission, and nothing is written.
    reads: list[tuple[bool, str, EntityType, Callable[[], Awaitable[str]]]] = [
        (settings.deployments, "deployments permission", "deployments", read_deployment),
        (settings.devinfo, "development information permission", "devinfo", read_repository),
        (settings.feature_flags, "feature flags permission", "featureflags", read_feature_flag),
    ]
    steps += [(label, needing_permission(e, read)) for wanted, label, e, read in reads if wanted]
    return steps


async def _confirm_cloud_id(given: str, lookup: JiraCloud) -> tuple[str, bool]:
    """A cloud ID given with ``--cloud-id``, held against the site's own: the outcome
    in words, and whether the site confirmed it.

    Raises :class:`CheckFailed` when the site has another one. When the site
    cannot be asked (a proxy may let the gateway through, not the site), the
    check goes on and says that the cloud ID is not confirmed.
    """
    try:
        actual = await lookup.get_cloud_id()
    except JiraError as error:
        reason = str(error).split(". ")[0].rstrip(".")
        return f"{given} (given with --cloud-id; not confirmed, since {reason})", False
    if actual != given:
        raise CheckFailed(
            EXIT_UNKNOWN_SITE,
            "wrong cloud ID",
            f"--cloud-id {given} is not the cloud ID of {lookup.site}, which is {actual}. "
            f"Give --cloud-id {actual}, or leave out --cloud-id to have it looked up",
        )
    return f"{given} (given with --cloud-id; the site's own)", True


def _lifetime(seconds: float) -> str:
    if seconds >= 120:
        return f", valid for {round(seconds / 60)} minutes"
    return f", valid for {round(seconds)} seconds"


def _verdict(issue: str, result: SubmitResult) -> str:
    """``accepted``, or :class:`CheckFailed` saying why Jira did not take the test build."""
    unknown = [key for key in result.unknown_issue_keys if key.upper() == issue.upper()]
    if unknown:
        raise CheckFailed(
            EXIT_REJECTED,
            "unknown issue key",
            f"Jira does not know the issue {issue}: the key is mistyped, the issue does not "
            "exist, or its project is not on this site. Jira stores no build linked only to "
            "unknown issues; try the key of an issue you can open in Jira",
        )
    if result.rejected:
        messages = "; ".join(message for r in result.rejected for message in r.errors)
        raise CheckFailed(
            EXIT_REJECTED, "test build rejected", f"Jira rejected the test build: {messages}"
        )
    if not result.accepted:
        raise CheckFailed(
            EXIT_REJECTED,
            "test build not stored",
            "Jira answered without accepting or rejecting the test build",
        )
    return "accepted"


def _success_text(settings: CheckSettings, notes: list[str]) -> str:
    lines = ["OK: these credentials work.", *notes]
    if settings.issue is not None:
        lines.append(
            f"Jira accepted the test build {TEST_DISPLAY_NAME!r}: it shows in the development "
            f"panel of {settings.issue} (the next check replaces it)."
        )
    lines.append("Put the same site, client ID and secret into master.cfg, the secret with")
    lines.append("util.Secret(...) from a secrets provider rather than as text.")
    return "\n".join(lines) + "\n"


class _Redacting:
    """A text stream that blanks out a secret in everything written to it.

    Real client secrets are long random strings; a short one could be an
    ordinary word of the output (a secret "wrong" would blank out "wrong
    credentials"), so only secrets of :data:`_REDACT_MIN` characters or more
    are blanked out.
    """

    def __init__(self, stream: TextIO, secret: str) -> None:
        self._stream = stream
        self._secret = secret if len(secret) >= _REDACT_MIN else ""

    def write(self, text: str) -> int:
        if self._secret:
            text = text.replace(self._secret, "***")
        return self._stream.write(text)

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
