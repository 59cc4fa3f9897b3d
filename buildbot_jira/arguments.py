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

import difflib
import math
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from buildbot.interfaces import IRenderable
from buildbot.process.results import Results

from buildbot_jira.jira.errors import JiraConfigError
from buildbot_jira.jira.model import ENVIRONMENT_TYPES
from buildbot_jira.jira.proxy import ProxyServer
from buildbot_jira.jira.trust import load_ca_bundle

__all__ = [
    "Check",
    "check_ca_bundle",
    "check_environment_type",
    "check_environment_types",
    "check_flag",
    "check_names",
    "check_number",
    "check_optional_text",
    "check_pattern",
    "check_proxy",
    "check_renderable",
    "check_result",
    "check_result_states",
    "check_seconds",
    "check_site",
    "check_text_list",
    "check_whole",
    "closest",
    "refuse_unknown",
    "result_name",
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


def check_proxy(value: object, argument: str = "proxy") -> ProxyServer | Any:
    """An HTTP proxy: ``None`` (none at all), a URL string, or a renderable that gives one.

    A renderable (``util.Interpolate`` with a ``secret:`` part, ``util.Secret``)
    keeps the proxy's password out of ``master.cfg``; it is checked once
    rendered. The message never quotes the value: it may hold the password.
    """
    if value is None or IRenderable.providedBy(value):
        return value
    if isinstance(value, str) and value.strip():
        return ProxyServer.parse(value, argument=argument)
    raise JiraConfigError(
        f"{argument} must be None, a URL such as 'http://proxy.example.com:3128', or a "
        f"renderable such as util.Interpolate, not {type(value).__name__}"
    )


def check_ca_bundle(value: object, argument: str = "ca_bundle") -> str | None:
    """The path of a readable PEM file with at least one certificate, or None."""
    if value is None:
        return None
    load_ca_bundle(value, argument)
    return str(value)


def check_site(value: object, argument: str = "site") -> str:
    """A Jira site's host name (``https://`` and a trailing slash are forgiven)."""
    if not isinstance(value, str) or not value:
        raise JiraConfigError(
            f"{argument} must be your Jira site's host name, such as 'example.atlassian.net', "
            f"not {value!r}"
        )
    text = value.strip()
    if text.lower().startswith("http://"):
        host = text[len("http://") :].rstrip("/")
        raise JiraConfigError(
            f"{argument} {value!r} uses plain http://, which would send the credentials in "
            f"clear text, and Jira Cloud sites answer on https only: give the host name "
            f"alone, {host!r}"
        )
    site = text.removeprefix("https://").rstrip("/")
    if not _SITE.match(site):
        raise JiraConfigError(
            f"{argument} must be a host name such as 'example.atlassian.net', not {value!r}"
        )
    if "." not in site.partition(":")[0] and site.partition(":")[0] != "localhost":
        # The slip of giving the site's own name where its host name belongs.
        raise JiraConfigError(
            f"{argument} {value!r} is not a full host name: a Jira Cloud site's is like "
            f"{site + '.atlassian.net'!r}"
        )
    return site


def check_names(value: object, argument: str) -> tuple[str | re.Pattern[str], ...] | None:
    """A list of names (or compiled regular expressions), or None for 'all'.

    A lone name or pattern stands for a list of one, as in every list argument.
    """
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


def result_name(value: object, argument: str) -> str:
    """A Buildbot result, given as its constant (``util.FAILURE``) or its name (``"failure"``).

    Returns the name, in lower case as Buildbot spells it.
    """
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(Results):
        return Results[value]
    if isinstance(value, str) and value.strip().lower() in Results:
        return value.strip().lower()
    raise JiraConfigError(
        f"{argument}: {value!r} is not a Buildbot result; use a constant such as "
        f"util.FAILURE or a name: {', '.join(Results)}"
    )


def check_result(value: object, argument: str, allowed: Collection[int]) -> int:
    """One of the Buildbot results ``allowed``, as a constant or a name; the constant."""
    try:
        result = Results.index(result_name(value, argument))
    except JiraConfigError:
        result = -1
    if result not in allowed:
        names = ", ".join(Results[number] for number in sorted(allowed))
        constants = ", ".join("util." + Results[number].upper() for number in sorted(allowed))
        raise JiraConfigError(
            f"{argument} must be a Buildbot result ({constants}, or its name: {names}), "
            f"not {value!r}"
        )
    return result


def check_result_states(
    value: object,
    argument: str,
    defaults: Mapping[str, str | None],
    states: Collection[str],
) -> Mapping[str, str | None]:
    """Buildbot results (constants or names) -> Jira states (or None), merged over ``defaults``.

    The result is keyed by result names, whichever way they were given.
    """
    if not isinstance(value, Mapping):
        raise JiraConfigError(
            f"{argument} must be a dict of Buildbot result (util.FAILURE or 'failure') "
            "to Jira state"
        )
    merged = dict(defaults)
    for result, state in value.items():
        name = result_name(result, argument)
        if state is not None and state not in states:
            raise JiraConfigError(
                f"{argument}: {state!r} is not a Jira state here; use one of "
                f"{', '.join(sorted(states))}, or None to send nothing"
            )
        merged[name] = state
    return merged


def check_environment_type(value: object, argument: str) -> Any:
    """A Jira environment type, or a renderable that gives one when a build runs."""
    if isinstance(value, str) and value not in ENVIRONMENT_TYPES:
        raise JiraConfigError(_not_an_environment_type(argument, value))
    return check_renderable(value, argument)


def _not_an_environment_type(argument: str, value: object) -> str:
    message = (
        f"{argument}: {value!r} is not a Jira environment type; use one of "
        f"{', '.join(sorted(ENVIRONMENT_TYPES))}"
    )
    suggestion = closest(str(value).lower(), ENVIRONMENT_TYPES) if value else None
    return message + (f" (did you mean {suggestion!r}?)" if suggestion else "")


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
            raise JiraConfigError(_not_an_environment_type(argument, kind))
    return dict(value)


def check_text_list(value: object, argument: str) -> tuple[str, ...]:
    """A list of non-empty strings; a lone string stands for a list of one."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple | set | frozenset):
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


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice that ``word`` most likely misspells or abbreviates, or None.

    A unique choice that starts with ``word`` wins (``prod`` -> ``production``),
    then the nearest spelling (``builder`` -> ``builders``).
    """
    options = sorted(set(choices))
    starting = [choice for choice in options if word and choice.startswith(word)]
    if len(starting) == 1:
        return starting[0]
    near = difflib.get_close_matches(word, options, n=1)
    return near[0] if near else None


def refuse_unknown(arguments: Mapping[str, Any], known: Collection[str]) -> None:
    """Refuse arguments that no check took, suggesting the closest known one."""
    if arguments:
        names = []
        for name in sorted(arguments):
            suggestion = closest(name, known)
            names.append(f"{name} (did you mean {suggestion}?)" if suggestion else name)
        raise JiraConfigError(
            f"unknown argument(s): {', '.join(names)}; the arguments are: "
            f"{', '.join(sorted(known))}"
        )
