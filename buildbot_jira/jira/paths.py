"""The paths of the DevOps APIs under a site's cloud ID: pure string building.

Every value that becomes a path segment is percent-encoded whole, so that a
pipeline or environment ID with a slash (``ci.example.com/shop``) stays one
segment.
"""

from __future__ import annotations

from urllib.parse import quote

__all__ = ["api_path", "build_path", "deployment_path", "segment"]


def segment(value: object) -> str:
    """``value`` as one percent-encoded path segment."""
    return quote(str(value), safe="")


def api_path(api_url: str, entity: str, cloud_id: str, path: str) -> str:
    """The URL of ``path`` in the ``entity`` API of the site with ``cloud_id``."""
    return f"{api_url}/jira/{entity}/0.1/cloud/{segment(cloud_id)}/{path}"


def build_path(pipeline_id: str, build_number: int) -> str:
    """The path of one build, under the builds API."""
    return f"pipelines/{segment(pipeline_id)}/builds/{int(build_number)}"


def deployment_path(pipeline_id: str, environment_id: str, sequence_number: int) -> str:
    """The path of one deployment, under the deployments API."""
    return (
        f"pipelines/{segment(pipeline_id)}/environments/{segment(environment_id)}"
        f"/deployments/{int(sequence_number)}"
    )
