"""Buildbot changes -> Jira development information (buildbot_jira.mapping.devinfo)."""

from __future__ import annotations

import datetime
from typing import Any

import attrs
from twisted.trial import unittest

from buildbot_jira.jira.errors import JiraConfigError
from buildbot_jira.mapping.devinfo import (
    FILE_CHANGES_PROPERTY,
    ChangeFacts,
    DevinfoEntity,
    DevinfoMapping,
    Skip,
    map_change,
    repository_id,
)
from buildbot_jira.mapping.keys import IssueKeyRules

SHA = "0123456789abcdef0123456789abcdef01234567"
PAGE = "https://buildbot.example.com/#/changes/42"


def change(**fields: Any) -> ChangeFacts:
    """A change of ``https://git.example.com/team/app.git`` naming ABC-1, with ``fields``."""
    given_fields: dict[str, Any] = {
        "changeid": 42,
        "revision": SHA,
        "repository": "https://git.example.com/team/app.git",
        "branch": "main",
        "author": "Jane Doe <jane@example.com>",
        "comments": "ABC-1: apply coupons",
        "when_timestamp": 1_725_192_000.0,
        **fields,
    }
    return ChangeFacts(**given_fields)


def mapped(facts: ChangeFacts, mapping: DevinfoMapping | None = None, page: str | None = PAGE):
    """The entities of ``facts`` by kind (fails on a Skip)."""
    entities = map_change(facts, mapping or DevinfoMapping(), change_page=page)
    assert isinstance(entities, list), entities
    return {e.key.split("/")[1]: e for e in entities}


def item(entity: DevinfoEntity) -> dict[str, Any]:
    """The one commit, branch or pull request an entity carries."""
    [kind] = [k for k in ("commits", "branches", "pullRequests") if k in entity.payload]
    [only] = entity.payload[kind]
    return only


class ChangeFactsTests(unittest.TestCase):
    def test_a_change_as_the_data_api_gives_it(self) -> None:
        facts = ChangeFacts.from_change(
            {
                "changeid": 7,
                "revision": SHA,
                "repository": "git@git.example.com:team/app.git",
                "branch": "feature/ABC-2",
                "codebase": "app",
                "project": "team",
                "author": b"Jane \xff <jane@example.com>",
                "comments": "ABC-2 fix",
                "when_timestamp": datetime.datetime(2024, 9, 1, 12, tzinfo=datetime.timezone.utc),
                "files": ["a.py", b"b.py"],
                "revlink": None,
                "category": None,
                "properties": {"event": ("push", "Change"), "size": [3, "Change"]},
                "sourcestamp": {"ssid": 1},
            }
        )
        self.assertEqual(facts.changeid, 7)
        self.assertEqual(facts.author, "Jane \ufffd <jane@example.com>")
        self.assertEqual(facts.when_timestamp, 1725192000.0)
        self.assertEqual(facts.files, ("a.py", "b.py"))
        self.assertEqual(facts.properties, {"event": "push", "size": 3})
        self.assertIsNone(facts.revlink)

    def test_missing_fields_are_empty(self) -> None:
        facts = ChangeFacts.from_change({"changeid": 3, "repository": None, "comments": None})
        self.assertEqual((facts.repository, facts.comments, facts.files), ("", "", ()))
        self.assertEqual((facts.revision, facts.branch, facts.properties), (None, None, {}))


