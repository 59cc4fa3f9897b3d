"""The options of ``JiraDeploymentGate``, parsed once into a frozen value.

The gate takes the site arguments of every Jira service
(:data:`~buildbot_jira.sites.SITE_ARGUMENTS`) with the meanings they have
for the reporters, so that one dict of them serves every service; its own
are the deployment it waits for and how long and how often it asks.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Final

import attrs
from buildbot.process.results import CANCELLED, EXCEPTION, FAILURE, SKIPPED, SUCCESS, WARNINGS

from buildbot_jira.arguments import check_renderable, check_result, check_seconds
from buildbot_jira.sites import SITE_ARGUMENTS, JiraSite, take_site

__all__ = [
    "DEFAULT_GATE_INTERVAL",
    "DEFAULT_WAIT_TIMEOUT",
    "GATE_ARGUMENTS",
    "NOT_GIVEN",
    "TIMEOUT_RESULTS",
    "GateOptions",
    "NotGiven",
    "parse_gate",
]


class NotGiven(enum.Enum):
    """The type of :data:`NOT_GIVEN`."""

    NOT_GIVEN = "not given"


#: The default of an argument whose absence means something (None is a value
#: that its check refuses).
NOT_GIVEN: Final = NotGiven.NOT_GIVEN

#: Results that the gate's ``timeout_result`` may name (RETRY would start the
#: build again, which makes a new deployment that needs a new decision).
TIMEOUT_RESULTS: Mapping[int, str] = {
    SUCCESS: "SUCCESS",
    WARNINGS: "WARNINGS",
    FAILURE: "FAILURE",
    SKIPPED: "SKIPPED",
    EXCEPTION: "EXCEPTION",
    CANCELLED: "CANCELLED",
}


#: How often the gate asks Jira, and how long it waits for a decision in all.
DEFAULT_GATE_INTERVAL = 30.0
DEFAULT_WAIT_TIMEOUT = 3600.0

#: Every argument of ``JiraDeploymentGate`` besides those of Buildbot's steps.
GATE_ARGUMENTS: tuple[str, ...] = (
    *SITE_ARGUMENTS,
    "environment_id",
    "pipeline_id",
    "interval",
    "wait_timeout",
    "timeout_result",
)


@attrs.frozen(kw_only=True)
class GateOptions:
    """The arguments of ``JiraDeploymentGate``, checked.

    ``wait_timeout`` is how long the gate waits for a decision in all; each
    request keeps the site's own ``timeout``, as in the reporters.
    ``timeout_is_the_wait`` says that the wait was given as ``timeout``, the
    gate's name for it before ``wait_timeout``.
    """

    site: JiraSite[Any]
    environment_id: Any
    pipeline_id: Any = None
    interval: float = DEFAULT_GATE_INTERVAL
    wait_timeout: float = DEFAULT_WAIT_TIMEOUT
    timeout_result: int = FAILURE
    timeout_is_the_wait: bool = False

    @property
    def timeout(self) -> float:
        """The whole wait, under the name it had before ``wait_timeout``."""
        return self.wait_timeout


def parse_gate(
    *,
    site: object,
    client_id: object,
    client_secret: object,
    environment_id: object,
    pipeline_id: object = None,
    cloud_id: object = None,
    api_url: object = NOT_GIVEN,
    site_url: object = None,
    timeout: object = NOT_GIVEN,
    min_request_interval: object = NOT_GIVEN,
    proxy: object = NOT_GIVEN,
    ca_bundle: object = NOT_GIVEN,
    ca_bundle_only: object = NOT_GIVEN,
    interval: object = DEFAULT_GATE_INTERVAL,
    wait_timeout: object = NOT_GIVEN,
    timeout_result: object = FAILURE,
) -> GateOptions:
    """Check every argument of the gate; :class:`JiraConfigError` names a wrong one.

    The site arguments mean what they mean for the reporters: ``timeout`` is
    seconds per request. Given without ``wait_timeout``, ``timeout`` keeps
    the meaning it had for the gate before ``wait_timeout``: the whole wait
    (and ``timeout_is_the_wait`` says so).
    """
    legacy = wait_timeout is NOT_GIVEN and timeout is not NOT_GIVEN
    if legacy:
        wait_timeout, timeout = timeout, NOT_GIVEN
    site_arguments = {
        name: value
        for name, value in (
            ("cloud_id", cloud_id),
            ("api_url", api_url),
            ("site_url", site_url),
            ("timeout", timeout),
            ("min_request_interval", min_request_interval),
            # proxy=None means "never a proxy": only a missing argument is left out.
            ("proxy", proxy),
            ("ca_bundle", ca_bundle),
            ("ca_bundle_only", ca_bundle_only),
        )
        if value is not NOT_GIVEN
    }
    wait_argument = "timeout" if legacy else "wait_timeout"
    return GateOptions(
        site=take_site(site, client_id, client_secret, site_arguments),
        environment_id=check_renderable(environment_id, "environment_id", required=True),
        pipeline_id=check_renderable(pipeline_id, "pipeline_id"),
        interval=check_seconds(interval, "interval"),
        wait_timeout=(
            DEFAULT_WAIT_TIMEOUT
            if wait_timeout is NOT_GIVEN
            else check_seconds(wait_timeout, wait_argument)
        ),
        timeout_result=check_result(timeout_result, "timeout_result", TIMEOUT_RESULTS),
        timeout_is_the_wait=legacy,
    )
