"""Exactly once through SIGKILL (issue #14): a broadcast delivered by worker processes, one of them killed mid-way.

Everything is real and in its own process: the SMTP sink (:mod:`userloop.engage.sink`), the delivery workers
(``python -m userloop.engage.worker``), the metadata database (a SQLite file, or a fresh PostgreSQL database). The
test process only sets the project up with the engage API and puts the people into the journey
(:meth:`Stepper.enroll`), then watches the sink's mailbox and, between 20% and 80% of the messages in, SIGKILLs a
worker at the moment that tests the design (a batch claimed, part of it sent, nothing recorded: found by stopping
the worker with SIGSTOP to read its state), and starts it again.

What must hold (the design in :mod:`userloop.engage.delivery`): every person's message is in the mailbox exactly
once as a mailbox that de-duplicates by ``Message-ID`` shows it, nobody is missing, and every outbox row ends
``sent`` once. The rows the killed worker held (``sending``) are claimed again when their lease runs out and sent
again **with the same Message-ID**: the transport-level resends (printed) are exactly those of its rows that had
reached the sink before it died, each received twice; the rows it held, and only those, were attempted twice.

The issue asks for 100,000 people; a worker delivers about 800 messages a second on this 2-core machine, so
``make test`` uses 10,000 to stay within its time budget, and ``USERLOOP_EXACTLY_ONCE_PEOPLE=100000`` runs the
issue's size (both cases pass at 100,000).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.store.metadb import meta_url
from userloop.engage import interpreter
from userloop.engage.catalog import Journeys
from userloop.engage.channels.email import message_id
from userloop.engage.channels.registry import save_channel
from userloop.engage.journey import Journey
from userloop.engage.runtime import Stepper
from userloop.engage.secrets import ENV_KEY, SecretBox
from userloop.engage.settings import EngageSettings
from userloop.engage.settings import save as save_settings
from userloop.engage.sink import DB_NAME, Mailbox
from userloop.engage.tables import MaterialRow, OutboxRow
from userloop.engage.templates import Material
from userloop.store.meta import MetaStore, Project

pytestmark = pytest.mark.slow

#: People per case (the issue's 100,000 take ~2 minutes to deliver here; see the module docstring);
#: ``USERLOOP_EXACTLY_ONCE_PEOPLE=100000`` runs the issue's size.
N = int(os.environ.get("USERLOOP_EXACTLY_ONCE_PEOPLE", "10000"))
DOMAIN = "shop.example.com"
ZONE = "Asia/Shanghai"
#: The broadcast's time: fixed and in the past, so every row is due whenever the test runs.
AT = datetime(2026, 1, 1, 2, 0)
#: How long one case may take to deliver everything after the enrolment.
DEADLINE_S = 150.0


class Facts:
    """In-memory facts: everyone has an e-mail address and lives in Shanghai."""

    def load(
        self, persons: Sequence[int], props: frozenset[str], journey: Journey, at: datetime
    ) -> Mapping[int, interpreter.Facts]:
        return {p: interpreter.Person(p, ZONE, ZONE, props={"email": f"u{p}@example.com"}) for p in persons}


@dataclass
class Sink:
    port: int
    folder: Path


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[Sink]:
    folder = tmp_path / "mail"
    proc = subprocess.Popen(
        [sys.executable, "-m", "userloop.engage.sink", "--port", "0", "--dir", str(folder)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield Sink(int(json.loads(proc.stdout.readline())["port"]), folder)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def set_up(meta: MetaStore, key: bytes, port: int) -> tuple[Project, int]:
    """A project with an e-mail channel to the sink, a material, no caps and no quiet hours, and a running
    one-send broadcast journey; returns the project and the journey's id."""
    project = meta.add_project("p", ZONE)
    save_channel(meta, project.id, "mail", "email", "smtp",
                 {"host": "127.0.0.1", "port": port, "sender": f"运营团队 <noreply@{DOMAIN}>", "domain": DOMAIN},
                 SecretBox(key))  # fmt: skip
    material = Material(channel="email", subject={"zh-CN": "新年快乐"}, html=True,
                        body={"zh-CN": "<p>您好 {{ person.email }}，新年优惠券已到账。</p>"})  # fmt: skip
    with meta.session.begin() as s:
        s.add(MaterialRow(project_id=project.id, name="greeting", definition=material.model_dump_json()))
    save_settings(meta, project.id, EngageSettings(caps=[], quiet_hours=None))
    journeys = Journeys(meta, project)
    saved = journeys.create({
        "name": "new-year",
        "entry": {"kind": "schedule", "once_at": "2026-01-01T10:00:00"},
        "start": "greet",
        "nodes": [{"id": "greet", "kind": "send", "channel": "mail", "material": "greeting"}],
    })  # fmt: skip
    journeys.transition(saved.id, "start", AT)
    return project, saved.id


