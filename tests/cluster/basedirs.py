"""The base directory of a cluster master: ``buildbot.tac``, ``master.cfg`` and its settings.

``buildbot.tac`` and ``master.cfg`` are the same for every master (they are
in ``template/``); what differs, a :class:`MasterSettings`, is written beside
them as ``settings.json``, and the simulator's credentials go to
``secrets/``, where ``master.cfg`` reads them as Buildbot secrets.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import attrs

from buildbot_jira.simulator import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from tests.masters import BUILDBOT_URL

TEMPLATE = Path(__file__).with_name("template")

#: The Jira site the reporters name (the simulator plays it).
SITE = "example.atlassian.net"


@attrs.frozen(kw_only=True)
class MasterSettings:
    """What makes one master of the cluster different from the others."""

    #: Short name: its worker is ``worker-<label>``, its own builder ``app-<label>``.
    label: str
    #: Buildbot's name for the master (``masters.name``), e.g. ``vm:/srv/a``.
    name: str
    #: The labels of every master of the cluster: each one's own builder is forced
    #: through any master.
    labels: tuple[str, ...]
    db_url: str
    #: ``c['mq']``: WAMP through the cluster's router (``{"type": "simple"}`` alone).
    mq: dict[str, str]
    www_port: int
    #: The simulator's URL, as the reporter's ``api_url`` and ``site_url``.
    jira_url: str
    #: More ``JiraBuildReporter`` arguments (plain JSON values).
    reporter: dict[str, Any] = attrs.field(factory=dict)
    #: ``JiraDevInfoReporter`` arguments (plain JSON values); None: no such reporter.
    devinfo: dict[str, Any] | None = None
    #: Seconds without a heartbeat after which other masters take this one for
    #: dead; None keeps Buildbot's 10 minutes. Matters on the survivors.
    expire_seconds: float | None = None
    #: Seconds between heartbeats (Buildbot's default: 60).
    heartbeat_seconds: float = 60.0
    #: How many builds the master's worker runs at once.
    max_builds: int = 1
    buildbot_url: str = BUILDBOT_URL

    def __attrs_post_init__(self) -> None:
        if self.label not in self.labels:
            raise ValueError(f"label {self.label!r} is not one of the cluster's {self.labels}")
        if self.expire_seconds is not None and self.expire_seconds <= self.heartbeat_seconds:
            raise ValueError(
                f"expire_seconds ({self.expire_seconds:g}) must exceed heartbeat_seconds "
                f"({self.heartbeat_seconds:g}), or live masters are taken for dead"
            )

    def to_json(self) -> dict[str, Any]:
        """The settings as ``master.cfg`` and ``buildbot.tac`` read them."""
        return {
            "label": self.label,
            "name": self.name,
            "labels": list(self.labels),
            "db_url": self.db_url,
            "mq": self.mq,
            "www_port": self.www_port,
            "jira": {"site": SITE, "url": self.jira_url},
            "reporter": self.reporter,
            "devinfo": self.devinfo,
            "expire_seconds": self.expire_seconds,
            "heartbeat_seconds": self.heartbeat_seconds,
            "max_builds": self.max_builds,
            "buildbot_url": self.buildbot_url,
        }


def write_basedir(basedir: Path, settings: MasterSettings) -> None:
    """Make ``basedir`` a master's base directory for ``settings`` (again, if it is one)."""
    basedir.mkdir(parents=True, exist_ok=True)
    for name in ("buildbot.tac", "master.cfg"):
        shutil.copyfile(TEMPLATE / name, basedir / name)
    (basedir / "settings.json").write_text(json.dumps(settings.to_json(), indent=2) + "\n")
    # SecretInAFile refuses secrets that others can read.
    secrets = basedir / "secrets"
    secrets.mkdir(mode=0o700, exist_ok=True)
    for name, value in (
        ("jira-client-id", DEFAULT_CLIENT_ID),
        ("jira-client-secret", DEFAULT_CLIENT_SECRET),
    ):
        path = secrets / name
        path.touch(mode=0o600)
        path.write_text(value)
