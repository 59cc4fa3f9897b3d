"""Tests of buildbot_jira.simulator.views: the JSON views over HTTP, and the issue page's values."""

from __future__ import annotations

import json

from twisted.trial import unittest

from buildbot_jira.simulator import (
    DEFAULT_CLOUD_ID,
)
from buildbot_jira.simulator.exchange import IncomingRequest
from buildbot_jira.simulator.faults import FaultPlan
from buildbot_jira.simulator.issue_view import InRepository
from buildbot_jira.simulator.links import listed_issue_keys
from buildbot_jira.simulator.recording import RequestLog
from buildbot_jira.simulator.state import Store, store_newer
from buildbot_jira.simulator.tenant import Tenant
from buildbot_jira.simulator.views import SimulatorViews

from .test_contract import valid_build, valid_deployment
from .test_simulator import (
    DEPLOYMENTS,
    SimulatorTestCase,
    run,
)


class ObservationTests(SimulatorTestCase):
    """The simulator's own views show everything and change nothing."""

    @run
    async def test_state_shows_requests_and_stores(self) -> None:
        token = await self.token()
        self.clock.advance(100)
        await self.post_builds(valid_build(), token=token)
        await self.post_builds(valid_build(updateSequenceNumber=2, state="failed"), token=token)
        reply = await self.request("GET", "/_simulator/state")
        state = reply.body
        self.assertEqual(state["cloudId"], DEFAULT_CLOUD_ID)
        self.assertEqual(state["counts"]["requests"], 3)
        self.assertEqual(state["counts"]["tokenRequests"], 1)
        self.assertEqual(state["counts"]["apiRequests"], 2)
        self.assertEqual(state["counts"]["builds"], 1)
        self.assertEqual(
            [(r["method"], r["status"], r["timestamp"]) for r in state["requests"]],
            [("POST", 200, 0), ("POST", 202, 100), ("POST", 202, 100)],
        )
        self.assertEqual(state["requests"][1]["body"], {"builds": [valid_build()]})
        [build] = state["builds"]
        self.assertEqual(build["key"], ["main-ci", 42])
        self.assertEqual(build["current"]["state"], "failed")
        self.assertEqual([v["state"] for v in build["history"]], ["successful", "failed"])
        self.assertEqual(len(state["tokens"]), 1)

    @run
    async def test_simulator_views_change_nothing(self) -> None:
        await self.request("GET", "/_simulator/state")
        await self.request("GET", "/_simulator/issues")
        posted = await self.request("POST", "/_simulator/state", {"builds": []})
        self.assertEqual(posted.status, 405)
        self.assertEqual(self.simulator.requests, [])

    @run
    async def test_the_index_lists_every_page_control_and_api_route(self) -> None:
        for path in ("/_simulator/", "/_simulator"):
            reply = await self.request("GET", path)
            self.assertEqual(reply.status, 200, path)
            index = reply.body
            url = self.running.url
            self.assertEqual((index["apiUrl"], index["cloudId"]), (url, DEFAULT_CLOUD_ID))
            pages = {(p["method"], p["url"]): p["what"] for p in index["pages"]}
            for method, page in (
                ("GET", "/"),
                ("GET", "/_simulator/state"),
                ("GET", "/_simulator/issues"),
                ("GET", "/_simulator/gating"),
                ("POST", "/_simulator/gating"),
            ):
                self.assertTrue(pages[(method, url + page)], (method, page))
            api = {(a["method"], a["url"]) for a in index["api"]}
            self.assertIn(("POST", url + "/oauth/token"), api)
            self.assertIn(("POST", url + DEPLOYMENTS), api)
        self.assertEqual(self.simulator.requests, [])

    @run
    async def test_issues_view_links_builds_and_deployments(self) -> None:
        token = await self.token()
        await self.post_builds(valid_build(issueKeys=["PROJ-1", "NOPE-1"]), token=token)
        await self.request("POST", DEPLOYMENTS, {"deployments": [valid_deployment()]}, token=token)
        reply = await self.request("GET", "/_simulator/issues")
        self.assertEqual(list(reply.body), ["PROJ-1"])
        self.assertEqual(reply.body["PROJ-1"]["builds"][0]["buildNumber"], 42)
        self.assertEqual(reply.body["PROJ-1"]["deployments"][0]["deploymentSequenceNumber"], 7)


