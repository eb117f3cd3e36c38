"""How the CLI prints: text for people, stable JSON for scripts, one clear line for errors."""

from __future__ import annotations

import csv
import sys
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
    def progress(self, label: str, total: int | None) -> Iterator[Callable[[int], None]]:
        """A progress bar on stderr (none with --json or when stderr is not a terminal)."""
        if self.json or not sys.stderr.isatty():
            yield lambda _n: None
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, transient=True, console=_stderr_console()) as bar:
            task = bar.add_task(label, total=total)
            yield lambda n: bar.advance(task, n)


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)
