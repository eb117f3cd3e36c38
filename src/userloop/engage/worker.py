"""Delivery workers: processes that carry out the outbox, several at once on PostgreSQL.

``python -m userloop.engage.worker --meta-url postgresql+psycopg://… --project default --key-file KEY`` (also
``userloop journeys worker``) runs one worker until SIGTERM/SIGINT: it claims due rows with ``FOR UPDATE SKIP
LOCKED``, so any number of workers share the outbox without sending a row twice, and a worker killed mid-batch
leaves its rows ``sending`` with a lease that another worker (or itself, restarted) takes over when it runs out.
The process that owns the event store keeps the steps that read profiles (:mod:`userloop.engage.engine`).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from userloop.core.clock import utcnow
from userloop.engage.channels.registry import ChannelBook
from userloop.engage.delivery import Deliverer, Tally
from userloop.engage.secrets import SecretBox
from userloop.store.meta import MetaStore

log = logging.getLogger(__name__)


def run_worker(
    meta: MetaStore,
    project_name: str,
    box: SecretBox,
    *,
    worker: str,
    stop: threading.Event,
    idle: float = 0.2,
    lease: timedelta = timedelta(seconds=30),
    batch: int = 200,
    clock: Callable[[], datetime] = utcnow,
) -> Tally:
    """Deliver until ``stop`` is set; returns the total of what this worker did."""
    project = meta.project(project_name)
    if project is None:
        raise SystemExit(f"no project {project_name!r} in {meta.url}")
    book = ChannelBook(meta, project.id, box)
    deliverer = Deliverer(meta, project, book, link_secret=box.derive("links"), worker=worker, lease=lease, batch=batch)
    total = Tally()
    try:
        while not stop.is_set():
            tally = deliverer.run_once(clock())
            for k, v in tally.by_status.items():
                total.add(k, v)
            if tally.handled == 0 or tally.deferred + tally.retried == tally.handled:
                stop.wait(idle)
    finally:
        book.close()
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="userloop-worker", description=__doc__.split("\n\n")[0])
    parser.add_argument("--meta-url", required=True, help="the metadata database (SQLAlchemy URL)")
    parser.add_argument("--project", default="default")
    parser.add_argument("--workspace", type=Path, help="where secret.key is (else $USERLOOP_SECRET_KEY)")
    parser.add_argument("--name", default=f"worker-{os.getpid()}")
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--lease-seconds", type=float, default=30.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    meta = MetaStore(args.meta_url)
    box = SecretBox.for_workspace(args.workspace or Path.cwd())
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"worker {args.name} delivering for project {args.project}", flush=True)
    total = run_worker(
        meta,
        args.project,
        box,
        worker=args.name,
        stop=stop,
        lease=timedelta(seconds=args.lease_seconds),
        batch=args.batch,
    )
    print(f"worker {args.name} stopped: {total.by_status}", flush=True)
    meta.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
