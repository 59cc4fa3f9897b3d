"""The proxy rules: the proxy argument, the environment variables as curl reads them, secrets."""

from __future__ import annotations

import base64

from twisted.trial import unittest

from buildbot_jira.jira.errors import JiraConfigError
from buildbot_jira.jira.proxy import (
    FROM_ENVIRONMENT,
    ProxyRoutes,
    ProxyServer,
    parse_no_proxy,
    proxy_routes,
)
from buildbot_jira.jira.tunnel import connect_request

PASSWORD = "proxy-secret-93ad1f"
PROXY = ProxyServer(host="proxy.corp.example", port=3128)


def route(environ: dict[str, str], url_host: str, *, port: int = 443, scheme: str = "https") -> str:
    """Where a request goes from ``environ``: the proxy's URL or ``direct``."""
    proxy = proxy_routes(FROM_ENVIRONMENT, environ).proxy_for(scheme, url_host, port)
    return "direct" if proxy is None else proxy.url


class ProxyServerTests(unittest.TestCase):
    def test_a_url_with_credentials_is_parsed_and_percent_decoded(self) -> None:
        proxy = ProxyServer.parse("http://ci%40corp:p%3Ass@proxy.corp:8080", argument="proxy")
        self.assertEqual((proxy.host, proxy.port, proxy.user), ("proxy.corp", 8080, "ci@corp"))
        self.assertEqual(proxy.password, "p:ss")
        self.assertEqual(proxy.authorization(), b"Basic " + base64.b64encode(b"ci@corp:p:ss"))

    def test_scheme_and_port_may_be_left_out_as_curl_allows(self) -> None:
        self.assertEqual(ProxyServer.parse("proxy:3128", argument="p").url, "http://proxy:3128")
        self.assertEqual(ProxyServer.parse("http://proxy", argument="p").port, 80)

    def test_no_credentials_means_no_authorization_header(self) -> None:
        self.assertIsNone(PROXY.authorization())

    def test_the_password_is_in_no_repr_url_or_sharing_key(self) -> None:
        proxy = ProxyServer.parse(f"http://ci:{PASSWORD}@proxy:3128", argument="proxy")
        for text in (repr(proxy), proxy.url, repr(proxy.sharing_key())):
            self.assertNotIn(PASSWORD, text)
        self.assertIn("password='***'", repr(proxy))
        other = ProxyServer.parse("http://ci:other@proxy:3128", argument="proxy")
        self.assertNotEqual(proxy.sharing_key(), other.sharing_key())

    def test_wrong_urls_are_refused_without_quoting_the_password(self) -> None:
        for text in (
            f"https://ci:{PASSWORD}@proxy:3128",
            f"socks5://ci:{PASSWORD}@proxy:1080",
            f"http://ci:{PASSWORD}@proxy:99999",
            f"http://ci:{PASSWORD}@proxy:3128/path",
            f"http://:{PASSWORD}@proxy:3128",
        ):
            with self.assertRaises(JiraConfigError) as raised:
                ProxyServer.parse(text, argument="proxy")
            self.assertTrue(str(raised.exception).startswith("proxy "), raised.exception)
            self.assertNotIn(PASSWORD, str(raised.exception))

    def test_the_connect_request_names_the_target_and_the_credentials(self) -> None:
        proxy = ProxyServer(host="proxy", port=3128, user="ci", password="pw")
        self.assertEqual(
            connect_request("api.atlassian.com", 443, proxy),
            b"CONNECT api.atlassian.com:443 HTTP/1.1\r\nHost: api.atlassian.com:443\r\n"
            b"Proxy-Authorization: Basic " + base64.b64encode(b"ci:pw") + b"\r\n\r\n",
        )
        self.assertEqual(
            connect_request("::1", 8443, PROXY),
            b"CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n",
        )


class ExplicitProxyTests(unittest.TestCase):
    def test_an_explicit_proxy_serves_every_host_loopback_included(self) -> None:
        routes = proxy_routes(PROXY, {"NO_PROXY": "*", "HTTPS_PROXY": "http://other:1"})
        for scheme, host in (("https", "api.atlassian.com"), ("http", "127.0.0.1")):
            self.assertIs(routes.proxy_for(scheme, host, 8080), PROXY)

    def test_none_means_never_a_proxy_whatever_the_environment(self) -> None:
        routes = proxy_routes(None, {"HTTPS_PROXY": "http://proxy:3128"})
        self.assertEqual(routes, ProxyRoutes())
        self.assertIsNone(routes.proxy_for("https", "api.atlassian.com", 443))


