"""Three ``nanobanana batch`` workers on one 300-row file and one PostgreSQL journal; one is
SIGKILLed at a random moment. Whatever the moment (and whether or not the workers share rows):
no row is submitted twice (the simulator records every request) and every row is final in every
surviving worker's manifest. ``benchmarks/fleet_bench.py`` repeats this 5 times with a table.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from langchain_nanobanana.testing import FakeNanoBananaServer
from tests.fleet import run_fleet, write_rows


@pytest.mark.postgres
@pytest.mark.timeout(240)
def test_three_workers_one_killed_no_duplicate_every_row_final(pg_url: str, tmp_path: Path) -> None:
    at = random.randint(20, 250)  # the kill lands while rows are being submitted
    with FakeNanoBananaServer(task_duration=0.3) as sim:
        file = write_rows(tmp_path / "rows.jsonl", 300)
        report = run_fleet(sim, pg_url, file, tmp_path, kill_at_submission=at, lease=2.0)
    detail = f"kill at submission {at}: {report}"
    assert report.codes[0] == -9, detail  # the kill landed: the worker did not finish first
    assert report.duplicates == 0, detail
    assert report.submissions <= 300, detail
    survivors = [c for i, c in enumerate(report.codes) if i != report.killed]
    assert all(code in (0, 4) for code in survivors), detail  # 4: the killed worker's rows
    assert all(n == 0 for n in report.not_final.values()), detail
    assert report.uncertain <= 8, detail  # at most --concurrency submissions were in flight
