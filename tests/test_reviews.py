"""Reviews (pull requests, merge requests, Gerrit changes) read from a change's properties.

Each change is what Buildbot's change source or hook (or buildbot-gitea's) adds."""

from __future__ import annotations

import datetime
from typing import Any

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial import unittest

from buildbot_jira.mapping.devinfo import ChangeFacts
from buildbot_jira.mapping.reviews import REVIEW_STATUSES, Review, find_review, moment

SHA = "9f1e2d3c4b5a69788796a5b4c3d2e1f009182736"


def gerrit_change(event_type: str, **extra: Any) -> ChangeFacts:
    """A change as GerritChangeSource adds it for ``event_type`` (flattened ``event.*``)."""
    properties = {
        "event.type": event_type,
        "event.change.project": "app",
        "event.change.branch": "main",
        "event.change.id": "I8473b95934b5732ac55d26311a706c9c2bde9940",
        "event.change.number": 1234,
        "event.change.subject": "ABC-7: apply coupons",
        "event.change.owner.name": "Jane Doe",
        "event.change.owner.email": "jane@example.com",
        "event.change.owner.username": "jane",
        "event.change.url": "https://gerrit.example.com/c/app/+/1234",
        "event.patchSet.number": 2,
        "event.patchSet.ref": "refs/changes/34/1234/2",
        "event.patchSet.revision": SHA,
        "event.patchSet.createdOn": 1_700_000_000,
        "event.source": "GerritChangeSource",
        **extra,
    }
    return ChangeFacts(
        changeid=10,
        revision=SHA,
        repository="ssh://gerrit.example.com:29418/app",
        branch="refs/changes/34/1234/2",
        author="Jane Doe <jane@example.com>",
        comments="ABC-7: apply coupons",
        revlink="https://gerrit.example.com/c/app/+/1234",
        category=event_type,
        properties=properties,
    )


class GerritTests(unittest.TestCase):
    def test_each_event_type_gives_its_status(self) -> None:
        for event_type, status in [
            ("patchset-created", "OPEN"),
            ("draft-published", "OPEN"),
            ("change-restored", "OPEN"),
            ("change-merged", "MERGED"),
            ("change-abandoned", "DECLINED"),
            ("comment-added", "UNKNOWN"),
        ]:
            review = find_review(gerrit_change(event_type))
            assert review is not None
            self.assertEqual(review.status, status, event_type)

    def test_the_change_status_decides_for_other_events(self) -> None:
        review = find_review(gerrit_change("comment-added", **{"event.change.status": "MERGED"}))
        assert review is not None
        self.assertEqual(review.status, "MERGED")

    def test_fields_come_from_the_event(self) -> None:
        review = find_review(gerrit_change("patchset-created"))
        self.assertEqual(
            review,
            Review(
                review_id="1234",
                display_id="1234",
                status="OPEN",
                title="ABC-7: apply coupons",
                url="https://gerrit.example.com/c/app/+/1234",
                source_branch="refs/changes/34/1234/2",
                destination_branch="main",
                author="Jane Doe <jane@example.com>",
                updated=1_700_000_000.0,
            ),
        )

    def test_a_merged_change_without_patch_set_ref_has_the_change_branch(self) -> None:
        change = gerrit_change("change-merged", **{"event.patchSet.ref": None})
        change = attrs.evolve(change, branch="main")
        review = find_review(change)
        assert review is not None
        self.assertEqual(review.source_branch, "main")

    def test_a_ref_update_is_no_review(self) -> None:
        properties = {"event.type": "ref-updated", "event.refUpdate.refName": "refs/heads/main"}
        change = ChangeFacts(
            changeid=1, revision=SHA, repository="", branch="main", properties=properties
        )
        self.assertIsNone(find_review(change))


def github_change(**properties: Any) -> ChangeFacts:
    """A change as the GitHub hook adds it for an opened pull request."""
    return ChangeFacts(
        changeid=11,
        revision=SHA,
        repository="https://github.com/team/app",
        branch="refs/pull/12/merge",
        project="team/app",
        author="octocat",
        comments="GitHub Pull Request #12 (3 commits)\nABC-8: faster search\nIt is faster.",
        revlink="https://github.com/team/app/pull/12",
        category="pull",
        properties={
            "pullrequesturl": "https://github.com/team/app/pull/12",
            "event": "pull_request",
            "basename": "main",
            **properties,
        },
    )


