"""The options of the Jira services, each parsed once from ``master.cfg`` into a frozen value.

:func:`parse_build_reporter`, :func:`parse_deployment_reporter` and
:func:`parse_gate` (from :mod:`buildbot_jira.gate_options`, re-exported
here) check every argument of a service (with the checks of
:mod:`buildbot_jira.arguments`, and :func:`~buildbot_jira.sites.take_site`
for the site arguments that every service shares) and return its options. Every default is
written once, in these classes (or in the mapping classes they hold): an
argument that is not given, or given as None, takes it.

Renderable arguments (credentials, pipeline ID, environment...) stay as
given: the services render them when they start or for each build.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import attrs

from buildbot_jira.arguments import (
    Check,
    check_environment_type,
    check_environment_types,
    check_flag,
    check_names,
    check_number,
    check_optional_text,
    check_pattern,
    check_renderable,
    check_result_states,
    check_text_list,
    check_whole,
    refuse_unknown,
    take_checked,
)
from buildbot_jira.delivery.outbox import (
    DEFAULT_CAP,
    DEFAULT_GRACE,
    DEFAULT_INITIAL_BACKOFF,
    DEFAULT_MAX_BACKOFF,
)
from buildbot_jira.gate_options import (
    DEFAULT_GATE_INTERVAL,
    DEFAULT_WAIT_TIMEOUT,
    GATE_ARGUMENTS,
    NOT_GIVEN,
    TIMEOUT_RESULTS,
    GateOptions,
    NotGiven,
    parse_gate,
)
from buildbot_jira.jira.errors import JiraConfigError
from buildbot_jira.jira.model import BUILD_STATES, DEPLOYMENT_STATES
from buildbot_jira.mapping.builds import DEFAULT_RESULT_STATES, BuildMapping
from buildbot_jira.mapping.deployed_issues import DEPLOYED_ISSUES
from buildbot_jira.mapping.deployments import DEFAULT_DEPLOYMENT_STATES, DeploymentMapping
from buildbot_jira.mapping.keys import IssueKeyRules
from buildbot_jira.sites import SITE_ARGUMENTS, JiraSite, take_site

__all__ = [
    "BUILD_REPORTER_ARGUMENTS",
    "DEFAULT_GATE_INTERVAL",
    "DEFAULT_WAIT_TIMEOUT",
    "DELIVERY_CHECKS",
    "DEPLOYMENT_REPORTER_ARGUMENTS",
    "GATE_ARGUMENTS",
    "KEY_RULE_ARGUMENTS",
    "NOT_GIVEN",
    "SITE_ARGUMENTS",
    "TIMEOUT_RESULTS",
    "BuildReporterOptions",
    "DeploymentReporterOptions",
    "GateOptions",
    "NotGiven",
    "ReporterOptions",
    "check_backoff",
    "parse_build_reporter",
    "parse_deployment_reporter",
    "parse_gate",
    "take_key_rules",
    "take_site",
]

Patterns = tuple[str | re.Pattern[str], ...]

# -- the reporters ----------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ReporterOptions:
    """The arguments every Jira reporter takes, checked.

    ``mapping`` holds the issue-key arguments (rules, properties) and, for
    the build reporter, its result states.
    """

    site: JiraSite[Any]
    builders: Patterns | None = None
    branches: Patterns | None = None
    mapping: BuildMapping = attrs.field(factory=BuildMapping)
    pipeline_id: Any = None
    display_name: Any = None
    label: Any = None
    dry_run: bool = False
    debug: bool = False
    outbox_size: int = DEFAULT_CAP
    min_backoff: float = DEFAULT_INITIAL_BACKOFF
    max_backoff: float = DEFAULT_MAX_BACKOFF
    shutdown_grace: float = DEFAULT_GRACE


@attrs.frozen(kw_only=True)
class BuildReporterOptions(ReporterOptions):
    """The arguments of ``JiraBuildReporter``, checked."""

    test_update_interval: float = 5.0


@attrs.frozen(kw_only=True)
class DeploymentReporterOptions(ReporterOptions):
    """The arguments of ``JiraDeploymentReporter``, checked.

    ``deployments`` holds ``service_ids``, ``enable_gating`` and the
    deployment ``result_states``. ``deployed_issues``: ``"since-last"``
    (every change since the environment's last successful deployment) or
    ``"build"`` (the build's own); ``first_deployment_lookback``: how many
    changes the first deployment of an environment takes (0: its own).
    """

    environment_id: Any = None
    environment_name: Any = None
    environment_type: Any = None
    environment_types: Mapping[str | re.Pattern[str], str] = attrs.field(factory=dict)
    step_pattern: re.Pattern[str] | None = None
    deployments: DeploymentMapping = attrs.field(factory=DeploymentMapping)
    deployed_issues: str = "since-last"
    first_deployment_lookback: int = 0


#: The delivery arguments of every reporter: how its outbox works and logs.
DELIVERY_CHECKS: Mapping[str, Check] = {
    "dry_run": check_flag,
    "debug": check_flag,
    "outbox_size": lambda v, a: check_whole(v, a, minimum=1),
    "min_backoff": lambda v, a: check_number(v, a, minimum=0.1),
    "max_backoff": lambda v, a: check_number(v, a, minimum=1),
    "shutdown_grace": check_number,
}

_REPORTER_CHECKS: Mapping[str, Check] = {
    "builders": check_names,
    "branches": check_names,
    "pipeline_id": check_renderable,
    "display_name": check_renderable,
    "label": check_renderable,
    **DELIVERY_CHECKS,
}

#: Issue-key rule arguments -> IssueKeyRules fields.
KEY_RULE_ARGUMENTS: Mapping[str, str] = {
    "issue_key_pattern": "pattern",
    "ignored_issue_keys": "ignored",
    "ignore_case": "ignore_case",
    "projects": "projects",
}

# Where a build's issue keys are read: arguments -> BuildMapping fields.
_KEY_SOURCES: Mapping[str, tuple[str, Check]] = {
    "issue_keys_property": ("issue_keys_property", check_optional_text),
    "issue_key_properties": ("text_properties", check_text_list),
}

_BUILD_CHECKS: Mapping[str, Check] = {
    "test_update_interval": lambda v, a: check_number(v, a, minimum=0),
}

# Deployment arguments -> DeploymentMapping fields.
_DEPLOYMENT_MAPPING: Mapping[str, tuple[str, Check]] = {
    "service_ids": ("service_ids", check_text_list),
    "enable_gating": ("gating", check_flag),
    "result_states": (
        "result_states",
        lambda v, a: check_result_states(v, a, DEFAULT_DEPLOYMENT_STATES, DEPLOYMENT_STATES),
    ),
}

_ENVIRONMENT_CHECKS: Mapping[str, Check] = {
    "environment_name": check_renderable,
    "environment_type": check_environment_type,
    "environment_types": check_environment_types,
}


def _check_deployed_issues(value: object, argument: str) -> str | None:
    """One of :data:`~buildbot_jira.mapping.deployed_issues.DEPLOYED_ISSUES`, or None."""
    if value is None:
        return None
    if isinstance(value, str) and value in DEPLOYED_ISSUES:
        return value
    choices = " or ".join(repr(choice) for choice in DEPLOYED_ISSUES)
    raise JiraConfigError(f"{argument} must be {choices}, not {value!r}")


_DEPLOYED_ISSUES_CHECKS: Mapping[str, Check] = {
    "deployed_issues": _check_deployed_issues,
    "first_deployment_lookback": lambda v, a: check_whole(v, a, minimum=0),
}

_COMMON_ARGUMENTS = (
    # Buildbot takes the name before the arguments are checked; it is listed
    # so that the list says every argument a reporter takes.
    "name",
    *SITE_ARGUMENTS,
    *_REPORTER_CHECKS,
    *KEY_RULE_ARGUMENTS,
    *_KEY_SOURCES,
)

#: Every argument of ``JiraBuildReporter``.
BUILD_REPORTER_ARGUMENTS: tuple[str, ...] = (*_COMMON_ARGUMENTS, "result_states", *_BUILD_CHECKS)

#: Every argument of ``JiraDeploymentReporter``.
DEPLOYMENT_REPORTER_ARGUMENTS: tuple[str, ...] = (
    *_COMMON_ARGUMENTS,
    "step_pattern",
    "environment_id",
    *_ENVIRONMENT_CHECKS,
    *_DEPLOYMENT_MAPPING,
    *_DEPLOYED_ISSUES_CHECKS,
)


def _take_fields(
    arguments: dict[str, Any], checks: Mapping[str, tuple[str, Check]]
) -> dict[str, Any]:
    """Like :func:`take_checked`, keyed by the fields that the arguments set."""
    checked = take_checked(arguments, {argument: check for argument, (_, check) in checks.items()})
    return {checks[argument][0]: value for argument, value in checked.items()}


def take_key_rules(arguments: dict[str, Any]) -> IssueKeyRules:
    """The issue-key rules that ``arguments`` give, taken out of them."""
    given = {
        field: arguments.pop(argument)
        for argument, field in KEY_RULE_ARGUMENTS.items()
        if argument in arguments
    }
    try:
        return IssueKeyRules(**given)
    except (JiraConfigError, TypeError, ValueError) as problem:
        # Name the argument as the user wrote it, not the rule's field.
        message = str(problem)
        for argument, field in KEY_RULE_ARGUMENTS.items():
            if message.startswith(field):
                message = argument + message[len(field) :]
                break
        raise JiraConfigError(message) from None


def _take_common(
    site: object, client_id: object, client_secret: object, arguments: dict[str, Any]
) -> dict[str, Any]:
    """The fields of :class:`ReporterOptions` except ``mapping``, taken out of ``arguments``."""
    common = {
        "site": take_site(site, client_id, client_secret, arguments),
        **take_checked(arguments, _REPORTER_CHECKS),
    }
    check_backoff(common)
    return common


def check_backoff(common: Mapping[str, Any]) -> None:
    """The first retry must not wait longer than the longest wait."""
    given = {name for name in ("min_backoff", "max_backoff") if name in common}
    shortest = common.get("min_backoff", DEFAULT_INITIAL_BACKOFF)
    longest = common.get("max_backoff", DEFAULT_MAX_BACKOFF)
    if shortest > longest:
        defaults = {
            "min_backoff": f" (its default is {DEFAULT_INITIAL_BACKOFF:g})",
            "max_backoff": f" (its default is {DEFAULT_MAX_BACKOFF:g})",
        }
        raise JiraConfigError(
            f"min_backoff {shortest:g} is above max_backoff {longest:g}"
            f"{''.join(text for name, text in defaults.items() if name not in given)}: "
            "min_backoff is the wait before the first retry and max_backoff the longest "
            "wait, so give a min_backoff of at most max_backoff"
        )


def _build_mapping(arguments: dict[str, Any], **fields: Any) -> BuildMapping:
    return BuildMapping(
        rules=take_key_rules(arguments), **_take_fields(arguments, _KEY_SOURCES), **fields
    )


def parse_build_reporter(
    site: object = None, client_id: object = None, client_secret: object = None, **arguments: Any
) -> BuildReporterOptions:
    """Check every argument of ``JiraBuildReporter``; :class:`JiraConfigError` names one."""
    remaining = dict(arguments)
    common = _take_common(site, client_id, client_secret, remaining)
    states = take_checked(
        remaining,
        {
            "result_states": lambda v, a: check_result_states(
                v, a, DEFAULT_RESULT_STATES, BUILD_STATES
            )
        },
    )
    mapping = _build_mapping(remaining, **states)
    own = take_checked(remaining, _BUILD_CHECKS)
    refuse_unknown(remaining, BUILD_REPORTER_ARGUMENTS)
    return BuildReporterOptions(**common, mapping=mapping, **own)


def parse_deployment_reporter(
    site: object = None, client_id: object = None, client_secret: object = None, **arguments: Any
) -> DeploymentReporterOptions:
    """Check every argument of ``JiraDeploymentReporter``; :class:`JiraConfigError` names one."""
    remaining = dict(arguments)
    common = _take_common(site, client_id, client_secret, remaining)
    mapping = _build_mapping(remaining)
    own = take_checked(remaining, {"step_pattern": check_pattern})
    pattern = own.get("step_pattern")
    # A step pattern with an ``environment`` group names the environment itself.
    required = pattern is None or "environment" not in pattern.groupindex
    own.update(
        take_checked(
            remaining,
            {"environment_id": lambda v, a: check_renderable(v, a, required=required)},
        )
    )
    if required and "environment_id" not in own:
        raise JiraConfigError(
            "environment_id is required (or a step_pattern with an (?P<environment>...) group)"
        )
    own.update(take_checked(remaining, _ENVIRONMENT_CHECKS))
    own.update(take_checked(remaining, _DEPLOYED_ISSUES_CHECKS))
    deployments = DeploymentMapping(**_take_fields(remaining, _DEPLOYMENT_MAPPING))
    refuse_unknown(remaining, DEPLOYMENT_REPORTER_ARGUMENTS)
    return DeploymentReporterOptions(**common, mapping=mapping, deployments=deployments, **own)
