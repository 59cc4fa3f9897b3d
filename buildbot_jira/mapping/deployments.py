"""Buildbot builds and steps -> Jira DeploymentData (pure).

A deployment is a whole build (builder level) or one step whose name
matches a pattern (step level). This module decides its environment type,
its sequence number and its state, and builds the
:class:`~buildbot_jira.jira.model.DeploymentData`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from buildbot.process import results as buildbot_results

from buildbot_jira.jira.model import (
    DEPLOYMENT_STATES,
    ENVIRONMENT_TYPES,
    DeploymentData,
    Environment,
    Pipeline,
)
from buildbot_jira.mapping.builds import (
    DEFAULT_RESULT_STATES,
    RETRY_DESCRIPTION,
    BuildSnapshot,
    Skip,
    build_label,
    epoch,
    references,
)

__all__ = [
    "DEFAULT_DEPLOYMENT_STATES",
    "DeploymentMapping",
    "DeploymentTarget",
    "deployment_sequence_number",
    "guess_environment_type",
    "results_of",
    "step_target_fields",
]

#: Buildbot result name -> Jira deployment state: the same as for builds.
DEFAULT_DEPLOYMENT_STATES: Mapping[str, str | None] = DEFAULT_RESULT_STATES

#: Words that name an environment type, checked in this order.
_TYPE_WORDS: Sequence[tuple[str, frozenset[str]]] = (
    ("production", frozenset({"prod", "production", "live", "prd"})),
    ("staging", frozenset({"staging", "stage", "stg", "preprod", "pre-prod", "preproduction"})),
    ("testing", frozenset({"test", "testing", "qa", "uat", "sit", "tst"})),
    ("development", frozenset({"dev", "development", "develop"})),
)

#: Word separators in environment names: ``prod-eu``, ``uat_1``, ``Production 2``.
_WORDS = re.compile(r"[^a-z]+")

#: "Pre-production" however it is written: ``pre-prod``, ``pre_prod``,
#: ``Pre Prod``, ``PreProd``, ``pre-production``: staging, never production.
_PRE_PRODUCTION = re.compile(r"(?<![a-z])pre[^a-z]*prod")


def guess_environment_type(
    name: str, explicit: Mapping[str | re.Pattern[str], str] | None = None
) -> str:
    """The Jira environment type of an environment called ``name``.

    An entry of ``explicit`` (an exact name, or a compiled pattern that
    matches) wins. Otherwise the name's words decide: ``prod``,
    ``production``, ``live`` are production; ``staging``, ``stage``,
    ``preprod``, ``pre-prod`` staging; ``test``, ``testing``, ``qa``,
    ``uat``, ``sit`` testing; ``dev``, ``development`` development;
    ``pre prod`` however written (``Pre Prod``, ``pre_prod``) staging. Words
    are whole: ``devtools`` or ``preview`` is ``unmapped``, never a silent
    guess.
    """
    for key, kind in (explicit or {}).items():
        if (isinstance(key, re.Pattern) and key.search(name)) or key == name:
            return kind
    lowered = name.lower()
    words = set(_WORDS.split(lowered))
    if _PRE_PRODUCTION.search(lowered):
        return "staging"
    for kind, names in _TYPE_WORDS:
        if words & names:
            return kind
    return "unmapped"


def deployment_sequence_number(build_number: int, step_number: int | None = None) -> int:
    """The ``deploymentSequenceNumber`` of a build's (or a step's) deployment.

    It grows with the build number, so it increases for each pipeline and
    environment, and it is the same for every update of one deployment.
    Steps of one build get numbers of their own: ``build * 1000 + step``.
    """
    return build_number * 1000 + (min(step_number, 998) + 1 if step_number is not None else 0)


@attrs.frozen
class DeploymentTarget:
    """Where and what one deployment is: the rendered settings of the reporter."""

    environment_id: str
    environment_name: str
    environment_type: str = attrs.field(validator=attrs.validators.in_(ENVIRONMENT_TYPES))
    step_number: int | None = None
    step_name: str | None = None
    step_results: int | None = None
    step_complete: bool = False
    step_state_string: str = ""
    started_at: float | None = None
    complete_at: float | None = None


@attrs.frozen
class DeploymentMapping:
    """How a reporter turns a build (or step) into a :class:`DeploymentData`."""

    result_states: Mapping[str, str | None] = DEFAULT_DEPLOYMENT_STATES
    state_property: str = "jira_deployment_state"
    service_ids: tuple[str, ...] = ()
    gating: bool = False

    def state(
        self, snapshot: BuildSnapshot, target: DeploymentTarget, *, rolled_back: bool = False
    ) -> str | None:
        """The deployment's state now; None: send nothing.

        ``rolled_back``: it deployed an older revision than the environment's
        last successful deployment, so its success is a rollback.
        """
        complete = target.step_complete if target.step_number is not None else snapshot.complete
        results = results_of(snapshot, target)
        if not complete:
            return "in_progress"
        override = snapshot.properties.get(self.state_property)
        if isinstance(override, str) and override in DEPLOYMENT_STATES:
            return override
        state = self.result_states.get(buildbot_results.statusToString(results), "unknown")
        return "rolled_back" if rolled_back and state == "successful" else state

    def deployment_data(
        self,
        snapshot: BuildSnapshot,
        target: DeploymentTarget,
        *,
        keys: Sequence[str],
        pipeline_id: str,
        pipeline_name: str,
        update_sequence_number: int,
        last_updated: str,
        display_name: str | None = None,
        label: str | None = None,
        rolled_back: bool = False,
    ) -> DeploymentData | Skip:
        """The DeploymentData to send now, or why nothing is sent.

        ``keys``: the issues it ships (or, ``rolled_back``, rolls back).
        """
        if not keys and not self.service_ids:
            return Skip("no Jira issue keys in its branch, changes or properties, and no services")
        state = self.state(snapshot, target, rolled_back=rolled_back)
        if state is None:
            return Skip("its result is not reported to Jira")
        duration = None
        started = target.started_at if target.step_number is not None else snapshot.started_at
        ended = target.complete_at if target.step_number is not None else snapshot.complete_at
        if state != "in_progress" and started is not None and ended is not None:
            duration = max(0, round(ended - started))
        description = (
            target.step_state_string if target.step_number is not None else snapshot.state_string
        )
        if state != "in_progress" and results_of(snapshot, target) == buildbot_results.RETRY:
            description = RETRY_DESCRIPTION
        return DeploymentData(
            pipeline=Pipeline(
                id=pipeline_id, display_name=pipeline_name, url=_builder_url(snapshot)
            ),
            environment=Environment(
                id=target.environment_id,
                display_name=target.environment_name,
                type=target.environment_type,
            ),
            deployment_sequence_number=deployment_sequence_number(
                snapshot.number, target.step_number
            ),
            update_sequence_number=update_sequence_number,
            display_name=display_name
            or f"{snapshot.builder_name} #{snapshot.number} to {target.environment_name}",
            url=snapshot.url,
            description=description or f"deployment {state.replace('_', ' ')}",
            state=state,
            last_updated=last_updated,
            issue_keys=tuple(keys),
            service_ids=self.service_ids,
            references=references(snapshot),
            label=label if label is not None else build_label(snapshot),
            duration=duration,
            gating=self.gating,
        )


def results_of(snapshot: BuildSnapshot, target: DeploymentTarget) -> int | None:
    """The Buildbot results of the deployment: its step's, or its build's."""
    return target.step_results if target.step_number is not None else snapshot.results


def _builder_url(snapshot: BuildSnapshot) -> str:
    """The builder's page: the build URL without its ``/builds/<n>`` tail."""
    return re.sub(r"/builds/\d+$", "", snapshot.url)


def step_target_fields(step: Mapping[str, Any]) -> dict[str, Any]:
    """The step facts a :class:`DeploymentTarget` needs, from Buildbot's step data."""
    return {
        "step_number": step.get("number"),
        "step_name": step.get("name"),
        "step_results": step.get("results"),
        "step_complete": bool(step.get("complete")),
        "step_state_string": step.get("state_string") or "",
        "started_at": epoch(step.get("started_at")),
        "complete_at": epoch(step.get("complete_at")),
    }
