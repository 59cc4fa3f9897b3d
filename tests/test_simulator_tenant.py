"""Tests of buildbot_jira.simulator.tenant: the simulated site's settings."""

from __future__ import annotations

from twisted.internet import task
from twisted.trial import unittest

from buildbot_jira.simulator import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, JiraSimulator
from buildbot_jira.simulator.tenant import Tenant


class TenantTests(unittest.TestCase):
    def test_permissions_must_name_entity_types(self) -> None:
        with self.assertRaises(ValueError):
            JiraSimulator(clock=task.Clock(), permissions={DEFAULT_CLIENT_ID: ["build"]})
        tenant = Tenant()
        with self.assertRaises(ValueError):
            tenant.permissions = {DEFAULT_CLIENT_ID: ["issues"]}  # type: ignore[assignment]
        self.assertIsNone(tenant.permissions)

    def test_known_issues_by_project_in_any_case(self) -> None:
        tenant = Tenant(known_projects=["proj"])
        self.assertEqual(tenant.known_projects, frozenset({"PROJ"}))
        self.assertTrue(tenant.is_known_issue("PROJ-1"))
        self.assertTrue(tenant.is_known_issue("proj-12"))
        self.assertFalse(tenant.is_known_issue("OPS-1"))
        # A numeric issue ID cannot be told apart: it is taken as existing.
        self.assertTrue(tenant.is_known_issue("10042"))
        self.assertTrue(Tenant(known_projects=None).is_known_issue("ANY-1"))

    def test_permissions_decide_what_a_client_may_use(self) -> None:
        everyone = Tenant()
        self.assertTrue(everyone.may_use("anybody", "builds"))
        self.assertEqual(
            everyone.granted("anybody"), ["builds", "deployments", "devinfo", "featureflags"]
        )
        tenant = Tenant(permissions={"ci": ["featureflags", "builds"]})
        self.assertEqual(tenant.granted("ci"), ["builds", "featureflags"])
        self.assertFalse(tenant.may_use("ci", "deployments"))
        self.assertEqual(tenant.granted("someone-else"), [])

    def test_secrets_stay_out_of_the_repr_and_clients_are_copied(self) -> None:
        clients = {DEFAULT_CLIENT_ID: DEFAULT_CLIENT_SECRET}
        tenant = Tenant(clients=clients)
        clients["later"] = "added"
        self.assertEqual(tenant.clients, {DEFAULT_CLIENT_ID: DEFAULT_CLIENT_SECRET})
        self.assertNotIn(DEFAULT_CLIENT_SECRET, repr(tenant))