class CommitTests(unittest.TestCase):
    def test_every_field_of_a_commit(self) -> None:
        facts = change(
            files=("src/a.py", "src/b.py", "docs/c.md"),
            properties={
                FILE_CHANGES_PROPERTY: {
                    "src/a.py": "added",
                    "src/b.py": {"changeType": "MODIFIED", "linesAdded": 3, "linesRemoved": 1},
                }
            },
            revlink="https://git.example.com/team/app/commit/" + SHA,
        )
        entity = mapped(facts)["commits"]
        self.assertEqual(entity.key, f"{repository_id(facts.repository)}/commits/{SHA}")
        self.assertEqual((entity.sequence, entity.issue_keys), (42, ("ABC-1",)))
        url = "https://git.example.com/team/app/commit/" + SHA
        self.assertEqual(
            item(entity),
            {
                "id": SHA,
                "hash": SHA,
                "displayId": SHA[:7],
                "issueKeys": ["ABC-1"],
                "updateSequenceId": 42,
                "message": "ABC-1: apply coupons",
                "author": {"name": "Jane Doe", "email": "jane@example.com"},
                "authorTimestamp": "2024-09-01T12:00:00.000Z",
                "fileCount": 3,
                "files": [
                    {
                        "path": "src/a.py",
                        "changeType": "ADDED",
                        "linesAdded": 0,
                        "linesRemoved": 0,
                        "url": url,
                    },
                    {
                        "path": "src/b.py",
                        "changeType": "MODIFIED",
                        "linesAdded": 3,
                        "linesRemoved": 1,
                        "url": url,
                    },
                    {
                        "path": "docs/c.md",
                        "changeType": "UNKNOWN",
                        "linesAdded": 0,
                        "linesRemoved": 0,
                        "url": url,
                    },
                ],
                "url": url,
            },
        )

    def test_the_repository_object_carries_only_this_commit(self) -> None:
        payload = mapped(change(branch=None))["commits"].payload
        self.assertEqual(
            {k: v for k, v in payload.items() if k != "commits"},
            {
                "id": repository_id("https://git.example.com/team/app.git"),
                "name": "app",
                "url": "https://git.example.com/team/app",
                "updateSequenceId": 42,
            },
        )

    def test_authors_of_every_form(self) -> None:
        for author, expected in [
            ("Jane Doe <jane@example.com>", {"name": "Jane Doe", "email": "jane@example.com"}),
            ("jane", {"name": "jane"}),
            ("jane@example.com", {"name": "jane@example.com", "email": "jane@example.com"}),
            ("Jane Doe <jane>", {"name": "Jane Doe", "username": "jane"}),  # Bitbucket Cloud
            ("<jane@example.com>", {"name": "jane@example.com", "email": "jane@example.com"}),
            ("", {"name": "unknown"}),
            (
                "Jane\x00\x1b[31m <jane@example.com>",
                {"name": "Jane  [31m", "email": "jane@example.com"},
            ),
            ("J" * 300, {"name": "J" * 254 + "\u2026"}),
        ]:
            self.assertEqual(item(mapped(change(author=author))["commits"])["author"], expected)

    def test_short_revisions_are_shown_whole(self) -> None:
        commit = item(mapped(change(revision="1234"))["commits"])
        self.assertEqual(
            (commit["id"], commit["displayId"], commit["hash"]), ("1234", "1234", "1234")
        )

    def test_a_revision_outside_the_id_alphabet_is_escaped(self) -> None:
        commit = item(mapped(change(revision="jane@host-20240901 12"))["commits"])
        self.assertEqual(commit["id"], "jane~40host-20240901~2012")
        self.assertEqual(commit["hash"], "jane@host-20240901 12")

    def test_an_unknown_time_is_the_epoch(self) -> None:
        for when in (None, float("nan"), -5.0, 1e30):
            commit = item(mapped(change(when_timestamp=when))["commits"])
            self.assertRegex(
                commit["authorTimestamp"], r"^(1970-01-01T00:00:00|9999-12-31T23:59:59)\.000Z$"
            )
        self.assertEqual(
            item(mapped(change(when_timestamp=None))["commits"])["authorTimestamp"],
            "1970-01-01T00:00:00.000Z",
        )

    def test_the_url_is_the_revlink_else_the_template_else_the_change_page(self) -> None:
        template = DevinfoMapping(commit_url="https://{host}/{repository}/-/commit/{revision}")
        with_link = change(revlink="https://git.example.com/c/1")
        self.assertEqual(
            item(mapped(with_link, template)["commits"])["url"], "https://git.example.com/c/1"
        )
        self.assertEqual(
            item(mapped(change(), template)["commits"])["url"],
            f"https://git.example.com/team/app/-/commit/{SHA}",
        )
        self.assertEqual(item(mapped(change())["commits"])["url"], PAGE)
        self.assertEqual(
            item(mapped(change(), page=None)["commits"])["url"], "https://git.example.com/team/app"
        )

    def test_a_template_that_fails_falls_back(self) -> None:
        for template in (
            "https://x/{revision",
            "https://x/{revision:d}",
            "https://x/{nope}",
            "{0}",
            "no url",
        ):
            commit = item(mapped(change(), DevinfoMapping(commit_url=template))["commits"])
            self.assertEqual(commit["url"], PAGE, template)

    def test_issue_keys_come_from_the_message_and_the_branch(self) -> None:
        facts = change(branch="feature/ABC-2-x", comments="ABC-1 and ABC-1 and OPS-3")
        self.assertEqual(mapped(facts)["commits"].issue_keys, ("ABC-2", "ABC-1", "OPS-3"))
        only_message = DevinfoMapping(keys_from_branch=False)
        self.assertEqual(mapped(facts, only_message)["commits"].issue_keys, ("ABC-1", "OPS-3"))

    def test_keys_the_devinfo_pattern_refuses_are_left_out(self) -> None:
        rules = IssueKeyRules(pattern=r"[A-Za-z0-9_]+-[0-9]+")
        entities = mapped(change(comments="A-1 1A-2 ABC-3 X_1-4"), DevinfoMapping(rules=rules))
        self.assertEqual(entities["commits"].issue_keys, ("ABC-3", "X_1-4"))

    def test_a_change_naming_no_key_or_without_revision_is_skipped(self) -> None:
        for facts in (change(comments="no key here"), change(revision=None), change(revision="  ")):
            skipped = map_change(facts, DevinfoMapping(), change_page=PAGE)
            assert isinstance(skipped, Skip)
            self.assertIn("change 42", skipped.reason)

    def test_the_same_change_maps_to_the_same_payload(self) -> None:
        first = map_change(change(branch="ABC-2"), DevinfoMapping(), change_page=PAGE)
        second = map_change(change(branch="ABC-2"), DevinfoMapping(), change_page=PAGE)
        self.assertEqual(first, second)

    def test_max_files_is_checked(self) -> None:
        for wrong in (-1, 11, "3", True):
            with self.assertRaises(JiraConfigError):
                DevinfoMapping(max_files=wrong)  # type: ignore[arg-type]
        facts = change(files=tuple(f"f{n}" for n in range(8)))
        commit = item(mapped(facts, DevinfoMapping(max_files=2))["commits"])
        self.assertEqual((commit["fileCount"], len(commit["files"])), (8, 2))


