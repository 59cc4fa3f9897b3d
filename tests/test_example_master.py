"""The README's way, end to end: install, prove the credentials, then run master.cfg.example.

The master's virtual environment is built as the README's "Install it in
your master" says (``python3 -m venv master-venv`` and its ``pip install
'./buildbot-jira[www]'`` from a checkout), offline: it sees this test
environment's packages, so pip finds every dependency installed (see
``tests/test_packaging.py``), and buildbot-jira itself is installed from a
copy of the checkout. In it, a real master in a process of its own is created
with ``buildbot create-master`` and started with ``buildbot start`` from the
example configuration, which serves the web UI (so it needs the ``www``
extra), with the secrets in files as the example says and reporting to the
simulator. The credentials are proven first with ``buildbot-jira check
--client-secret-file``, as the README says. Its builds dump their
environment into their logs (as any build may), so a secret in the master's
environment would show there: the test finds the secret in no log.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
from typing import Any

from twisted.internet import defer, reactor
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial import unittest

from buildbot_jira.jira.http import HttpTransport
from buildbot_jira.simulator import RunningSimulator
from tests.support import coroutine_test, start_simulator, until
from tests.test_example_config import example_text
from tests.test_packaging import copy_checkout, fresh_venv, installed_from, pip_install
from tests.test_readme_commands import readme_commands

CLIENT_ID = "shop-ci"
#: Long and unlike anything else in a log, so that any copy of it is found.
SECRET = "canary-" + secrets.token_hex(16)
#: In the master's environment on purpose: it must reach the build logs, which
#: proves that a secret in that environment would reach them too.
MARKER_NAME, MARKER = "BUILDBOT_JIRA_TEST_MARKER", "marker-" + secrets.token_hex(8)
BRANCH = "feature/SHOP-12-coupons"


def tool(name: str) -> str:
    """A command of this virtualenv (``buildbot``, ``buildbot-jira``)."""
    return os.path.join(os.path.dirname(sys.executable), name)


def readme_install(root: str) -> str:
    """The master's virtualenv in ``root``, made as the README says; its python."""
    # The install section's own line, not the demo's "python3 -m venv .venv && ...".
    (make,) = [
        w for w in readme_commands("python3") if w[:3] == ["python3", "-m", "venv"] and len(w) == 4
    ]
    venv = make[3]
    installs = [
        words
        for words in readme_commands(f"{venv}/bin/pip")
        if words[1] == "install" and words[2].startswith("./buildbot-jira")
    ]
    assert installs == [[f"{venv}/bin/pip", "install", "./buildbot-jira[www]"]], installs
    copy_checkout(os.path.join(root, "buildbot-jira"))
    python = fresh_venv(os.path.join(root, venv))
    output = pip_install(python, *installs[0][2:], cwd=root)
    # The www extra is what lets the example's web UI start.
    assert "buildbot-www" in output, output
    assert installed_from(python).startswith(os.path.join(root, venv)), installed_from(python)
    return python


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def make_repository(path: str) -> None:
    """A git repository with a branch naming SHOP-12, whose ``make test`` prints its environment."""
    os.makedirs(path)

    def git(*arguments: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=Ada", "-c", "user.email=ada@example.com", *arguments],
            cwd=path,
            check=True,
            capture_output=True,
        )

    git("init", "--quiet", "--initial-branch=main")
    with open(os.path.join(path, "Makefile"), "w", encoding="utf-8") as file:
        file.write("test:\n\tenv\n")
    git("add", "--all")
    git("commit", "--quiet", "-m", "A shop")
    git("checkout", "--quiet", "-b", BRANCH)
    with open(os.path.join(path, "coupons.txt"), "w", encoding="utf-8") as file:
        file.write("10% off\n")
    git("add", "--all")
    git("commit", "--quiet", "-m", "SHOP-12: apply coupons")


