"""JiraSite: one description of a site connection, credentials rendered or not."""

from __future__ import annotations

import trustme
from buildbot.plugins import util
from twisted.trial import unittest

from buildbot_jira.jira.auth import DEFAULT_API_URL
from buildbot_jira.jira.errors import JiraConfigError
from buildbot_jira.jira.http import DEFAULT_TIMEOUT
from buildbot_jira.jira.proxy import FROM_ENVIRONMENT, ProxyServer
from buildbot_jira.jira.rate_limits import DEFAULT_MIN_REQUEST_INTERVAL
from buildbot_jira.sites import SITE_ARGUMENTS, JiraSite, take_site
from tests.support import SECRET


class JiraSiteTests(unittest.TestCase):
    def test_defaults(self) -> None:
        site = JiraSite(site="example.atlassian.net", client_id="id", client_secret=SECRET)
        self.assertEqual(site.api_url, DEFAULT_API_URL)
        self.assertEqual(site.timeout, DEFAULT_TIMEOUT)
        self.assertIsNone(site.cloud_id)
        self.assertIsNone(site.site_url)
        self.assertEqual(site.min_request_interval, DEFAULT_MIN_REQUEST_INTERVAL)

    def test_rendering_replaces_the_credentials_only(self) -> None:
        configured = JiraSite(
            site="example.atlassian.net",
            client_id=util.Secret("jira-client-id"),
            client_secret=util.Secret("jira-client-secret"),
            cloud_id="cloud-1",
            api_url="http://127.0.0.1:8099",
            site_url="http://127.0.0.1:8099",
            timeout=12.0,
        )
        rendered = configured.rendered("id", SECRET)
        self.assertEqual(rendered.client_id, "id")
        self.assertEqual(rendered.client_secret, SECRET)
        self.assertEqual(
            (rendered.site, rendered.cloud_id, rendered.api_url, rendered.site_url),
            ("example.atlassian.net", "cloud-1", "http://127.0.0.1:8099", "http://127.0.0.1:8099"),
        )
        self.assertEqual(rendered.timeout, 12.0)
        self.assertIsInstance(configured.client_secret, util.Secret)  # frozen: a new value

    def test_the_secret_is_never_in_the_repr(self) -> None:
        site = JiraSite(site="example.atlassian.net", client_id="id", client_secret=SECRET)
        self.assertNotIn(SECRET, repr(site))
        self.assertIn("client_id='id'", repr(site))


PROXY_PASSWORD = "site-proxy-secret-61c0"


class ProxyArgumentTests(unittest.TestCase):
    """proxy, ca_bundle and ca_bundle_only, as every service takes them."""

    def take(self, **arguments: object) -> JiraSite[object]:
        given = dict(arguments)
        site = take_site("example.atlassian.net", "id", SECRET, given)
        self.assertEqual(given, {})  # each one taken
        return site

    def test_not_given_means_the_environment_decides(self) -> None:
        self.assertIs(self.take().proxy, FROM_ENVIRONMENT)

    def test_none_given_means_no_proxy_at_all(self) -> None:
        self.assertIsNone(self.take(proxy=None).proxy)

    def test_a_url_is_checked_into_a_proxy_server(self) -> None:
        site = self.take(proxy=f"http://ci:{PROXY_PASSWORD}@proxy.corp:3128")
        self.assertEqual(
            site.proxy,
            ProxyServer(host="proxy.corp", port=3128, user="ci", password=PROXY_PASSWORD),
        )
        self.assertNotIn(PROXY_PASSWORD, repr(site))
        self.assertIn("proxy=ProxyServer(host='proxy.corp', port=3128", repr(site))

    def test_a_renderable_is_kept_for_connect_and_shown_by_type_only(self) -> None:
        proxy = util.Interpolate("http://ci:%(secret:proxy-password)s@proxy:3128")
        site = self.take(proxy=proxy)
        self.assertIs(site.proxy, proxy)
        self.assertIn("proxy=<Interpolate>", repr(site))

    def test_wrong_proxies_are_named_without_the_password(self) -> None:
        for value in (3128, f"https://ci:{PROXY_PASSWORD}@proxy:3128", ""):
            with self.assertRaises(JiraConfigError) as raised:
                self.take(proxy=value)
            self.assertTrue(str(raised.exception).startswith("proxy "), raised.exception)
            self.assertNotIn(PROXY_PASSWORD, str(raised.exception))

    def test_a_ca_bundle_must_hold_a_certificate(self) -> None:
        bundle = self.mktemp()
        trustme.CA().cert_pem.write_to_path(bundle)
        site = self.take(ca_bundle=bundle, ca_bundle_only=True)
        self.assertEqual((site.ca_bundle, site.ca_bundle_only), (bundle, True))
        empty = self.mktemp()
        with open(empty, "w") as file:
            file.write("not a certificate\n")
        for path, words in (
            (empty, "holds no PEM certificate"),
            ("/nonexistent.pem", "cannot be read"),
        ):
            with self.assertRaises(JiraConfigError) as raised:
                self.take(ca_bundle=path)
            self.assertIn(f"ca_bundle {path!r} {words}", str(raised.exception))

    def test_ca_bundle_only_needs_a_bundle_and_is_a_flag(self) -> None:
        with self.assertRaises(JiraConfigError) as raised:
            self.take(ca_bundle_only=True)
        self.assertIn("ca_bundle_only=True needs ca_bundle", str(raised.exception))
        with self.assertRaises(JiraConfigError):
            self.take(ca_bundle_only="yes")

    def test_every_service_takes_them(self) -> None:
        for name in ("proxy", "ca_bundle", "ca_bundle_only"):
            self.assertIn(name, SITE_ARGUMENTS)
