"""docs/cli.md documents every command of the ``userloop`` command tree, walked from the real click commands:

* every group and every command has a heading naming it (`` `userloop segments lookalike …` ``);
* a command's section names each of its options (the common ``-w``, ``-p``, ``--json`` once, at the top), holds
  an example (a ``$ userloop …`` line in a code block) and a Chinese summary beside the English;
* no heading names a command that does not exist.

The walk loads every lazy command, so a command added anywhere (a new group, a new option) fails this test until
the page says what it does. The checker is tested too, on pages with a section or an option removed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import typer
from typer import _click

from userloop.cli.main import app

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
#: Options every command may take, documented once in "Common options".
COMMON = frozenset({"--workspace", "--project", "--json", "--help"})
HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
#: `userloop a b c ARGS…` in a heading: the command path is the lower-case words after "userloop".
NAMED = re.compile(r"`userloop((?:\s+[a-z][a-z0-9-]*)*)")
CJK = re.compile(r"[\u4e00-\u9fff]")


@dataclass
class Command:
    path: str  # "segments lookalike"; "" for the root
    group: bool
    options: list[str] = field(default_factory=list)  # the name to look for: the long form, else the short


def command_tree() -> list[Command]:
    """Every visible group and command of ``userloop``, with its options (loading each lazy command)."""
    root = typer.main.get_command(app)
    found: list[Command] = []

    def walk(cmd: Any, path: list[str], ctx: Any) -> None:
        if getattr(cmd, "hidden", False):
            return
        if hasattr(cmd, "list_commands"):
            found.append(Command(" ".join(path), group=True))
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                walk(sub, [*path, name], _click.Context(sub, parent=ctx, info_name=name))
            return
        options = []
        for param in cmd.params:
            if param.param_type_name != "option" or getattr(param, "hidden", False):
                continue
            for names in (param.opts, param.secondary_opts):
                if names:
                    longs = [n for n in names if n.startswith("--")]
                    options.append(longs[0] if longs else names[0])
        found.append(Command(" ".join(path), group=False, options=options))

    walk(root, [], _click.Context(root, info_name="userloop"))
    return found


@dataclass
class Section:
    level: int
    heading: str
    body: str


def sections(text: str) -> list[Section]:
    """Each heading with its text up to the next heading of the same or a higher level (sub-sections included)."""
    lines = text.splitlines()
    marks = [(i, len(m.group(1)), m.group(2)) for i, line in enumerate(lines) if (m := HEADING.match(line))]
    out = []
    for k, (i, level, heading) in enumerate(marks):
        end = next((j for j, lv, _ in marks[k + 1 :] if lv <= level), len(lines))
        out.append(Section(level, heading, "\n".join(lines[i + 1 : end])))
    return out


def named(section: Section) -> str | None:
    match = NAMED.search(section.heading)
    return " ".join(match.group(1).split()) if match else None


def has_option(text: str, option: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text) is not None


def has_example(text: str, path: str) -> bool:
    blocks = re.findall(r"```[a-z]*\n(.*?)```", text, re.S)
    line = re.compile(rf"^\$?\s*userloop {re.escape(path)}(\s|$)", re.M)
    return any(line.search(block) for block in blocks)


def problems(text: str, tree: list[Command]) -> list[str]:
    """What the page lacks for ``tree``, and what it names that ``tree`` lacks; empty when they agree."""
    by_path: dict[str, list[Section]] = {}
    for section in sections(text):
        path = named(section)
        if path:
            by_path.setdefault(path, []).append(section)
    out: list[str] = []
    common = next((s for s in sections(text) if s.heading.lower().startswith("common options")), None)
    if common is None:
        out.append("no 'Common options' section")
    else:
        absent = [o for o in sorted(COMMON) if not has_option(common.body, o)]
        out += [f"common option {o} is not in 'Common options'" for o in absent]
    known = {c.path for c in tree}
    for cmd in tree:
        if not cmd.path:
            continue
        found = by_path.get(cmd.path)
        if not found:
            out.append(f"`userloop {cmd.path}` has no section")
            continue
        if len(found) > 1:
            out.append(f"`userloop {cmd.path}` has {len(found)} sections")
        if cmd.group:
            continue
        body = found[0].heading + "\n" + found[0].body
        out += [f"`userloop {cmd.path}`: option {o} is not documented" for o in cmd.options
                if o not in COMMON and not has_option(body, o)]  # fmt: skip
        if not has_example(body, cmd.path):
            out.append(f"`userloop {cmd.path}` has no example (a `$ userloop {cmd.path} …` line in a code block)")
        if not CJK.search(body):
            out.append(f"`userloop {cmd.path}` has no Chinese summary")
    out += [f"`userloop {p}` is documented but is no command" for p in sorted(by_path) if p and p not in known]
    return out


def test_every_command_and_option_is_documented() -> None:
    tree = command_tree()
    assert len([c for c in tree if not c.group]) >= 50  # the walk reached the lazy groups' commands
    assert {"models run", "models report", "segments lookalike", "projects settings"} <= {c.path for c in tree}
    missing = problems(DOC.read_text(encoding="utf-8"), tree)
    assert not missing, "docs/cli.md is behind the command line:\n" + "\n".join(missing)


# the checker itself ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tree() -> list[Command]:
    return command_tree()


def _without_section(text: str, path: str) -> str:
    section = next(s for s in sections(text) if named(s) == path)
    start = text.index(section.heading)
    return text[: start - 4] + text[start + len(section.heading) + 1 + len(section.body) :]


def test_the_check_fails_without_a_command(tree: list[Command]) -> None:
    text = DOC.read_text(encoding="utf-8")
    assert "`userloop models report` has no section" in problems(_without_section(text, "models report"), tree)


def test_the_check_fails_without_an_option(tree: list[Command]) -> None:
    text = DOC.read_text(encoding="utf-8").replace("--horizon-days", "--horizon")
    found = problems(text, tree)
    assert "`userloop models run`: option --horizon-days is not documented" in found
    assert "`userloop serve`: option --horizon-days is not documented" in found


def test_the_check_fails_for_a_new_command_and_a_gone_one(tree: list[Command]) -> None:
    text = DOC.read_text(encoding="utf-8")
    bigger = [*tree, Command("models explain", group=False, options=["--deep"])]
    assert "`userloop models explain` has no section" in problems(text, bigger)
    smaller = [c for c in tree if c.path != "jobs list"]
    assert "`userloop jobs list` is documented but is no command" in problems(text, smaller)


def test_the_check_wants_an_example(tree: list[Command]) -> None:
    text = DOC.read_text(encoding="utf-8").replace("$ userloop jobs list --limit 10", "(none)")
    assert any("`userloop jobs list` has no example" in p for p in problems(text, tree))