class Workers:
    """Delivery worker processes (``python -m userloop.engage.worker``), their output kept in files."""

    def __init__(self, url: str, folder: Path, key: bytes, lease_s: float) -> None:
        self.url, self.folder, self.lease_s = url, folder, lease_s
        self.env = {**os.environ, ENV_KEY: key.decode()}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        log = (self.folder / f"{name}.log").open("wb")
        with log:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "userloop.engage.worker", "--meta-url", self.url, "--project", "p",
                 "--workspace", str(self.folder), "--name", name, "--lease-seconds", str(self.lease_s)],
                stdout=log, stderr=subprocess.STDOUT, env=self.env,
            )  # fmt: skip

    def signal(self, name: str, sig: signal.Signals) -> None:
        self.procs[name].send_signal(sig)
        if sig == signal.SIGKILL:
            self.procs[name].wait(timeout=30)

    def alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None and proc.returncode != -signal.SIGKILL:
                raise AssertionError(f"worker {name} exited {proc.returncode}: {self.output(name)[-2000:]}")

    def output(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text("utf-8", "replace")

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)  # a worker left stopped by a failed test
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def statuses(meta: MetaStore, project: Project) -> dict[str, int]:
    with meta.session() as s:
        rows = s.execute(
            select(OutboxRow.status, func.count()).where(OutboxRow.project_id == project.id).group_by(OutboxRow.status)
        ).all()
    return {str(status): int(n) for status, n in rows}


def held_by(meta: MetaStore, worker: str) -> set[str]:
    """The Message-IDs of the rows ``worker`` had claimed and not recorded (``sending`` in its name)."""
    with meta.session() as s:
        rows = s.execute(
            select(
                OutboxRow.journey_id, OutboxRow.version, OutboxRow.node, OutboxRow.person, OutboxRow.occurrence
            ).where(OutboxRow.status == "sending", OutboxRow.claimed_by == worker)
        ).all()
    return {message_id(interpreter.effect_key(*row), DOMAIN) for row in rows}


def in_mailbox(sink: Sink, ids: set[str]) -> set[str]:
    """Which of the Message-IDs ``ids`` the sink has received."""
    con = sqlite3.connect(f"{(sink.folder / DB_NAME).as_uri()}?mode=ro", uri=True)
    try:
        marks = ",".join("?" * len(ids))
        return {mid for (mid,) in con.execute(f"SELECT DISTINCT message_id FROM messages WHERE message_id IN ({marks})",
                                              sorted(ids))}  # fmt: skip
    finally:
        con.close()


def run_with_a_kill(url: str, sink: Sink, tmp_path: Path, names: list[str], lease_s: float) -> None:
    key = SecretBox.generate_key()
    meta = MetaStore(url)
    workers = Workers(url, tmp_path, key, lease_s)
    try:
        scenario(meta, workers, key, sink, names)
    finally:
        workers.stop()
        meta.dispose()


