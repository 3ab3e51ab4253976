"""Time the ATT&CK data load and the per-threat ATT&CK analysis.

Run with `uv run python bench/bench_attack.py`. The load is timed in fresh
subprocesses, since the index is cached for the life of a process.
"""

import statistics
import subprocess
import sys
import time

from s1_autotask.attack import analyze_techniques, get_attack_data

LOAD_RUNS = 5
ANALYSIS_RUNS = 1000

# A mixed threat: sub-techniques, a revoked id, a deprecated id and duplicates.
TECHNIQUES = [
    "T1566.001",
    "T1204.002",
    "T1059.001",
    "T1086",
    "T1053.005",
    "T1547.001",
    "T1064",
    "T1486",
]

LOAD_SNIPPET = """
import time
from s1_autotask.attack import get_attack_data
started = time.perf_counter()
get_attack_data()
print(time.perf_counter() - started)
"""

IMPORT_SNIPPET = """
import time
started = time.perf_counter()
import s1_autotask.attack
print(time.perf_counter() - started)
"""


def time_in_subprocess(snippet: str) -> float:
    result = subprocess.run(  # noqa: S603 - runs this interpreter on a fixed snippet
        [sys.executable, "-c", snippet],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(result.stdout.strip())


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main() -> None:
    print(f"ATT&CK load, {LOAD_RUNS} fresh subprocesses each:")
    imports = [time_in_subprocess(IMPORT_SNIPPET) for _ in range(LOAD_RUNS)]
    loads = [time_in_subprocess(LOAD_SNIPPET) for _ in range(LOAD_RUNS)]
    print(f"import s1_autotask.attack: {median_ms(imports):7.1f} ms (median)")
    print(f"first get_attack_data():  {median_ms(loads):7.1f} ms (median)")

    data = get_attack_data()
    analysis = analyze_techniques(TECHNIQUES, data=data)
    durations = []
    for _ in range(ANALYSIS_RUNS):
        started = time.perf_counter()
        analyze_techniques(TECHNIQUES, data=data)
        durations.append(time.perf_counter() - started)

    print(
        f"analyze_techniques, {len(TECHNIQUES)} ids: "
        f"{median_ms(durations) * 1000:8.1f} us (median of {ANALYSIS_RUNS}; "
        f"{len(analysis.techniques)} findings, {len(analysis.mitigations)} mitigations)"
    )


if __name__ == "__main__":
    main()
