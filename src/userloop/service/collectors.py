"""Collector processes beside the service: more processes acknowledging events, one service loading them.

``userloop serve --collector-only`` runs a process that holds only the collector: the SDK wire formats, the
front door's checks and its own durable spool (``WORKSPACE/spool/collectors/NAME/``). It acknowledges a request
once the request's lines are fsynced there, exactly as the service's own collector does, and never opens the
event store. The service (``userloop serve``, the one process that owns the workspace) finds every collector's
spool (:class:`CollectorDrains`) and loads it with the same background loader as its own spool — the same
committed offset, attempts file, poison isolation and dedupe — so an acknowledged event is loaded once whichever
process took it and whichever process is killed: a killed collector's acknowledged lines are on disk and are
loaded while it is down; a killed service resumes every spool from its committed offset; an event sent again
after a lost acknowledgement is dropped by the loader's dedupe on ``event_id``.

What a collector needs from the service it reads from files the service writes: the door's rules (each project's
time window and registry, ``spool/rules.json``, refreshed after every load) and how far its spool is loaded
(``committed.json``), which frees the names its door counts as on their way (:class:`userloop.collect.checks.Pending`).
Write keys, their rates and the projects come from the metadata database, which every process shares (SQLite on
one machine, PostgreSQL for several). The registry's caps are enforced again by the loader, so two collectors
admitting new names at the same time cannot take a project past them.

This spreads the intake (parsing, checks, fsync), the part that must answer SDKs at their rate, over processes
and cores; loading, analyses and the API stay with the service, as an event pipeline's ingestion consumer
stays one per partition. The spools must be on the service's machine or on storage both mount with working
``fsync`` and ``flock``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from userloop.collect.checks import Rules
from userloop.collect.door import FrontDoor
from userloop.collect.drain import BackgroundLoader
from userloop.collect.keys import KeyBook
from userloop.collect.spool import Spool, SpoolReader
from userloop.core.errors import ValidationError
from userloop.schema.types import PropertyType
from userloop.service.guards import Guards
from userloop.store.workspace import Workspace

log = logging.getLogger(__name__)
COLLECTORS_DIR = Path("spool") / "collectors"
RULES_FILE = Path("spool") / "rules.json"
#: How often the service looks for new collectors' spools and a collector for new rules (seconds).
POLL_SECONDS = 1.0
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def check_name(name: str) -> str:
    """A collector's name, which names its spool folder: letters, digits, ``_ . -``, at most 64."""
    if not _NAME.fullmatch(name):
        raise ValidationError(
            f"collector name {name!r}: use 1–64 letters, digits, '_', '.' or '-', starting with a letter or digit "
            "/ 采集进程名称只能包含字母、数字、'_'、'.'、'-'"
        )
    return name


# the door's rules, shared through a file --------------------------------------------------------------------------
def publish_rules(workspace: Path, rules: dict[str, Rules]) -> None:
    """Write every project's door rules for the collectors (atomically: a collector never reads half a file)."""
    doc = {
        project: {
            "max_future_ms": r.max_future_ms,
            "max_past_ms": r.max_past_ms,
            "registry": [[table, name, str(kind)] for (table, name), kind in sorted(r.registry.items())],
        }
        for project, r in rules.items()
    }
    path = workspace / RULES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc))
    tmp.replace(path)


def read_rules(workspace: Path) -> dict[str, Rules] | None:
    """The rules the service published last; None when it has published none (or the file cannot be read)."""
    try:
        doc = json.loads((workspace / RULES_FILE).read_text())
    except (OSError, ValueError):
        return None
    return {
        project: Rules(
            max_future_ms=int(r["max_future_ms"]),
            max_past_ms=int(r["max_past_ms"]),
            registry={(table, name): PropertyType(kind) for table, name, kind in r["registry"]},
        )
        for project, r in doc.items()
    }


