"""``buildbot-jira check``: prove a Jira site's OAuth credentials before master.cfg uses them.

The check walks the path every report takes, one step at a time, and
prints each step as it goes:

1. look up the site's cloud ID (``/_edge/tenant_info``), unless one is given;
2. trade the client ID and secret for an access token;
3. with ``--issue KEY``, send one build, clearly labelled as a test, linked
   to that issue, and read Jira's verdict; without it, read a build that does
   not exist, which proves the builds permission without writing anything;
4. with ``--deployments``, the same read for the deployments permission.

It exits 0 only when every step worked, and otherwise with the code of the
first failure (see :data:`EXIT_CODES`), after a message that names the
likely cause. The client secret comes from an environment variable or a
file, never from the command line (where other users of the machine can
read it in the process list), and never shows in the output.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, TextIO, cast
from urllib.parse import urlsplit

import attrs

from buildbot_jira.connection import SiteSettings, acquire
from buildbot_jira.jira.auth import DEFAULT_API_URL, TokenUnavailable
from buildbot_jira.jira.client import JiraCloud, RetryPolicy, SubmitResult
from buildbot_jira.jira.errors import (
    JiraAuthError,
    JiraConfigError,
    JiraPermissionError,
    JiraRequestError,
    JiraSiteError,
    JiraUnavailableError,
)
from buildbot_jira.jira.http import TransportError
from buildbot_jira.jira.model import ISSUE_KEY_RE, BuildData, iso_timestamp
from buildbot_jira.options import take_options
from buildbot_jira.simulator.contract import entity_schema, validation_errors

__all__ = [
    "DEFAULT_SECRET_VARIABLE",
    "EXIT_CODES",
    "EXIT_CREDENTIALS",
    "EXIT_OK",
    "EXIT_PERMISSION",
    "EXIT_REJECTED",
    "EXIT_UNEXPECTED",
    "EXIT_UNKNOWN_SITE",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "TEST_DISPLAY_NAME",
    "TEST_PIPELINE_ID",
    "CheckFailed",
    "CheckSettings",
    "add_arguments",
    "check_site",
    "labelled_test_build",
    "read_secret",
    "read_settings",
    "run",
]

EXIT_OK: Final = 0
EXIT_UNEXPECTED: Final = 1
EXIT_USAGE: Final = 2
EXIT_UNKNOWN_SITE: Final = 3
EXIT_CREDENTIALS: Final = 4
EXIT_PERMISSION: Final = 5
EXIT_REJECTED: Final = 6
EXIT_UNREACHABLE: Final = 7

#: Every exit code of ``buildbot-jira check`` and the likely cause it names.
EXIT_CODES: Final[Mapping[int, str]] = {
    EXIT_OK: "the credentials work",
    EXIT_UNEXPECTED: "unexpected error",
    EXIT_USAGE: "usage error or no client secret",
    EXIT_UNKNOWN_SITE: "wrong site name (or cloud ID)",
    EXIT_CREDENTIALS: "wrong credentials",
    EXIT_PERMISSION: "missing permission",
    EXIT_REJECTED: "unknown issue key, or the test build was rejected",
    EXIT_UNREACHABLE: "unreachable host (or Jira unavailable)",
}

DEFAULT_SECRET_VARIABLE: Final = "JIRA_CLIENT_SECRET"  # noqa: S105 - a variable name
#: The test build's pipeline and build number: every check replaces the last
#: test build rather than piling up new ones on the issue.
TEST_PIPELINE_ID: Final = "buildbot-jira-check"
TEST_BUILD_NUMBER: Final = 1
TEST_DISPLAY_NAME: Final = "buildbot-jira check (test build)"

# The check is interactive: a person waits for it, so it gives a failing
# host one quick second chance rather than the reporters' patient retries.
_RETRY: Final = RetryPolicy(max_attempts=2, initial_delay=1.0, max_delay=2.0, max_retry_after=5.0)
_REDACT_MIN: Final = 8
_OPTION_NAMES: Final[Mapping[str, str]] = {
    "site": "--site",
    "client_id": "--client-id",
    "cloud_id": "--cloud-id",
    "api_url": "--api-url",
    "site_url": "--site-url",
}


def _hidden(_value: object) -> str:
    return "'***'"


class CheckFailed(Exception):
    """A step failed: ``exit_code``, the likely ``cause`` and what Jira or the network said."""

    def __init__(self, exit_code: int, cause: str, detail: str) -> None:
        super().__init__(f"{cause}: {detail}")
        self.exit_code = exit_code
        self.cause = cause
        self.detail = detail


@attrs.frozen
class CheckSettings:
    """What to check: the site, the credentials and the optional test build."""

    site: str
    client_id: str
    client_secret: str = attrs.field(repr=_hidden)
    #: Where the secret came from, for the output (never the secret itself).
    secret_source: str
    api_url: str = DEFAULT_API_URL
    site_url: str | None = None
    cloud_id: str | None = None
    issue: str | None = None
    deployments: bool = False
    buildbot_url: str | None = None
    timeout: float = 15.0


# -- the command line -----------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``check`` options to ``parser``."""
    parser.add_argument(
        "--site", required=True, help="the Jira site's host name, such as example.atlassian.net"
    )
    parser.add_argument(
        "--client-id", required=True, help="the OAuth client ID that a Jira admin created"
    )
    secret = parser.add_mutually_exclusive_group()
    secret.add_argument(
        "--client-secret-env",
        default=DEFAULT_SECRET_VARIABLE,
        metavar="NAME",
        help="read the client secret from this environment variable (%(default)s)",
    )
    secret.add_argument(
        "--client-secret-file",
        metavar="PATH",
        help="read the client secret from this file (its first line)",
    )
    # Declared only to refuse it with a clear message (and without echoing the
    # value): argparse would otherwise call it an ambiguous abbreviation.
    parser.add_argument("--client-secret", nargs="?", const="", help=argparse.SUPPRESS)
    parser.add_argument(
        "--issue",
        metavar="KEY",
        help="send one test build linked to this issue (such as PROJ-123) and show Jira's verdict",
    )
    parser.add_argument(
        "--deployments",
        action="store_true",
        help="also check the permission for the deployments API (reads only)",
    )
    parser.add_argument(
        "--api-url",
        default=DEFAULT_API_URL,
        help="the OAuth 2.0 gateway (%(default)s; the simulator's URL for a dry run)",
    )
    parser.add_argument(
        "--site-url",
        help="where the site answers /_edge/tenant_info (default: https://SITE)",
    )
    parser.add_argument("--cloud-id", help="the site's cloud ID (default: looked up)")
    parser.add_argument(
        "--buildbot-url",
        metavar="URL",
        help="the test build's link (default: the issue's page on the site)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="seconds to wait for each answer (%(default)s)",
    )