class GitHubTests(unittest.TestCase):
    def test_an_opened_pull_request_as_the_hook_sets_it(self) -> None:
        review = find_review(github_change())
        self.assertEqual(
            review,
            Review(
                review_id="12",
                display_id="#12",
                status="OPEN",
                title="ABC-8: faster search",
                url="https://github.com/team/app/pull/12",
                destination_branch="main",
            ),
        )

    def test_whitelisted_properties_say_more(self) -> None:
        review = find_review(
            github_change(
                **{
                    "github.number": 12,
                    "github.title": "ABC-9: the real title",
                    "github.head.ref": "feature/ABC-9",
                    "github.user.login": "octocat",
                    "github.updated_at": "2024-09-01T12:00:00Z",
                    "github.state": "closed",
                    "github.merged": True,
                }
            )
        )
        assert review is not None
        self.assertEqual(
            (review.title, review.source_branch, review.author, review.status),
            ("ABC-9: the real title", "feature/ABC-9", "octocat", "MERGED"),
        )
        self.assertEqual(review.updated, 1725192000.0)

    def test_closed_without_merge_is_declined(self) -> None:
        review = find_review(github_change(**{"github.state": "closed", "github.merged": False}))
        assert review is not None
        self.assertEqual(review.status, "DECLINED")

    def test_a_push_is_no_review(self) -> None:
        change = ChangeFacts(
            changeid=1,
            revision=SHA,
            repository="https://github.com/team/app",
            branch="main",
            category=None,
            properties={"event": "push"},
        )
        self.assertIsNone(find_review(change))


class GitLabTests(unittest.TestCase):
    def change(self, event: str = "merge_request") -> ChangeFacts:
        """A change as the GitLab hook adds it for a merge request (or a note on one)."""
        return ChangeFacts(
            changeid=12,
            revision=SHA,
            repository="https://gitlab.example.com/team/app.git",
            branch="main",
            project="app",
            author="Jane Doe <jane@example.com>",
            comments="MR#5: ABC-10 dark mode\n\nAdds a dark mode.",
            revlink="https://gitlab.example.com/team/app/-/merge_requests/5",
            category=event,
            properties={
                "source_branch": "feature/dark",
                "source_project_id": 7,
                "source_repository": "https://gitlab.example.com/jane/app.git",
                "source_git_ssh_url": "git@gitlab.example.com:jane/app.git",
                "target_branch": "main",
                "target_project_id": 3,
                "target_repository": "https://gitlab.example.com/team/app.git",
                "target_git_ssh_url": "git@gitlab.example.com:team/app.git",
                "event": event,
            },
        )

    def test_a_merge_request_as_the_hook_sets_it(self) -> None:
        for event in ("merge_request", "note"):
            self.assertEqual(
                find_review(self.change(event)),
                Review(
                    review_id="5",
                    display_id="!5",
                    status="OPEN",
                    title="ABC-10 dark mode",
                    url="https://gitlab.example.com/team/app/-/merge_requests/5",
                    source_branch="feature/dark",
                    destination_branch="main",
                ),
            )

    def test_a_push_is_no_review(self) -> None:
        change = ChangeFacts(
            changeid=1, revision=SHA, repository="x", branch="main", properties={"event": "push"}
        )
        self.assertIsNone(find_review(change))


class GiteaTests(unittest.TestCase):
    def test_a_pull_request_as_the_gitea_plugin_sets_it(self) -> None:
        change = ChangeFacts(
            changeid=13,
            revision=SHA,
            repository="git@gitea.example.com:team/app.git",
            branch="feature/ABC-11",
            project="team/app",
            author="Jane Doe <jane@example.com>",
            comments="PR#4: ABC-11 export\n\nExports.",
            revlink="https://gitea.example.com/team/app/pulls/4",
            category="pull_request",
            properties={
                "event": "pull_request",
                "base_branch": "main",
                "base_sha": "0" * 40,
                "head_branch": "feature/ABC-11",
                "head_sha": SHA,
                "pr_id": 99,
                "pr_number": 4,
                "repository_name": "app",
                "owner": "team",
            },
        )
        self.assertEqual(
            find_review(change),
            Review(
                review_id="4",
                display_id="#4",
                status="OPEN",
                title="ABC-11 export",
                url="https://gitea.example.com/team/app/pulls/4",
                source_branch="feature/ABC-11",
                destination_branch="main",
            ),
        )


