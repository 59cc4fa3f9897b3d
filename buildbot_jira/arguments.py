"""Checks of single ``master.cfg`` arguments of the Jira reporters and steps.

Each check takes the value and the argument's name, and returns the value
in the form the options keep, or raises
:class:`~buildbot_jira.jira.errors.JiraConfigError` with a message that names
the argument and says what it must be, so that a mistake shows when the
configuration is loaded rather than when the first build ends. A value that
may be a secret is never quoted, only its type.
:mod:`buildbot_jira.options` assembles these into the options of each service.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Mapping
from typing import Any

from buildbot.interfaces import IRenderable
from buildbot.process.results import Results

from buildbot_jira.jira.errors import JiraConfigError
from buildbot_jira.jira.model import ENVIRONMENT_TYPES

__all__ = [
    "Check",
    "check_environment_types",
    "check_flag",
    "check_names",
    "check_number",
    "check_optional_text",
    "check_pattern",
    "check_renderable",
    "check_result_states",
    "check_seconds",
    "check_site",
    "check_text_list",
    "check_whole",
    "refuse_unknown",
    "take_checked",
]

#: A check: the value and the argument's name in, the checked value out.
Check = Callable[[Any, str], Any]

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


def check_site(value: object, argument: str = "site") -> str:
    """A Jira site's host name (``https://`` and a trailing slash are forgiven)."""
    if not isinstance(value, str) or not value:
        raise JiraConfigError(
            f"{argument} must be your Jira site's host name, such as 'example.atlassian.net', "
            f"not {value!r}"
        )
    site = value.strip().removeprefix("https://").rstrip("/")
    if not _SITE.match(site):
        raise JiraConfigError(
            f"{argument} must be a host name such as 'example.atlassian.net', not {value!r}"
        )
    return site


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


def check_number(
    value: object, argument: str, *, minimum: float = 0.0, maximum: float | None = None
) -> float:
    """A number (not a bool) of at least ``minimum`` (and at most ``maximum``, if given)."""
    # NaN stands for "not a number": it fails every comparison below.
    number = math.nan
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    if maximum is not None and not minimum <= number <= maximum:
        raise JiraConfigError(
            f"{argument} must be a number from {minimum:g} to {maximum:g}, not {value!r}"
        )
    if not number >= minimum:
        raise JiraConfigError(f"{argument} must be a number of at least {minimum:g}, not {value!r}")
    return number


def check_seconds(value: object, argument: str) -> float:
    """A number of seconds above 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise JiraConfigError(f"{argument} must be a number of seconds above 0, not {value!r}")
    return float(value)


def check_whole(value: object, argument: str, *, minimum: int = 1) -> int:
    """A whole number (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise JiraConfigError(
            f"{argument} must be a whole number of at least {minimum}, not {value!r}"
        )
    return value


def check_flag(value: object, argument: str) -> bool:
    """True or False (not merely truthy: ``"no"`` is a common slip)."""
    if not isinstance(value, bool):
        raise JiraConfigError(f"{argument} must be True or False, not {value!r}")
    return value


def check_optional_text(value: object, argument: str) -> str | None:
    """A non-empty string, or None."""
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise JiraConfigError(f"{argument} must be a non-empty string, not {value!r}")
    return value


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


def take_checked(arguments: dict[str, Any], checks: Mapping[str, Check]) -> dict[str, Any]:
    """Check and remove from ``arguments`` each one that ``checks`` names.

    The result holds the checked values of the arguments given, except those
    that are None after their check: None always means "the default", and the
    defaults live in the options classes alone.
    """
    checked: dict[str, Any] = {}
    for argument, check in checks.items():
        if argument in arguments:
            value = check(arguments.pop(argument), argument)
            if value is not None:
                checked[argument] = value
    return checked


def refuse_unknown(arguments: Mapping[str, Any], known: Collection[str]) -> None:
    """Refuse arguments that no check took."""
    if arguments:
        names = ", ".join(sorted(arguments))
        raise JiraConfigError(
            f"unknown argument(s): {names}; the arguments are: {', '.join(sorted(known))}"
        )