def read_secret(args: argparse.Namespace, environ: Mapping[str, str]) -> tuple[str, str]:
    """The client secret and a description of where it came from.

    Raises :class:`CheckFailed` (usage) when there is none.
    """
    if args.client_secret is not None:
        raise CheckFailed(
            EXIT_USAGE,
            "the client secret is not taken from the command line",
            "a secret given as an argument is visible to every user of this machine in the "
            "process list and stays in the shell history. Put it in an environment variable "
            f"(--client-secret-env NAME, {DEFAULT_SECRET_VARIABLE} by default) or a file "
            "(--client-secret-file PATH)",
        )
    if args.client_secret_file:
        path = args.client_secret_file
        try:
            with open(path, encoding="utf-8") as file:
                secret = file.readline().strip()
        except (OSError, UnicodeDecodeError) as problem:
            reason = getattr(problem, "strerror", None) or type(problem).__name__
            raise CheckFailed(
                EXIT_USAGE, "no client secret", f"cannot read --client-secret-file {path}: {reason}"
            ) from None
        if not secret:
            raise CheckFailed(EXIT_USAGE, "no client secret", f"the file {path} is empty")
        return secret, f"file {path}"
    name = args.client_secret_env
    secret = environ.get(name, "").strip()
    if not secret:
        raise CheckFailed(
            EXIT_USAGE,
            "no client secret",
            f"the environment variable {name} is not set or empty. Set it (for example "
            f"`read -rs {name} && export {name}`), or use --client-secret-file PATH",
        )
    return secret, f"${name}"


def read_settings(args: argparse.Namespace, environ: Mapping[str, str]) -> CheckSettings:
    """Check the ``check`` arguments as a master.cfg's would be; :class:`CheckFailed` if wrong."""
    secret, source = read_secret(args, environ)
    options: dict[str, Any] = {"api_url": args.api_url}
    if args.site_url:
        options["site_url"] = args.site_url
    if args.cloud_id:
        options["cloud_id"] = args.cloud_id
    try:
        checked = take_options(args.site, args.client_id, secret, options)
    except JiraConfigError as problem:
        raise CheckFailed(EXIT_USAGE, "invalid argument", _option_names(str(problem))) from None
    issue = args.issue.strip() if args.issue else None
    if issue is not None and not ISSUE_KEY_RE.fullmatch(issue):
        raise CheckFailed(
            EXIT_USAGE,
            "invalid argument",
            f"--issue {issue!r} is not an issue key; give one such as PROJ-123",
        )
    if args.buildbot_url and not _is_web_url(args.buildbot_url):
        raise CheckFailed(
            EXIT_USAGE,
            "invalid argument",
            f"--buildbot-url {args.buildbot_url!r} must be an http:// or https:// address",
        )
    if args.timeout <= 0:
        raise CheckFailed(EXIT_USAGE, "invalid argument", "--timeout must be more than 0 seconds")
    return CheckSettings(
        site=checked.site,
        client_id=args.client_id,
        client_secret=secret,
        secret_source=source,
        api_url=checked.api_url.rstrip("/"),
        site_url=checked.site_url,
        cloud_id=checked.cloud_id,
        issue=issue,
        deployments=args.deployments,
        buildbot_url=args.buildbot_url,
        timeout=args.timeout,
    )


