"""How long the ``seatgate`` command takes, process start included (issue 10, "A fast CLI").

    .venv/bin/python bench/cli_startup.py [--runs 7]

Times, wall clock, the real console script in a fresh process each run:

- ``seatgate --help`` — goal <= 0.3 s;
- ``seatgate check ACCOUNT PRODUCT EMAIL cti`` against a SQLite database that already exists (its
  schema current, one account with a contract and a seated user) — goal <= 0.5 s;
- for reference, ``python -c pass`` (the interpreter's own start on this machine).

Each figure is the median of ``--runs`` runs. It prints the figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from seatgate.core.testing.setup import ONE_SEAT_COMMANDS

GOALS = {"--help": 0.3, "check": 0.5}


def timed(argv: list[str], env: dict[str, str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    seatgate = shutil.which("seatgate") or str(Path(sys.executable).with_name("seatgate"))
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "SEATGATE_DATABASE_URL": f"sqlite:///{tmp}/bench.db",
            "SEATGATE_NOW": "2026-03-20T12:00:00Z",
            "SEATGATE_ACTOR": "admin@acme.example",
        }
        for step in ONE_SEAT_COMMANDS:
            subprocess.run([seatgate, *step], env=env, check=True, stdout=subprocess.DEVNULL)
        check = [seatgate, "check", "acme", "salesforce", "ada@acme.example", "cti"]
        figures = {
            "python -c pass": timed([sys.executable, "-c", "pass"], env, args.runs),
            "--help": timed([seatgate, "--help"], env, args.runs),
            "check": timed(check, env, args.runs),
        }
    print(f"$ python bench/cli_startup.py --runs {args.runs}   (median, wall clock)")
    for name, seconds in figures.items():
        goal = GOALS.get(name)
        target = f"  goal <= {goal:.1f} s: {'met' if seconds <= goal else 'MISSED'}" if goal else ""
        print(f"  {name:<16} {seconds:6.3f} s{target}")


if __name__ == "__main__":
    main()
