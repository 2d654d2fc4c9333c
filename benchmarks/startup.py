"""Start-up time: ``import runway_client`` and ``runway-client --help`` vs bare Python.

Times, in one run and interleaved (so a busy machine slows all three alike):

- ``python -c pass``                      the reference: the interpreter alone
- ``python -c "import runway_client"``    the library's import
- ``runway-client --help``                the command line's first answer

each ``--repeat`` times (median reported, after one warm-up run each), and prints each
median with its ratio to ``python -c pass``. The goal (issue 7): ``--help`` within 3x
of ``python -c pass``. Speed is reported as ratios, never asserted in tests.

    .venv/bin/python benchmarks/startup.py              # 11 rounds
    .venv/bin/python benchmarks/startup.py --repeat 21 --json

``--importtime`` also prints the ten slowest imports of ``import runway_client``
(``python -X importtime``), the place to look when the ratio grows.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

GOAL: Final = 3.0
"""``runway-client --help`` should take at most this many times ``python -c pass``."""


def commands(python: str, script: str) -> dict[str, list[str]]:
    """The three measured commands, by label (``python -c pass`` first: the reference)."""
    return {
        "python -c pass": [python, "-c", "pass"],
        'python -c "import runway_client"': [python, "-c", "import runway_client"],
        "runway-client --help": [script, "--help"],
    }


def find_script(python: str) -> str:
    """``runway-client`` installed beside ``python`` (the venv's bin), else on PATH."""
    beside = Path(python).parent / "runway-client"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("runway-client")
    if found is None:
        raise SystemExit("runway-client is not installed: pip install -e . first")
    return found


def run_once(argv: Sequence[str]) -> float:
    """Seconds one run of ``argv`` takes (output discarded; a failure stops the benchmark)."""
    began = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    took = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(
            f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode()[-500:]}"
        )
    return took


def measure(cmds: dict[str, list[str]], repeat: int) -> dict[str, list[float]]:
    """``repeat`` interleaved rounds of every command, after one unrecorded warm-up round."""
    for argv in cmds.values():
        run_once(argv)
    times: dict[str, list[float]] = {label: [] for label in cmds}
    for _ in range(repeat):
        for label, argv in cmds.items():
            times[label].append(run_once(argv))
    return times


def ratios(medians: dict[str, float]) -> dict[str, float]:
    """Each median divided by the first (the reference).

    >>> ratios({"python -c pass": 0.02, "import": 0.05})
    {'python -c pass': 1.0, 'import': 2.5}
    """
    reference = next(iter(medians.values()))
    return {label: value / reference for label, value in medians.items()}


def import_times(python: str, top: int = 10) -> list[tuple[int, str]]:
    """The ``top`` slowest modules of ``import runway_client`` (cumulative microseconds)."""
    done = subprocess.run(
        [python, "-X", "importtime", "-c", "import runway_client"],
        capture_output=True,
        text=True,
        check=True,
    )
    rows: list[tuple[int, str]] = []
    for line in done.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), parts[2].rstrip()))
    return sorted(rows, reverse=True)[:top]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=11, help="rounds (median taken; >= 5)")
    parser.add_argument("--python", default=sys.executable, help="interpreter to measure")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--importtime", action="store_true", help="the slowest imports too")
    args = parser.parse_args(argv)
    if args.repeat < 5:
        parser.error("--repeat must be at least 5")
    cmds = commands(args.python, find_script(args.python))
    times = measure(cmds, args.repeat)
    medians = {label: statistics.median(values) for label, values in times.items()}
    relative = ratios(medians)
    help_ratio = relative["runway-client --help"]
    if args.json:
        shown = {"repeat": args.repeat, "median_s": medians, "ratio": relative, "goal": GOAL}
        print(json.dumps(shown, indent=2))
    else:
        print(f"{args.python} (Python {sys.version.split()[0]}), median of {args.repeat} rounds")
        print(f"{'command':36} {'median s':>9} {'min s':>7} {'ratio':>6}")
        for label, median in medians.items():
            print(f"{label:36} {median:9.3f} {min(times[label]):7.3f} {relative[label]:5.2f}x")
        verdict = "within" if help_ratio <= GOAL else "NOT within"
        print(
            f"runway-client --help is {help_ratio:.2f}x python -c pass: {verdict} the {GOAL:g}x goal"
        )
    if args.importtime:
        print("slowest imports of `import runway_client` (cumulative ms):")
        for micros, name in import_times(args.python):
            print(f"  {micros / 1000:8.1f}  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
