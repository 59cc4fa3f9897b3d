"""The demo's git repository: branches and commits that name the demo's issues."""

from __future__ import annotations

import os
import subprocess
import tempfile
import unittest

from buildbot_jira.tools import demo_repository
from buildbot_jira.tools.demo_scenario import AUTHOR


class RepositoryTests(unittest.TestCase):
    def test_repository_branches_and_commits_name_the_issues(self) -> None:
        with tempfile.TemporaryDirectory() as root:
            changes = demo_repository.make_repository(os.path.join(root, "repository"))
        self.assertEqual(
            [(c.branch, c.comments) for c in changes],
            [
                ("feature/DEMO-1-login", "DEMO-1: add login"),
                ("bugfix/DEMO-2-crash", "DEMO-2: test the crash on a missing name"),
                ("release", "DEMO-3: release 1.0"),
            ],
        )
        for change in changes:
            self.assertRegex(change.revision, r"^[0-9a-f]{40}$")
            self.assertTrue(change.files)

    def test_commits_are_the_demo_authors_and_main_is_checked_out(self) -> None:
        with tempfile.TemporaryDirectory() as root:
            path = os.path.join(root, "repository")
            changes = demo_repository.make_repository(path)

            def git(*arguments: str) -> str:
                # Nothing is served in this process: a blocking child is fine here.
                return subprocess.run(
                    ["git", "-C", path, *arguments], capture_output=True, text=True, check=True
                ).stdout.strip()

            authors = {git("log", "-1", "--format=%an <%ae>", c.revision) for c in changes}
            head = git("rev-parse", "--abbrev-ref", "HEAD")
            release_files = set(git("ls-tree", "--name-only", changes[-1].revision).split())
        self.assertEqual(authors, {AUTHOR})
        self.assertEqual(head, "main")
        self.assertLessEqual({"deploy.sh", "VERSION", "greet.sh", "test.sh"}, release_files)
