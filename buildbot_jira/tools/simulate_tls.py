"""``buildbot-jira simulate --tls``: the simulator on HTTPS, with an authority of its own.

A fresh authority for each run (made by ``trustme``, whose whole purpose
is test authorities), a certificate for this machine's names, and the
authority's PEM written out, so that a client can be told to trust it with
``ca_bundle`` (``--ca-bundle`` for ``buildbot-jira check``): the whole path,
an HTTPS proxy included, can be rehearsed on one machine.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Final

from buildbot_jira.simulator.web import tls_from_pem

__all__ = ["DEFAULT_CA_FILE", "add_tls_arguments", "server_tls", "tls_ca_file"]

#: Where ``--tls`` writes the authority's certificate unless told otherwise.
DEFAULT_CA_FILE: Final = "simulator-ca.pem"


def add_tls_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--tls`` and ``--tls-ca-file`` to the ``simulate`` options."""
    parser.add_argument(
        "--tls",
        action="store_true",
        help="serve HTTPS, with a certificate from a certificate authority made for this run",
    )
    parser.add_argument(
        "--tls-ca-file",
        metavar="PATH",
        default=DEFAULT_CA_FILE,
        help="with --tls, where to write the authority's PEM, for ca_bundle (%(default)s)",
    )


def tls_ca_file(args: argparse.Namespace) -> list[str]:
    """The full path of the authority's PEM with ``--tls`` (a list of one), else none."""
    return [str(Path(args.tls_ca_file).resolve())] if getattr(args, "tls", False) else []


def server_tls(args: argparse.Namespace) -> Any:
    """The server TLS options, with the authority's PEM written out; None without ``--tls``.

    Raises ``ValueError`` when ``trustme`` is missing or the PEM cannot be written.
    """
    if not getattr(args, "tls", False):
        return None
    try:
        import trustme
    except ImportError:
        raise ValueError(
            "--tls makes its certificate authority with trustme: pip install trustme"
        ) from None
    authority = trustme.CA(organization_name="buildbot-jira simulator")
    names = sorted({"127.0.0.1", "localhost", "::1", args.host} - {"", "0.0.0.0", "::"})  # noqa: S104
    issued = authority.issue_cert(*names)
    path = Path(args.tls_ca_file)
    try:
        authority.cert_pem.write_to_path(str(path))
    except OSError as problem:
        raise ValueError(f"--tls-ca-file {path}: {problem.strerror}") from None
    chain = b"".join(blob.bytes() for blob in issued.cert_chain_pems)
    return tls_from_pem(issued.private_key_pem.bytes(), chain)