def write_secret(directory: str, name: str, value: str) -> None:
    """A secrets file as master.cfg.example says: the value alone, for the owner only."""
    descriptor = os.open(os.path.join(directory, name), os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(value + "\n")


class ExampleMasterTests(unittest.TestCase):
    timeout = 180

    def setUp(self) -> None:
        if not (os.path.exists(tool("buildbot")) and os.path.exists(tool("buildbot-jira"))):
            raise unittest.SkipTest("needs the buildbot and buildbot-jira commands of this venv")
        python = readme_install(os.path.abspath(self.mktemp()))
        self.buildbot_jira = os.path.join(os.path.dirname(python), "buildbot-jira")
        # The README's venv has no buildbot script of its own (the package is
        # seen, not installed there); its runner is what the script calls.
        self.buildbot = (python, "-c", "from buildbot.scripts.runner import run; run()")
        self.transport = HttpTransport(reactor=reactor)
        self.addCleanup(lambda: defer.Deferred.fromCoroutine(self.transport.close()))
        # The shell the README's steps run in: no secret exported.
        self.environment = {k: v for k, v in os.environ.items() if k != "JIRA_CLIENT_SECRET"}
        self.environment[MARKER_NAME] = MARKER

    async def command(self, *arguments: str) -> tuple[int, str]:
        """Run a command without blocking the reactor (the simulator serves meanwhile)."""
        out, err, code = await getProcessOutputAndValue(
            arguments[0], arguments[1:], env=self.environment, reactor=reactor
        )
        return code, out.decode() + err.decode()

    async def get(self, url: str) -> Any:
        response = await self.transport.request("GET", url, timeout=10)
        self.assertEqual(response.status, 200, url)
        return response.json()

    def prepare_master(self, running: RunningSimulator) -> tuple[str, str]:
        """The example as a master's base directory would hold it; its directory and web URL."""
        root = os.path.abspath(self.mktemp())
        repository = os.path.join(root, "shop.git")
        make_repository(repository)
        basedir = os.path.join(root, "master")
        web_port, pb_port = free_port(), free_port()
        web = f"http://localhost:{web_port}/"
        text = example_text(JIRA_SIMULATOR=repr(running.url), REPOSITORY=repr(repository))
        for old, new in (
            ('c["www"] = {"port": 8010}', f'c["www"] = {{"port": {web_port}}}'),
            ('"tcp:9989:interface=127.0.0.1"', f'"tcp:{pb_port}:interface=127.0.0.1"'),
            ('c["buildbotURL"] = "http://localhost:8010/"', f'c["buildbotURL"] = "{web}"'),
        ):
            self.assertIn(old, text)
            text = text.replace(old, new)
        os.makedirs(basedir)
        with open(os.path.join(basedir, "master.cfg"), "w", encoding="utf-8") as file:
            file.write(text)
        os.mkdir(os.path.join(basedir, "secrets"), 0o700)
        write_secret(os.path.join(basedir, "secrets"), "jira-client-id", CLIENT_ID)
        write_secret(os.path.join(basedir, "secrets"), "jira-client-secret", SECRET)
        return basedir, web

    async def build_logs(self, web: str) -> list[str]:
        """The text of every log of every build, as the web UI shows it."""
        api = web + "api/v2"
        texts = []
        for build in (await self.get(api + "/builds"))["builds"]:
            for step in (await self.get(f"{api}/builds/{build['buildid']}/steps"))["steps"]:
                for log in (await self.get(f"{api}/steps/{step['stepid']}/logs"))["logs"]:
                    raw = await self.transport.request(
                        "GET", f"{api}/logs/{log['logid']}/raw", timeout=10
                    )
                    texts.append(raw.body.decode("utf-8", "replace"))
        return texts

    @coroutine_test
    async def test_the_readme_way_leaves_the_secret_in_no_log(self) -> None:
        running = await start_simulator(self, clients={CLIENT_ID: SECRET}, known_projects=("SHOP",))
        basedir, web = self.prepare_master(running)
        secret_file = os.path.join(basedir, "secrets", "jira-client-secret")
        code, output = await self.command(
            self.buildbot_jira,
            *("check", "--site", "example.atlassian.net", "--client-id", CLIENT_ID),
            *("--client-secret-file", secret_file, "--issue", "SHOP-1"),
            *("--api-url", running.url, "--site-url", running.url),
        )
        self.assertEqual(code, 0, output)
        self.assertNotIn(SECRET, output)

        code, output = await self.command(*self.buildbot, "create-master", "-q", basedir)
        self.assertEqual(code, 0, output)
        code, output = await self.command(*self.buildbot, "start", basedir)
        self.addCleanup(lambda: defer.ensureDeferred(self.command(*self.buildbot, "stop", basedir)))
        self.assertEqual(code, 0, output)

        forced = await self.transport.request(
            "POST",
            web + "api/v2/forceschedulers/force",
            json_body={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "force",
                "params": {"builderNames": ["shop"], "branch": BRANCH},
            },
            timeout=10,
        )
        self.assertEqual(forced.status, 200, forced.body)

        def finished_build() -> bool:
            builds = running.simulator.builds_for_issue("SHOP-12")
            return any(build["state"] == "successful" for build in builds)

        await until(finished_build, seconds=60, what="the build to reach Jira")
        logs = await self.build_logs(web)
        code, output = await self.command(*self.buildbot, "stop", basedir)
        self.assertEqual(code, 0, output)
        with open(os.path.join(basedir, "twistd.log"), encoding="utf-8") as file:
            twistd_log = file.read()

        self.assertTrue(logs)
        self.assertTrue(any(MARKER in text for text in logs), "builds show their environment")
        for text in logs:
            self.assertNotIn(SECRET, text)
        self.assertIn("jira-builds", twistd_log)
        self.assertNotIn(SECRET, twistd_log)
        # What Jira received carries no secret either.
        self.assertNotIn(SECRET, json.dumps(running.simulator.state()))
