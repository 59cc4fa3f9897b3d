"""The benchmarks: their figures from known requests, and each run end to end at tiny sizes."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import unittest

from benchmarks.bench_master import BuildEvent
from benchmarks.burst import delivery
from benchmarks.cost import Meter, Run, Window
from benchmarks.figures import format_table, percentile
from benchmarks.jira_process import ReceivedRequest, stored_at

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BULK = "/jira/builds/0.1/cloud/abc/bulk"


def post(at: float, *builds: tuple[str, int, str], status: int = 202) -> ReceivedRequest:
    """A bulk POST of ``(builder, number, state)`` builds, received at ``at``."""
    body = {
        "builds": [
            {"pipelineId": f"buildbot.example.com/{b}", "buildNumber": n, "state": state}
            for b, n, state in builds
        ]
    }
    return ReceivedRequest(method="POST", path=BULK, timestamp=at, status=status, body=body)


class FigureTests(unittest.TestCase):
    def test_stored_at_is_the_first_accepted_final_state_of_each_build(self) -> None:
        requests = [
            post(1.0, ("burst", 1, "in_progress")),
            post(2.0, ("burst", 1, "successful"), status=429),
            post(3.0, ("burst", 1, "successful"), ("idle", 1, "successful")),
            post(4.0, ("burst", 1, "successful"), ("burst", 2, "failed")),
            ReceivedRequest(method="POST", path="/oauth/token", timestamp=0.5, status=200, body={}),
        ]
        self.assertEqual(stored_at(requests, "burst"), {1: 3.0, 2: 4.0})

    def test_delivery_counts_the_finish_phase_from_the_first_end(self) -> None:
        finished = [BuildEvent("burst", 1, at=10.0), BuildEvent("burst", 2, at=10.5)]
        requests = [
            post(5.0, ("burst", 1, "in_progress")),  # before the run: not counted
            post(9.0, ("burst", 1, "in_progress"), ("burst", 2, "in_progress")),
            post(10.0, ("burst", 1, "successful"), status=429),
            post(11.0, ("burst", 1, "successful"), ("burst", 2, "successful")),
        ]
        figures = delivery(requests, finished, since=8.0, builder="burst")
        self.assertEqual(
            (figures.requests, figures.finish_requests, figures.rate_limited), (3, 2, 1)
        )
        self.assertEqual(figures.latencies, (1.0, 0.5))
        self.assertEqual(figures.per_build(figures.requests), "1.50 (3)")
        self.assertEqual(figures.latency(), "500 / 1000")

    def test_a_build_that_never_reached_jira_has_no_latency(self) -> None:
        finished = [BuildEvent("burst", 1, at=1.0), BuildEvent("burst", 2, at=1.0)]
        figures = delivery(
            [post(2.0, ("burst", 1, "successful"))], finished, since=0, builder="burst"
        )
        self.assertEqual(figures.latencies, (1.0,))

    def test_percentile_is_nearest_rank(self) -> None:
        values = [float(n) for n in range(1, 21)]
        self.assertEqual((percentile(values, 0.5), percentile(values, 0.95)), (10.0, 19.0))
        self.assertTrue(math.isnan(percentile([], 0.5)))

    def test_windows_per_build_and_growth(self) -> None:
        start = Meter(wall=0.0, reactor_cpu=0.0, process_cpu=0.0, database_calls=0)
        middle = Meter(wall=10.0, reactor_cpu=2.0, process_cpu=3.0, database_calls=5000)
        end = Meter(wall=25.0, reactor_cpu=4.0, process_cpu=7.0, database_calls=12500)
        run = Run(
            steps=1,
            reporter=True,
            windows=(Window.between(1, 50, start, middle), Window.between(51, 50, middle, end)),
        )
        self.assertEqual(run.windows[1].per_build(), (300.0, 40.0, 80.0, 150.0))
        self.assertEqual(run.database_growth(), "+50 %")
        self.assertEqual(run.total().per_build(), (250.0, 40.0, 70.0, 125.0))

    def test_format_table_aligns_columns(self) -> None:
        table = format_table(["", "a"], [["row", "1.00"], ["longer row", "2"]])
        self.assertEqual(
            table.splitlines(),
            ["               a", "----------  ----", "row         1.00", "longer row     2"],
        )


def start_benchmark(name: str, *arguments: str) -> subprocess.Popen[str]:
    """Start ``benchmarks/<name>.py`` as a user runs it."""
    return subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "benchmarks", f"{name}.py"), *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


class SmokeTests(unittest.TestCase):
    """Each benchmark at tiny sizes, so that they never rot; both run at once, to take less time."""

    runs: dict[str, subprocess.Popen[str]]

    @classmethod
    def setUpClass(cls) -> None:
        cls.runs = {
            "burst": start_benchmark(
                "burst",
                *("--builds", "2", "--idle-builds", "1", "--delays", "0"),
                *("--rate-limit", "2", "--rate-limit-builds", "2"),
                *("--idle-step-seconds", "0", "--idle-gap", "0.1"),
            ),
            "cost": start_benchmark("cost", "--builds", "2", "--window", "1", "--steps", "2"),
            "devinfo": start_benchmark(
                "devinfo", *("--changes", "5", "--trickle", "1", "--gap", "1.1")
            ),
        }

    @classmethod
    def tearDownClass(cls) -> None:
        for run in cls.runs.values():
            if run.poll() is None:
                run.terminate()  # the benchmark stops its simulator as it goes
                run.wait(timeout=30)

    def output(self, name: str) -> str:
        """What the benchmark printed; the test fails if it did not end well."""
        # Only a hang meets the timeout: the sizes take seconds.
        output, _ = self.runs[name].communicate(timeout=120)
        self.assertEqual(self.runs[name].returncode, 0, output)
        self.assertNotIn("NOT every build", output)
        self.assertNotIn("NOT every commit", output)
        self.assertNotIn("errors; the first", output)
        self.assertIn("buildbot-jira", output.splitlines()[0])
        return output

    def test_burst_prints_requests_rate_limits_and_latencies(self) -> None:
        output = self.output("burst")
        in_all = re.search(r"^bulk POSTs per build, in all\s+(\d+\.\d\d) \((\d+)\)$", output, re.M)
        assert in_all is not None, output
        # Two builds, two updates each: at least one request, at most one per update.
        self.assertTrue(1 <= int(in_all.group(2)) <= 4, output)
        self.assertRegex(output, r"(?m)^bulk POSTs per build, finish phase\s+\d+\.\d\d \(\d+\)$")
        self.assertRegex(output, r"(?m)^answers of 429\s+\d+$")
        self.assertRegex(output, r"(?m)^end -> stored in Jira, burst, p50 / p95 ms\s+\d+ / \d+$")
        self.assertRegex(output, r"(?m)^end -> stored in Jira, idle, .*\s+\d+ / \d+$")
        self.assertRegex(
            output,
            r"Burst limit of 2 requests/s per endpoint, 2 builds released together: \d+ answers"
            r"|Burst limit: this simulator has no --rate-limit",
        )
        self.assertIn("HttpStatusPush sends 2 requests per build", output)

    def test_cost_prints_each_window_and_the_ratios(self) -> None:
        output = self.output("cost")
        for reporter in ("without", "with"):
            for window in ("1-1", "2-2"):
                self.assertRegex(output, rf"(?m)^2\s+{reporter}\s+{window}(\s+\d+){{4}}$")
        self.assertRegex(output, r"(?m)^2(\s+\d+\.\d\dx){4}\s+[+-]\d+ %\s+[+-]\d+ %$")

    def test_devinfo_prints_requests_latencies_and_database_calls(self) -> None:
        output = self.output("devinfo")
        posts = re.search(
            r"^bulk POSTs per change\s+(\d\.\d{3}) \((\d+)\)\s+(\d\.\d{3}) \((\d+)\)$", output, re.M
        )
        assert posts is not None, output
        # One trickled change, one request; five changes together, one to five requests.
        self.assertEqual(int(posts.group(2)), 1, output)
        self.assertTrue(1 <= int(posts.group(4)) <= 5, output)
        self.assertRegex(output, r"(?m)^added -> stored in Jira, p50 / p95 ms(\s+\d+ / \d+){2}$")
        with_it = re.search(
            r"(?m)^database calls per change, with the reporter\s+-\s+\S+ \((\d+)\)$", output
        )
        without = re.search(
            r"(?m)^database calls per change, without it\s+-\s+\S+ \((\d+)\)$", output
        )
        assert with_it is not None, output
        assert without is not None, output
        self.assertGreater(int(with_it.group(1)), int(without.group(1)), output)
