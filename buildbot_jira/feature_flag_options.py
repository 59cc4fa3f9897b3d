"""The options of ``JiraFeatureFlag``, parsed once into a frozen value.

The step takes the site arguments of every Jira service
(:data:`~buildbot_jira.sites.SITE_ARGUMENTS`) and the issue-key rule
arguments of the reporters, with the meanings they have there. Its own say
which flag is in which state (one flag from its arguments, ``flag_key=``...,
or every flag of a flags file, ``flags_file=``), which issues it belongs to,
and how patient the step is with Jira. Renderable arguments stay as given:
the step renders them for each build.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import attrs
from buildbot.interfaces import IRenderable

from buildbot_jira.arguments import (
    Check,
    check_environment_type,
    check_environment_types,
    check_flag,
    check_number,
    check_optional_text,
    check_renderable,
    check_seconds,
    check_whole,
    refuse_unknown,
    take_checked,
)
from buildbot_jira.jira.errors import JiraConfigError
from buildbot_jira.jira.model import ENVIRONMENT_TYPES, shown
from buildbot_jira.mapping.feature_flags import (
    FlagDeclaration,
    FlagState,
    FlagStatus,
    Rollout,
    is_web_url,
)
from buildbot_jira.mapping.keys import ISSUE_KEYS_PROPERTY, IssueKeyRules, parse_issue_keys_property
from buildbot_jira.options import KEY_RULE_ARGUMENTS, take_key_rules
from buildbot_jira.sites import SITE_ARGUMENTS, JiraSite, take_site

__all__ = [
    "DEFAULT_FLAG_WAIT_TIMEOUT",
    "FEATURE_FLAG_ARGUMENTS",
    "RENDERED_ARGUMENTS",
    "SINGLE_FLAG_ARGUMENTS",
    "FeatureFlagOptions",
    "parse_feature_flag",
    "rendered_enabled",
    "rendered_text",
    "rendered_type",
]

#: Seconds the step waits for Jira in all (reading flags back and sending them).
DEFAULT_FLAG_WAIT_TIMEOUT = 120.0

ROLLOUT_ARGUMENTS = ("rollout_percentage", "rollout_text", "rollout_rules")

#: The arguments that describe one flag: with ``flags_file``, the file gives them per flag.
SINGLE_FLAG_ARGUMENTS: tuple[str, ...] = (
    "flag_key",
    "flag_id",
    "display_name",
    "enabled",
    *ROLLOUT_ARGUMENTS,
    "default_value",
    "url",
)


def _or_renderable(check: Check) -> Check:
    """``check``, except for a renderable, which is checked once rendered."""

    def checked(value: object, argument: str) -> Any:
        return value if IRenderable.providedBy(value) else check(value, argument)

    return checked


def _check_enabled(value: object, argument: str) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if IRenderable.providedBy(value):
        return value
    raise JiraConfigError(
        f"{argument} must be True, False or a renderable such as util.Property('flag_on'), "
        f"not {shown(value)}"
    )


def _check_url(value: object, argument: str) -> Any:
    checked = check_renderable(value, argument)
    if isinstance(checked, str) and not is_web_url(checked):
        raise JiraConfigError(
            f"{argument} must be an absolute http:// or https:// URL, not {shown(checked)}"
        )
    return checked


_FLAG_CHECKS: Mapping[str, Check] = {
    "flag_key": check_renderable,
    "flags_file": check_renderable,
    "flag_id": check_renderable,
    "display_name": check_renderable,
    "enabled": _check_enabled,
    "environment": check_renderable,
    "environment_type": check_environment_type,
    "environment_types": check_environment_types,
    "rollout_percentage": _or_renderable(lambda v, a: check_number(v, a, maximum=100)),
    "rollout_text": check_renderable,
    "rollout_rules": _or_renderable(lambda v, a: check_whole(v, a, minimum=0)),
    "default_value": check_renderable,
    "url": _check_url,
    "issue_keys_property": check_optional_text,
    "keep_environments": check_flag,
    "wait_timeout": check_seconds,
    "fail_on_error": check_flag,
    "dry_run": check_flag,
}

#: What the step renders for each build (besides the credentials and ``issue_keys``).
RENDERED_ARGUMENTS: tuple[str, ...] = (
    *SINGLE_FLAG_ARGUMENTS,
    "flags_file",
    "environment",
    "environment_type",
)

_TRUE = frozenset({"true", "on", "yes", "1", "enabled"})
_FALSE = frozenset({"false", "off", "no", "0", "disabled"})

#: Every argument of ``JiraFeatureFlag`` besides those of Buildbot's steps.
FEATURE_FLAG_ARGUMENTS: tuple[str, ...] = (
    *SITE_ARGUMENTS,
    *_FLAG_CHECKS,
    "issue_keys",
    *KEY_RULE_ARGUMENTS,
)


@attrs.frozen(kw_only=True)
class FeatureFlagOptions:
    """The arguments of ``JiraFeatureFlag``, checked.

    Either ``flag_key`` (one flag, with ``enabled`` and ``environment``) or
    ``flags_file`` (every flag that file lists) is set. Fields that name a
    value of a build (``flag_key``, ``enabled``, ``issue_keys``...) may hold
    renderables. ``issue_keys`` None: the build's keys (its
    ``issue_keys_property``, else those its branch, properties and changes
    name, found with ``rules``). ``keep_environments``: read each flag back
    from Jira and keep the environments this build does not report.
    """

    site: JiraSite[Any]
    flag_key: Any = None
    flags_file: Any = None
    flag_id: Any = None
    display_name: Any = None
    enabled: Any = None
    environment: Any = None
    environment_type: Any = None
    environment_types: Mapping[str | re.Pattern[str], str] = attrs.field(factory=dict)
    rollout_percentage: Any = None
    rollout_text: Any = None
    rollout_rules: Any = None
    default_value: Any = None
    url: Any = None
    issue_keys: Any = None
    rules: IssueKeyRules = attrs.field(factory=IssueKeyRules)
    issue_keys_property: str = ISSUE_KEYS_PROPERTY
    keep_environments: bool = True
    wait_timeout: float = DEFAULT_FLAG_WAIT_TIMEOUT
    fail_on_error: bool = False
    dry_run: bool = False

    def declaration(self, rendered: Mapping[str, Any]) -> FlagDeclaration:
        """The one flag of ``flag_key`` and its arguments, as ``rendered`` for a build.

        :raises JiraConfigError: naming an argument that rendered to a wrong value.
        """
        try:
            rollout = Rollout(**{name: rendered[f"rollout_{name}"] for name in _ROLLOUT_FIELDS})
            status = FlagStatus(
                enabled=rendered_enabled(rendered["enabled"]),
                default_value=rendered_text(rendered["default_value"], "default_value"),
                rollout=rollout if rollout.to_json() else None,
            )
            url = rendered_text(rendered["url"], "url")
            if url is not None and not is_web_url(url):
                raise JiraConfigError(f"url rendered to {shown(url)}, which is not an http(s) URL")
            state = FlagState(
                environment=rendered_text(rendered["environment"], "environment", required=True),
                status=status,
                type=rendered_type(rendered["environment_type"]),
                url=url,
            )
        except JiraConfigError:
            raise
        except ValueError as problem:
            raise JiraConfigError(f"rendered wrong: {problem}") from None
        return FlagDeclaration(
            key=str(rendered_text(rendered["flag_key"], "flag_key", required=True)),
            states=(state,),
            flag_id=rendered_text(rendered["flag_id"], "flag_id"),
            display_name=rendered_text(rendered["display_name"], "display_name"),
        )


_ROLLOUT_FIELDS = ("percentage", "text", "rules")


def rendered_text(value: object, argument: str, *, required: bool = False) -> str | None:
    """A rendered argument as text; None (or an error, if ``required``) when empty."""
    text = "" if value is None else str(value).strip()
    if not text and required:
        raise JiraConfigError(f"{argument} rendered to an empty value; check what it names")
    return text or None


def rendered_type(value: object) -> str | None:
    """A rendered ``environment_type``: a Jira environment type, or None to guess it."""
    kind = rendered_text(value, "environment_type")
    if kind is not None and kind not in ENVIRONMENT_TYPES:
        raise JiraConfigError(
            f"environment_type rendered to {shown(kind)}; use one of "
            + ", ".join(sorted(ENVIRONMENT_TYPES))
        )
    return kind


def rendered_enabled(value: object) -> bool:
    """A rendered ``enabled``: a bool, or a word a property may hold (``"on"``, ``"false"``)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text: str | None = value.strip().lower()
    else:  # 0 and 1; a number of any other size is no word
        text = str(value) if isinstance(value, int) and value in (0, 1) else None
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise JiraConfigError(f"enabled rendered to {shown(value)}, which is neither true nor false")


