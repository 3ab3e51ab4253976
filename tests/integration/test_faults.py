"""Whatever Autotask does wrong, every threat gets exactly one ticket and every
state change exactly one note.

This runs the fault benchmark as a user would (its own process, so its short
timeouts and retry delays apply from the start): 200 threats, 50 redeliveries, 30
state changes and 15 of those resolved, with one Autotask call in five failing. It
takes a few minutes.
"""

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_faults.py"


def test_two_hundred_threats_at_a_fifth_of_calls_failing_lose_nothing():
    result = subprocess.run(  # noqa: S603 - our interpreter and our own script
        [sys.executable, str(BENCH), "--json", "--seed", "11"],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )

    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert result.returncode == 0, figures
    assert figures["threats"] == 200
    assert figures["tickets"] == 200
    assert figures["threats_with_duplicates"] == 0
    assert figures["threats_without_ticket"] == 0
    assert figures["state_changes"] == 30
    assert figures["changes_without_note"] == 0
    assert figures["closes"] == 15
    assert figures["tickets_with_wrong_notes"] == 0
    assert figures["tickets_with_wrong_status"] == 0
    # The faults did happen, every kind of them, and were survived.
    assert figures["faults_injected"] > 100
    assert all(count > 0 for count in figures["faults"].values()), figures["faults"]
