"""How ``make test`` shares the suite between two pytest-xdist processes (``-n 2 --dist loadfile``).

A test module is one unit of work, so that its module-scoped fixtures (a seeded server, a simulated workspace) are
made once; so is each group of modules of :data:`TOGETHER`, which share a session-scoped fixture that is costly to
make (split over two processes, each would make its own). Elsewhere a session-scoped fixture is made in each
process that needs it, which stays correct: every fixture makes its own temporary folder, PostgreSQL database and
port.

The units are handed out longest first, so that no long one starts last while the other process has nothing left
to do (Graham's LPT rule, *Bounds on multiprocessing timing anomalies*, SIAM J. Appl. Math. 17(2), 1969): the
units of :data:`LONGEST` in its order (measured with ``--durations``), then the others by their count of tests.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from xdist.scheduler import LoadScopeScheduling

#: Modules (by path prefix) that share a costly session-scoped fixture of their conftest, each group one unit.
TOGETHER = (
    ("tests/console/",),  # console: a demo workspace (800 people x 40 days) and its server
    ("tests/sim/",),  # small: 2,000 simulated people x 60 days
    ("tests/store/test_clickhouse_dashboard.py", "tests/store/test_clickhouse_migrate_sim.py"),  # simulated: 600
    # people x 60 days with the models run
)
#: The longest units, longest first (``-n 2 --durations=80`` on the loaded 2-core machine: seconds in all).
LONGEST = (
    "tests/console/",  # ~420 s
    "tests/hostile/test_schemathesis.py",  # ~260 s
    "tests/engage/test_exactly_once.py",  # ~140 s
    "tests/engage/test_interpreter.py",  # ~140 s
    "tests/hostile/test_poison.py",  # ~130 s
    "tests/collect/test_collectors.py",  # ~130 s
    "tests/api/test_models_api.py",  # ~100 s
)


class ModuleScheduling(LoadScopeScheduling):
    """pytest-xdist's scope scheduling with a module, or a group of :data:`TOGETHER`, as the scope, the longest
    scopes first."""

    def __init__(self, config: Any, log: Any = None) -> None:
        super().__init__(config, log)
        config.option.loadscopereorder = False  # the order is set by schedule()

    def _split_scope(self, nodeid: str) -> str:
        module = nodeid.split("::", 1)[0]
        return next((group[0] for group in TOGETHER if module.startswith(group)), module)

    def schedule(self) -> None:
        if self.collection is None:  # the first call: every process has collected the same tests
            for node, ids in self.registered_collections.items():
                self.registered_collections[node] = sorted(ids, key=self._ranker(ids))
        super().schedule()

    def _ranker(self, ids: list[str]) -> Any:
        units = [self._split_scope(i) for i in ids]
        sizes = Counter(units)
        first = {unit: index for index, unit in reversed(list(enumerate(units)))}

        def rank(nodeid: str) -> tuple[int, int, int]:
            unit = self._split_scope(nodeid)
            long = LONGEST.index(unit) if unit in LONGEST else len(LONGEST)
            return long, -sizes[unit], first[unit]

        return rank
