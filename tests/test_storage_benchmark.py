"""The storage benchmark: its figures from known meters, and a run end to end at tiny sizes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import unittest

from benchmarks.storage import Cost, Meter, update
from buildbot_jira.simulator.contract import entity_schema, validation_errors

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class FigureTests(unittest.TestCase):
    def test_costs_are_per_update(self) -> None:
        cost = Cost(
            pending=100, updates=4, spent=Meter(wall=1.0, cpu=0.01, sql_bytes=4000, disk_bytes=80)
        )
        self.assertEqual(cost.per_update(), ("2.50", "1,000", "20"))

    def test_a_meter_spans_two_moments(self) -> None:
        spent = Meter(1.0, 2.0, 30, 40).until(Meter(1.5, 2.25, 130, 40))
        self.assertEqual(spent, Meter(0.5, 0.25, 100, 0))

    def test_the_updates_it_saves_are_valid_build_payloads(self) -> None:
        made = update(7)
        self.assertEqual(validation_errors(entity_schema("builds"), dict(made.payload)), [])
        self.assertEqual((made.key, made.final), ("buildbot.example.com/app#7", True))


class EndToEndTests(unittest.TestCase):
    def test_a_tiny_run_prints_every_backlog_and_delivers_everything(self) -> None:
        done = subprocess.run(
            [sys.executable, "benchmarks/storage.py", "--pending", "10,50", "--samples", "5"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        rows = re.findall(r"^(\d[\d,]*)\s+([\d.]+)\s+([\d,]+)\s+([\d,]+)\s", done.stdout, re.M)
        self.assertEqual([row[0] for row in rows], ["10", "50"], done.stdout)
        self.assertIn("Drain: 55 of 55 updates delivered in 1 requests", done.stdout)
