"""The options of ``JiraDevInfoReporter``, parsed once from ``master.cfg`` into a frozen value.

The reporter takes the site, delivery and issue-key arguments of the other
reporters (:mod:`buildbot_jira.options`), filters on the changes it sends
(``repositories``, ``branches``, ``codebases``), the URL templates of its
links and ``prevent_transitions``. The templates may be renderables
(rendered with the change's properties), then formatted with the
placeholders of :mod:`buildbot_jira.mapping.devinfo`.
"""

from __future__ import annotations

import re
from typing import Any

import attrs
from buildbot.process.properties import Properties

from buildbot_jira.arguments import (
    Check,
    check_flag,
    check_names,
    check_renderable,
    refuse_unknown,
    take_checked,
)
from buildbot_jira.build_cache import matches_any
from buildbot_jira.jira.errors import JiraConfigError
from buildbot_jira.mapping.builds import BuildMapping
from buildbot_jira.mapping.devinfo import ChangeFacts, repository_path, template_problem
from buildbot_jira.options import (
    DELIVERY_CHECKS,
    KEY_RULE_ARGUMENTS,
    SITE_ARGUMENTS,
    ReporterOptions,
    check_backoff,
    take_key_rules,
    take_site,
)

__all__ = [
    "DEVINFO_REPORTER_ARGUMENTS",
    "UPDATES_PER_CHANGE",
    "DevinfoReporterOptions",
    "parse_devinfo_reporter",
    "rendered_template",
]

Patterns = tuple[str | re.Pattern[str], ...]

#: The URL templates, each a string with placeholders or a renderable.
TEMPLATES = ("commit_url", "branch_url", "repository_url")


def _check_template(value: object, argument: str) -> Any:
    checked = check_renderable(value, argument)
    if isinstance(checked, str):
        problem = template_problem(checked)
        if problem is not None:
            raise JiraConfigError(f"{argument}: {problem}")
    return checked


_DEVINFO_CHECKS: dict[str, Check] = {
    "repositories": check_names,
    "branches": check_names,
    "codebases": check_names,
    "prevent_transitions": check_flag,
    "keys_from_branch": check_flag,
    **dict.fromkeys(TEMPLATES, _check_template),
}

#: Every argument of ``JiraDevInfoReporter``.
DEVINFO_REPORTER_ARGUMENTS: tuple[str, ...] = (
    "name",
    *SITE_ARGUMENTS,
    *DELIVERY_CHECKS,
    *KEY_RULE_ARGUMENTS,
    *_DEVINFO_CHECKS,
)


@attrs.frozen(kw_only=True)
class DevinfoReporterOptions(ReporterOptions):
    """The arguments of ``JiraDevInfoReporter``, checked.

    ``repositories``, ``branches`` and ``codebases`` pick the changes sent
    (None: all); ``mapping.rules`` holds the issue-key rules.
    ``prevent_transitions``: ask Jira not to act on smart commits
    (``ABC-1 #close``) in commit messages; Jira acts on them by default.
    """

    repositories: Patterns | None = None
    codebases: Patterns | None = None
    prevent_transitions: bool = False
    keys_from_branch: bool = True
    commit_url: Any = None
    branch_url: Any = None
    repository_url: Any = None

    def wants(self, change: ChangeFacts) -> str | None:
        """Why ``change`` is not sent by these filters; None: it is."""
        repository = change.repository
        if self.repositories is not None and not (
            matches_any(repository, self.repositories)
            or matches_any(repository_path(repository), self.repositories)
        ):
            return f"its repository {repository!r} is not one of repositories"
        if not matches_any(change.branch, self.branches):
            return f"its branch {change.branch!r} is not one of branches"
        if not matches_any(change.codebase, self.codebases):
            return f"its codebase {change.codebase!r} is not one of codebases"
        return None


#: The most updates one change makes: its commit, its branch, its pull request.
UPDATES_PER_CHANGE = 3


def parse_devinfo_reporter(
    site: object = None, client_id: object = None, client_secret: object = None, **arguments: Any
) -> DevinfoReporterOptions:
    """Check every argument of ``JiraDevInfoReporter``; :class:`JiraConfigError` names one."""
    remaining = dict(arguments)
    common = {
        "site": take_site(site, client_id, client_secret, remaining),
        **take_checked(remaining, DELIVERY_CHECKS),
    }
    check_backoff(common)
    if common.get("outbox_size", UPDATES_PER_CHANGE) < UPDATES_PER_CHANGE:
        raise JiraConfigError(
            f"outbox_size must be at least {UPDATES_PER_CHANGE} for development information "
            f"(one change makes up to {UPDATES_PER_CHANGE} updates), not {common['outbox_size']}"
        )
    mapping = BuildMapping(rules=take_key_rules(remaining))
    own = take_checked(remaining, _DEVINFO_CHECKS)
    refuse_unknown(remaining, DEVINFO_REPORTER_ARGUMENTS)
    return DevinfoReporterOptions(**common, mapping=mapping, **own)


async def rendered_template(
    options: DevinfoReporterOptions, name: str, change: ChangeFacts, master: Any
) -> str | None:
    """The URL template ``name`` of ``options``, rendered with the change's properties."""
    template = getattr(options, name)
    if template is None or isinstance(template, str):
        return template
    properties = Properties()
    for key, value in change.properties.items():
        properties.setProperty(key, value, "change")
    properties.master = master
    rendered = await properties.render(template)
    return str(rendered) if rendered else None
