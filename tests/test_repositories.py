"""Repositories for development information: IDs, URLs, templates (mapping.repositories)."""

from __future__ import annotations

import doctest
import json

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial import unittest

from buildbot_jira.mapping import devinfo_fields, repositories
from buildbot_jira.mapping.devinfo import (
    DevinfoMapping,
    map_change,
    repository_id,
    repository_path,
    template_problem,
)
from buildbot_jira.mapping.repositories import safe_url
from tests.test_devinfo_mapping import PAGE, change, mapped


class RepositoryTests(unittest.TestCase):
    def test_every_spelling_of_a_repository_has_one_id(self) -> None:
        spellings = [
            "git@git.example.com:team/app.git",
            "ssh://git@git.example.com:22/team/app",
            "https://jane:s3cret@GIT.example.com/team/app.git/",
            "https://git.example.com/team/app",
            "git://git.example.com/team/app.git",
            "http://git.example.com:8080//team/app/?private_token=abc",
        ]
        ids = {repository_id(url) for url in spellings}
        self.assertEqual(len(ids), 1, ids)
        [the_id] = ids
        self.assertRegex(the_id, r"^git\.example\.com_team_app-[0-9a-f]{12}$")
        self.assertEqual({repository_path(url) for url in spellings}, {"team/app"})

    def test_different_repositories_have_different_ids(self) -> None:
        urls = [
            "git@git.example.com:team/app.git",
            "git@git.example.com:team/app2.git",
            "git@git.example.com:team_app.git",
            "git@other.example.com:team/app.git",
            "/srv/git/team/app",
            "git.example.com/team/app",
        ]
        self.assertEqual(len({repository_id(url) for url in urls}), len(urls))

    def test_local_paths_are_repositories(self) -> None:
        self.assertEqual(repository_id("/srv/git/app.git"), repository_id("file:///srv/git/app/"))
        entity = mapped(change(repository="/srv/git/app.git"))["commits"]
        self.assertEqual((entity.payload["name"], entity.payload["url"]), ("app", PAGE))
        entity = mapped(change(repository="/srv/git/app.git"), page=None)["commits"]
        self.assertEqual(entity.payload["url"], "file://localhost/srv/git/app")

    def test_names_and_urls(self) -> None:
        for repository, codebase, name, url in [
            ("git@github.com:team/app.git", "", "app", "https://github.com/team/app"),
            ("ssh://git@host:2222/team/tool", "", "tool", "https://host/team/tool"),
            ("http://host:8080/app", "", "app", "http://host:8080/app"),
            ("", "web", "web", PAGE),
            ("", "", "repository", PAGE),
        ]:
            payload = mapped(change(repository=repository, codebase=codebase))["commits"].payload
            self.assertEqual((payload["name"], payload["url"]), (name, url), repository)
        template = DevinfoMapping(repository_url="https://code.example.com/{repository}")
        payload = mapped(change(), template)["commits"].payload
        self.assertEqual(payload["url"], "https://code.example.com/team/app")

    def test_templates_are_checked(self) -> None:
        self.assertIsNone(template_problem("https://{host}/{repository}/commit/{revision}"))
        self.assertIsNone(
            template_problem(
                "https://x/{short_revision}/{branch}/{name}/{project}/{codebase}/{changeid}"
            )
        )
        problem = template_problem("https://x/{sha}")
        assert problem is not None
        self.assertIn("{sha}", problem)
        self.assertIn("{revision}", problem)  # it says what is known
        for wrong in (
            "https://x/{revision",
            "https://x/{}",
            "https://x/{revision.real}",
            "{revision:{name}}",
        ):
            self.assertIsNotNone(template_problem(wrong), wrong)

    def test_safe_urls(self) -> None:
        self.assertEqual(
            safe_url("https://u:p@host/a b?x=1&access_token=t&sig=s#frag"),
            "https://host/a%20b?x=1#frag",
        )
        self.assertEqual(safe_url("https://host/#/changes/4"), "https://host/#/changes/4")
        for wrong in (None, "", "/local", "mailto:x", "https://", "https://host/" + "x" * 2000):
            self.assertIsNone(safe_url(wrong), wrong)

    def test_the_modules_examples_hold(self) -> None:
        for module in (repositories, devinfo_fields):
            self.assertEqual(doctest.testmod(module).failed, 0, module.__name__)


# -- properties ---------------------------------------------------------------

_hosts = st.sampled_from(["git.example.com", "GitHub.com", "gitlab.example.com", "[::1]", "h"])
_paths = st.lists(st.text("abz09._- ~", min_size=1, max_size=10), min_size=0, max_size=3).map(
    "/".join
)
_secrets = st.from_regex(r"SECRET[A-Z0-9]{8,16}", fullmatch=True)


@st.composite
def repository_urls(draw: st.DrawFn) -> tuple[str, str]:
    """A repository URL of some spelling with credentials in it, and the credential."""
    secret = draw(_secrets)
    host, path = draw(_hosts), draw(_paths)
    form = draw(st.sampled_from(["userpass", "token", "query", "ssh", "scp"]))
    url = {
        "userpass": f"https://jane:{secret}@{host}/{path}.git",
        "token": f"https://x-access-token:{secret}@{host}/{path}",
        "query": f"https://{host}/{path}?private_token={secret}&access_token={secret}",
        "ssh": f"ssh://{secret}@{host}:22/{path}",
        "scp": f"{secret}@{host}:{path}.git",
    }[form]
    return url, secret


class CredentialTests(unittest.TestCase):
    @settings(max_examples=300, deadline=None)
    @given(
        repository_urls(),
        st.sampled_from([None, "main", "feature/ABC-2"]),
        st.sampled_from(["revlink", "page", "none"]),
        st.booleans(),
    )
    def test_credentials_are_never_in_a_payload(
        self, url_and_secret: tuple[str, str], branch: str | None, where: str, review: bool
    ) -> None:
        url, secret = url_and_secret
        properties = {"event": "pull_request", "pullrequesturl": url} if review else {}
        facts = change(
            repository=url,
            branch=branch,
            comments="ABC-1 fix",
            revlink=url if where == "revlink" else None,
            properties=properties,
        )
        template = "https://code.example.com/{host}/{repository}/{name}"
        mapping = DevinfoMapping(commit_url=template, branch_url=template)
        entities = map_change(facts, mapping, change_page=url if where == "page" else None)
        assert isinstance(entities, list)
        for entity in entities:
            self.assertNotIn(secret, json.dumps(entity.payload, ensure_ascii=False))
            self.assertNotIn(secret, entity.key)
