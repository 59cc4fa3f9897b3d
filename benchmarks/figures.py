"""Small helpers that turn measurements into the figures and tables the benchmarks print."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import buildbot_jira

__all__ = ["format_table", "milliseconds", "percentile", "ratio", "what_is_measured"]


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of ``values`` (``fraction`` 0.5 is the median); NaN if none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def milliseconds(seconds: float) -> str:
    """``seconds`` as whole milliseconds, or ``-`` when unknown."""
    return "-" if math.isnan(seconds) else f"{seconds * 1000:.0f}"


def ratio(after: float, before: float) -> str:
    """``after / before`` as a factor (``1.23x``), or ``-`` when ``before`` is 0."""
    return f"{after / before:.2f}x" if before else "-"


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table: the first column aligned left, the others right."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first, *rest = cells
        return "  ".join(
            [first.ljust(widths[0]), *(c.rjust(w) for c, w in zip(rest, widths[1:], strict=True))]
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def what_is_measured() -> str:
    """Which buildbot-jira is measured, on how many CPUs: the first line of every benchmark."""
    package = Path(buildbot_jira.__file__).resolve().parent
    version = buildbot_jira.__version__
    python = sys.version.split()[0]
    return f"buildbot-jira {version} from {package}; Python {python}; {os.cpu_count()} CPUs"
