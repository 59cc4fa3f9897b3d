"""Tests of buildbot_jira.simulator.routing: matching methods and paths to handlers."""

from __future__ import annotations

from collections.abc import Mapping

from twisted.trial import unittest

from buildbot_jira.simulator.exchange import Answer, IncomingRequest
from buildbot_jira.simulator.routing import Route, Router, gateway_path


def incoming(method: str, *segments: str) -> IncomingRequest:
    return IncomingRequest(
        method=method,
        raw_path="/" + "/".join(segments),
        segments=segments,
        headers={},
        body=b"",
        site_url="http://jira.example",
        received_at=0.0,
    )


def echo(request: IncomingRequest, params: Mapping[str, str]) -> Answer:
    return Answer(200, {"method": request.method, **params})


ROUTER = Router(
    [
        Route("GET", gateway_path("builds", "pipelines", "{pipelineId}"), echo, "builds"),
        Route("DELETE", gateway_path("builds", "pipelines", "{pipelineId}"), echo, "builds"),
        Route("GET", ("_edge", "tenant_info"), echo),
    ]
)


class RouterTests(unittest.TestCase):
    def test_named_segments_are_passed_to_the_handler_whole(self) -> None:
        answer = ROUTER.answer(incoming("GET", *gateway_path("builds", "pipelines", "a/b c")))
        self.assertEqual(
            answer.body, {"method": "GET", "cloudId": "{cloudId}", "pipelineId": "a/b c"}
        )

    def test_a_known_path_with_another_method_is_405_naming_the_allowed_ones(self) -> None:
        answer = ROUTER.answer(incoming("POST", *gateway_path("builds", "pipelines", "p")))
        self.assertEqual(answer.status, 405)
        self.assertEqual(answer.headers, {"Allow": "GET, DELETE"})
        self.assertEqual(answer.body, [{"message": "Method POST is not allowed here"}])

    def test_an_unknown_path_is_404_naming_it(self) -> None:
        for segments in (("_edge",), ("_edge", "tenant_info", "more"), ("other", "tenant_info")):
            answer = ROUTER.answer(incoming("GET", *segments))
            self.assertEqual(answer.status, 404)
            self.assertEqual(answer.body, [{"message": f"No resource at /{'/'.join(segments)}"}])

    def test_a_guard_may_refuse_a_matching_route(self) -> None:
        seen: list[tuple[str | None, dict[str, str]]] = []

        def guard(route: Route, params: Mapping[str, str]) -> Answer | None:
            seen.append((route.entity, dict(params)))
            return Answer(403) if route.entity == "builds" else None

        path = gateway_path("builds", "pipelines", "p")
        self.assertEqual(ROUTER.answer(incoming("GET", *path), guard=guard).status, 403)
        self.assertEqual(
            ROUTER.answer(incoming("GET", "_edge", "tenant_info"), guard=guard).status, 200
        )
        self.assertEqual(
            seen, [("builds", {"cloudId": "{cloudId}", "pipelineId": "p"}), (None, {})]
        )

    def test_match_finds_the_route_of_a_method_and_path(self) -> None:
        path = gateway_path("builds", "pipelines", "p")
        matched = ROUTER.match(incoming("DELETE", *path))
        assert matched is not None
        route, params = matched
        self.assertEqual((route.method, route.entity), ("DELETE", "builds"))
        self.assertEqual(params, {"cloudId": "{cloudId}", "pipelineId": "p"})
        self.assertIsNone(ROUTER.match(incoming("POST", *path)))
        self.assertIsNone(ROUTER.match(incoming("GET", "_edge")))


class EndpointTests(unittest.TestCase):
    def test_an_endpoint_is_its_method_and_pattern_on_one_site(self) -> None:
        route = ROUTER.routes[0]
        self.assertEqual(
            route.endpoint({"cloudId": "c1", "pipelineId": "a"}),
            "GET /jira/builds/0.1/cloud/c1/pipelines/{pipelineId}",
        )
        # Whichever pipeline it names, the same endpoint; another site, another one.
        self.assertEqual(
            route.endpoint({"cloudId": "c1", "pipelineId": "b"}),
            route.endpoint({"cloudId": "c1", "pipelineId": "a"}),
        )
        self.assertNotEqual(
            route.endpoint({"cloudId": "c2", "pipelineId": "a"}),
            route.endpoint({"cloudId": "c1", "pipelineId": "a"}),
        )
        self.assertNotEqual(
            ROUTER.routes[1].endpoint({"cloudId": "c1"}), route.endpoint({"cloudId": "c1"})
        )
        self.assertEqual(ROUTER.routes[2].endpoint({}), "GET /_edge/tenant_info")
