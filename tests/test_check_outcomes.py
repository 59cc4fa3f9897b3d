"""Which error of the client gives which exit code and cause of ``buildbot-jira check``."""

from __future__ import annotations

from twisted.trial import unittest

from buildbot_jira.jira.auth import TokenUnavailable
from buildbot_jira.jira.errors import (
    JiraAuthError,
    JiraPermissionError,
    JiraRequestError,
    JiraSiteError,
    JiraUnavailableError,
)
from buildbot_jira.jira.transport_errors import (
    ProxyAuthError,
    ProxyRefusedError,
    ProxyTimeoutError,
    ProxyUnreachableError,
    TlsVerificationError,
)
from buildbot_jira.tools.check_outcomes import (
    EXIT_CODES,
    EXIT_CREDENTIALS,
    EXIT_PERMISSION,
    EXIT_PROXY_AUTH,
    EXIT_REJECTED,
    EXIT_TLS,
    EXIT_UNEXPECTED,
    EXIT_UNKNOWN_SITE,
    EXIT_UNREACHABLE,
    explain,
)


class ExplainTests(unittest.TestCase):
    def test_each_error_class_has_its_exit_code(self) -> None:
        cases = [
            (JiraSiteError("no cloud ID."), EXIT_UNKNOWN_SITE, "wrong site name"),
            (JiraAuthError("refused"), EXIT_CREDENTIALS, "wrong credentials"),
            (JiraPermissionError("HTTP 403", status=403), EXIT_PERMISSION, "missing permission"),
            (JiraRequestError("HTTP 400", status=400), EXIT_REJECTED, "request rejected"),
            (JiraUnavailableError("HTTP 503"), EXIT_UNREACHABLE, "unreachable host"),
            # A subclass finds its nearest class in the table.
            (TokenUnavailable("token request failed"), EXIT_UNREACHABLE, "unreachable host"),
        ]
        for error, code, cause in cases:
            failure = explain(error, "example.atlassian.net")
            self.assertEqual((failure.exit_code, failure.cause), (code, cause), repr(error))
            self.assertTrue(failure.detail.startswith(str(error).rstrip(". ")), failure.detail)

    def test_a_404_of_the_gateway_is_a_wrong_cloud_id(self) -> None:
        failure = explain(JiraRequestError("HTTP 404", status=404), "example.atlassian.net")
        self.assertEqual((failure.exit_code, failure.cause), (EXIT_UNKNOWN_SITE, "wrong cloud ID"))
        self.assertIn("leave out --cloud-id", failure.detail)

    def test_a_bare_site_name_gets_a_hint(self) -> None:
        failure = explain(JiraSiteError("no cloud ID"), "example")
        self.assertTrue(failure.detail.endswith("looks like example.atlassian.net"))
        unreachable = explain(JiraUnavailableError("refused"), "example.atlassian.net")
        self.assertIn("Check the host names (--site, --api-url, --site-url)", unreachable.detail)

    def test_anything_else_is_unexpected_and_named(self) -> None:
        failure = explain(ValueError("odd"), "example.atlassian.net")
        self.assertEqual((failure.exit_code, failure.cause), (EXIT_UNEXPECTED, "unexpected error"))
        self.assertEqual(failure.detail, "ValueError: odd")


class ProxyOutcomeTests(unittest.TestCase):
    def test_proxy_and_tls_errors_have_their_exit_codes_and_say_what_to_check(self) -> None:
        cases = [
            (
                ProxyUnreachableError("the proxy x is unreachable"),
                EXIT_UNREACHABLE,
                "proxy unreachable",
                "Check --proxy",
            ),
            (
                ProxyRefusedError("the proxy x refused CONNECT"),
                EXIT_UNREACHABLE,
                "proxy refused the connection",
                "allow CONNECT",
            ),
            (
                ProxyTimeoutError("no answer through the proxy x"),
                EXIT_UNREACHABLE,
                "proxy timeout",
                "HTTPS_PROXY",
            ),
            (
                ProxyAuthError("407"),
                EXIT_PROXY_AUTH,
                "proxy authentication required",
                "user and password of --proxy",
            ),
            (TlsVerificationError("untrusted"), EXIT_TLS, "TLS verification failed", "--ca-bundle"),
        ]
        for error, code, cause, hint in cases:
            failure = explain(error, "example.atlassian.net")
            self.assertEqual((failure.exit_code, failure.cause), (code, cause), repr(error))
            self.assertIn(hint, failure.detail)
            self.assertIn(code, EXIT_CODES)

    def test_the_clients_last_word_after_retries_still_names_the_proxy(self) -> None:
        # The client's retries end in a plain "unavailable" quoting the last failure.
        for quoted, cause in (
            ("the proxy http://p:1 is unreachable (connection refused)", "proxy unreachable"),
            (
                "the proxy http://p:1 refused CONNECT a:443: it answered 'HTTP/1.1 403'",
                "proxy refused the connection",
            ),
            ("no answer within 5 s through the proxy http://p:1", "proxy timeout"),
        ):
            error = JiraUnavailableError(f"Jira site 'x' is unavailable after 2 attempts: {quoted}")
            failure = explain(error, "example.atlassian.net")
            self.assertEqual((failure.exit_code, failure.cause), (EXIT_UNREACHABLE, cause))
