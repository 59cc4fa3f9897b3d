"""JiraDevInfoReporter's arguments: checked once, with errors that name the argument."""

from __future__ import annotations

import re
import unittest

from buildbot.process.properties import Interpolate

from buildbot_jira.devinfo_options import DEVINFO_REPORTER_ARGUMENTS, parse_devinfo_reporter
from buildbot_jira.jira.errors import JiraConfigError
from buildbot_jira.mapping.devinfo import ChangeFacts

SITE = {"site": "example.atlassian.net", "client_id": "id", "client_secret": "s3cr3t"}


def change(**fields: object) -> ChangeFacts:
    values: dict = {
        "changeid": 1,
        "revision": "a" * 40,
        "repository": "https://git.example.com/team/app.git",
        "branch": "feature/ABC-1",
        "codebase": "",
        **fields,
    }
    return ChangeFacts(**values)


class DevinfoOptionsTests(unittest.TestCase):
    def test_defaults_send_every_change_and_let_jira_act_on_smart_commits(self) -> None:
        options = parse_devinfo_reporter(**SITE)
        self.assertIsNone(options.repositories)
        self.assertIsNone(options.branches)
        self.assertIsNone(options.codebases)
        self.assertFalse(options.prevent_transitions)
        self.assertTrue(options.keys_from_branch)
        self.assertIsNone(options.wants(change()))

    def test_filters_pick_changes_by_repository_branch_and_codebase(self) -> None:
        options = parse_devinfo_reporter(
            **SITE,
            repositories=["team/app"],
            branches=[re.compile(r"^feature/")],
            codebases="web",
        )
        self.assertIsNone(options.wants(change(codebase="web")))
        # The repository by its URL, or by its path on the host.
        by_url = parse_devinfo_reporter(**SITE, repositories="https://git.example.com/team/app.git")
        self.assertIsNone(by_url.wants(change()))
        self.assertIn(
            "repositories", options.wants(change(repository="/srv/other", codebase="web"))
        )
        self.assertIn("branches", options.wants(change(branch="main", codebase="web")))
        self.assertIn("codebases", options.wants(change(codebase="api")))

    def test_templates_may_be_strings_with_known_placeholders_or_renderables(self) -> None:
        options = parse_devinfo_reporter(
            **SITE,
            commit_url="https://git.example.com/{repository}/commit/{revision}",
            branch_url=Interpolate("https://git.example.com/%(prop:project)s"),
        )
        self.assertEqual(
            options.commit_url, "https://git.example.com/{repository}/commit/{revision}"
        )
        with self.assertRaisesRegex(JiraConfigError, r"^commit_url: .*\bsha\b"):
            parse_devinfo_reporter(**SITE, commit_url="https://x/{sha}")
        with self.assertRaisesRegex(JiraConfigError, "branch_url must be a non-empty string"):
            parse_devinfo_reporter(**SITE, branch_url=3)

    def test_wrong_types_and_unknown_arguments_are_named(self) -> None:
        with self.assertRaisesRegex(JiraConfigError, "prevent_transitions must be True or False"):
            parse_devinfo_reporter(**SITE, prevent_transitions="yes")
        with self.assertRaisesRegex(JiraConfigError, "repositories must be a list of names"):
            parse_devinfo_reporter(**SITE, repositories=3)
        with self.assertRaisesRegex(JiraConfigError, r"repositorys \(did you mean repositories"):
            parse_devinfo_reporter(**SITE, repositorys=["app"])
        # Arguments of the build reporter mean nothing here.
        with self.assertRaisesRegex(JiraConfigError, "unknown argument.*builders"):
            parse_devinfo_reporter(**SITE, builders=["app"])
        with self.assertRaisesRegex(JiraConfigError, "min_backoff 10 is above max_backoff 5"):
            parse_devinfo_reporter(**SITE, min_backoff=10, max_backoff=5)
        # One change makes up to three updates: a smaller outbox could keep none.
        with self.assertRaisesRegex(JiraConfigError, "outbox_size must be at least 3 .* not 2"):
            parse_devinfo_reporter(**SITE, outbox_size=2)
        self.assertEqual(parse_devinfo_reporter(**SITE, outbox_size=3).outbox_size, 3)

    def test_the_secret_is_in_no_error_and_no_repr(self) -> None:
        options = parse_devinfo_reporter(**SITE, issue_key_pattern=r"[A-Z]+-\d+")
        self.assertNotIn("s3cr3t", repr(options))
        with self.assertRaises(JiraConfigError) as raised:
            parse_devinfo_reporter(**SITE, codebases={"a": 1})
        self.assertNotIn("s3cr3t", str(raised.exception))

    def test_the_argument_list_names_every_argument_once(self) -> None:
        self.assertEqual(len(DEVINFO_REPORTER_ARGUMENTS), len(set(DEVINFO_REPORTER_ARGUMENTS)))
        for name in ("repositories", "branches", "codebases", "prevent_transitions", "proxy"):
            self.assertIn(name, DEVINFO_REPORTER_ARGUMENTS)
