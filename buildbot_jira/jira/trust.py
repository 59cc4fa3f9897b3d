"""Which certificates the transport trusts, and what it says when one is not trusted.

The system's trust roots by default. A ``ca_bundle`` (a PEM file; or, when
none is given, ``REQUESTS_CA_BUNDLE`` or ``SSL_CERT_FILE`` as requests reads
them) adds the certificate authority of a proxy that re-signs TLS, or
replaces the system's roots with ``ca_bundle_only``. There is no way to turn
verification off: a certificate is always checked, for the host that was
asked for, never for a proxy in between.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import attrs
from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning
from OpenSSL import SSL, crypto
from twisted.internet import ssl
from twisted.internet._sslverify import IOpenSSLTrustRoot  # not re-exported by twisted.internet.ssl
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from zope.interface import implementer

from buildbot_jira.jira.errors import JiraConfigError

__all__ = [
    "CA_BUNDLE_VARIABLES",
    "CertificateProblem",
    "TrustPolicy",
    "TrustSettings",
    "load_ca_bundle",
]

#: The variables that name a bundle when ``ca_bundle`` is not given, in requests' order.
CA_BUNDLE_VARIABLES: Final = ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")

# OpenSSL's X509_V_ERR_* numbers that a re-signing proxy or a wrong bundle causes.
_VERIFY_ERRORS: Final[Mapping[int, str]] = {
    2: "its issuer's certificate is not known",
    9: "it is not valid yet",
    10: "it has expired",
    18: "it is self-signed",
    19: "its chain ends in a self-signed certificate that is not trusted",
    20: "its issuer is not a trusted certificate authority",
    21: "its issuer is not a trusted certificate authority",
}


def load_ca_bundle(path: object, argument: str) -> tuple[x509.Certificate, ...]:
    """The certificates of the PEM file at ``path``; :class:`JiraConfigError` if there are none."""
    if not isinstance(path, str | Path) or not str(path):
        raise JiraConfigError(f"{argument} must be the path of a PEM file, not {path!r}")
    try:
        data = Path(path).read_bytes()
    except OSError as problem:
        raise JiraConfigError(
            f"{argument} {str(path)!r} cannot be read: {problem.strerror}"
        ) from None
    try:
        with warnings.catch_warnings():
            # System bundles hold a few old roots that cryptography frowns on
            # (negative serial numbers); OpenSSL still uses them, and so do we.
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        certificates = []
    if not certificates:
        raise JiraConfigError(
            f"{argument} {str(path)!r} holds no PEM certificate "
            "(-----BEGIN CERTIFICATE----- blocks)"
        )
    return tuple(certificates)


@attrs.frozen(kw_only=True)
class TrustSettings:
    """The trust arguments as checked: a bundle's path, and whether it stands alone."""

    ca_bundle: str | None = None
    ca_bundle_only: bool = False

    def bundle_path(self, environ: Mapping[str, str]) -> tuple[str, str] | None:
        """The bundle to load and what named it (the argument or a variable), if any."""
        if self.ca_bundle is not None:
            return self.ca_bundle, "ca_bundle"
        for name in CA_BUNDLE_VARIABLES:
            value = environ.get(name, "").strip()
            if value:
                return value, f"the environment variable {name}"
        return None


@attrs.define
class CertificateProblem:
    """What OpenSSL said of the server's certificate during one handshake, if anything."""

    issuer: str | None = None
    reason: str | None = None

    def observe(self, connection: Any, certificate: Any, errno: int, depth: int, ok: int) -> bool:
        """OpenSSL's verify callback: keep the first failure, decide nothing."""
        if not ok and self.reason is None:
            self.reason = _VERIFY_ERRORS.get(errno, f"OpenSSL verify error {errno}")
            self.issuer = certificate.to_cryptography().issuer.rfc4514_string() or "(no name)"
        return bool(ok)


@implementer(IOpenSSLTrustRoot)
class _BundleTrust:
    """The bundle's certificates, with or without the system's roots."""

    def __init__(self, certificates: tuple[x509.Certificate, ...], *, system: bool) -> None:
        self._certificates = certificates
        self._system = system

    def _addCACertsToContext(self, context: SSL.Context) -> None:
        if self._system:
            context.set_default_verify_paths()
        store = context.get_cert_store()
        assert store is not None
        for certificate in self._certificates:
            store.add_cert(crypto.X509.from_cryptography(certificate))


@implementer(IOpenSSLClientConnectionCreator)
class _ObservedCreator:
    """Twisted's client TLS options; OpenSSL's verdict is kept in a :class:`CertificateProblem`."""

    def __init__(self, options: Any, problem: CertificateProblem) -> None:
        self._options = options
        self._problem = problem

    def clientConnectionForTLS(self, tlsProtocol: Any) -> SSL.Connection:
        """The connection of Twisted's options, with a verify callback that takes notes."""
        connection: SSL.Connection = self._options.clientConnectionForTLS(tlsProtocol)
        connection.set_verify(
            SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, self._problem.observe
        )
        return connection


class TrustPolicy:
    """Builds the TLS client options for each host, with the configured trust roots.

    :param settings: the ``ca_bundle`` arguments.
    :param environ: read for ``REQUESTS_CA_BUNDLE`` and ``SSL_CERT_FILE``
        when ``ca_bundle`` is not given.
    """

    def __init__(self, settings: TrustSettings, environ: Mapping[str, str]) -> None:
        found = settings.bundle_path(environ)
        if found is None:
            if settings.ca_bundle_only:
                raise JiraConfigError("ca_bundle_only needs a ca_bundle")
            self._root: IOpenSSLTrustRoot = ssl.platformTrust()
            self.bundle: str | None = None
            #: What a certificate is checked against, for error messages.
            self.description = "the system's trust roots"
        else:
            path, argument = found
            certificates = load_ca_bundle(path, argument)
            self._root = _BundleTrust(certificates, system=not settings.ca_bundle_only)
            self.bundle = path
            self.description = (
                f"{path} alone"
                if settings.ca_bundle_only
                else f"the system's trust roots and {path}"
            )
        self._options: dict[str, Any] = {}

    def creator_for(self, hostname: str, problem: CertificateProblem) -> Any:
        """TLS client options for ``hostname``, noting any certificate problem in ``problem``."""
        options = self._options.get(hostname)
        if options is None:
            # One set of options (one OpenSSL context) per host, as Twisted's own policy keeps.
            options = self._options[hostname] = ssl.optionsForClientTLS(
                hostname, trustRoot=self._root
            )
        return _ObservedCreator(options, problem)
