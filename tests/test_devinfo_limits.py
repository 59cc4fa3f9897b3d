"""Development information within the contract, whatever a change holds (mapping.devinfo)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial import unittest

from buildbot_jira.mapping.devinfo import (
    FILE_CHANGES_PROPERTY,
    ChangeFacts,
    DevinfoMapping,
    Skip,
    entity_id,
    map_change,
)
from tests.test_devinfo_batches import devinfo_body_problems
from tests.test_devinfo_mapping import PAGE, SHA, change, item, mapped
from tests.test_repositories import repository_urls


class LimitTests(unittest.TestCase):
    def test_ten_thousand_files(self) -> None:
        commit = item(mapped(change(files=tuple(f"src/{n}.py" for n in range(10_000))))["commits"])
        self.assertEqual((commit["fileCount"], len(commit["files"])), (10_000, 10))

    def test_a_ten_megabyte_message(self) -> None:
        # The key scanner reads a bounded part of it (max_chars_per_build); the key
        # at the start is found, the one past the bound is not.
        message = "ABC-1 " + "x" * (10 * 1024 * 1024) + " ABC-2"
        commit = item(mapped(change(comments=message))["commits"])
        self.assertEqual(commit["issueKeys"], ["ABC-1"])
        self.assertEqual(len(commit["message"]), 1024)

    def test_five_thousand_keys(self) -> None:
        message = " ".join(f"ABC-{n}" for n in range(1, 5001))
        entities = mapped(change(comments=message, branch="ABC-9999"))
        keys = item(entities["commits"])["issueKeys"]
        self.assertLessEqual(len(keys), 500)
        self.assertEqual(len(keys), len(set(keys)))
        self.assertEqual(keys[:2], ["ABC-9999", "ABC-1"])
        self.assertEqual(devinfo_body_problems({"repositories": [entities["commits"].payload]}), [])

    def test_binary_and_control_characters(self) -> None:
        facts = ChangeFacts.from_change(
            {
                "changeid": 5,
                "revision": SHA,
                "repository": "https://git.example.com/te\x00am/\udcffapp",
                "branch": "ABC-2\x07\udcff",
                "author": b"\xff\xfe <\x01@x>",
                "comments": b"ABC-1 \x00\x1b\x7f\x9f \xff\xfe binary",
                "files": ["\x00\udcff", "a" * 5000],
            }
        )
        entities = map_change(facts, DevinfoMapping(), change_page=PAGE)
        assert isinstance(entities, list)
        for entity in entities:
            json.dumps(entity.payload, ensure_ascii=False).encode("utf-8")  # encodable
            self.assertEqual(devinfo_body_problems({"repositories": [entity.payload]}), [])


# -- properties ---------------------------------------------------------------

_text = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"])
    | st.sampled_from("\x00\x1b\x7f\x9f\udcff"),
    max_size=80,
)
_keyish = st.lists(
    st.sampled_from(["ABC-1", "OPS-22", "A-1", "é-3", "X_Y-4", " ", "/", "\n", "feature/", "#"]),
    max_size=8,
).map("".join)


_changes = st.builds(
    ChangeFacts,
    changeid=st.integers(1, 2**62),
    revision=st.one_of(st.just(SHA), st.text("0123456789abcdef", min_size=1, max_size=64), _text),
    repository=st.one_of(repository_urls().map(lambda pair: pair[0]), _text),
    branch=st.one_of(st.none(), _keyish, _text),
    codebase=_text,
    project=_text,
    author=_text,
    comments=st.one_of(_keyish, _text, st.tuples(_text, _keyish).map(" ".join)),
    when_timestamp=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
    files=st.lists(_text, max_size=14).map(tuple),
    revlink=st.one_of(st.none(), _text, st.just("https://git.example.com/c/1")),
    category=st.sampled_from([None, "pull", "pull-created", "pull-fulfilled", "merge_request"]),
    properties=st.dictionaries(
        st.sampled_from(
            [
                "event",
                "github.head.ref",
                "pullrequesturl",
                "event.change.number",
                "event.type",
                FILE_CHANGES_PROPERTY,
                "source_branch",
                "pr_number",
                "head_branch",
            ]
        ),
        st.one_of(
            _keyish,
            _text,
            st.integers(-5, 10**6),
            st.none(),
            st.dictionaries(_text, st.sampled_from(["ADDED", "bad", 3]), max_size=3),
        ),
        max_size=5,
    ),
)
_templates = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "https://x/{repository}/{revision}",
            "https://x/{branch}",
            "https://x/{",
            "{nope}",
            "https://{host}/{name}/{changeid}",
        ]
    ),
)
_mappings = st.builds(
    DevinfoMapping,
    keys_from_branch=st.booleans(),
    commit_url=_templates,
    branch_url=_templates,
    repository_url=_templates,
    max_files=st.integers(0, 10),
)


class PropertyTests(unittest.TestCase):
    @settings(max_examples=400, deadline=None)
    @given(_changes, _mappings, st.one_of(st.none(), st.just(PAGE), _text))
    def test_every_payload_is_accepted_by_the_simulator(
        self, facts: ChangeFacts, mapping: DevinfoMapping, page: str | None
    ) -> None:
        entities = map_change(facts, mapping, change_page=page)
        if isinstance(entities, Skip):
            return
        self.assertTrue(entities)
        for entity in entities:
            self.assertEqual(devinfo_body_problems({"repositories": [entity.payload]}), [])
            self.assertEqual(entity.sequence, facts.changeid)
            self.assertEqual(entity.payload["updateSequenceId"], facts.changeid)
            repository, kind, entity_key = entity.key.split("/")
            self.assertEqual(repository, entity.payload["id"])
            self.assertEqual([i["id"] for i in entity.payload[kind]], [entity_key])
            self.assertTrue(entity.issue_keys)

    @settings(max_examples=300, deadline=None)
    @given(st.text(max_size=40), st.text(max_size=40))
    def test_entity_ids_are_in_the_alphabet_and_tell_values_apart(self, one: str, two: str) -> None:
        for value in (one, two):
            self.assertRegex(entity_id(value), r"^[A-Za-z0-9~._-]*$")
        if one != two:
            self.assertNotEqual(entity_id(one), entity_id(two))