class EnvironmentTests(unittest.TestCase):
    def test_no_variable_means_direct(self) -> None:
        self.assertEqual(route({}, "api.atlassian.com"), "direct")

    def test_https_proxy_serves_https_either_case_lower_case_first(self) -> None:
        self.assertEqual(route({"HTTPS_PROXY": "http://up:1"}, "a.io"), "http://up:1")
        both = {"HTTPS_PROXY": "http://up:1", "https_proxy": "http://low:2"}
        self.assertEqual(route(both, "a.io"), "http://low:2")

    def test_http_proxy_serves_plain_http_only(self) -> None:
        environ = {"HTTP_PROXY": "http://plain:1"}
        self.assertEqual(route(environ, "127.0.0.1", port=8099, scheme="http"), "http://plain:1")
        self.assertEqual(route(environ, "api.atlassian.com"), "direct")

    def test_loopback_goes_through_the_proxy_unless_no_proxy_says_so(self) -> None:
        environ = {"https_proxy": "http://proxy:3128"}
        self.assertEqual(route(environ, "localhost"), "http://proxy:3128")
        environ["no_proxy"] = "localhost"
        self.assertEqual(route(environ, "localhost"), "direct")

    def test_a_wrong_variable_is_named(self) -> None:
        with self.assertRaises(JiraConfigError) as raised:
            proxy_routes(FROM_ENVIRONMENT, {"HTTPS_PROXY": "socks5://proxy:1080"})
        self.assertIn("the environment variable HTTPS_PROXY", str(raised.exception))


class NoProxyTests(unittest.TestCase):
    def direct(self, no_proxy: str, host: str, port: int = 443) -> bool:
        environ = {"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": no_proxy}
        return route(environ, host, port=port) == "direct"

    def test_a_name_matches_itself_and_its_subdomains_only(self) -> None:
        self.assertTrue(self.direct("atlassian.com", "atlassian.com"))
        self.assertTrue(self.direct("atlassian.com", "api.atlassian.com"))
        self.assertFalse(self.direct("atlassian.com", "notatlassian.com"))

    def test_a_leading_dot_or_star_dot_is_a_domain_suffix(self) -> None:
        for entry in (".atlassian.com", "*.atlassian.com"):
            self.assertTrue(self.direct(entry, "api.atlassian.com"), entry)
            self.assertTrue(self.direct(entry, "atlassian.com"), entry)
            self.assertFalse(self.direct(entry, "evilatlassian.com"), entry)

    def test_names_match_whatever_their_case_and_trailing_dot(self) -> None:
        self.assertTrue(self.direct("Example.COM", "api.example.com."))

    def test_a_star_alone_matches_every_host(self) -> None:
        self.assertTrue(self.direct("*", "api.atlassian.com"))
        self.assertTrue(self.direct("other.io, *", "10.1.2.3"))

    def test_addresses_and_cidr_ranges(self) -> None:
        self.assertTrue(self.direct("127.0.0.1", "127.0.0.1"))
        self.assertFalse(self.direct("127.0.0.1", "127.0.0.2"))
        self.assertTrue(self.direct("10.0.0.0/8", "10.20.30.40"))
        self.assertFalse(self.direct("10.0.0.0/8", "11.0.0.1"))
        self.assertTrue(self.direct("::1", "[::1]"))
        self.assertTrue(self.direct("fd00::/8", "fd12::1"))
        self.assertFalse(self.direct("10.0.0.0/8", "ten.example.com"))

    def test_a_port_limits_the_entry_to_that_port(self) -> None:
        self.assertTrue(self.direct("jira.corp:8443", "jira.corp", 8443))
        self.assertFalse(self.direct("jira.corp:8443", "jira.corp", 443))
        self.assertTrue(self.direct("[::1]:8099", "::1", 8099))
        self.assertFalse(self.direct("[::1]:8099", "::1", 443))
        self.assertTrue(self.direct("127.0.0.1:8099", "127.0.0.1", 8099))

    def test_entries_split_on_commas_and_spaces_and_unknown_forms_are_skipped(self) -> None:
        rules = parse_no_proxy(" a.io,b.io  c.io,,:bad, host:port ")
        self.assertEqual([rule.name for rule in rules], ["a.io", "b.io", "c.io"])

    def test_lower_case_no_proxy_wins(self) -> None:
        environ = {"HTTPS_PROXY": "http://p:1", "no_proxy": "a.io", "NO_PROXY": "b.io"}
        self.assertEqual(route(environ, "a.io"), "direct")
        self.assertEqual(route(environ, "b.io"), "http://p:1")
