"""Schemathesis over the whole API of a real server on loopback that holds a little of everything.

Shared by ``tests/hostile/test_schemathesis.py`` (bounded, part of ``make test``) and
``bench/schemathesis_run.py`` (the long run). :func:`seed` starts the server; :func:`fuzz` runs every operation of
its live ``/openapi.json`` with schemathesis strategies under Hypothesis and tallies the answers.

The workspace holds a few hundred simulated events, the user models' reports, the starter tags, a rule segment,
a static segment and a saved insight, so that generated requests reach real code rather than stopping at "no
such segment".

A fuzzer that may call ``DELETE /api/v1/keys/{key_id}`` can revoke the very token it runs with, and then every
later case is a 401. :meth:`Seeded.steer` keeps that from happening (it points such a case at a spare key, and
likewise for the kept segment and insight) and sends half of the cases that name a segment, an insight, a person
or a project to one that exists.
"""

from __future__ import annotations

import base64
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import Failure, FailureGroup

from tests.collect.serving import ONE_SHOT_TLS, Server
from userloop.models.pipeline import run_models
from userloop.sim.run import run_simulation
from userloop.store import Workspace

END = date(2026, 6, 30)
TRENDS = {
    "kind": "trends",
    "date_range": {"from": "2026-06-01", "to": "2026-06-30"},
    "series": [{"event": "order_paid", "math": "sum", "property": "order_amount"}, {"event": "$any", "math": "dau"}],
    "breakdown": {"property": "$os"},
}
RULE = {"type": "event", "event": "$any", "count": {"op": "gte", "value": 1},
        "window": {"from": "2026-06-01", "to": "2026-06-30"}}  # fmt: skip


@dataclass
class Seeded:
    """The server and the ids of what it holds: ``kept`` (by path parameter) is what the fuzz must not delete,
    ``spare`` the same kinds of thing made to be deleted instead."""

    server: Server
    person: str
    events: int
    kept: dict[str, int] = field(default_factory=dict)
    spare: dict[str, int] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return self.server.admin

    def headers_for(self, case: schemathesis.Case) -> dict[str, str]:
        """The admin token; on a collector route the project's write key as the SDKs send it (basic-auth user
        name for Segment and Mixpanel; ``token`` in the query, set by :meth:`steer`, for Sensors and Mixpanel)."""
        if is_collector(case.operation.path):
            return {"Authorization": "Basic " + base64.b64encode(f"{self.server.write_key}:".encode()).decode()}
        return self.headers

    def steer(self, case: schemathesis.Case) -> None:
        """Adjust a generated case in place (see the module's docstring); deterministic, so runs repeat.

        A DELETE of a kept thing deletes its spare instead; of the other cases that name a segment, an insight,
        a person or a project, those with an even id (or an id of even length) name one that exists.
        """
        if is_collector(case.operation.path):
            case.query = {**(case.query or {}), "token": self.server.write_key}
        params = case.path_parameters if case.path_parameters is not None else {}
        for name, known in self.kept.items():
            value = params.get(name)
            if case.method.upper() == "DELETE" and value == known:
                params[name] = self.spare[name]
            elif name != "key_id" and isinstance(value, int) and value % 2 == 0:
                params[name] = known
        key = params.get("key")
        if isinstance(key, str) and len(key) % 2 == 0:
            params["key"] = self.person
        query = case.query
        if isinstance(query, dict) and isinstance(query.get("project"), str) and len(query["project"]) % 2 == 0:
            query["project"] = "default"
        body = case.body
        if isinstance(body, dict) and isinstance(body.get("project"), str) and len(body["project"]) % 2 == 0:
            body["project"] = "default"

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(
            method, self.server.url + path, headers=self.headers, timeout=120, **kwargs, verify=ONE_SHOT_TLS
        )
        assert response.status_code < 300, (method, path, response.status_code, response.text)
        return response.json()


def is_collector(path: str) -> bool:
    """An SDK route (``/sa``, ``/v1/batch``, ``/track``, …), whose key is a project write key."""
    return not path.startswith("/api/") and path != "/healthz"


def seed(folder: Path, *, users: int = 12, days: int = 30) -> Seeded:
    """Create a workspace in ``folder``, fill it and start its server; the caller stops ``seeded.server``."""
    ws, secrets = Workspace.init(folder / "ws")
    try:
        run_simulation(ws, "default", users=users, days=days, seed=7, end_date=END)
        store = ws.project("default")
        events = int(store.con.execute(f"SELECT count(*) FROM {store.table('events')}").fetchall()[0][0])
        person = str(store.con.execute(f"SELECT min(distinct_id) FROM {store.table('events')}").fetchall()[0][0])
        run_models(store, END, timezone=ws.project_info("default").timezone)
    finally:
        ws.close()
    assert secrets.admin_token
    server = Server(ws.path, secrets.write_key, secrets.admin_token).start()
    try:
        return _fill(server, events, person)
    except BaseException:
        server.stop()
        raise