class BranchTests(unittest.TestCase):
    def test_a_branch_is_sent_when_its_name_names_keys(self) -> None:
        entities = mapped(
            change(branch="refs/heads/feature/ABC-2-coupons", revlink="https://git.example.com/c/1")
        )
        branch = item(entities["branches"])
        self.assertEqual(
            {k: v for k, v in branch.items() if k != "lastCommit"},
            {
                "id": "feature~2fABC-2-coupons",
                "issueKeys": ["ABC-2"],
                "updateSequenceId": 42,
                "name": "feature/ABC-2-coupons",
                "url": "https://git.example.com/team/app/tree/feature/ABC-2-coupons",
            },
        )
        self.assertEqual(branch["lastCommit"], item(entities["commits"]))
        self.assertTrue(entities["branches"].key.endswith("/branches/feature~2fABC-2-coupons"))
        self.assertNotIn("branches", mapped(change(branch="main")))

    def test_without_keys_from_branch_the_last_commit_takes_the_branch_keys(self) -> None:
        entities = mapped(
            change(branch="ABC-2", comments="none"), DevinfoMapping(keys_from_branch=False)
        )
        self.assertEqual(sorted(entities), ["branches"])
        self.assertEqual(item(entities["branches"])["lastCommit"]["issueKeys"], ["ABC-2"])

    def test_branch_urls_per_host_and_from_the_template(self) -> None:
        for repository, url in [
            ("git@gitlab.com:team/app.git", "https://gitlab.com/team/app/-/tree/ABC-2"),
            ("https://bitbucket.org/team/app", "https://bitbucket.org/team/app/branch/ABC-2"),
            (
                "https://gitea.example.com/team/app",
                "https://gitea.example.com/team/app/src/branch/ABC-2",
            ),
            ("https://github.com/team/app", "https://github.com/team/app/tree/ABC-2"),
            ("/srv/git/app", PAGE),
        ]:
            entities = mapped(change(repository=repository, branch="ABC-2"))
            self.assertEqual(item(entities["branches"])["url"], url)
        template = DevinfoMapping(branch_url="https://code.example.com/{name}/branches/{branch}")
        entities = mapped(change(branch="feature/ABC-2 x"), template)
        self.assertEqual(
            item(entities["branches"])["url"],
            "https://code.example.com/app/branches/feature/ABC-2%20x",
        )

    def test_long_branch_names_fit(self) -> None:
        name = "ABC-2-" + "x" * 2000
        branch = item(mapped(change(branch=name))["branches"])
        self.assertLessEqual(len(branch["id"]), 1024)
        self.assertEqual(len(branch["name"]), 512)
        other = item(mapped(change(branch=name + "y"))["branches"])
        self.assertNotEqual(branch["id"], other["id"])


