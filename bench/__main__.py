"""``python -m bench all`` (``make bench``): every benchmark with its defaults, one after another; or name some.

python -m bench all
python -m bench profiles analytics
"""

from __future__ import annotations

import importlib
import sys

#: In the order they are cheapest to run; analytics and clickhouse_sizing run ClickHouse's engine (chdb).
SCRIPTS = (
    "sim_generate",
    "ingest_files",
    "sim_load",
    "models_clv",
    "models",
    "collector",
    "maintenance",
    "profiles",
    "journeys",
    "experiments.report",
    "clickhouse_sizing",
    "analytics",
)


def main(argv: list[str]) -> int:
    names = list(SCRIPTS) if argv in ([], ["all"]) else argv
    unknown = sorted(set(names) - set(SCRIPTS))
    if unknown:
        print(f"unknown benchmark(s) {', '.join(unknown)}; choose from all, {', '.join(SCRIPTS)}", file=sys.stderr)
        return 2
    failed = 0
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        failed += bool(module.main([]))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