def _is_web_url(text: str) -> bool:
    parts = urlsplit(text)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _option_names(message: str) -> str:
    """A configuration message with master.cfg argument names turned into option names."""
    for argument, option in _OPTION_NAMES.items():
        if message.startswith(argument + " "):
            return option + message[len(argument) :]
    return message


async def run(
    args: argparse.Namespace,
    *,
    out: TextIO,
    err: TextIO,
    environ: Mapping[str, str],
    reactor: Any = None,
) -> int:
    """Run ``buildbot-jira check`` with parsed ``args``; returns the exit code."""
    try:
        settings = read_settings(args, environ)
    except CheckFailed as failure:
        _report_failure(failure, err)
        return failure.exit_code
    # Whatever a remote echoes or an error quotes, the secret never reaches the screen.
    return await check_site(
        settings,
        out=cast(TextIO, _Redacting(out, settings.client_secret)),
        err=cast(TextIO, _Redacting(err, settings.client_secret)),
        reactor=reactor,
    )


# -- the check ------------------------------------------------------------------


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
    connection = acquire(
        SiteSettings(
            site=settings.site,
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            api_url=settings.api_url,
            site_url=settings.site_url,
            cloud_id=settings.cloud_id,
            timeout=settings.timeout,
            retry=_RETRY,
        ),
        reactor=reactor,
    )
    steps = _steps(settings, connection.client, now)
    out.write(
        f"Checking Jira site {settings.site} with client ID {settings.client_id!r} "
        f"(secret from {settings.secret_source})\n"
    )
    try:
        for number, (label, step) in enumerate(steps, start=1):
            out.write(f"[{number}/{len(steps)}] {label} ... ")
            out.flush()
            try:
                outcome = await step()
            except Exception as error:  # noqa: BLE001 - every error becomes an exit code
                failure = error if isinstance(error, CheckFailed) else _explain(error, settings)
                out.write("FAILED\n")
                out.flush()
                _report_failure(failure, err)
                return failure.exit_code
            out.write(outcome + "\n")
            out.flush()
    finally:
        await connection.release()
    out.write(_success_text(settings))
    out.flush()
    return EXIT_OK


_Step = tuple[str, Callable[[], Awaitable[str]]]


def _steps(settings: CheckSettings, client: JiraCloud, now: Callable[[], float]) -> list[_Step]:
    """The steps of this check, each a label and a coroutine function giving its outcome."""

    async def cloud_id() -> str:
        found = await client.get_cloud_id()
        return found if settings.cloud_id is None else f"{found} (given with --cloud-id)"

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
        await client.get_deployment(TEST_PIPELINE_ID, "buildbot-jira-check", 0)
        return "ok (read a deployment)"

    looked_up = "cloud ID" + ("" if settings.cloud_id else f" of {settings.site}")
    steps: list[_Step] = [
        (looked_up, cloud_id),
        (f"access token for client ID {settings.client_id!r}", token),
    ]
    if settings.issue is not None:
        steps.append((f"builds permission: test build for {settings.issue}", send_test_build))
    else:
        steps.append(("builds permission", read_build))
    if settings.deployments:
        steps.append(("deployments permission", read_deployment))
    return steps


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


def _explain(error: Exception, settings: CheckSettings) -> CheckFailed:
    """The exit code and likely cause of an error from the client or the token cache."""
    # Some texts end with a full stop, some not; ours add sentences after them.
    detail = str(error).rstrip(". ")
    if isinstance(error, JiraSiteError):
        return CheckFailed(EXIT_UNKNOWN_SITE, "wrong site name", detail + _site_hint(settings))
    if isinstance(error, JiraAuthError):
        return CheckFailed(EXIT_CREDENTIALS, "wrong credentials", detail)
    if isinstance(error, JiraPermissionError):
        return CheckFailed(EXIT_PERMISSION, "missing permission", detail)
    if isinstance(error, JiraRequestError) and error.status == 404:
        # The gateway answers 404 for a cloud ID that names no site.
        return CheckFailed(
            EXIT_UNKNOWN_SITE,
            "wrong cloud ID",
            f"{detail}. The cloud ID does not name a site: leave out --cloud-id to look it up",
        )
    if isinstance(error, JiraRequestError):
        return CheckFailed(EXIT_REJECTED, "request rejected", detail)
    if isinstance(error, JiraUnavailableError | TokenUnavailable | TransportError):
        return CheckFailed(
            EXIT_UNREACHABLE,
            "unreachable host",
            f"{detail}. Check the host names (--site, --api-url, --site-url), this machine's "
            "network, proxy and firewall, and https://status.atlassian.com" + _site_hint(settings),
        )
    return CheckFailed(EXIT_UNEXPECTED, "unexpected error", f"{type(error).__name__}: {detail}")


def _site_hint(settings: CheckSettings) -> str:
    if "." in settings.site:
        return ""
    return f". A Jira Cloud site name looks like {settings.site}.atlassian.net"


def _report_failure(failure: CheckFailed, err: TextIO) -> None:
    err.write(
        f"buildbot-jira check: {failure.cause} (exit code {failure.exit_code})\n"
        f"  {failure.detail}\n"
    )
    err.flush()


def _success_text(settings: CheckSettings) -> str:
    lines = ["OK: these credentials work."]
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