class IssuePageTests(unittest.TestCase):
    """The values the issue view renders, built from the store and the log alone."""

    def test_the_page_shows_the_issues_counts_and_unknown_keys(self) -> None:
        tenant = Tenant(known_projects=["PROJ"], clients={"b": "x", "a": "y"})
        store, log = Store(), RequestLog()
        views = SimulatorViews(tenant=tenant, store=store, log=log, faults=FaultPlan())
        build = valid_build(issueKeys=["PROJ-2", "OPS-1"])
        store_newer(store.builds, ("main-ci", 42), build, "updateSequenceNumber")
        store_newer(
            store.deployments, ("deploy", "stg", 7), valid_deployment(), "updateSequenceNumber"
        )
        accepted = {
            "builds": [build, valid_build(buildNumber=43, issueKeys=["OPS-1"])],
            "deployments": [
                valid_deployment(
                    associations=[{"associationType": "issueIdOrKeys", "values": ["NOPE-3"]}]
                )
            ],
        }
        log.record(incoming(json.dumps(accepted).encode())).status = 202
        refused = {"builds": [valid_build(issueKeys=["LOST-1"])]}
        log.record(incoming(json.dumps(refused).encode())).status = 400

        page = views.page(url="http://jira.example")

        self.assertEqual([issue.key for issue in page.issues], ["PROJ-1", "PROJ-2"])
        first, second = page.issues
        self.assertEqual((first.builds, first.deployments), ((), (valid_deployment(),)))
        self.assertEqual((second.builds, second.deployments), ((build,), ()))
        self.assertEqual(page.unknown_keys, {"NOPE-3": 1, "OPS-1": 2})
        self.assertEqual((page.builds, page.deployments, page.requests), (1, 1, 2))
        self.assertEqual((page.known_projects, page.client_ids), (("PROJ",), ("a", "b")))
        self.assertEqual(page.url, "http://jira.example")

    def test_an_unknown_key_counts_entities_not_their_updates(self) -> None:
        tenant = Tenant(known_projects=["PROJ"])
        log = RequestLog()
        views = SimulatorViews(tenant=tenant, store=Store(), log=log, faults=FaultPlan())
        # One build sent in progress, then finished, then again: still one build.
        for usn, state in ((1, "in_progress"), (2, "successful"), (3, "successful")):
            update = valid_build(updateSequenceNumber=usn, state=state, issueKeys=["OPS-1"])
            log.record(incoming(json.dumps({"builds": [update]}).encode())).status = 202
        other = valid_build(buildNumber=43, issueKeys=["OPS-1"])
        deployment = valid_deployment(
            associations=[{"associationType": "issueIdOrKeys", "values": ["OPS-1"]}]
        )
        both = {"builds": [other], "deployments": [deployment, deployment]}
        log.record(incoming(json.dumps(both).encode())).status = 202
        self.assertEqual(views.page(url="http://jira.example").unknown_keys, {"OPS-1": 3})

    def test_nothing_is_linked_to_an_issue_the_site_does_not_know(self) -> None:
        tenant = Tenant(known_projects=["PROJ"])
        store = Store()
        views = SimulatorViews(tenant=tenant, store=store, log=RequestLog(), faults=FaultPlan())
        build = valid_build(issueKeys=["PROJ-1", "OPS-1"])
        store_newer(store.builds, ("main-ci", 42), build, "updateSequenceNumber")
        self.assertEqual(views.linked(store.builds.values(), listed_issue_keys, "proj-1"), [build])
        self.assertEqual(views.linked(store.builds.values(), listed_issue_keys, "OPS-1"), [])
        self.assertEqual(list(views.issues()), ["PROJ-1"])


class DevelopmentPageTests(unittest.TestCase):
    """The issue page's commits, branches and pull requests, each with its repository."""

    def test_devinfo_entities_come_with_their_repository_and_are_counted(self) -> None:
        tenant = Tenant(known_projects=["PROJ"])
        store = Store()
        views = SimulatorViews(tenant=tenant, store=store, log=RequestLog(), faults=FaultPlan())
        repository = {"id": "r1", "name": "app", "url": "https://git/app", "updateSequenceId": 1}
        store_newer(store.repositories, ("r1",), repository, "updateSequenceId")
        commit = {"id": "c1", "issueKeys": ["proj-2", "OPS-1"], "updateSequenceId": 1}
        branch = {"id": "b1", "issueKeys": ["PROJ-2"], "updateSequenceId": 1}
        store_newer(store.devinfo_entities, ("r1", "commits", "c1"), commit, "updateSequenceId")
        # An entity whose repository's own fields are not stored names the repository by ID.
        store_newer(store.devinfo_entities, ("r9", "branches", "b1"), branch, "updateSequenceId")
        flag = {"id": "f1", "issueKeys": ["PROJ-3"], "updateSequenceId": 1}
        store_newer(store.feature_flags, ("f1",), flag, "updateSequenceId")

        page = views.page(url="http://jira.example")

        self.assertEqual([issue.key for issue in page.issues], ["PROJ-2", "PROJ-3"])
        devinfo, flags = page.issues
        self.assertEqual(devinfo.commits, (InRepository(commit, repository),))
        self.assertEqual(devinfo.branches, (InRepository(branch, {"id": "r9"}),))
        self.assertEqual((devinfo.pull_requests, devinfo.feature_flags), ((), ()))
        self.assertEqual(flags.feature_flags, (flag,))
        self.assertEqual(
            (page.commits, page.branches, page.pull_requests, page.feature_flags), (1, 1, 0, 1)
        )
        self.assertEqual(views.issues()["PROJ-2"]["commits"], [commit])
        self.assertEqual(views.issues()["PROJ-2"]["branches"], [branch])


def incoming(body: bytes) -> IncomingRequest:
    return IncomingRequest(
        method="POST",
        raw_path="/jira/builds/0.1/cloud/c/bulk",
        segments=("jira", "builds", "0.1", "cloud", "c", "bulk"),
        headers={},
        body=body,
        site_url="http://jira.example",
        received_at=0.0,
    )
