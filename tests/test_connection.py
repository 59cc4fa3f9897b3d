"""Connections: what is shared (token caches, clients), and when HTTP connections close."""

from __future__ import annotations

from typing import Any

import attrs
from buildbot.plugins import util
from buildbot.test.fake import fakemaster
from buildbot.test.reactor import TestReactorMixin
from twisted.trial import unittest

from buildbot_jira import connection as connection_module
from buildbot_jira.connection import (
    ConnectionPool,
    JiraConnections,
    client_key,
    connect,
    open_connection,
    render_proxy,
    token_key,
    transport_key,
)
from buildbot_jira.jira.errors import JiraConfigError
from buildbot_jira.jira.proxy import ProxyServer
from buildbot_jira.jira.rate_limits import DEFAULT_MIN_REQUEST_INTERVAL
from buildbot_jira.jira.retry import RetryPolicy
from buildbot_jira.jira.trust import TrustSettings
from buildbot_jira.sites import JiraSite
from tests.support import SECRET, coroutine_test

SITE: JiraSite[str] = JiraSite(site="example.atlassian.net", client_id="id", client_secret=SECRET)
RETRY = RetryPolicy(max_attempts=2)


class RecordingTransport:
    """A transport that sends nothing and counts how often it was closed."""

    made: list[RecordingTransport]

    def __init__(self, *, reactor: Any = None, clock: Any = None, **settings: Any) -> None:
        self.reactor = reactor
        self.clock = clock
        #: How it was told to reach the site: proxy, trust, environ.
        self.settings = settings
        self.closed = 0
        self.made.append(self)

    async def close(self) -> None:
        self.closed += 1


class TransportsRecorded(unittest.TestCase):
    def setUp(self) -> None:
        RecordingTransport.made = []
        self.patch(connection_module, "HttpTransport", RecordingTransport)

    @property
    def transports(self) -> list[RecordingTransport]:
        return RecordingTransport.made


class SharingTests(TransportsRecorded):
    def test_same_site_and_credentials_share_one_client(self) -> None:
        pool = ConnectionPool()
        first, second = pool.acquire(SITE, retry=RETRY), pool.acquire(SITE, retry=RETRY)
        self.assertIs(first.client, second.client)
        self.assertEqual(len(self.transports), 1)

    @coroutine_test
    async def test_the_shared_client_knows_the_names_of_its_users(self) -> None:
        pool = ConnectionPool()
        builds = pool.acquire(SITE, retry=RETRY, user="jira-builds")
        deployments = pool.acquire(SITE, retry=RETRY, user="jira-deployments")
        # A reporter holds a second reference while it swaps connections on reconfig.
        builds_again = pool.acquire(SITE, retry=RETRY, user="jira-builds")
        unnamed = pool.acquire(SITE, retry=RETRY)
        client = builds.client
        self.assertEqual(str(client.users), "jira-builds, jira-deployments")
        await builds.release()
        await builds.release()  # twice is once
        self.assertEqual(str(client.users), "jira-builds, jira-deployments")
        await builds_again.release()
        self.assertEqual(str(client.users), "jira-deployments")
        await deployments.release()
        await unnamed.release()
        self.assertEqual(str(client.users), "buildbot-jira")

    def test_another_site_shares_the_token_but_not_the_client(self) -> None:
        pool = ConnectionPool()
        first = pool.acquire(SITE, retry=RETRY)
        other = pool.acquire(
            JiraSite(site="other.atlassian.net", client_id="id", client_secret=SECRET), retry=RETRY
        )
        self.assertIsNot(first.client, other.client)
        self.assertIs(first.client.tokens, other.client.tokens)
        self.assertEqual(other.client.site, "other.atlassian.net")

    def test_another_retry_policy_shares_the_token_but_not_the_client(self) -> None:
        pool = ConnectionPool()
        first = pool.acquire(SITE, retry=RETRY)
        patient = pool.acquire(SITE, retry=RetryPolicy())
        self.assertIsNot(first.client, patient.client)
        self.assertIs(first.client.tokens, patient.client.tokens)
        self.assertEqual(patient.client.retry, RetryPolicy())

    def test_other_credentials_or_gateway_get_a_token_cache_of_their_own(self) -> None:
        pool = ConnectionPool()
        first = pool.acquire(SITE, retry=RETRY)
        others = [
            JiraSite(site=SITE.site, client_id="id", client_secret=SECRET + "-rotated"),
            JiraSite(site=SITE.site, client_id="other-id", client_secret=SECRET),
            JiraSite(
                site=SITE.site, client_id="id", client_secret=SECRET, api_url="http://127.0.0.1:1"
            ),
        ]
        for site in others:
            self.assertIsNot(pool.acquire(site, retry=RETRY).client.tokens, first.client.tokens)
        self.assertEqual(len(self.transports), 4)

    def test_the_client_is_made_from_the_site(self) -> None:
        site = JiraSite(
            site="example.atlassian.net",
            client_id="id",
            client_secret=SECRET,
            cloud_id="cloud-1",
            site_url="http://127.0.0.1:8099",
            timeout=12.0,
        )
        client = ConnectionPool(reactor="the reactor").acquire(site, retry=RETRY).client
        self.assertEqual(client.site_url, "http://127.0.0.1:8099")
        self.assertEqual(client.timeout, 12.0)
        self.assertEqual(client.retry, RETRY)
        self.assertEqual(client.tokens.credentials.client_secret, SECRET)
        self.assertEqual(self.transports[0].reactor, "the reactor")

    def test_another_pace_gets_a_client_and_limits_of_its_own(self) -> None:
        pool = ConnectionPool()
        first = pool.acquire(SITE, retry=RETRY)
        slower = pool.acquire(attrs.evolve(SITE, min_request_interval=5.0), retry=RETRY)
        again = pool.acquire(SITE, retry=RETRY)
        self.assertIsNot(first.client, slower.client)
        self.assertIs(first.client.tokens, slower.client.tokens)
        self.assertEqual(slower.client.limits.min_interval, 5.0)
        # One pace per site and settings: every user shares one view of Jira's limits.
        self.assertIs(again.client.limits, first.client.limits)
        self.assertEqual(first.client.limits.min_interval, DEFAULT_MIN_REQUEST_INTERVAL)

    def test_keys_hold_no_secret(self) -> None:
        for key in (token_key(SITE), client_key(SITE, RETRY)):
            self.assertNotIn(SECRET, repr(key))
        self.assertNotIn(SECRET, repr(SITE))
        self.assertNotIn(SECRET, repr(ConnectionPool().acquire(SITE, retry=RETRY)))


