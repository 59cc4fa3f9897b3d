"""What ``buildbot-jira check`` is asked to check: its options, read and checked.

The site arguments are checked as a ``master.cfg``'s would be
(:func:`buildbot_jira.options.take_site`) and give the same
:class:`~buildbot_jira.sites.JiraSite` that the reporters connect with. The
client secret comes from a file (best the very file that the master's
secrets provider reads), from a prompt that does not echo it, or from an
environment variable; never from the command line, where other users of the
machine can read it in the process list. The prompt is preferred to a
variable: a variable exported in a shell reaches every program started from
it, a Buildbot master and each build of its local workers included.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from typing import Any, Final
from urllib.parse import urlsplit

import attrs

from buildbot_jira.jira.auth import DEFAULT_API_URL
from buildbot_jira.jira.errors import JiraConfigError
from buildbot_jira.jira.model import ISSUE_KEY_RE
from buildbot_jira.options import take_site
from buildbot_jira.sites import JiraSite
from buildbot_jira.tools.check_outcomes import EXIT_USAGE, CheckFailed

__all__ = [
    "CHECK_TIMEOUT",
    "DEFAULT_SECRET_VARIABLE",
    "CheckSettings",
    "SecretPrompt",
    "add_arguments",
    "read_secret",
    "read_settings",
]

DEFAULT_SECRET_VARIABLE: Final = "JIRA_CLIENT_SECRET"  # noqa: S105 - a variable name
#: A person waits for the check: its answers may take less long than a master's.
CHECK_TIMEOUT: Final = 15.0

#: Asks the person at the terminal for the secret, without echoing it (``getpass``).
SecretPrompt = Callable[[str], str]

_OPTION_NAMES: Final[Mapping[str, str]] = {
    "site": "--site",
    "client_id": "--client-id",
    "cloud_id": "--cloud-id",
    "api_url": "--api-url",
    "site_url": "--site-url",
    "proxy": "--proxy",
    "ca_bundle_only": "--ca-bundle-only",
    "ca_bundle": "--ca-bundle",
}


@attrs.frozen(kw_only=True)
class CheckSettings:
    """What to check: the site with its credentials, and the optional test build."""

    site: JiraSite[str]
    #: Where the secret came from, for the output (never the secret itself).
    secret_source: str
    issue: str | None = None
    #: Also read a deployment, a repository's development information, a feature flag.
    deployments: bool = False
    devinfo: bool = False
    feature_flags: bool = False
    buildbot_url: str | None = None
    #: Where a proxy or CA bundle not given as an option comes from.
    environ: Mapping[str, str] | None = attrs.field(default=None, repr=False)


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
        "--client-secret-file",
        metavar="PATH",
        help=(
            "read the client secret from this file (its first line), such as the master's "
            "secrets/jira-client-secret. Without it or --client-secret-env, the check asks for "
            "the secret without echoing it"
        ),
    )
    secret.add_argument(
        "--client-secret-env",
        metavar="NAME",
        help=(
            f"read the client secret from this environment variable ({DEFAULT_SECRET_VARIABLE} "
            "is read when set and no other source is given)"
        ),
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
        help=(
            'also check the "Deployments" permission, by reading a deployment that does '
            "not exist (writes nothing)"
        ),
    )
    parser.add_argument(
        "--devinfo",
        action="store_true",
        help=(
            'also check the "Development information" permission (commits, branches and '
            "pull requests, for JiraDevInfoReporter), by reading a repository that does not "
            "exist (writes nothing)"
        ),
    )
    parser.add_argument(
        "--feature-flags",
        action="store_true",
        help=(
            'also check the "Feature flags" permission (for the JiraFeatureFlag step), by '
            "reading a feature flag that does not exist (writes nothing)"
        ),
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
    route = parser.add_mutually_exclusive_group()
    route.add_argument(
        "--proxy",
        metavar="URL",
        help=(
            "the HTTP proxy to reach Jira through, http://host:port or "
            "http://user:password@host:port (default: HTTPS_PROXY and NO_PROXY decide; "
            "prefer HTTPS_PROXY for a password, which others can read in the process list)"
        ),
    )
    route.add_argument(
        "--no-proxy",
        action="store_true",
        help="reach Jira directly, whatever HTTPS_PROXY says",
    )
    parser.add_argument(
        "--ca-bundle",
        metavar="PATH",
        help=(
            "a PEM file of certificate authorities to trust besides the system's, such as "
            "the company CA of a proxy that re-signs TLS (default: REQUESTS_CA_BUNDLE or "
            "SSL_CERT_FILE)"
        ),
    )
    parser.add_argument(
        "--ca-bundle-only",
        action="store_true",
        help="trust the --ca-bundle authorities alone, not the system's",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=CHECK_TIMEOUT,
        metavar="SECONDS",
        help="seconds to wait for each answer (%(default)s)",
    )


def read_secret(
    args: argparse.Namespace,
    environ: Mapping[str, str],
    prompt: SecretPrompt | None = None,
) -> tuple[str, str]:
    """The client secret and a description of where it came from.

    In this order: ``--client-secret-file``, ``--client-secret-env``,
    ``$JIRA_CLIENT_SECRET`` when it is set, then ``prompt`` (given only when
    a person is at a terminal). Raises :class:`CheckFailed` (usage) when
    there is none.
    """
    if args.client_secret is not None:
        raise CheckFailed(
            EXIT_USAGE,
            "the client secret is not taken from the command line",
            "a secret given as an argument is visible to every user of this machine in the "
            "process list and stays in the shell history. Give a file that holds it "
            "(--client-secret-file PATH), or leave the option out to be asked for it",
        )
    if args.client_secret_file:
        return _secret_from_file(args.client_secret_file)
    name = args.client_secret_env
    if name:
        secret = environ.get(name, "").strip()
        if not secret:
            raise CheckFailed(
                EXIT_USAGE,
                "no client secret",
                f"the environment variable {name} is not set or empty. Give a file that holds "
                "the secret (--client-secret-file PATH), or leave out --client-secret-env to "
                "be asked for it",
            )
        return secret, f"${name}"
    secret = environ.get(DEFAULT_SECRET_VARIABLE, "").strip()
    if secret:
        return secret, f"${DEFAULT_SECRET_VARIABLE}"
    if prompt is None:
        raise CheckFailed(
            EXIT_USAGE,
            "no client secret",
            f"{DEFAULT_SECRET_VARIABLE} is not set and there is no terminal to ask for it on. "
            "Give a file that holds the secret (--client-secret-file PATH, such as the "
            "master's secrets/jira-client-secret), or run the check in a terminal to be asked "
            "for it",
        )
    try:
        secret = prompt(f"Client secret for client ID {args.client_id!r} (input hidden): ")
    except EOFError:  # Ctrl-D: nothing typed
        secret = ""
    secret = secret.strip()
    if not secret:
        raise CheckFailed(EXIT_USAGE, "no client secret", "none was typed at the prompt")
    return secret, "the prompt"


def _secret_from_file(path: str) -> tuple[str, str]:
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


def read_settings(
    args: argparse.Namespace,
    environ: Mapping[str, str],
    prompt: SecretPrompt | None = None,
) -> CheckSettings:
    """Check the ``check`` arguments as a master.cfg's would be; :class:`CheckFailed` if wrong.

    ``prompt`` asks for the secret when no file or variable gives it.
    """
    secret, source = read_secret(args, environ, prompt)
    given: dict[str, Any] = {"api_url": args.api_url}
    if args.site_url:
        given["site_url"] = args.site_url
    if args.cloud_id:
        given["cloud_id"] = args.cloud_id
    if args.no_proxy:
        given["proxy"] = None
    elif args.proxy:
        given["proxy"] = args.proxy
    if args.ca_bundle:
        given["ca_bundle"] = args.ca_bundle
    if args.ca_bundle_only:
        given["ca_bundle_only"] = True
    try:
        site: JiraSite[str] = take_site(args.site, args.client_id, secret, given)
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
    # Any positive number: unlike a master.cfg's timeout, a quick check may want less than 1 s.
    if args.timeout <= 0:
        raise CheckFailed(EXIT_USAGE, "invalid argument", "--timeout must be more than 0 seconds")
    return CheckSettings(
        site=attrs.evolve(site, timeout=args.timeout),
        secret_source=source,
        issue=issue,
        deployments=args.deployments,
        devinfo=args.devinfo,
        feature_flags=args.feature_flags,
        buildbot_url=args.buildbot_url,
        environ=environ,
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
