"""Checking the arguments that a ``master.cfg`` gives the Jira reporters and steps.

Each check names the argument and says what it must be, so that a mistake
shows when the configuration is loaded rather than when the first build
ends. Checks raise :class:`~buildbot_jira.jira.errors.JiraConfigError`; the
reporters turn it into Buildbot's configuration error.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar

import attrs
from buildbot.interfaces import IRenderable
from buildbot.process.results import Results

from buildbot_jira.connection import SiteSettings
from buildbot_jira.jira.auth import DEFAULT_API_URL
from buildbot_jira.jira.client import RetryPolicy
from buildbot_jira.jira.errors import JiraConfigError
from buildbot_jira.jira.http import check_base_url
from buildbot_jira.jira.model import ENVIRONMENT_TYPES
from buildbot_jira.mapping.builds import DEFAULT_TEXT_PROPERTIES
from buildbot_jira.mapping.keys import IssueKeyRules

__all__ = [
    "SHARED_ARGUMENTS",
    "SiteOptions",
    "check_environment_types",
    "check_flag",
    "check_names",
    "check_number",
    "check_optional_text",
    "check_pattern",
    "check_renderable",
    "check_result_states",
    "check_text_list",
    "check_whole",
    "refuse_unknown",
    "take",
    "take_options",
]

T = TypeVar("T")

_SITE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(:[0-9]{1,5})?$")


def check_renderable(value: object, argument: str, *, required: bool = False) -> Any:
    """``value`` if it is a string or a renderable (``util.Secret``, ``util.Property``...)."""
    if value is None and not required:
        return None
    if isinstance(value, str) and value:
        return value
    if IRenderable.providedBy(value):
        return value
    kind = "a non-empty string or a renderable such as util.Secret"
    # Name the type only: the value may be a secret.
    raise JiraConfigError(f"{argument} must be {kind}, not {type(value).__name__}")


def check_names(value: object, argument: str) -> tuple[str | re.Pattern[str], ...] | None:
    """A list of names (or compiled regular expressions), or None for 'all'."""
    if value is None:
        return None
    if isinstance(value, str | re.Pattern):
        value = [value]
    if not isinstance(value, list | tuple | set | frozenset):
        raise JiraConfigError(f"{argument} must be a list of names, not {value!r}")
    for item in value:
        if not isinstance(item, str | re.Pattern):
            raise JiraConfigError(
                f"{argument} must hold names (strings) or re.compile() patterns, not {item!r}"
            )
    return tuple(value)


def check_number(value: object, argument: str, *, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise JiraConfigError(f"{argument} must be a number of at least {minimum:g}, not {value!r}")
    return float(value)


def check_whole(value: object, argument: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise JiraConfigError(
            f"{argument} must be a whole number of at least {minimum}, not {value!r}"
        )
    return value


def check_flag(value: object, argument: str) -> bool:
    if not isinstance(value, bool):
        raise JiraConfigError(f"{argument} must be True or False, not {value!r}")
    return value


def check_optional_text(value: object, argument: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise JiraConfigError(f"{argument} must be a non-empty string, not {value!r}")
    return value


def _site(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise JiraConfigError(
            "site must be your Jira site's host name, such as 'example.atlassian.net', "
            f"not {value!r}"
        )
    site = value.strip().removeprefix("https://").rstrip("/")
    if not _SITE.match(site):
        raise JiraConfigError(
            f"site must be a host name such as 'example.atlassian.net', not {value!r}"
        )
    return site


def check_pattern(value: object, argument: str) -> re.Pattern[str] | None:
    """A regular expression (string or compiled), or None."""
    if value is None:
        return None
    if isinstance(value, re.Pattern):
        return value
    if not isinstance(value, str) or not value:
        raise JiraConfigError(f"{argument} must be a regular expression string, not {value!r}")
    try:
        return re.compile(value)
    except re.error as problem:
        raise JiraConfigError(
            f"{argument} {value!r} is not a valid regular expression: {problem}"
        ) from None


def check_result_states(
    value: object,
    argument: str,
    defaults: Mapping[str, str | None],
    states: Collection[str],
) -> Mapping[str, str | None]:
    """Buildbot result names -> Jira states (or None), merged over ``defaults``."""
    if not isinstance(value, Mapping):
        raise JiraConfigError(f"{argument} must be a dict of Buildbot result name to Jira state")
    merged = dict(defaults)
    for name, state in value.items():
        if name not in Results:
            raise JiraConfigError(
                f"{argument}: {name!r} is not a Buildbot result; use one of {', '.join(Results)}"
            )
        if state is not None and state not in states:
            raise JiraConfigError(
                f"{argument}: {state!r} is not a Jira state here; use one of "
                f"{', '.join(sorted(states))}, or None to send nothing"
            )
        merged[name] = state
    return merged


def check_environment_types(value: object, argument: str) -> dict[str | re.Pattern[str], str]:
    """Environment names (or compiled patterns) -> Jira environment types."""
    if not isinstance(value, Mapping):
        raise JiraConfigError(
            f"{argument} must be a dict of environment name (or re.compile() pattern) to "
            f"Jira environment type, not {value!r}"
        )
    for name, kind in value.items():
        if not isinstance(name, str | re.Pattern):
            raise JiraConfigError(f"{argument}: {name!r} is not a name or a compiled pattern")
        if kind not in ENVIRONMENT_TYPES:
            raise JiraConfigError(
                f"{argument}: {kind!r} is not a Jira environment type; use one of "
                f"{', '.join(sorted(ENVIRONMENT_TYPES))}"
            )
    return dict(value)


def check_text_list(value: object, argument: str) -> tuple[str, ...]:
    """A list of non-empty strings (a lone string is refused: it is a common slip)."""
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise JiraConfigError(f"{argument} must be a list of strings, not {value!r}")
    for item in value:
        if not isinstance(item, str) or not item:
            raise JiraConfigError(f"{argument} must hold non-empty strings, not {item!r}")
    return tuple(value)


_KEY_ARGUMENTS = {
    "issue_key_pattern": "pattern",
    "ignored_issue_keys": "ignored",
    "ignore_case": "ignore_case",
    "projects": "projects",
}


def _key_rules(options: dict[str, Any]) -> IssueKeyRules:
    kwargs = {
        field: options.pop(argument)
        for argument, field in _KEY_ARGUMENTS.items()
        if argument in options
    }
    try:
        return IssueKeyRules(**kwargs)
    except (JiraConfigError, TypeError, ValueError) as problem:
        # Name the argument as the user wrote it, not the rule's field.
        message = str(problem)
        for argument, field in _KEY_ARGUMENTS.items():
            if message.startswith(field):
                message = argument + message[len(field) :]
                break
        raise JiraConfigError(message) from None


@attrs.frozen
class SiteOptions:
    """The arguments every Jira reporter takes, checked.

    ``client_id`` and ``client_secret`` stay as given (strings or
    renderables): they are rendered when the service starts.
    """

    site: str
    client_id: Any = attrs.field(repr=False)
    client_secret: Any = attrs.field(repr=False)
    cloud_id: str | None = None
    api_url: str = DEFAULT_API_URL
    site_url: str | None = None
    builders: tuple[str | re.Pattern[str], ...] | None = None
    branches: tuple[str | re.Pattern[str], ...] | None = None
    key_rules: IssueKeyRules = attrs.field(factory=IssueKeyRules)
    issue_keys_property: str = "jira_issue_keys"
    issue_key_properties: tuple[str, ...] = DEFAULT_TEXT_PROPERTIES
    pipeline_id: Any = None
    display_name: Any = None
    label: Any = None
    dry_run: bool = False
    debug: bool = False
    timeout: float = 30.0
    outbox_size: int = 10_000
    min_backoff: float = 5.0
    max_backoff: float = 300.0
    shutdown_grace: float = 10.0

    def site_settings(self, client_id: str, client_secret: str, retry: RetryPolicy) -> SiteSettings:
        """The settings of a connection to the site, with the rendered credentials."""
        return SiteSettings(
            site=self.site,
            client_id=client_id,
            client_secret=client_secret,
            api_url=self.api_url,
            site_url=self.site_url,
            cloud_id=self.cloud_id,
            timeout=self.timeout,
            retry=retry,
        )


_SITE_CHECKS: Mapping[str, Callable[[Any, str], Any]] = {
    "cloud_id": check_optional_text,
    "api_url": lambda v, a: check_base_url(v, argument=a),
    "site_url": lambda v, a: None if v is None else check_base_url(v, argument=a),
    "builders": check_names,
    "branches": check_names,
    "issue_keys_property": lambda v, a: check_optional_text(v, a) or "jira_issue_keys",
    "issue_key_properties": check_text_list,
    "pipeline_id": check_renderable,
    "display_name": check_renderable,
    "label": check_renderable,
    "dry_run": check_flag,
    "debug": check_flag,
    "timeout": lambda v, a: check_number(v, a, minimum=1),
    "outbox_size": lambda v, a: check_whole(v, a, minimum=1),
    "min_backoff": lambda v, a: check_number(v, a, minimum=0.1),
    "max_backoff": lambda v, a: check_number(v, a, minimum=1),
    "shutdown_grace": check_number,
}


#: Every argument that :func:`take_options` takes.
SHARED_ARGUMENTS: tuple[str, ...] = (
    "site",
    "client_id",
    "client_secret",
    *_KEY_ARGUMENTS,
    *_SITE_CHECKS,
)


def take_options(
    site: object,
    client_id: object,
    client_secret: object,
    options: dict[str, Any],
) -> SiteOptions:
    """Check the shared arguments, removing them from ``options``.

    What is left in ``options`` is for the reporter's own checks; a name that
    nobody takes is reported by :func:`refuse_unknown`.
    """
    checked: dict[str, Any] = {
        "site": _site(site),
        "client_id": check_renderable(client_id, "client_id", required=True),
        "client_secret": check_renderable(client_secret, "client_secret", required=True),
        "key_rules": _key_rules(options),
    }
    for argument, check in _SITE_CHECKS.items():
        if argument in options:
            checked[argument] = check(options.pop(argument), argument)
    return SiteOptions(**checked)


def refuse_unknown(options: Mapping[str, Any], known: Collection[str]) -> None:
    """Refuse arguments that no check took."""
    if options:
        names = ", ".join(sorted(options))
        raise JiraConfigError(
            f"unknown argument(s): {names}; the arguments are: {', '.join(sorted(known))}"
        )


def take(options: dict[str, Any], argument: str, default: T, check: Callable[[Any, str], T]) -> T:
    """Check and remove ``argument`` from ``options``, or give ``default``."""
    if argument not in options:
        return default
    return check(options.pop(argument), argument)