# the service's side ---------------------------------------------------------------------------------------------
class CollectorDrains:
    """In the service: one background loader per collector spool found under ``spool/collectors/``.

    Loads of all spools share the event store's writer (they run one at a time); each spool keeps its own
    committed offset and attempts file, so a poison record in one collector's spool never holds up another's.
    """

    def __init__(self, ws: Workspace, *, on_loaded: Any = None, fsync: bool = True) -> None:
        self.ws = ws
        self.root = ws.path / COLLECTORS_DIR
        self.on_loaded = on_loaded
        self.fsync = fsync
        self.loaders: dict[str, BackgroundLoader] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="userloop-collector-spools", daemon=True)

    def start(self) -> None:
        self.discover()
        self._thread.start()

    def discover(self) -> None:
        """Start a loader for every collector spool not loaded yet."""
        if not self.root.is_dir():
            return
        for folder in sorted(self.root.iterdir()):
            if folder.name in self.loaders or not folder.is_dir() or not _NAME.fullmatch(folder.name):
                continue
            loader = BackgroundLoader(self.ws, SpoolReader(folder, fsync=self.fsync), on_loaded=self.on_loaded)
            loader.start()
            self.loaders[folder.name] = loader
            log.info("loading collector %s's spool", folder.name)

    def _run(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            try:
                self.discover()
            except OSError:
                log.exception("looking for collector spools failed")

    def stop(self, *, drain: bool = True, timeout: float = 60.0) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for loader in self.loaders.values():
            loader.stop(drain=drain, timeout=timeout)

    def status(self) -> list[dict[str, Any]]:
        """Per collector: what its spool holds, how far it is loaded, and whether the collector runs."""
        rows = []
        for name, loader in sorted(self.loaders.items()):
            spool = loader.spool
            assert isinstance(spool, SpoolReader)
            durable, committed = spool.durable, loader.stats.position
            rows.append({
                "name": name,
                "running": spool.writer_alive(),
                "durable": {"segment": durable.segment, "offset": durable.offset},
                "committed": {"segment": committed.segment, "offset": committed.offset},
                "backlog_bytes": spool.backlog_bytes(committed),
                "loaded": loader.stats.loaded.as_dict(),
                "dead_lettered": loader.stats.dead_lettered,
                "last_error": loader.stats.last_error,
            })  # fmt: skip
        return rows


# the collector's side -------------------------------------------------------------------------------------------
@dataclass
class CollectorRuntime:
    """A collector-only process: what the collector routes need (``door``, ``keys``, ``guards``, ``config``)."""

    path: Path
    name: str
    config: Any  # ServiceConfig (not imported: it lives in runtime, which imports this module)
    ws: Workspace = field(init=False)
    spool: Spool = field(init=False)
    keys: KeyBook = field(init=False)
    door: FrontDoor = field(init=False)
    guards: Guards = field(init=False)
    url: str = field(init=False)
    _stop: threading.Event = field(init=False, default_factory=threading.Event)
    _thread: threading.Thread | None = field(init=False, default=None)
    _rules_seen: int | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        check_name(self.name)
        self.ws = Workspace.open(self.path)  # the metadata only: the event store is never opened here
        self.path = self.ws.path
        self.spool = Spool(self.path / COLLECTORS_DIR / self.name, fsync=self.config.fsync, loaded_elsewhere=True)
        self.keys = KeyBook(self.ws.meta)
        self.door = FrontDoor(self.spool, self.keys, self.config.limits)
        self.guards = Guards(self.config.guards)
        self.url = f"http://{self.config.host}:{self.config.port}"

    def start(self) -> None:
        self.refresh_rules()
        self._thread = threading.Thread(target=self._run, name="userloop-collector-rules", daemon=True)
        self._thread.start()

    def refresh_rules(self) -> None:
        """Take the rules the service published, when they changed."""
        try:
            mtime = (self.path / RULES_FILE).stat().st_mtime_ns
        except OSError:
            return
        if mtime == self._rules_seen:
            return
        rules = read_rules(self.path)
        if rules is not None:
            self.door.rules = rules
            self._rules_seen = mtime

    def _run(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            self.refresh_rules()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.spool.close()
        self.ws.close()
