"""Real Buildbot masters for integration tests, reporting to a simulator on loopback."""

from __future__ import annotations

from typing import Any

from buildbot.config import BuilderConfig
from buildbot.plugins import schedulers, steps
from buildbot.process.factory import BuildFactory
from buildbot.test.util.integration import RunMasterBase
from twisted.internet import defer

from buildbot_jira.simulator import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, RunningSimulator
from tests.support import start_simulator, until

BUILDBOT_URL = "http://buildbot.example.com:8010/"


def shell(name: str, command: str, **kwargs: Any) -> steps.ShellCommand:
    """A shell step that runs ``command`` on the local worker."""
    return steps.ShellCommand(name=name, command=["sh", "-c", command], **kwargs)


def jira_arguments(running: RunningSimulator, **extra: Any) -> dict[str, Any]:
    """The reporter arguments that point at the simulator."""
    return {
        "site": "example.atlassian.net",
        "client_id": DEFAULT_CLIENT_ID,
        "client_secret": DEFAULT_CLIENT_SECRET,
        "api_url": running.url,
        "site_url": running.url,
        **extra,
    }


class JiraMasterTestCase(RunMasterBase):
    """A real master with a local worker; ``self.sim`` is the simulator."""

    timeout = 120

    async def start_master(
        self,
        services: list[Any],
        builders: dict[str, list[Any]],
        basedir: str | None = None,
        **config: Any,
    ) -> None:
        """Start a master with one builder per entry (name -> steps) and ``services``."""
        builder_configs = []
        for name, build_steps in builders.items():
            factory = BuildFactory()
            for step in build_steps:
                factory.addStep(step)
            builder_configs.append(
                BuilderConfig(name=name, workernames=["local1"], factory=factory)
            )
        names = list(builders)
        config_dict = {
            "schedulers": [
                schedulers.AnyBranchScheduler(name="changes", builderNames=names),
                schedulers.ForceScheduler(name="force", builderNames=names),
            ],
            "builders": builder_configs,
            "services": services,
            "buildbotURL": BUILDBOT_URL,
            **config,
        }
        await self.setup_master(config_dict, basedir=basedir)

    async def start_simulator(self, **kwargs: Any) -> RunningSimulator:
        """A simulator on loopback, stopped at the end of the test."""
        self.sim = await start_simulator(self, **kwargs)
        return self.sim

    def build_with_change(
        self,
        *,
        branch: str,
        comments: str = "a change",
        revision: str = "0123456789abcdef0123456789abcdef01234567",
        repository: str = "https://git.example.com/app.git",
        properties: dict[str, Any] | None = None,
    ) -> defer.Deferred[dict[str, Any]]:
        """Run a build for a new change and wait until it has finished."""
        change: dict[str, Any] = {
            "branch": branch,
            "comments": comments,
            "revision": revision,
            "repository": repository,
            "author": "dev <dev@example.com>",
            "files": ["app.py"],
            "project": "app",
        }
        if properties:
            change["properties"] = {k: (v, "test") for k, v in properties.items()}
        return self.doForceBuild(useChange=change, wantProperties=True)

    async def until(self, condition: Any, *, seconds: float = 15.0) -> None:
        """Wait, in short real-reactor turns, until ``condition()`` holds."""
        await until(condition, seconds=seconds)
