"""Check that the running environment holds exactly the packages of a lock file, at their pinned versions.

Usage: ``python lock/check.py lock/dev.txt``. Prints one line per difference and exits 1 if there is any; the
project itself (installed editable) and the packaging tools (pip, setuptools, wheel) are not part of the lock.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

NOT_LOCKED = {"pip", "setuptools", "wheel", "userloop"}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        match = PIN.match(line)
        if match:
            pins[canonical(match.group(1))] = match.group(2)
    return pins


def installed() -> dict[str, str]:
    found = {canonical(d.metadata["Name"]): d.version for d in metadata.distributions()}
    return {name: version for name, version in found.items() if name not in NOT_LOCKED}


def main(path: str) -> int:
    want, have = locked(Path(path)), installed()
    problems = [f"missing: {n}=={v}" for n, v in sorted(want.items()) if n not in have]
    problems += [f"differs: {n} {have[n]} installed, {v} locked" for n, v in want.items() if have.get(n, v) != v]
    problems += [f"not in the lock: {n}=={v}" for n, v in sorted(have.items()) if n not in want]
    for line in problems:
        print(line)
    print(f"{path}: {len(want)} packages locked, {len(have)} installed, {len(problems)} differences")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
