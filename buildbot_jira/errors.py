"""Errors that buildbot-jira raises.

Every message says what went wrong and what to check. None of them ever
contains a client secret or an access token: callers build messages from
names and Jira's own error texts only.
"""

from __future__ import annotations


class JiraError(Exception):
    """Base class of every error that buildbot-jira raises."""


class JiraConfigError(JiraError):
    """The configuration is wrong (bad type, bad URL, unknown option)."""


class JiraAuthError(JiraError):
    """Jira refused the OAuth client credentials or the access token."""


class JiraSiteError(JiraError):
    """The Jira site could not be identified (no cloud ID for that site name)."""


class JiraRequestError(JiraError):
    """Jira answered with an error that retrying the same request cannot fix.

    ``status`` is the HTTP status; ``messages`` holds Jira's own error texts.
    """

    def __init__(self, message: str, *, status: int, messages: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.messages = messages


class JiraPermissionError(JiraRequestError):
    """403: the credentials lack the permission for that kind of data."""


class JiraUnavailableError(JiraError):
    """Jira could not be reached, or kept failing, after every allowed retry.

    ``retry_after`` is the delay that Jira last asked for, if any.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
