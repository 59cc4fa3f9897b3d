"""render_credentials: the credentials rendered, or which secret is missing (never a value)."""

from __future__ import annotations

from typing import Any

from buildbot.process.properties import Interpolate, Secret
from buildbot.secrets.secret import SecretDetails
from twisted.internet import defer
from twisted.trial import unittest

from buildbot_jira.credentials import (
    UnrenderedCredential,
    describe_secret,
    render_credentials,
    shown_argument,
)
from buildbot_jira.sites import JiraSite

VALUE = "s3cret-value-never-shown"


class FakeSecrets:
    """The master's ``secrets`` service: holds some secrets, or fails on every read."""

    def __init__(self, held: dict[str, str], *, broken: bool = False) -> None:
        self.held = held
        self.broken = broken

    def get(self, name: str) -> defer.Deferred[SecretDetails | None]:
        if self.broken:
            return defer.fail(RuntimeError(f"vault said: token {VALUE} expired"))
        if name not in self.held:
            return defer.succeed(None)
        return defer.succeed(SecretDetails("fake", name, self.held[name]))


class FakeMaster:
    def __init__(self, secrets: FakeSecrets) -> None:
        self.namedServices = {"secrets": secrets}


def site(client_id: Any = "the-id", client_secret: Any = None) -> JiraSite[Any]:
    return JiraSite(
        site="example.atlassian.net",
        client_id=client_id,
        client_secret=client_secret if client_secret is not None else Secret("jira-secret"),
    )


class RenderCredentialsTests(unittest.TestCase):
    def render(self, master: FakeMaster, of: JiraSite[Any]) -> JiraSite[str] | UnrenderedCredential:
        return self.successResultOf(defer.Deferred.fromCoroutine(render_credentials(master, of)))

    def test_both_credentials_are_rendered(self) -> None:
        rendered = self.render(FakeMaster(FakeSecrets({"jira-secret": VALUE})), site())
        assert isinstance(rendered, JiraSite)
        self.assertEqual((rendered.client_id, rendered.client_secret), ("the-id", VALUE))
        self.assertNotIn(VALUE, repr(rendered))

    def test_a_missing_secret_names_the_argument_and_the_secret(self) -> None:
        problem = self.render(FakeMaster(FakeSecrets({})), site())
        self.assertEqual(
            problem,
            UnrenderedCredential(
                "client_secret",
                "util.Secret('jira-secret')",
                "secret key jira-secret is not found in any provider",
            ),
        )
        assert isinstance(problem, UnrenderedCredential)
        message = problem.message("jira-builds")
        self.assertTrue(message.startswith("jira-builds: cannot render client_secret="))
        self.assertIn("stays idle", message)
        self.assertIn("restart the master (buildbot restart)", message)

    def test_the_client_id_is_checked_first(self) -> None:
        problem = self.render(
            FakeMaster(FakeSecrets({"jira-secret": VALUE})), site(client_id=Secret("jira-id"))
        )
        assert isinstance(problem, UnrenderedCredential)
        self.assertEqual(problem.argument, "client_id")
        self.assertEqual(problem.secret, "util.Secret('jira-id')")

    def test_a_failing_provider_is_named_by_type_only(self) -> None:
        problem = self.render(FakeMaster(FakeSecrets({}, broken=True)), site())
        assert isinstance(problem, UnrenderedCredential)
        self.assertEqual(problem.reason, "the secrets provider failed (RuntimeError)")
        self.assertNotIn(VALUE, problem.message("jira-builds"))
        self.assertNotIn(VALUE, repr(problem))

    def test_another_renderable_is_described_by_its_type(self) -> None:
        self.assertEqual(describe_secret(Interpolate("%(secret:x)s")), "<Interpolate>")
        self.assertEqual(describe_secret(Secret("x")), "util.Secret('x')")


def test_shown_arguments_never_carry_a_secret() -> None:
    assert shown_argument("client_secret", "s3cr3t-value") == "***"
    shown = shown_argument("proxy", "http://ci:pr0xy-pass@proxy.example.com:3128")
    assert shown == "http://***@proxy.example.com:3128"
    assert "pr0xy-pass" not in shown
    assert shown_argument("site", "example.atlassian.net") == "example.atlassian.net"
