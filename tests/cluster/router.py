"""A private crossbar router: the WAMP message bus that Buildbot's masters share.

crossbar lives in a virtual environment of its own, since its dependencies
are not the masters': ``.venv-crossbar``, or wherever ``CROSSBAR_VENV``
says (``scripts/crossbar-venv.sh`` builds it; ``.ci/run`` runs that script).
The router has the one realm Buildbot uses, ``buildbot``, whose anonymous
role may do everything, and a WebSocket transport on a free loopback port;
masters reach it with ``c['mq'] = router.mq_config()``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import unittest
from pathlib import Path
from typing import Any

import attrs

from tests.cluster.processes import ChildProcess, free_port, port_answers, wait_for_server

REPOSITORY = Path(__file__).resolve().parents[2]

#: The router's virtual environment when ``CROSSBAR_VENV`` names none: the
#: cache where ``.ci/run`` builds it, else the checkout's ``.venv-crossbar``.
_CACHED_CROSSBAR_VENV = (
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    / "buildbot-jira"
    / "venv-crossbar"
)
DEFAULT_CROSSBAR_VENV = (
    _CACHED_CROSSBAR_VENV
    if (_CACHED_CROSSBAR_VENV / "bin" / "crossbar").exists()
    else REPOSITORY / ".venv-crossbar"
)

#: The realm Buildbot's WAMP message queue joins by default.
REALM = "buildbot"

#: Seconds crossbar may take to listen: it loads a lot (about 6 s on 2 cores).
START_TIMEOUT = 90.0


def crossbar_binary() -> Path:
    """The crossbar to run; ``unittest.SkipTest`` with how to get it if there is none."""
    venv = REPOSITORY / os.environ.get("CROSSBAR_VENV", DEFAULT_CROSSBAR_VENV)
    binary = venv / "bin" / "crossbar"
    if not os.access(binary, os.X_OK):
        raise unittest.SkipTest(
            f"crossbar is not installed in {venv}: scripts/crossbar-venv.sh builds it"
        )
    return binary


def router_config(port: int) -> dict[str, Any]:
    """A crossbar node: one router, realm ``buildbot`` open to anyone, WebSocket at ``/ws``."""
    everything = {"call": True, "register": True, "publish": True, "subscribe": True}
    anonymous = {
        "name": "anonymous",
        "permissions": [
            {
                "uri": "",
                "match": "prefix",
                "allow": everything,
                "disclose": {"caller": False, "publisher": False},
                "cache": True,
            }
        ],
    }
    transport = {
        "type": "web",
        "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": port},
        "paths": {"ws": {"type": "websocket"}},
    }
    router = {
        "type": "router",
        "realms": [{"name": REALM, "roles": [anonymous]}],
        "transports": [transport],
    }
    return {"version": 2, "controller": {}, "workers": [router]}


@attrs.define
class CrossbarRouter:
    """A running crossbar node whose files are in ``directory``."""

    directory: Path
    port: int
    process: ChildProcess

    @property
    def url(self) -> str:
        """The WebSocket URL masters connect to."""
        return f"ws://127.0.0.1:{self.port}/ws"

    def mq_config(self) -> dict[str, str]:
        """The ``c['mq']`` of a master that uses this router."""
        return {"type": "wamp", "router_url": self.url, "realm": REALM}

    @classmethod
    def start(cls) -> CrossbarRouter:
        """Write the node's configuration to a temporary directory and start it there."""
        binary = crossbar_binary()
        directory = Path(tempfile.mkdtemp(prefix="buildbot-jira-crossbar-"))
        port = free_port()
        (directory / "config.json").write_text(json.dumps(router_config(port), indent=2))
        process = ChildProcess.start(
            "crossbar",
            [binary, "start", "--cbdir", directory, "--loglevel", "warn"],
            output_path=directory / "crossbar.log",
            cwd=directory,
        )
        wait_for_server(process, lambda: port_answers(port), timeout=START_TIMEOUT, what="crossbar")
        return cls(directory=directory, port=port, process=process)

    def stop(self) -> None:
        """Stop the node (SIGTERM stops its router worker too), then remove its files."""
        self.process.stop(timeout=20.0)
        shutil.rmtree(self.directory, ignore_errors=True)