def scenario(meta: MetaStore, workers: Workers, key: bytes, sink: Sink, names: list[str]) -> None:
    project, journey_id = set_up(meta, key, sink.port)
    entered = Stepper(meta, project, Facts()).enroll(journey_id, range(1, N + 1), AT)
    assert entered.entered == N and not entered.refused
    assert statuses(meta, project) == {"pending": N}

    for name in names:
        workers.start(name)
    victim = names[0]
    started = time.monotonic()
    box = Mailbox(sink.folder)
    try:
        while (seen := box.received()) < 0.4 * N + 100:  # mid-batch (200 rows a claim)
            workers.alive()
            assert time.monotonic() - started < DEADLINE_S, f"only {seen} of {N} arrived"
            time.sleep(0.02)
        # Kill the victim in the window that tests the design: it has claimed a batch and sent part of it, and not
        # yet recorded it. It is stopped (SIGSTOP) to look at its state, which then cannot change, and killed only
        # when it is in that window; else it goes on (SIGCONT) and is looked at again a moment later.
        for _ in range(500):
            workers.signal(victim, signal.SIGSTOP)
            in_flight = held_by(meta, victim)
            if in_flight and in_mailbox(sink, in_flight):
                break
            workers.signal(victim, signal.SIGCONT)
            time.sleep(0.005)
        else:
            raise AssertionError("the victim was never caught with a batch part sent")
        workers.signal(victim, signal.SIGKILL)
        at_kill = box.received()
        assert 0.2 * N <= at_kill <= 0.8 * N, at_kill
        time.sleep(0.5)  # bytes the victim wrote before it stopped reach the sink; nobody takes its rows yet
        reached = in_mailbox(sink, in_flight)
        workers.start(f"{victim}-again")
        while (now := statuses(meta, project)).get("sent", 0) < N:
            workers.alive()
            assert time.monotonic() - started < DEADLINE_S, now
            assert set(now) <= {"pending", "sending", "sent"}, now
            time.sleep(0.2)
        elapsed = time.monotonic() - started
        received, unique, duplicates = box.received(), box.unique(), box.duplicates()
    finally:
        box.close()
    workers.stop()

    # The outbox: exactly N rows, every one sent; those attempted twice are the ones the killed worker held.
    assert statuses(meta, project) == {"sent": N}
    with meta.session() as s:
        twice = s.execute(
            select(
                OutboxRow.journey_id, OutboxRow.version, OutboxRow.node, OutboxRow.person, OutboxRow.occurrence
            ).where(OutboxRow.project_id == project.id, OutboxRow.attempts > 1)
        ).all()
        persons = s.scalar(
            select(func.count(func.distinct(OutboxRow.person))).where(OutboxRow.project_id == project.id)
        )
    assert persons == N
    assert {message_id(interpreter.effect_key(*row), DOMAIN) for row in twice} == in_flight

    # The mailbox: one message per person as a de-duplicating mailbox shows it, each to its own address under the
    # person's key; the only copies are resends of rows that were in flight at the kill, under the same id.
    resends = received - unique
    print(f"\n{len(names)} worker(s), {N} people: killed {victim} at {at_kill} received, holding {len(in_flight)} "
          f"rows of which {len(reached)} had reached the sink; received {received}, unique {unique}, "
          f"transport-level resends {resends}, {elapsed:.1f} s")  # fmt: skip
    assert unique == N
    assert duplicates == dict.fromkeys(reached, 2)
    assert resends == len(reached) > 0
    with sqlite3.connect(f"{(sink.folder / DB_NAME).as_uri()}?mode=ro", uri=True) as con:
        pairs: dict[str, set[str]] = {}
        for rcpt, mid in con.execute("SELECT rcpt_to, message_id FROM messages"):
            (address,) = json.loads(rcpt)
            pairs.setdefault(address, set()).add(mid)
    con.close()
    expected = {
        f"u{p}@example.com": {message_id(interpreter.effect_key(journey_id, 1, "greet", p, 1), DOMAIN)}
        for p in range(1, N + 1)
    }
    missing = expected.keys() - pairs.keys()
    assert not missing, f"{len(missing)} people got nothing, e.g. {sorted(missing)[:5]}"
    assert pairs == expected


def test_sqlite_one_worker_killed_and_restarted_delivers_each_message_once(sink: Sink, tmp_path: Path) -> None:
    with meta_url("sqlite", tmp_path) as url:
        run_with_a_kill(url, sink, tmp_path, ["solo"], lease_s=2.0)


def test_postgresql_two_workers_one_killed_and_restarted_deliver_each_message_once(sink: Sink, tmp_path: Path) -> None:
    # A lease comfortably longer than a batch takes on a loaded machine, so the surviving worker's own claims never
    # run out while it sends them (only the killed worker's rows may be taken over and sent again).
    with meta_url("postgresql", tmp_path) as url:
        run_with_a_kill(url, sink, tmp_path, ["left", "right"], lease_s=5.0)
