"""The git repository of ``buildbot-jira demo``: branches and commits that name issues.

``feature/DEMO-1-login`` ("DEMO-1: add login", its tests pass),
``bugfix/DEMO-2-crash`` (a test that fails) and ``release`` ("DEMO-3:
release 1.0", deployed to staging and production), all branched from
``main``, a shell greeter with its test script.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from typing import Final

from buildbot_jira.tools.demo_scenario import AUTHOR, DemoFailed, RepositoryChange

__all__ = ["make_repository"]

# Whatever the user's git configuration says, the demo's commits are neither
# signed nor run through hooks.
_GIT_SETTINGS: Final = ("-c", "commit.gpgsign=false", "-c", "core.hooksPath=/dev/null")

_MAIN_FILES: Final[Mapping[str, str]] = {
    "greet.sh": '#!/bin/sh\n# The whole application: greets whoever is named.\necho "Hello, $1!"\n',
    "test.sh": (
        "#!/bin/sh\n"
        "# The test suite: each test prints one line; a failing test fails the build.\n"
        "set -e\n"
        '[ "$(sh greet.sh Ada)" = "Hello, Ada!" ]\n'
        'echo "ok - greets by name"\n'
    ),
}

#: (branch, branched from, commit message, files written or extended).
_COMMITS: Final[Sequence[tuple[str, str, str, Mapping[str, str]]]] = (
    (
        "feature/DEMO-1-login",
        "main",
        "DEMO-1: add login",
        {
            "login.sh": '#!/bin/sh\n# Lets a named user in.\n[ -n "$1" ] && echo "welcome $1"\n',
            "test.sh": '[ "$(sh login.sh ada)" = "welcome ada" ]\necho "ok - logs in"\n',
        },
    ),
    (
        "bugfix/DEMO-2-crash",
        "main",
        "DEMO-2: test the crash on a missing name",
        {
            "test.sh": (
                'if [ "$(sh greet.sh)" != "Hello, stranger!" ]; then\n'
                '    echo "not ok - greets a missing name (DEMO-2 is not fixed yet)"\n'
                "    exit 1\n"
                "fi\n"
            ),
        },
    ),
    (
        "release",
        "main",
        "DEMO-3: release 1.0",
        {
            "VERSION": "1.0\n",
            "deploy.sh": (
                "#!/bin/sh\n"
                "# Pretends to deploy the version to the environment named.\n"
                'echo "deploying version $(cat VERSION) to $1"\n'
                "sleep 1\n"
                'echo "deployed to $1"\n'
            ),
        },
    ),
)


def _git_environment(home: str) -> dict[str, str]:
    """An environment in which the user's own git settings (hooks, signing) play no part."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    name, _, email = AUTHOR.partition(" <")
    environment.update(
        HOME=home,
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME=name,
        GIT_AUTHOR_EMAIL=email.rstrip(">"),
        GIT_COMMITTER_NAME=name,
        GIT_COMMITTER_EMAIL=email.rstrip(">"),
    )
    return environment


def make_repository(path: str) -> list[RepositoryChange]:
    """Make the demo's git repository at ``path``; the change at each branch's tip.

    Runs ``git`` and waits for it: call it before anything is served on the
    reactor.
    """
    git_command = shutil.which("git")
    if git_command is None:
        raise DemoFailed("the demo needs the git command; install git and try again")
    os.makedirs(path)
    environment = _git_environment(os.path.dirname(path))

    def git(*arguments: str) -> str:
        try:
            done = subprocess.run(  # noqa: S603 - fixed arguments, our own repository
                [git_command, *_GIT_SETTINGS, *arguments],
                cwd=path,
                env=environment,
                check=True,
                capture_output=True,
                text=True,
            )
        except subprocess.CalledProcessError as failure:
            raise DemoFailed(
                f"git {' '.join(arguments)} failed: {failure.stderr.strip()}"
            ) from None
        return done.stdout.strip()

    git("init", "--quiet", "--initial-branch=main")
    _write_files(path, _MAIN_FILES, append=False)
    git("add", "--all")
    git("commit", "--quiet", "--message", "Initial version of the greeter")
    changes = []
    for branch, base, message, files in _COMMITS:
        git("checkout", "--quiet", "-b", branch, base)
        _write_files(path, files, append=True)
        git("add", "--all")
        git("commit", "--quiet", "--message", message)
        revision = git("rev-parse", "HEAD")
        changed = git("diff-tree", "--no-commit-id", "--name-only", "-r", revision).split()
        changes.append(RepositoryChange(branch, revision, message, tuple(changed)))
    git("checkout", "--quiet", "main")
    return changes


def _write_files(root: str, files: Mapping[str, str], *, append: bool) -> None:
    """Write (or with ``append`` extend) each of ``files`` under ``root``."""
    for name, text in files.items():
        with open(os.path.join(root, name), "a" if append else "w", encoding="utf-8") as file:
            file.write(text)
