"""The running service: one process that owns the workspace and holds the collector, loader and scheduler."""

from __future__ import annotations

import gc
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from userloop.collect.door import FrontDoor, Limits
from userloop.collect.drain import BackgroundLoader, rules_for
from userloop.collect.keys import KeyBook
from userloop.collect.spool import Spool
from userloop.query.engine import ResultCache
from userloop.service.collectors import CollectorDrains, publish_rules
from userloop.service.guards import GuardConfig, Guards
from userloop.service.jobs import profiles, rejects_retention, user_models
from userloop.service.journeys import JourneysLoop
from userloop.service.maintenance import maintenance, start_shipping
from userloop.service.membership import MembershipLoop
from userloop.service.scheduler import Scheduler
from userloop.store import owner
from userloop.store.duck import ProjectStore
from userloop.store.service_tables import create_tables
from userloop.store.workspace import Workspace

log = logging.getLogger(__name__)
TOKEN_FILE = "server.token"  # noqa: S105 - a file name, not a secret
SESSION_KEY_NAME = "serve session"


@dataclass
class ServiceConfig:
    """How the service runs; the defaults suit a laptop (loopback only)."""

    host: str = "127.0.0.1"
    port: int = 8000
    limits: Limits = field(default_factory=Limits)
    fsync: bool = True
    scheduler_tick: float = 1.0
    rejects_keep_days: int = 30
    #: import rejects files of one project kept at most (the oldest go first; see ``ingest.files.prune_rejects``)
    rejects_max_bytes: int = 100 << 20
    #: requests per address and per key, failed authentications, the token cache
    guards: GuardConfig = field(default_factory=GuardConfig)
    #: largest analyst SQL reply (JSON); rows past it are cut and the reply says so
    sql_max_reply_bytes: int = 10 << 20
    #: largest decompressed size of a file imported through the API (413 above, naming the file)
    import_max_bytes: int = 200 << 20
    #: DuckDB's buffer pool for the service; bounded so that the process's memory stays flat as data grows.
    duckdb_memory: str = "2GB"
    #: the daily user models' CLV purchase model (auto, bgnbd, paretonbd, mbgnbd) and horizon in days; None keeps
    #: the defaults (auto, 90), as ``userloop models run --clv-model … --horizon-days …`` does
    clv_model: str | None = None
    horizon_days: int | None = None
    #: seconds between two passes of the journeys engine (a load of new events wakes it at once)
    journeys_tick: float = 1.0
    #: seconds between two membership passes (growth, levels, expiries, benefits, tasks; a load wakes it at once);
    #: None: the service runs none (``userloop members run-once`` does, e.g. to look at a workspace frozen in time)
    membership_tick: float | None = 5.0
    #: an operator's session ends this long after sign-in (absolute), or after this long unused (idle)
    session_lifetime_seconds: float = 7 * 86_400.0
    session_idle_seconds: float = 12 * 3_600.0

    def __post_init__(self) -> None:
        """Refuse bad model options when the service is configured, not at the first nightly run."""
        if self.clv_model is None and self.horizon_days is None:
            # nothing to check (clv_options returns the defaults): the service starts without importing the
            # models and their numerics (scipy), about a second of every start; the nightly run imports them
            return
        from userloop.models.pipeline import clv_options

        clv_options(self.clv_model, self.horizon_days)