class BitbucketTests(unittest.TestCase):
    def change(
        self, category: str, branch: str, *, cloud: bool = False, **props: Any
    ) -> ChangeFacts:
        """A change as the Bitbucket Server (or Cloud) hook adds it."""
        kind = "Cloud" if cloud else "Server"
        url = "https://bitbucket.example.com/projects/T/repos/app/pull-requests/21"
        return ChangeFacts(
            changeid=14,
            revision=SHA,
            repository="https://bitbucket.example.com/projects/T/repos/app/",
            branch=branch,
            project="Team",
            author="Jane Doe <jane>",
            comments=f"Bitbucket {kind} Pull Request #21",
            revlink=url,
            category=category,
            properties={"pullrequesturl": url, **props},
        )

    def test_each_event_gives_its_status(self) -> None:
        for category, branch, status in [
            ("pull-created", "refs/pull-requests/21/merge", "OPEN"),
            ("pull-updated", "refs/pull-requests/21/merge", "OPEN"),
            ("pull-fulfilled", "refs/heads/main", "MERGED"),
            ("pull-rejected", "refs/heads/feature/ABC-12", "DECLINED"),
        ]:
            for cloud in (False, True):
                review = find_review(self.change(category, branch, cloud=cloud))
                assert review is not None
                self.assertEqual((review.review_id, review.display_id), ("21", "#21"))
                self.assertEqual(review.status, status, category)

    def test_the_branch_of_a_merge_is_its_destination_and_of_a_decline_its_source(self) -> None:
        merged = find_review(self.change("pull-fulfilled", "refs/heads/main"))
        declined = find_review(self.change("pull-rejected", "refs/heads/feature/ABC-12"))
        assert merged is not None
        assert declined is not None
        self.assertEqual((merged.destination_branch, merged.source_branch), ("main", None))
        self.assertEqual(declined.source_branch, "feature/ABC-12")

    def test_whitelisted_properties_say_more(self) -> None:
        review = find_review(
            self.change(
                "pull-created",
                "refs/pull-requests/21/merge",
                **{
                    "bitbucket.id": 21,
                    "bitbucket.title": "ABC-12: retries",
                    "bitbucket.fromRef.branch.name": "feature/ABC-12",
                    "bitbucket.toRef.branch.name": "main",
                    "bitbucket.updatedDate": 1_725_192_000_000,
                },
            )
        )
        assert review is not None
        self.assertEqual(
            (review.title, review.source_branch, review.destination_branch, review.updated),
            ("ABC-12: retries", "feature/ABC-12", "main", 1_725_192_000.0),
        )


class MomentTests(unittest.TestCase):
    def test_times_of_every_form(self) -> None:
        self.assertEqual(moment(1_700_000_000), 1_700_000_000.0)
        self.assertEqual(moment(1_700_000_000_000), 1_700_000_000.0)
        self.assertEqual(moment("2024-09-01T12:00:00Z"), 1725192000.0)
        naive = datetime.datetime(2024, 9, 1, 12)
        self.assertEqual(moment(naive), 1725192000.0)
        for nothing in (None, "yesterday", float("nan"), float("inf"), True, [1]):
            self.assertIsNone(moment(nothing))


_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=30),
    st.lists(st.integers(), max_size=2),
)
_names = st.sampled_from(
    [
        "event",
        "event.type",
        "event.change.number",
        "event.change.id",
        "event.change.status",
        "event.change.subject",
        "event.change.url",
        "event.patchSet.ref",
        "event.change.lastUpdated",
        "github.number",
        "github.merged",
        "github.state",
        "github.title",
        "github.updated_at",
        "pullrequesturl",
        "basename",
        "source_branch",
        "target_branch",
        "pr_number",
        "head_branch",
        "bitbucket.id",
        "bitbucket.title",
        "bitbucket.updatedDate",
    ]
)


class PropertyTests(unittest.TestCase):
    @settings(max_examples=300, deadline=None)
    @given(
        st.dictionaries(_names, _values, max_size=8),
        st.one_of(st.none(), st.text(max_size=20)),
        st.sampled_from([None, "pull-created", "pull-fulfilled", "pull", "merge_request"]),
        st.text(max_size=60),
    )
    def test_any_properties_give_a_review_or_none_and_never_raise(
        self, properties: dict, branch: str | None, category: str | None, comments: str
    ) -> None:
        change = ChangeFacts(
            changeid=1,
            revision=SHA,
            repository="",
            branch=branch,
            comments=comments,
            category=category,
            properties=properties,
        )
        review = find_review(change)
        if review is not None:
            self.assertIn(review.status, REVIEW_STATUSES)
            self.assertTrue(review.review_id)
            self.assertIsInstance(review.display_id, str)