def _fill(server: Server, events: int, person: str) -> Seeded:
    seeded = Seeded(server, person, events)
    prefix = server.admin_token[:10]
    seeded.kept["key_id"] = next(k["id"] for k in seeded.call("GET", "/api/v1/keys") if k["prefix"] == prefix)
    seeded.spare["key_id"] = seeded.call("POST", "/api/v1/keys", json={"kind": "admin", "name": "spare"})["id"]
    seeded.call("POST", "/api/v1/tags/starter")
    seeded.call("POST", "/api/v1/tags/materialise", json={"date": END.isoformat()})
    seeded.kept["segment_id"] = seeded.call("POST", "/api/v1/segments", json={"name": "active", "rule": RULE})["id"]
    one = {"name": "one person", "ids": [person]}
    seeded.spare["segment_id"] = seeded.call("POST", "/api/v1/segments/static", json=one)["id"]
    for role in ("kept", "spare"):
        insight = seeded.call("POST", "/api/v1/insights", json={"name": f"GMV by OS ({role})", "definition": TRENDS})
        getattr(seeded, role)["insight_id"] = insight["id"]
    return seeded


@dataclass
class Tally:
    """What a fuzz run sent and got: cases per operation, answers per status, and what went wrong."""

    cases: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    per_operation: Counter[str] = field(default_factory=Counter)
    by_operation_status: Counter[tuple[str, int]] = field(default_factory=Counter)
    #: one line per failing case: the operation, the status, the failed checks and a curl command to repeat it
    server_errors: list[str] = field(default_factory=list)
    other_failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def count_5xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    def summary(self) -> str:
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(self.statuses.items()))
        head = f"{self.cases} cases over {len(self.per_operation)} operations in {self.seconds:.0f} s"
        return f"{head}; 5xx: {self.count_5xx}; other check failures: {len(self.other_failures)}; statuses {statuses}"


def load_schema(seeded: Seeded) -> Any:
    """The live server's ``/openapi.json`` as a schemathesis schema (no config file is looked for)."""
    config = SchemathesisConfig.from_dict({"generation": {"deterministic": True, "database": "none"}})
    return schemathesis.openapi.from_url(seeded.server.url + "/openapi.json", config=config, timeout=30)


def fuzz(
    seeded: Seeded,
    *,
    max_examples: int,
    checks: Sequence[Callable[..., Any]] = (not_a_server_error,),
    modes: Sequence[GenerationMode] = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE),
    only: Callable[[str], bool] = lambda _label: True,
    progress: Callable[[str, Tally], None] | None = None,
) -> Tally:
    """Run every operation ``max_examples`` times per generation mode, derandomized; a failing case is recorded
    and the run goes on (no shrinking, so the count of cases stays what was asked)."""
    tally = Tally()
    started = time.monotonic()
    with requests.Session() as session:
        for result in load_schema(seeded).get_all_operations():
            operation = result.ok()
            if not only(operation.label):
                continue
            for mode in modes:
                _fuzz_operation(seeded, operation, mode, max_examples, list(checks), session, tally)
            tally.seconds = time.monotonic() - started
            if progress is not None:
                progress(operation.label, tally)
    return tally


def _fuzz_operation(
    seeded: Seeded,
    operation: Any,
    mode: GenerationMode,
    max_examples: int,
    checks: list[Callable[..., Any]],
    session: requests.Session,
    tally: Tally,
) -> None:
    @settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def one(case: schemathesis.Case) -> None:
        seeded.steer(case)
        _check_one(seeded, case, checks, session, tally)

    try:
        one()
    except Unsatisfiable:  # an operation without parameters or body has no invalid requests to make
        if mode is not GenerationMode.NEGATIVE:
            raise


def _check_one(
    seeded: Seeded, case: schemathesis.Case, checks: list[Callable[..., Any]], session: requests.Session, tally: Tally
) -> None:
    tally.cases += 1
    tally.per_operation[case.operation.label] += 1
    try:
        response = case.call(headers=seeded.headers_for(case), session=session, timeout=120)
    except requests.RequestException as exc:  # the server closed the connection: as bad as a 500
        tally.statuses[599] += 1
        tally.server_errors.append(f"{case.operation.label}: no answer ({exc!r})\n    {_curl(case)}")
        return
    tally.statuses[response.status_code] += 1
    tally.by_operation_status[case.operation.label, response.status_code] += 1
    try:
        case.validate_response(response, checks=checks, headers=seeded.headers_for(case))
    except (FailureGroup, Failure) as exc:
        line = f"{case.operation.label} -> {response.status_code}: {_titles(exc)}\n    {_curl(case)}"
        line += f"\n    answer: {response.text[:300]}"
        (tally.server_errors if response.status_code >= 500 else tally.other_failures).append(line)


def _titles(exc: FailureGroup | Failure) -> str:
    failures = exc.exceptions if isinstance(exc, FailureGroup) else (exc,)
    return "; ".join(sorted({f.title for f in failures}))


def _curl(case: schemathesis.Case) -> str:
    return str(case.as_curl_command(headers={"Authorization": "Bearer $ADMIN_TOKEN"}))