class ReleaseTests(TransportsRecorded):
    @coroutine_test
    async def test_the_last_release_closes_the_transport(self) -> None:
        pool = ConnectionPool()
        first, second = pool.acquire(SITE, retry=RETRY), pool.acquire(SITE, retry=RETRY)
        await first.release()
        await first.release()  # a second release of the same reference counts once
        self.assertEqual(self.transports[0].closed, 0)
        await second.release()
        self.assertEqual(self.transports[0].closed, 1)
        # The next user gets a fresh client and transport.
        third = pool.acquire(SITE, retry=RETRY)
        self.assertIsNot(third.client, first.client)
        self.assertEqual(len(self.transports), 2)

    @coroutine_test
    async def test_a_released_client_leaves_the_token_cache_to_its_other_users(self) -> None:
        pool = ConnectionPool()
        gate = pool.acquire(SITE, retry=RetryPolicy(max_attempts=1))
        reporter = pool.acquire(SITE, retry=RETRY)
        await gate.release()
        self.assertEqual(self.transports[0].closed, 0)
        again = pool.acquire(SITE, retry=RetryPolicy(max_attempts=1))
        self.assertIs(again.client.tokens, reporter.client.tokens)

    @coroutine_test
    async def test_closing_the_pool_closes_what_is_in_use(self) -> None:
        pool = ConnectionPool()
        in_use = pool.acquire(SITE, retry=RETRY)
        await pool.close()
        self.assertEqual(self.transports[0].closed, 1)
        await in_use.release()  # a late release after the close is harmless
        self.assertEqual(self.transports[0].closed, 1)

    @coroutine_test
    async def test_open_connection_has_a_pool_of_its_own(self) -> None:
        first = open_connection(SITE, retry=RETRY, reactor="the reactor")
        second = open_connection(SITE, retry=RETRY)
        self.assertIsNot(first.client, second.client)
        self.assertEqual(self.transports[0].reactor, "the reactor")
        await first.release()
        self.assertEqual([t.closed for t in self.transports], [1, 0])


