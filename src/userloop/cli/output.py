"""How the CLI prints: text for people, stable JSON for scripts, one clear line for errors."""

from __future__ import annotations

import csv
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any, NoReturn

import orjson
import typer

from userloop.core.errors import UserloopError


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def to_json(doc: Any) -> str:
    return orjson.dumps(doc, default=_default, option=orjson.OPT_NON_STR_KEYS).decode()


def report(exc: UserloopError, *, json_out: bool) -> None:
    """Print ``exc``: with ``json_out`` the API's error body on stdout (``{"error": {"code", "message", "field"?,
    "hint"?}}``), else one line on stderr and the hint after it."""
    if json_out:
        typer.echo(to_json(exc.body()))
        return
    error = exc.body()["error"]
    where = f" ({error['field']})" if "field" in error else ""
    typer.echo(f"error: {exc.message}{where}", err=True)
    if "hint" in error:
        typer.echo(f"hint: {error['hint']}", err=True)


def fail(exc: UserloopError, *, json_out: bool) -> NoReturn:
    """Print ``exc`` (:func:`report`) and end the command with exit code 2."""
    report(exc, json_out=json_out)
    raise typer.Exit(2)


class Out:
    """Output of one command: ``json_out`` chooses JSON (one document on stdout) over text."""

    def __init__(self, json_out: bool) -> None:
        self.json = json_out

    @contextmanager
    def errors(self) -> Iterator[None]:
        try:
            yield
        except UserloopError as exc:
            fail(exc, json_out=self.json)

    def emit(self, doc: Any, *, text: list[str] | None = None) -> None:
        if self.json or text is None:
            typer.echo(to_json(doc))
        else:
            for line in text:
                typer.echo(line)

    def note(self, line: str) -> None:
        if not self.json:
            typer.echo(line, err=True)

    def table(self, rows: list[dict[str, Any]], columns: list[str]) -> None:
        if self.json:
            typer.echo(to_json(rows))
            return
        from rich.console import Console
        from rich.table import Table

        table = Table(*columns, show_lines=False)
        for row in rows:
            table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
        Console().print(table)
        if not rows:
            typer.echo("(none)")

    def csv(self, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(
                ["" if v is None else _default(v) if not isinstance(v, str | int | float) else v for v in row]
            )

    @contextmanager
    def progress(self, label: str, total: int | None, unit: str = "") -> Iterator[Callable[[int], None]]:
        """Progress of a long step, on stderr; yields ``advance(n)``. On a terminal, a bar with the count out of
        ``total`` (of ``unit``, e.g. "day"), the time spent and the time left; otherwise (piped to a log, or
        under a test runner) a plain line every :func:`progress_seconds` while the step runs and one when it
        ends, so a log is never silent for long. Nothing with --json."""
        if self.json:
            yield lambda _n: None
            return
        if not (sys.stderr.isatty() and sys.stdout.isatty()):
            with ProgressLines(label, total, unit, progress_seconds()) as lines:
                yield lines.advance
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()]
        if unit:
            columns.append(TextColumn(f"{unit}s"))
        columns += [TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]
        with Progress(*columns, transient=True, console=_stderr_console()) as bar:
            task = bar.add_task(label, total=total)
            yield lambda n: bar.advance(task, n)


#: Seconds between two plain progress lines (when not on a terminal); tests set it short.
PROGRESS_SECONDS_ENV = "USERLOOP_PROGRESS_SECONDS"


def progress_seconds() -> float:
    try:
        return max(0.05, float(os.environ.get(PROGRESS_SECONDS_ENV, "5")))
    except ValueError:
        return 5.0


def duration(seconds: float) -> str:
    """``seconds`` in human units: 42s, 1m20s, 1h05m."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class ProgressLines:
    """Plain progress lines on stderr for logs: ``label: day 40/180 (22%), 35s elapsed, ETA 2m03s``.

    A line every ``every`` seconds while the step runs (from a timer thread, so a long batch still shows the
    time going by), and a last one when it ends; a step shorter than ``every`` prints nothing."""

    def __init__(self, label: str, total: int | None, unit: str, every: float) -> None:
        self.label, self.total, self.unit, self.every = label, total, unit, every
        self.done = 0
        self.printed = False
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._tick, name="progress-lines", daemon=True)

    def __enter__(self) -> ProgressLines:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if self.printed:
            self._print(final=exc[0] is None)

    def advance(self, n: int) -> None:
        with self._lock:
            self.done += n

    def line(self, *, final: bool = False) -> str:
        elapsed = time.monotonic() - self._started
        with self._lock:
            done = self.done
        unit = f"{self.unit} " if self.unit else ""
        if self.total:
            share = min(done / self.total, 1.0)
            text = f"{self.label}: {unit}{done:,}/{self.total:,} ({share:.0%})"
        else:
            text = f"{self.label}: {done:,}{' ' + self.unit + 's' if self.unit else ''} so far" if done else self.label
        if final:
            return f"{text}, done in {duration(elapsed)} / 完成"
        text += f", {duration(elapsed)} elapsed"
        if self.total and 0 < done < self.total:
            text += f", ETA {duration(elapsed * (self.total - done) / done)}"
        return text

    def _print(self, *, final: bool = False) -> None:
        print(self.line(final=final), file=sys.stderr, flush=True)
        self.printed = True

    def _tick(self) -> None:
        while not self._stop.wait(self.every):
            self._print()


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)
