"""Commands that load on use: ``userloop --help`` lists every command without importing any of them.

A command's module brings its libraries (DuckDB, Arrow, SQLAlchemy, FastAPI, numpy…); importing them all up
front made every start of the command line take half a second. :class:`LazyGroup` knows each command by a
:class:`Lazy` entry (module, attribute, one-line help) and imports the module the first time the command is
asked for (``get_command``): to run it, to print its own ``--help``, or when something walks the command tree.
The top-level help prints the entries' one-line help instead, so it imports nothing.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, ClassVar

import typer
from typer import _click  # the click Typer vendors: its groups and contexts are these classes
from typer._click.exceptions import UsageError
from typer.core import TyperGroup


@dataclass(frozen=True)
class Lazy:
    """Where a command lives: ``attribute`` of ``module`` is a ``typer.Typer`` (a group of commands) or a
    function (one command); ``help`` is the line ``userloop --help`` shows (the first sentence of the
    command's own help, which a test keeps equal)."""

    module: str
    attribute: str
    help: str


class LazyGroup(TyperGroup):
    """A Typer group whose commands are :attr:`lazy` entries, imported on first use (in the table's order)."""

    lazy: ClassVar[dict[str, Lazy]] = {}

    def list_commands(self, ctx: _click.Context) -> list[str]:
        return [*self.lazy, *(name for name in super().list_commands(ctx) if name not in self.lazy)]

    def get_command(self, ctx: _click.Context, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            self.commands[cmd_name] = load(cmd_name, self.lazy[cmd_name])
        return super().get_command(ctx, cmd_name)

    def resolve_command(self, ctx: _click.Context, args: list[str]) -> Any:
        """As Typer's, with "Did you mean …?" drawn from every command, loaded or not."""
        from difflib import get_close_matches

        try:
            return super().resolve_command(ctx, args)
        except UsageError as exc:
            matches = get_close_matches(args[0], self.list_commands(ctx)) if args else []
            if matches and "Did you mean" not in exc.message:
                exc.message = f"{exc.message.rstrip('.')}. Did you mean {', '.join(repr(m) for m in matches)}?"
            raise

    def format_commands(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        """The command list: loaded commands' own short help, the table's line for the others."""
        from typer._click.utils import make_default_short_help

        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows = []
        for name in names:
            cmd = self.commands.get(name)
            if cmd is None and name in self.lazy:
                rows.append((name, make_default_short_help(self.lazy[name].help, limit)))
            elif cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def load(name: str, entry: Lazy) -> Any:
    """The click command of ``entry``, named ``name``, built as ``app.add_typer``/``app.command`` would."""
    from typer.main import get_command_from_info, get_group_from_info
    from typer.models import CommandInfo, TyperInfo

    target = getattr(importlib.import_module(entry.module), entry.attribute)
    if isinstance(target, typer.Typer):
        return get_group_from_info(
            TyperInfo(target, name=name), pretty_exceptions_short=True, rich_markup_mode=None, suggest_commands=True
        )
    return get_command_from_info(
        CommandInfo(name=name, callback=target), pretty_exceptions_short=True, rich_markup_mode=None
    )
