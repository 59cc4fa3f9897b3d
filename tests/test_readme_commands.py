"""The README's ``buildbot-jira`` and ``curl`` commands still run as written.

Every command in a literal block of README.rst is read as a shell would
split it. The ``buildbot-jira`` ones must parse, and each ``simulate`` one
must give a simulator; each ``curl`` to a simulator's control must be
answered 200 by a simulator that holds the deployment it names.
"""

from __future__ import annotations

import json
import os
import shlex
from urllib.parse import urlsplit

from buildbot_jira.tools import cli, simulate

from .test_contract import valid_deployment
from .test_simulator import DEPLOYMENTS, InMemoryTestCase

README = os.path.join(os.path.dirname(__file__), os.pardir, "README.rst")


def readme_commands(program: str) -> list[list[str]]:
    """Each ``program`` command of the README's literal blocks, split as a shell would."""
    with open(README, encoding="utf-8") as file:
        lines = file.read().splitlines()
    commands = []
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line.startswith(f"    {program} "):
            continue
        if line.split()[1].endswith(":"):
            continue  # what the command printed ("buildbot-jira check: ..."), not a command
        text = line.strip()
        # A command goes on while its line ends with a backslash or a quote is open.
        while True:
            try:
                words = shlex.split(text.removesuffix("\\"), comments=True)
            except ValueError:  # No closing quotation
                words = None
            if words is not None and not text.endswith("\\"):
                break
            text = text.removesuffix("\\") + " " + lines[index].strip()
            index += 1
        commands.append(words)
    return commands


class ReadmeCommandTests(InMemoryTestCase):
    def test_every_buildbot_jira_command_parses(self) -> None:
        commands = readme_commands("buildbot-jira")
        names = {words[1] for words in commands}
        self.assertLessEqual({"demo", "check", "simulate"}, names)
        for words in commands:
            with self.subTest(command=" ".join(words)):
                args = cli.build_parser().parse_args(words[1:])
                if words[1] == "simulate":
                    simulate.make_simulator(args)  # options that go together
        (gating,) = [words for words in commands if "--gating" in words]
        simulator = simulate.make_simulator(cli.build_parser().parse_args(gating[1:]))
        self.assertEqual(simulator.default_gating_status, "prevented")

    def test_every_curl_to_the_gating_control_is_answered(self) -> None:
        commands = [words for words in readme_commands("curl") if "_simulator/gating" in words[-1]]
        self.assertGreaterEqual(len(commands), 2)
        token = self.simulator.issue_token()
        for words in commands:
            body = json.loads(words[words.index("-d") + 1])
            if "pipelineId" in body:
                # The deployment it names, asking to be gated, as a gated reporter sends it.
                deployment = valid_deployment(
                    pipeline={
                        "id": body["pipelineId"],
                        "displayName": "deploy-prod",
                        "url": "https://ci.example.com/",
                    },
                    environment={
                        "id": body["environmentId"],
                        "displayName": "prod",
                        "type": "production",
                    },
                    deploymentSequenceNumber=body["deploymentSequenceNumber"],
                    commands=[{"command": "initiate_deployment_gating"}],
                )
                stored = self.call("POST", DEPLOYMENTS, {"deployments": [deployment]}, token=token)
                self.assertEqual(stored.status, 202)
            with self.subTest(command=" ".join(words)):
                reply = self.call("POST", urlsplit(words[-1]).path, body)
                self.assertEqual(reply.status, 200, reply.body)
                key = [
                    body.get(f) for f in ("pipelineId", "environmentId", "deploymentSequenceNumber")
                ]
                expected = [key] if "pipelineId" in body else []  # none is gated yet
                self.assertEqual(reply.body["changed"], expected)
