"""The whole path behind a firewall: a real tinyproxy in front of the simulator on HTTPS.

Each test starts Debian's ``tinyproxy`` on loopback with a configuration and
log file of its own, and the simulator serving HTTPS with a certificate from
a test authority made by ``trustme``; the client trusts that authority
through ``ca_bundle``, as a master behind a TLS-inspecting proxy trusts the
company's. Without tinyproxy the tests are skipped, saying how to get it.
"""

from __future__ import annotations

import io
import shutil
import socket
import subprocess
from pathlib import Path

import trustme
from twisted.internet import defer, reactor
from twisted.trial import unittest

from buildbot_jira.delivery.outbox import MemoryStore, Outbox
from buildbot_jira.jira.client import JiraCloud, RetryPolicy
from buildbot_jira.jira.http import HttpTransport
from buildbot_jira.jira.proxy import FROM_ENVIRONMENT, ProxyServer, ProxySetting
from buildbot_jira.jira.transport_errors import ProxyAuthError, TlsVerificationError
from buildbot_jira.jira.trust import TrustSettings
from buildbot_jira.simulator import DEFAULT_CLIENT_ID, JiraSimulator, RunningSimulator
from buildbot_jira.simulator.web import tls_from_pem
from buildbot_jira.tools import check
from buildbot_jira.tools.cli import build_parser
from tests.outboxes import update
from tests.support import SECRET, build_payload, captured_log, coroutine_test, jira_client, until

TINYPROXY = shutil.which("tinyproxy")
SKIP_REASON = (
    "needs a real HTTP proxy, Debian's tinyproxy, to prove the CONNECT tunnel "
    "(apt-get install tinyproxy; .ci/run installs it)"
)
PROXY_USER, PROXY_PASSWORD = "builds", "proxy-pass-7c41d9"
WRONG_PROXY_PASSWORD = "not-the-proxy-pass-2b8e"