class MasterSharingTests(TestReactorMixin, TransportsRecorded):
    """In a master, the pool is a SharedService: one per master, stopped last."""

    def setUp(self) -> None:
        super().setUp()
        self.setup_test_reactor()

    @coroutine_test
    async def test_users_of_one_master_share_and_of_two_do_not(self) -> None:
        master = await fakemaster.make_master(self)
        other_master = await fakemaster.make_master(self)
        reporter = await connect(master, SITE, retry=RETRY)
        gate = await connect(master, SITE, retry=RETRY)
        elsewhere = await connect(other_master, SITE, retry=RETRY)
        self.assertIs(reporter.client, gate.client)
        self.assertIsNot(elsewhere.client, reporter.client)
        services = [s for s in master.services if isinstance(s, JiraConnections)]
        self.assertEqual(len(services), 1)
        self.assertIs(master.services[0], services[0])  # started first, stopped last
        self.assertIs(self.transports[0].reactor, master.reactor)

    @coroutine_test
    async def test_stopping_the_master_closes_the_connections_left(self) -> None:
        master = await fakemaster.make_master(self)
        await master.startService()
        await connect(master, SITE, retry=RETRY)
        await master.stopService()
        self.assertEqual(self.transports[0].closed, 1)
        # A master started again gets a new pool.
        await master.startService()
        await connect(master, SITE, retry=RETRY)
        self.assertEqual(len(self.transports), 2)
        await master.stopService()


PROXY = ProxyServer(host="proxy.corp", port=3128, user="ci", password="conn-proxy-secret-11")


class ProxySharingTests(TransportsRecorded):
    def test_the_transport_is_made_with_the_sites_proxy_and_trust(self) -> None:
        environ = {"HTTPS_PROXY": "http://env-proxy:1"}
        site = attrs.evolve(SITE, proxy=PROXY, ca_bundle="/ca.pem", ca_bundle_only=True)
        ConnectionPool(environ=environ).acquire(site, retry=RETRY)
        settings = self.transports[0].settings
        self.assertIs(settings["proxy"], PROXY)
        self.assertEqual(settings["trust"], TrustSettings(ca_bundle="/ca.pem", ca_bundle_only=True))
        self.assertIs(settings["environ"], environ)

    def test_another_proxy_or_trust_gets_a_transport_and_token_of_its_own(self) -> None:
        pool = ConnectionPool()
        first = pool.acquire(SITE, retry=RETRY)
        for other in (
            attrs.evolve(SITE, proxy=PROXY),
            attrs.evolve(SITE, proxy=attrs.evolve(PROXY, password="another")),
            attrs.evolve(SITE, proxy=None),
            attrs.evolve(SITE, ca_bundle="/ca.pem"),
        ):
            self.assertIsNot(pool.acquire(other, retry=RETRY).client.tokens, first.client.tokens)
        self.assertEqual(len(self.transports), 5)

    def test_keys_hold_no_proxy_password(self) -> None:
        site = attrs.evolve(SITE, proxy=PROXY)
        for key in (token_key(site), client_key(site, RETRY), transport_key(site)):
            self.assertNotIn("conn-proxy-secret-11", repr(key))


class ProxyRenderingTests(TestReactorMixin, TransportsRecorded):
    def setUp(self) -> None:
        super().setUp()
        self.setup_test_reactor()

    @coroutine_test
    async def test_connect_renders_a_proxy_with_a_secret(self) -> None:
        master = await fakemaster.make_master(
            self, with_secrets={"proxy-password": "rendered-proxy-secret"}
        )
        site = attrs.evolve(
            SITE, proxy=util.Interpolate("http://ci:%(secret:proxy-password)s@proxy.corp:3128")
        )
        connection = await connect(master, site, retry=RETRY)
        rendered = ProxyServer(
            host="proxy.corp", port=3128, user="ci", password="rendered-proxy-secret"
        )
        self.assertEqual(self.transports[0].settings["proxy"], rendered)
        self.assertEqual(connection.site.proxy, rendered)
        self.assertNotIn("rendered-proxy-secret", repr(connection.site))

    @coroutine_test
    async def test_a_proxy_that_renders_to_no_url_is_a_configuration_error(self) -> None:
        master = await fakemaster.make_master(self, with_secrets={"proxy": "ftp://proxy:21"})
        site = attrs.evolve(SITE, proxy=util.Secret("proxy"))
        with self.assertRaises(JiraConfigError) as raised:
            await render_proxy(master, site)
        self.assertIn("proxy must be an http:// proxy", str(raised.exception))
        self.assertEqual(self.transports, [])