class PullRequestTests(unittest.TestCase):
    def github(self, **fields: Any) -> ChangeFacts:
        return change(
            repository="https://github.com/team/app",
            branch="refs/pull/12/merge",
            author="octocat",
            comments="GitHub Pull Request #12 (1 commit)\nABC-8: faster search\nbody",
            revlink="https://github.com/team/app/pull/12",
            properties={
                "pullrequesturl": "https://github.com/team/app/pull/12",
                "event": "pull_request",
                "basename": "main",
                "github.head.ref": "feature/OPS-4",
            },
            **fields,
        )

    def test_a_pull_request_from_the_change_properties(self) -> None:
        entity = mapped(self.github())["pullRequests"]
        self.assertTrue(entity.key.endswith("/pullRequests/12"))
        self.assertEqual(
            item(entity),
            {
                "id": "12",
                "issueKeys": ["ABC-8", "OPS-4"],
                "updateSequenceId": 42,
                "status": "OPEN",
                "title": "ABC-8: faster search",
                "author": {"name": "octocat"},
                "commentCount": 0,
                "sourceBranch": "feature/OPS-4",
                "destinationBranch": "main",
                "displayId": "#12",
                "lastUpdate": "2024-09-01T12:00:00.000Z",
                "url": "https://github.com/team/app/pull/12",
            },
        )

    def test_a_gerrit_change_is_a_pull_request(self) -> None:
        facts = change(
            repository="ssh://gerrit.example.com:29418/app",
            branch="refs/changes/34/1234/2",
            comments="Apply coupons",
            properties={
                "event.type": "change-abandoned",
                "event.change.number": 1234,
                "event.change.subject": "ABC-7: apply coupons",
                "event.change.url": "https://gerrit.example.com/c/app/+/1234",
                "event.change.branch": "main",
                "event.change.owner.name": "Jane",
                "event.change.owner.email": "jane@example.com",
                "event.patchSet.ref": "refs/changes/34/1234/2",
            },
        )
        entities = mapped(facts)
        self.assertEqual(sorted(entities), ["pullRequests"])  # the commit names no key
        pull_request = item(entities["pullRequests"])
        self.assertEqual(
            (pull_request["status"], pull_request["displayId"], pull_request["issueKeys"]),
            ("DECLINED", "1234", ["ABC-7"]),
        )
        self.assertEqual(pull_request["author"], {"name": "Jane", "email": "jane@example.com"})

    def test_a_pull_request_naming_no_key_is_not_sent(self) -> None:
        facts = attrs.evolve(
            self.github(),
            comments="GitHub Pull Request #12\nno key",
            properties={"event": "pull_request"},
        )
        self.assertIsInstance(map_change(facts, DevinfoMapping(), change_page=PAGE), Skip)
