"""JiraSite: one description of a site connection, credentials rendered or not."""

from __future__ import annotations

from buildbot.plugins import util
from twisted.trial import unittest

from buildbot_jira.jira.auth import DEFAULT_API_URL
from buildbot_jira.jira.http import DEFAULT_TIMEOUT
from buildbot_jira.jira.rate_limits import DEFAULT_MIN_REQUEST_INTERVAL
from buildbot_jira.sites import JiraSite
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