def free_port() -> int:
    """A loopback port that nothing listens on (for a moment)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


class Tinyproxy:
    """One tinyproxy on loopback: its own configuration and log, in ``directory``."""

    def __init__(self, directory: Path, *, port: int, target_port: int, auth: bool) -> None:
        self.port = port
        self.log = directory / f"tinyproxy-{port}.log"
        self.config = directory / f"tinyproxy-{port}.conf"
        lines = [
            f"Port {port}",
            "Listen 127.0.0.1",
            f'LogFile "{self.log}"',
            "LogLevel Connect",
            "MaxClients 20",
            "Allow 127.0.0.1",
            # tinyproxy refuses CONNECT to a port it is not told of.
            "ConnectPort 443",
            f"ConnectPort {target_port}",
        ]
        if auth:
            lines.append(f"BasicAuth {PROXY_USER} {PROXY_PASSWORD}")
        self.config.write_text("\n".join(lines) + "\n")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        assert TINYPROXY is not None
        self._process = subprocess.Popen(
            [TINYPROXY, "-d", "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        await until(lambda: port_open(self.port), what=f"tinyproxy on port {self.port}")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None

    def connects(self) -> list[str]:
        """The CONNECT requests that the proxy logged."""
        text = self.log.read_text() if self.log.exists() else ""
        return [line for line in text.splitlines() if "Request" in line and "CONNECT " in line]


class ProxiedTestCase(unittest.TestCase):
    """The simulator on HTTPS with a trustme authority, and tinyproxy in front of it."""

    skip = None if TINYPROXY else SKIP_REASON

    async def start(self, *, auth: bool = False, proxy_running: bool = True) -> None:
        self.directory = Path(self.mktemp())
        self.directory.mkdir()
        self.authority = trustme.CA()
        self.ca_file = self.directory / "ca.pem"
        self.authority.cert_pem.write_to_path(str(self.ca_file))
        issued = self.authority.issue_cert("127.0.0.1", "localhost")
        chain = b"".join(blob.bytes() for blob in issued.cert_chain_pems)
        options = tls_from_pem(issued.private_key_pem.bytes(), chain)
        self.running: RunningSimulator = await JiraSimulator().listen(reactor, tls=options)
        self.addCleanup(lambda: defer.Deferred.fromCoroutine(self.running.stop()))
        self.proxy = Tinyproxy(
            self.directory, port=free_port(), target_port=self.target_port, auth=auth
        )
        self.addCleanup(self.proxy.stop)
        if proxy_running:
            await self.proxy.start()

    @property
    def target_port(self) -> int:
        return int(self.running.url.rsplit(":", 1)[1])

    def proxy_server(self, password: str | None = None) -> ProxyServer:
        user = None if password is None else PROXY_USER
        return ProxyServer(host="127.0.0.1", port=self.proxy.port, user=user, password=password)

    def client(
        self,
        proxy: ProxySetting,
        *,
        environ: dict[str, str] | None = None,
        ca_file: Path | None = None,
        attempts: int = 1,
    ) -> JiraCloud:
        transport = HttpTransport(
            reactor=reactor,
            proxy=proxy,
            trust=TrustSettings(ca_bundle=str(ca_file or self.ca_file)),
            environ=environ or {},
        )
        return jira_client(
            self,
            transport,
            api_url=self.running.url,
            site_url=self.running.url,
            retry=RetryPolicy(max_attempts=attempts, initial_delay=0.05, max_delay=0.1),
            timeout=5,
        )

    def stored(self) -> list[int]:
        return sorted(e.current["buildNumber"] for e in self.running.simulator.builds.values())


class ThroughTheProxyTests(ProxiedTestCase):
    @coroutine_test
    async def test_a_build_is_delivered_through_the_proxy_and_its_log_shows_the_connect(
        self,
    ) -> None:
        await self.start()
        client = self.client(self.proxy_server())
        result = await client.submit("builds", [build_payload(1)])
        self.assertEqual(result.rejected, ())
        self.assertEqual(self.stored(), [1])
        await client.submit("builds", [build_payload(2)])
        self.assertEqual(self.stored(), [1, 2])
        connects = self.proxy.connects()
        self.assertTrue(connects, "the proxy logged no CONNECT")
        self.assertTrue(all(f"CONNECT 127.0.0.1:{self.target_port}" in c for c in connects))
        # Token, cloud ID and two submits over one pooled tunnel, not one per request.
        self.assertEqual(len(connects), 1, connects)

    @coroutine_test
    async def test_https_proxy_from_the_environment_serves_loopback_too(self) -> None:
        await self.start()
        client = self.client(FROM_ENVIRONMENT, environ={"HTTPS_PROXY": self.proxy.url})
        await client.submit("builds", [build_payload(1)])
        self.assertEqual(self.stored(), [1])
        self.assertEqual(len(self.proxy.connects()), 1)

    @coroutine_test
    async def test_no_proxy_sends_it_direct(self) -> None:
        await self.start()
        environ = {"https_proxy": self.proxy.url, "NO_PROXY": "localhost,127.0.0.0/8"}
        client = self.client(FROM_ENVIRONMENT, environ=environ)
        await client.submit("builds", [build_payload(1)])
        self.assertEqual(self.stored(), [1])
        self.assertEqual(self.proxy.connects(), [])


class ProxyCredentialsTests(ProxiedTestCase):
    @coroutine_test
    async def test_the_right_credentials_get_through(self) -> None:
        await self.start(auth=True)
        await self.client(self.proxy_server(PROXY_PASSWORD)).submit("builds", [build_payload(1)])
        self.assertEqual(self.stored(), [1])

    @coroutine_test
    async def test_a_wrong_password_gives_the_407_message_without_the_password(self) -> None:
        await self.start(auth=True)
        client = self.client(self.proxy_server(WRONG_PROXY_PASSWORD), attempts=3)
        with captured_log() as lines, self.assertRaises(ProxyAuthError) as raised:
            await client.submit("builds", [build_payload(1)])
        message = str(raised.exception)
        self.assertIn("proxy authentication required: check the proxy's user and password", message)
        self.assertIn(self.proxy.url, message)
        # A configuration problem: raised at once, not retried.
        self.assertEqual(len(self.proxy.connects()), 1)
        for text in (message, *lines):
            self.assertNotIn(WRONG_PROXY_PASSWORD, text)
        self.assertEqual(self.stored(), [])


class OutboxBehindTheProxyTests(ProxiedTestCase):
    def outbox(self, client: JiraCloud) -> Outbox:
        outbox = Outbox(
            client=client,
            store=MemoryStore(),
            clock=reactor,
            initial_backoff=0.2,
            max_backoff=0.5,
            grace=1,
        )
        self.addCleanup(lambda: defer.Deferred.fromCoroutine(outbox.stop()))
        return outbox

    @coroutine_test
    async def test_a_proxy_that_is_down_leaves_updates_in_the_outbox_until_it_is_back(
        self,
    ) -> None:
        await self.start(proxy_running=False)
        outbox = self.outbox(self.client(self.proxy_server()))
        await outbox.start()
        with captured_log() as lines:
            outbox.put(update(1, 1001))
            await until(lambda: outbox.requests_sent >= 2, what="two tries through a dead proxy")
        self.assertEqual(len(outbox), 1)
        self.assertTrue(any("is unreachable" in line for line in lines), lines)
        await self.proxy.start()
        await until(lambda: len(outbox) == 0, what="the update delivered once the proxy is back")
        self.assertEqual(self.stored(), [1])

    @coroutine_test
    async def test_a_wrong_ca_gives_the_verification_message_and_the_update_is_kept(
        self,
    ) -> None:
        await self.start()
        other = self.directory / "other-ca.pem"
        trustme.CA().cert_pem.write_to_path(str(other))
        outbox = self.outbox(self.client(self.proxy_server(), ca_file=other))
        await outbox.start()
        with captured_log() as lines:
            outbox.put(update(1, 1001))
            await until(lambda: any("TLS verification failed" in line for line in lines))
        self.assertEqual(len(outbox), 1)
        logged = "\n".join(lines)
        self.assertIn("TLS verification failed for 127.0.0.1", logged)
        self.assertIn("certificate issued by OU=Testing CA", logged)
        self.assertIn("ca_bundle", logged)
        self.assertEqual(self.stored(), [])

    @coroutine_test
    async def test_tls_failure_is_its_own_error_class(self) -> None:
        await self.start()
        other = self.directory / "other-ca.pem"
        trustme.CA().cert_pem.write_to_path(str(other))
        with self.assertRaises(TlsVerificationError):
            await self.client(self.proxy_server(), ca_file=other).submit(
                "builds", [build_payload(1)]
            )


class CheckBehindTheProxyTests(ProxiedTestCase):
    async def check(self, *extra: str) -> tuple[int, str]:
        url = self.running.url
        args = build_parser().parse_args(
            [
                "check",
                "--site",
                "example.atlassian.net",
                "--client-id",
                DEFAULT_CLIENT_ID,
                "--api-url",
                url,
                "--site-url",
                url,
                "--timeout",
                "5",
                *extra,
            ]
        )
        out, err = io.StringIO(), io.StringIO()
        code = await check.run(
            args, out=out, err=err, environ={"JIRA_CLIENT_SECRET": SECRET}, reactor=reactor
        )
        output = out.getvalue() + err.getvalue()
        for secret in (SECRET, PROXY_PASSWORD, WRONG_PROXY_PASSWORD):
            self.assertNotIn(secret, output)
        return code, output

    def proxy_url(self, password: str) -> str:
        return f"http://{PROXY_USER}:{password}@127.0.0.1:{self.proxy.port}"

    @coroutine_test
    async def test_check_through_the_proxy_with_the_ca_bundle_exits_0(self) -> None:
        await self.start(auth=True)
        code, output = await self.check(
            "--proxy", self.proxy_url(PROXY_PASSWORD), "--ca-bundle", str(self.ca_file)
        )
        self.assertEqual(code, check.EXIT_OK, output)
        self.assertTrue(self.proxy.connects())

    @coroutine_test
    async def test_a_wrong_proxy_password_exits_8_naming_the_cause(self) -> None:
        await self.start(auth=True)
        code, output = await self.check(
            "--proxy", self.proxy_url(WRONG_PROXY_PASSWORD), "--ca-bundle", str(self.ca_file)
        )
        self.assertEqual(code, check.EXIT_PROXY_AUTH, output)
        self.assertIn("proxy authentication required (exit code 8)", output)
        self.assertIn("check the proxy's user and password", output)

    @coroutine_test
    async def test_a_proxy_that_is_down_exits_7_naming_the_proxy(self) -> None:
        await self.start(proxy_running=False)
        code, output = await self.check("--proxy", self.proxy.url, "--ca-bundle", str(self.ca_file))
        self.assertEqual(code, check.EXIT_UNREACHABLE, output)
        self.assertIn("proxy unreachable (exit code 7)", output)
        self.assertIn(f"the proxy {self.proxy.url} is unreachable (connection refused)", output)

    @coroutine_test
    async def test_a_refused_connect_exits_7_quoting_the_status_line(self) -> None:
        await self.start()
        # A port the proxy is not told to CONNECT to.
        self.proxy.config.write_text(
            self.proxy.config.read_text().replace(f"ConnectPort {self.target_port}\n", "")
        )
        self.proxy.stop()
        await until(lambda: not port_open(self.proxy.port), what="tinyproxy stopped")
        await self.proxy.start()
        code, output = await self.check("--proxy", self.proxy.url, "--ca-bundle", str(self.ca_file))
        self.assertEqual(code, check.EXIT_UNREACHABLE, output)
        self.assertIn("proxy refused the connection (exit code 7)", output)
        self.assertIn("it answered 'HTTP/1.1 403 Access violation'", output)

    @coroutine_test
    async def test_without_the_ca_bundle_exits_9_naming_the_option(self) -> None:
        await self.start()
        code, output = await self.check("--proxy", self.proxy.url)
        self.assertEqual(code, check.EXIT_TLS, output)
        self.assertIn("TLS verification failed (exit code 9)", output)
        self.assertIn("--ca-bundle", output)
