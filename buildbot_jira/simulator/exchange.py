"""Requests and answers as plain values: what the twisted.web layer and the APIs pass each other.

The web layer (:mod:`buildbot_jira.simulator.web`) turns a twisted.web request
into an :class:`IncomingRequest`, the simulator decides a :class:`Reception`
for it, and the web layer writes its :class:`Answer`. Nothing here knows of
twisted.web, so every handler can be tested with plain values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

import attrs

from buildbot_jira.simulator.state import ReceivedRequest

__all__ = [
    "NOT_JSON",
    "Answer",
    "IncomingRequest",
    "Reception",
    "error_answer",
    "error_messages",
    "parse_json",
]

#: What :func:`parse_json` gives for a body that is not JSON.
NOT_JSON: Final = object()


@attrs.frozen
class IncomingRequest:
    """A request as the simulator's handlers see it.

    ``segments`` are the path's segments, percent-decoded (``raw_path`` is
    the path as sent); ``headers`` maps lower-case names to the first value;
    ``site_url`` is where the client reached the simulator (from its
    ``Host`` header); ``received_at`` is the simulator's clock on arrival.
    """

    method: str
    raw_path: str
    segments: tuple[str, ...]
    headers: Mapping[str, str]
    body: bytes
    site_url: str
    received_at: float

    def header(self, name: str) -> str:
        """The value of header ``name`` (any case), or ``""``."""
        return self.headers.get(name.lower(), "")

    @property
    def first_segment(self) -> str:
        """The path's first segment: ``jira``, ``oauth``, ``_simulator``..."""
        return self.segments[0] if self.segments else ""


@attrs.frozen
class Answer:
    """An HTTP answer: status, body and extra headers.

    The body is JSON (``None`` for none), or ``bytes`` sent as they are with
    the ``Content-Type`` that ``headers`` give.
    """

    status: int
    body: Any = None
    headers: Mapping[str, str] = attrs.field(factory=dict)

    def with_headers(self, headers: Mapping[str, str]) -> Answer:
        """This answer with ``headers`` added (they win over its own of the same name)."""
        if not headers:
            return self
        return attrs.evolve(self, headers={**self.headers, **headers})


@attrs.frozen
class Reception:
    """What the simulator does with one request.

    ``record`` is the request as recorded (``None`` for the simulator's own
    views, which are not recorded); ``answer`` is ``None`` when the
    connection is to be cut without an answer; ``delay`` is how long the
    answer waits, in seconds of the simulator's clock.
    """

    record: ReceivedRequest | None
    answer: Answer | None
    delay: float = 0.0


def error_messages(*messages: str) -> list[dict[str, str]]:
    """The contract's ErrorMessages body."""
    return [{"message": message} for message in messages]


def error_answer(status: int, *messages: str, entity: str | None = None) -> Answer:
    """An error answer in the shape that the API of ``entity`` uses."""
    if entity == "devinfo":
        # The devinfo API wraps its ErrorMessages in an object.
        return Answer(status, {"errorMessages": error_messages(*messages)})
    return Answer(status, error_messages(*messages))


def parse_json(body: bytes) -> Any:
    """``body`` parsed as UTF-8 JSON, or :data:`NOT_JSON`."""
    try:
        return json.loads(body.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError is a ValueError too
        return NOT_JSON
