"""Repositories for development information: stable IDs, browsable URLs, URL templates (pure).

Buildbot knows a repository by whatever URL its change source was given, and
the same repository comes spelled many ways: ``git@host:team/app.git``,
``ssh://git@host:22/team/app``, ``https://user:token@HOST/team/app.git/``.
:func:`locate` reads any of them (a local path too) into a
:class:`RepositoryLocation`; :func:`repository_id` gives every spelling of
one repository the same Jira ID, and :func:`safe_url` makes any URL fit to
show in Jira. None of them ever lets credentials through: user names,
passwords and tokens in the authority, and query parameters named like
secrets, are dropped before anything is derived from a URL.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Mapping
from typing import Final
from urllib.parse import quote

import attrs

__all__ = [
    "MAX_URL_LENGTH",
    "PLACEHOLDERS",
    "RepositoryLocation",
    "locate",
    "render_template",
    "repository_id",
    "repository_path",
    "safe_url",
    "template_problem",
    "url_quote",
]

#: The contract's limit on every URL.
MAX_URL_LENGTH: Final = 2000

#: The placeholders of the URL templates (``commit_url``, ``branch_url``, ``repository_url``).
PLACEHOLDERS: Final = frozenset(
    {
        "repository",
        "revision",
        "short_revision",
        "branch",
        "name",
        "host",
        "project",
        "codebase",
        "changeid",
    }
)

# scheme://authority/path?query#fragment, read leniently: it never fails.
_URL: Final = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<authority>[^/?#]*)(?P<path>[^?#]*)"
    r"(?:\?(?P<query>[^#]*))?(?:#(?P<fragment>.*))?",
    re.DOTALL,
)
# Git's scp-like syntax, [user@]host:path; without a user, a one-letter host
# is a Windows drive (C:\\repos).
_SCP: Final = re.compile(
    r"(?:[^@/\s]+@(?P<host>\[[^\]/]+\]|[^@/:\s\[\]]+)|(?P<bare>\[[^\]/]+\]|[^@/:\s\[\]]{2,}))"
    r":(?P<path>.*)",
    re.DOTALL,
)
# Query parameters (and fragments) that carry secrets.
_SECRET_NAME: Final = re.compile(
    r"(?i).*(?:token|secret|passw|pwd|api[_-]?key|credential|signature|session).*"
    r"|auth|authorization|key|sig|code|x-amz-.*"
)
_UNSAFE: Final = re.compile(r"[\s\x00-\x1f\x7f]")
_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_SLUG_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._-]+")
_WEB_SCHEMES: Final = frozenset({"http", "https"})
# Long enough to stay readable, short enough to leave room for entity IDs in slot keys.
_SLUG_LENGTH: Final = 200


@attrs.frozen
class RepositoryLocation:
    """Where a repository lives, without credentials.

    ``host`` is the lower-case host name ("" for a local path); ``path`` is
    the repository's path without leading or trailing ``/`` and without
    ``.git`` (``team/app``); ``web`` is its browsable ``https`` (or the
    given ``http``) URL, or None when it has no host.
    """

    host: str
    path: str
    web: str | None

    @property
    def identity(self) -> str:
        """What tells this repository from every other one, the same for every spelling."""
        return f"{self.host}/{self.path}" if self.host else f"local:{self.path}"

    @property
    def name(self) -> str:
        """The last segment of the path ("" when there is none)."""
        return self.path.rpartition("/")[2]


def _clean_path(path: str) -> str:
    """``path`` without repeated, leading or trailing ``/``, and without ``.git``."""
    path = re.sub(r"[/\\]+", "/", path.strip()).strip("/")
    return path.removesuffix(".git").rstrip("/")


def _host_and_port(authority: str) -> tuple[str, str]:
    """The lower-case host and the port of a URL authority, without its user information."""
    hostport = authority.rpartition("@")[2]
    if hostport.startswith("["):
        host, _, rest = hostport.partition("]")
        return host.lower() + "]", rest.removeprefix(":")
    host, _, port = hostport.partition(":")
    return host.lower(), port


def locate(url: str) -> RepositoryLocation:
    """Read a repository URL (or local path) of any spelling; never raises."""
    text = url.strip()
    matched = _URL.fullmatch(text)
    if matched is not None:
        scheme = matched["scheme"].lower()
        host, port = _host_and_port(matched["authority"])
        path = _clean_path(matched["path"])
        if scheme == "file" or not host:
            return RepositoryLocation(host="", path=path, web=None)
        web_scheme = scheme if scheme in _WEB_SCHEMES else "https"
        web_port = f":{port}" if scheme in _WEB_SCHEMES and port.isdigit() else ""
        web = safe_url(f"{web_scheme}://{host}{web_port}/{path}".rstrip("/"))
        return RepositoryLocation(host=host, path=path, web=web)
    scp = _SCP.fullmatch(text)
    if scp is not None and not scp["path"].startswith("//"):
        host, path = (scp["host"] or scp["bare"]).lower(), _clean_path(scp["path"])
        web = safe_url(f"https://{host}/{path}".rstrip("/"))
        return RepositoryLocation(host=host, path=path, web=web)
    return RepositoryLocation(host="", path=_clean_path(text), web=None)


def repository_id(url: str) -> str:
    """The Jira ID of the repository at ``url``: the same for every spelling of it.

    It reads as the host and path (``git.example.com_team_app``), with a
    hash of the normalised location after it so that repositories whose
    readable parts coincide stay apart; it uses only the characters the
    contract allows (letters, digits, ``~ . - _``) and never credentials.

    >>> repository_id("git@git.example.com:team/app.git")
    'git.example.com_team_app-b851c6557c9a'
    """
    location = locate(url)
    digest = hashlib.sha256(location.identity.encode("utf-8", "surrogatepass")).hexdigest()
    readable = f"{location.host}/{location.path}" if location.host else location.path
    slug = _SLUG_UNSAFE.sub("_", readable)[:_SLUG_LENGTH].strip("_.-") or "repository"
    return f"{slug}-{digest[:12]}"


def repository_path(url: str) -> str:
    """The repository's path, the same for every spelling: ``team/app`` for
    ``git@host:team/app.git``, ``srv/git/app`` for ``/srv/git/app``."""
    return locate(url).path


def _without_secrets(query: str) -> str:
    """``query`` (``a=1&b=2``) without the parameters whose names say they are secret."""
    kept = [p for p in re.split("[&;]", query) if p and not _SECRET_NAME.fullmatch(p.split("=")[0])]
    return "&".join(kept)


def safe_url(url: object) -> str | None:
    """``url`` fit for Jira: absolute, at most 2,000 characters, no credentials; else None.

    User information is dropped, and so are query parameters (and a
    fragment) named like secrets (``token``, ``access_token``, ``sig``...);
    whitespace and control characters are percent-encoded.
    """
    if not isinstance(url, str):
        return None
    # Lone surrogates (from undecodable bytes) cannot be sent as JSON text.
    matched = _URL.fullmatch(_SURROGATE.sub("\ufffd", url.strip()))
    if matched is None:
        return None
    authority = matched["authority"].rpartition("@")[2]
    if not authority or not _host_and_port(authority)[0]:
        return None
    text = f"{matched['scheme']}://{authority}{matched['path']}"
    query = _without_secrets(matched["query"] or "")
    if query:
        text += f"?{query}"
    fragment = matched["fragment"]
    if fragment and "=" in fragment:
        fragment = _without_secrets(fragment)
    if fragment:
        text += f"#{fragment}"
    text = _UNSAFE.sub(lambda m: quote(m.group(), safe=""), text)
    return text if len(text) <= MAX_URL_LENGTH else None


def url_quote(text: str, safe: str = "") -> str:
    """``text`` percent-encoded for a URL; undecodable characters become U+FFFD first."""
    return quote(_SURROGATE.sub("\ufffd", text), safe=safe)


def template_problem(template: str) -> str | None:
    """None when ``template`` uses only :data:`PLACEHOLDERS`; else what is wrong with it."""
    known = ", ".join(f"{{{name}}}" for name in sorted(PLACEHOLDERS))
    try:
        fields = [
            (f, spec) for _, f, spec, _ in string.Formatter().parse(template) if f is not None
        ]
    except ValueError as error:
        return (
            f"URL template {template!r} cannot be read ({error}); write a literal brace "
            "as {{ or }}"
        )
    for field, spec in fields:
        if field not in PLACEHOLDERS:
            return (
                f"URL template {template!r} names unknown placeholder {{{field}}}; known: {known}"
            )
        if spec and "{" in spec:
            return f"URL template {template!r} nests a placeholder in {{{field}:{spec}}}"
    return None


def render_template(template: str | None, values: Mapping[str, str]) -> str | None:
    """``template`` filled with ``values`` and made safe (:func:`safe_url`), or None.

    A template that fails to format (a stray brace, a format spec that does
    not apply) gives None, never an exception: the caller falls back.
    """
    if template is None:
        return None
    try:
        text = template.format_map(values)
    except (ValueError, KeyError, IndexError, AttributeError, TypeError):
        return None
    return safe_url(text)
