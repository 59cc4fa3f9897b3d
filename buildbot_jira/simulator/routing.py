"""A route table: which handler answers a method and a path.

Paths are matched segment by segment, on percent-decoded segments, so that a
pipeline ID holding ``/`` (sent as ``%2F``) stays one segment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TypeAlias

import attrs

from buildbot_jira.simulator.contract import EntityType
from buildbot_jira.simulator.exchange import Answer, IncomingRequest, error_messages

__all__ = ["Guard", "Handler", "Route", "Router", "gateway_path"]

#: A handler: the request and the values of the pattern's ``{name}`` segments.
Handler: TypeAlias = Callable[[IncomingRequest, Mapping[str, str]], Answer]


def gateway_path(entity: str, *tail: str) -> tuple[str, ...]:
    """The pattern of a DevOps API path through the gateway."""
    return ("jira", entity, "0.1", "cloud", "{cloudId}", *tail)


@attrs.frozen
class Route:
    """``method`` on paths like ``pattern`` (``{name}`` matches any one segment).

    ``entity`` names the entity type of a DevOps API route, whose caller
    needs that permission.
    """

    method: str
    pattern: tuple[str, ...]
    handler: Handler
    entity: EntityType | None = None

    def match(self, segments: Sequence[str]) -> dict[str, str] | None:
        """The values of the ``{name}`` segments if ``segments`` match, else ``None``."""
        if len(segments) != len(self.pattern):
            return None
        params: dict[str, str] = {}
        for part, segment in zip(self.pattern, segments, strict=True):
            if part.startswith("{"):
                params[part[1:-1]] = segment
            elif part != segment:
                return None
        return params

    def endpoint(self, params: Mapping[str, str]) -> str:
        """The endpoint as Jira's rate limits count it: method and path, per site.

        Only the site's cloud ID is filled in: the GET of one build is the
        same endpoint whichever build it names.
        """
        cloud_id = params.get("cloudId", "{cloudId}")
        parts = (cloud_id if part == "{cloudId}" else part for part in self.pattern)
        return f"{self.method} /{'/'.join(parts)}"


#: Asked before a matching route's handler runs; an answer refuses the request.
Guard: TypeAlias = Callable[[Route, Mapping[str, str]], Answer | None]


class Router:
    """Answers a request with the first route that matches its method and path."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = tuple(routes)

    def __repr__(self) -> str:
        return f"<Router routes={len(self.routes)}>"

    def match(self, incoming: IncomingRequest) -> tuple[Route, dict[str, str]] | None:
        """The route for ``incoming``'s method and path, with its parameters, if one matches."""
        for route in self.routes:
            if route.method == incoming.method:
                params = route.match(incoming.segments)
                if params is not None:
                    return route, params
        return None

    def answer(self, incoming: IncomingRequest, *, guard: Guard | None = None) -> Answer:
        """The handler's answer; 405 (with ``Allow``) for a known path, else 404."""
        allowed: list[str] = []
        for route in self.routes:
            params = route.match(incoming.segments)
            if params is None:
                continue
            if route.method != incoming.method:
                allowed.append(route.method)
                continue
            refused = guard(route, params) if guard is not None else None
            if refused is not None:
                return refused
            return route.handler(incoming, params)
        if allowed:
            return Answer(
                405,
                error_messages(f"Method {incoming.method} is not allowed here"),
                {"Allow": ", ".join(allowed)},
            )
        return Answer(404, error_messages(f"No resource at {incoming.raw_path}"))
