"""Who shares a Jira client: the names its log lines begin with.

One :class:`~buildbot_jira.jira.client.JiraCloud` serves every reporter and
step of a master that names the same site and credentials, so a line about
its retries or Jira's rate limits concerns all of them. :class:`ClientUsers`
holds their names (the connection pool adds and drops them) so that each
such line says whose requests it is about, as every other line of the plugin
names its reporter or step.
"""

from __future__ import annotations

from collections import Counter

__all__ = ["UNNAMED", "ClientUsers"]

#: What a line names while no user has given a name (a program such as ``check``).
UNNAMED = "buildbot-jira"


class ClientUsers:
    """The names of the services that use one client, each counted once per connection."""

    def __init__(self) -> None:
        self._names: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"<ClientUsers {self}>"

    def __str__(self) -> str:
        """The names in the order they came, comma-separated (:data:`UNNAMED` for none)."""
        return ", ".join(self._names) or UNNAMED

    def add(self, name: str) -> None:
        """One more connection of ``name``."""
        self._names[name] += 1

    def discard(self, name: str) -> None:
        """One connection of ``name`` fewer; the name goes with its last connection."""
        if self._names[name] > 1:
            self._names[name] -= 1
        else:
            del self._names[name]