class Runtime:
    """Owns a workspace while the service runs: start with :meth:`start`, stop with :meth:`stop`."""

    def __init__(self, path: Path, config: ServiceConfig | None = None) -> None:
        self.config = config or ServiceConfig()
        self.ws = Workspace.open(path)
        self.path = self.ws.path
        create_tables(self.ws.meta)
        _ = self.ws.events  # take the DuckDB write lock now: a second server fails here, clearly
        self.ws.events.set_memory_limit(self.config.duckdb_memory)
        self.spool = Spool(self.path / "spool", fsync=self.config.fsync)
        self.keys = KeyBook(self.ws.meta)
        self.door = FrontDoor(self.spool, self.keys, self.config.limits)
        self.loader = BackgroundLoader(self.ws, self.spool, on_loaded=self._loaded)
        # the spools of collector processes (``userloop serve --collector-only``), loaded like the service's own
        self.collectors = CollectorDrains(self.ws, on_loaded=self._loaded, fsync=self.config.fsync)
        self._rules_lock = threading.Lock()
        self.scheduler = Scheduler(self.ws.meta, tick=self.config.scheduler_tick)
        self.scheduler.register(
            rejects_retention(self.ws, keep_days=self.config.rejects_keep_days, max_bytes=self.config.rejects_max_bytes)
        )
        self.scheduler.register(
            user_models(self.ws, clv_model=self.config.clv_model, horizon_days=self.config.horizon_days)
        )
        self.scheduler.register(profiles(self.ws))
        self.scheduler.register(maintenance(self.ws))
        self.url = f"http://{self.config.host}:{self.config.port}"
        self.session_token: str | None = None
        self.guards = Guards(self.config.guards)
        self.query_cache = ResultCache()
        self.journeys = JourneysLoop(self.ws, tick=self.config.journeys_tick)
        tick = self.config.membership_tick
        self.membership = None if tick is None else MembershipLoop(self.ws, tick=tick)
        self._shipping: threading.Thread | None = None

    def start(self) -> None:
        for project in self.ws.meta.projects():
            self._refresh_rules(project.name, self.ws.project(project.name))
        self.loader.start()
        self.collectors.start()
        # a batch left in the ClickHouse outbox (the server was down, or stopped before sending) goes now, in the
        # background, rather than at the next load, which may be far away
        self._shipping = start_shipping(self.ws)
        self.scheduler.start()
        self.journeys.start()
        if self.membership is not None:
            self.membership.start()
        owner.claim(self.path, self.url)
        self.session_token = self._session_token()
        _tune_gc()

    def stop(self) -> None:
        if self.membership is not None:
            self.membership.stop()
        self.journeys.stop()
        self.scheduler.stop()
        self.loader.stop(drain=True)
        self.collectors.stop(drain=True)
        if self._shipping is not None:
            self._shipping.join()  # it uses the workspace, closed below
        self.spool.close()
        self._revoke_session_tokens()
        (self.path / TOKEN_FILE).unlink(missing_ok=True)
        owner.release(self.path)
        self.ws.close()

    def _loaded(self, project: str, store: ProjectStore) -> None:
        """After each load of the spool: the door's rules again, the journeys and the member programmes woken for
        the new events."""
        self._refresh_rules(project, store)
        self.journeys.wake()
        if self.membership is not None:
            self.membership.wake()

    def _refresh_rules(self, project: str, store: ProjectStore) -> None:
        """The door's rules for ``project`` from its registry now; published for the collector processes too."""
        with self._rules_lock:  # the loaders of several spools finish loads in their own threads
            self.door.rules[project] = rules_for(self.ws, project, store)
            publish_rules(self.path, self.door.rules)

    def _session_token(self) -> str:
        """An admin token for local CLI commands, readable only by the workspace's owner (mode 0600)."""
        self._revoke_session_tokens()
        key, secret = self.ws.meta.add_key("admin", f"{SESSION_KEY_NAME} (pid {os.getpid()})", None, service=True)
        # the session token is read from a file only the workspace's owner can read, who can read the data
        # files too: the owner's CLI sees personal data when it asks for --unmask
        self.ws.meta.grant(key.id, "pii")
        path = self.path / TOKEN_FILE
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secret)
        return secret

    def _revoke_session_tokens(self) -> None:
        for key in self.ws.meta.keys(None):
            own = key.service or key.name.startswith(SESSION_KEY_NAME)  # by name: tokens of earlier versions
            if key.kind == "admin" and own and key.revoked_at is None:
                self.ws.meta.revoke_key(key.id)


def _tune_gc() -> None:
    """Keep the cyclic garbage collector off the request path.

    Each collector request allocates thousands of short-lived dicts; with the default thresholds the collector
    then walks the whole long-lived heap (DuckDB bindings, Arrow, caches) every few requests, which measured as
    a tenfold slowdown of JSON parsing in the service. Objects alive after start-up are frozen (never scanned
    again) and generation 0 collects less often; reference counting still frees the request's objects at once.
    """
    gc.collect()
    gc.freeze()
    gen0, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(max(gen0, 50_000), gen1, gen2)
