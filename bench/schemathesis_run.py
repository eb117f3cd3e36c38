"""The long schemathesis run: every operation of the live OpenAPI, many examples, counting cases and 5xx.

``tests/hostile/test_schemathesis.py`` runs 10 examples per operation in ``make test``; this runs as many as
asked (``--examples`` per operation and generation mode; the default 400 makes about 60,000 requests over the
~75 operations) against a server on loopback seeded the same way, and prints the count of cases, of 5xx and of
other check failures (status code and content type as declared). Exit status 1 when any 5xx was seen.

python -m bench.schemathesis_run                       # ~60,000 cases
python -m bench.schemathesis_run --examples 50 --only segments
python -m bench.schemathesis_run --max-minutes 20      # stop starting new operations after 20 minutes
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, status_code_conformance
from tests.hostile.schemafuzz import Tally, fuzz, seed


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.schemathesis_run", description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=400, help="examples per operation and mode (default 400)")
    parser.add_argument("--only", default="", help="only operations whose 'METHOD /path' contains this")
    parser.add_argument("--max-minutes", type=float, default=0.0, help="stop starting operations after this (0: no)")
    parser.add_argument("--users", type=int, default=12, help="simulated people in the workspace (default 12)")
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.max_minutes * 60 if args.max_minutes > 0 else float("inf")

    def chosen(label: str) -> bool:
        return args.only in label and time.monotonic() < deadline

    def progress(label: str, tally: Tally) -> None:
        print(f"{tally.seconds:7.0f} s  {tally.cases:7d} cases  5xx {tally.count_5xx:4d}  {label}", flush=True)

    with tempfile.TemporaryDirectory(prefix="userloop-schemathesis-") as folder:
        seeded = seed(Path(folder), users=args.users)
        try:
            checks = (not_a_server_error, status_code_conformance, content_type_conformance)
            tally = fuzz(seeded, max_examples=args.examples, checks=checks, only=chosen, progress=progress)
        finally:
            seeded.server.stop()
    for line in tally.server_errors[:50]:
        print("5xx:", line)
    for line in tally.other_failures[:50]:
        print("check failed:", line)
    print(f"schemathesis {args.examples} examples/operation/mode: {tally.summary()}")
    return 1 if tally.count_5xx else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
