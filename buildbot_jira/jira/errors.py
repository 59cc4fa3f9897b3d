"""Errors that buildbot-jira raises, and what each one means for the caller.

One taxonomy for the whole plugin: every error class says whether the same
request may work later without anybody changing anything (``retryable``),
whether an update that met it is worth keeping until it does
(``keeps_update``), a short ``summary`` for state strings and log lines, and a
``hint`` that tells an administrator what to check. The outbox, the deployment
gate and ``buildbot-jira check`` read these instead of sorting errors each in
their own way.

None of the messages ever contains a client secret or an access token:
callers build messages from names and Jira's own error texts only.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "JiraAuthError",
    "JiraConfigError",
    "JiraError",
    "JiraPermissionError",
    "JiraRateLimitedError",
    "JiraRequestError",
    "JiraSiteError",
    "JiraUnavailableError",
]


class JiraError(Exception):
    """Base class of every error that buildbot-jira raises."""

    #: Whether the same request may succeed later with nothing changed.
    retryable: ClassVar[bool] = False
    #: A few words for a step's state string or a log line.
    summary: ClassVar[str] = "Jira refused the request"
    #: What an administrator should check.
    hint: ClassVar[str] = "Check the site, api_url and site_url arguments."
    #: The seconds Jira asked the caller to wait before trying again, if it did.
    retry_after: float | None = None

    @property
    def keeps_update(self) -> bool:
        """Whether an update that met this error is kept for a later try.

        Configuration problems keep it too: once the administrator fixes the
        credentials, permission or site, what waited is delivered.
        """
        return True

    @property
    def configuration_problem(self) -> bool:
        """Whether a person must change something before it can work."""
        return not self.retryable


class JiraConfigError(JiraError):
    """The configuration is wrong (bad type, bad URL, unknown option)."""

    summary = "configuration error"
    hint = "Fix the argument named in the message in master.cfg."


class JiraAuthError(JiraError):
    """Jira refused the OAuth client credentials or the access token."""

    summary = "credentials refused"
    hint = (
        "Check client_id and client_secret: they must be OAuth 2.0 credentials of this "
        "Jira site (Jira settings > Apps > OAuth credentials), and api_url must be the "
        "OAuth gateway."
    )


class JiraSiteError(JiraError):
    """The Jira site could not be identified (no cloud ID for that site name)."""

    summary = "unknown site"
    hint = (
        "Check site (the host name of your Jira, such as example.atlassian.net), "
        "site_url and cloud_id."
    )


class JiraRequestError(JiraError):
    """Jira answered with an error that retrying the same request cannot fix.

    ``status`` is the HTTP status; ``messages`` holds Jira's own error texts.
    A 400 (the request as a whole is malformed) or a 413 for a single entity
    cannot be fixed by anyone but the sender, so the update is dropped; any
    other status (a redirect of a renamed site, a 404 of a wrong cloud ID)
    is a configuration problem whose fix delivers what waits.
    """

    #: The statuses for which the payload itself is at fault.
    UNFIXABLE: ClassVar[frozenset[int]] = frozenset({400, 413})

    def __init__(self, message: str, *, status: int, messages: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.messages = messages

    @property
    def keeps_update(self) -> bool:
        """Dropped when the payload is at fault (400, 413); kept otherwise."""
        return self.status not in self.UNFIXABLE


class JiraPermissionError(JiraRequestError):
    """403: the credentials lack the permission for that kind of data."""

    summary = "permission missing"
    hint = (
        "The OAuth credentials lack the permission for this kind of data; a Jira admin "
        "can grant it where the credentials were created (Jira settings > Apps > OAuth "
        "credentials)."
    )


class JiraUnavailableError(JiraError):
    """Jira could not be reached, or kept failing, after every allowed retry.

    ``retry_after`` is the delay that Jira last asked for, if any.
    """

    retryable = True
    summary = "Jira unavailable"
    hint = "Check the network path to Jira (proxy, firewall) and Atlassian's status page."

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class JiraRateLimitedError(JiraUnavailableError):
    """429: Jira asks for fewer requests, and the client did not wait it out.

    ``reason`` is Jira's ``RateLimit-Reason`` (``jira-burst-based``,
    ``jira-per-issue-on-write``, ``jira-quota-based``...), None when it gave
    none; ``retry_after`` the seconds it asked for, None when it did not say.
    The client's rate limits already hold back what the reason names, so a
    caller that keeps the update only needs to try again later.
    """

    summary = "rate limited by Jira"
    hint = (
        "Jira asks for fewer requests. Occasional limits need nothing; frequent ones "
        "call for a larger min_request_interval, or fewer reporters sending to this site."
    )

    def __init__(
        self, message: str, *, reason: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, retry_after=retry_after)
        self.reason = reason