def _check_issue_keys(value: object, rules: IssueKeyRules) -> Any:
    """Issue keys as the ``jira_issue_keys`` property holds them, or a renderable."""
    if value is None or IRenderable.providedBy(value):
        return value
    try:
        parsed = parse_issue_keys_property(value, rules, name="issue_keys")
    except ValueError as problem:
        raise JiraConfigError(str(problem)) from None
    if parsed.rejected:
        wrong = "; ".join(f"{shown(r.entry)}: {r.reason}" for r in parsed.rejected)
        raise JiraConfigError(f"issue_keys: {wrong}")
    if not parsed.keys:
        raise JiraConfigError("issue_keys names no issue key; leave it out for the build's keys")
    return parsed.keys


def _check_combination(checked: Mapping[str, Any]) -> None:
    """One flag or one file; what one flag needs; one rollout."""
    if ("flag_key" in checked) == ("flags_file" in checked):
        raise JiraConfigError(
            "give flag_key (one flag, with enabled= and environment=) or flags_file (every "
            "flag a JSON or YAML file in the build's workdir lists), not "
            + ("both" if "flag_key" in checked else "neither")
        )
    if "flags_file" in checked:
        single = [name for name in SINGLE_FLAG_ARGUMENTS if name in checked and name != "flag_key"]
        if single:
            raise JiraConfigError(
                f"{', '.join(single)}: argument(s) of one flag (flag_key=); with flags_file, "
                "the file gives them for each flag"
            )
    else:
        for needed in ("enabled", "environment"):
            if needed not in checked:
                raise JiraConfigError(f"{needed} is required with flag_key")
    rollouts = [name for name in ROLLOUT_ARGUMENTS if name in checked]
    if len(rollouts) > 1:
        raise JiraConfigError(f"give one of {', '.join(rollouts)}: a rollout is one of them")


def parse_feature_flag(
    site: object = None, client_id: object = None, client_secret: object = None, **arguments: Any
) -> FeatureFlagOptions:
    """Check every argument of ``JiraFeatureFlag``; :class:`JiraConfigError` names a wrong one."""
    remaining = dict(arguments)
    checked_site = take_site(site, client_id, client_secret, remaining)
    rules = take_key_rules(remaining)
    issue_keys = _check_issue_keys(remaining.pop("issue_keys", None), rules)
    checked = take_checked(remaining, _FLAG_CHECKS)
    refuse_unknown(remaining, FEATURE_FLAG_ARGUMENTS)
    _check_combination(checked)
    return FeatureFlagOptions(site=checked_site, rules=rules, issue_keys=issue_keys, **checked)
