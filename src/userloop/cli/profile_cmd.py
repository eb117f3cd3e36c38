"""``userloop tags …``, ``userloop segments …`` and ``userloop users …``: the profile platform from the command line.

Register on the main app with :func:`register`. Every command runs an operation (:mod:`userloop.ops.tags`,
:mod:`userloop.ops.segments`, :mod:`userloop.ops.users`) through :mod:`userloop.cli.dispatch`: against a running
server (through its API) or, when none runs, on the workspace directly; ``--json`` prints what the API answers.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from userloop.cli.dispatch import as_json, build, call, session
from userloop.cli.options import DEFAULT_WORKSPACE_PATH, Json_, Project_, Workspace_
from userloop.cli.output import Out
from userloop.cli.query_cmd import read_definition
from userloop.core.clock import parse_day
from userloop.core.errors import ValidationError

tags_app = typer.Typer(
    help="Tags (标签): define, compute daily or now, read coverage and history.", no_args_is_help=True
)
segments_app = typer.Typer(
    help="Segments (人群): rule, static and look-alike audiences; estimate, compare, export.", no_args_is_help=True
)
users_app = typer.Typer(help="One person: the 360 view and the event timeline (用户360).", no_args_is_help=True)

Date_ = Annotated[str | None, typer.Option("--date", help="Local day, YYYY-MM-DD (default: today).")]
Unmask_ = Annotated[bool, typer.Option("--unmask", help="Show phone numbers and e-mail addresses unmasked.")]
Features_ = Annotated[
    list[str] | None,
    typer.Option("--features", help="Feature kinds: tag, property, model (repeat; default tag+property)."),
]


def _day(text: str | None) -> date | None:
    return parse_day(text, "--date")


def _kinds(features: list[str] | None) -> tuple[str, ...]:
    kinds = tuple(features or ("tag", "property"))
    bad = sorted(set(kinds) - {"tag", "property", "model"})
    if bad:
        raise ValidationError(f"unknown feature kind(s) {', '.join(bad)}; use tag, property, model")
    return kinds


# tags ---------------------------------------------------------------------------------------------------------
@tags_app.command("list")
def tags_list(
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH, project: Project_ = "default", json_out: Json_ = False
) -> None:
    """List tags with their last run and coverage."""
    out = Out(json_out)
    with out.errors():
        rows = as_json("tags.list", call(workspace, "tags.list", project=project))
        flat = [
            {
                **r,
                "last_run": (r.get("last_run") or {}).get("run_date"),
                "users": (r.get("last_run") or {}).get("users"),
            }
            for r in rows
        ]
        out.table(flat, ["name", "kind", "type", "title_zh", "title_en", "last_run", "users"])


@tags_app.command("show")
def tags_show(
    name: Annotated[str, typer.Argument(help="The tag's name.")],
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """A tag's definition, coverage over time and latest value distribution."""
    out = Out(json_out)
    with out.errors():
        row = as_json("tags.get", call(workspace, "tags.get", project=project, tag=name))
        out.emit(row, text=[orjson.dumps(row, option=orjson.OPT_INDENT_2, default=str).decode()])


@tags_app.command("create")
def tags_create(
    definition: Annotated[str, typer.Argument(help="A tag definition file (JSON), or - for standard input.")],
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """Define a tag (checked against the project before it is saved)."""
    out = Out(json_out)
    with out.errors():
        doc = read_definition(definition)
        row = as_json("tags.create", call(workspace, "tags.create", **{**doc, "project": project}))
        out.emit(row, text=[f"saved tag {row['name']} ({row['kind']}, {row['type']})"])


@tags_app.command("update")
def tags_update(
    name: Annotated[str, typer.Argument(help="The tag's name.")],
    definition: Annotated[str, typer.Argument(help="The new definition (JSON file or -).")],
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """Replace a tag's definition; its history starts again."""
    out = Out(json_out)
    with out.errors():
        doc = read_definition(definition)
        row = as_json("tags.update", call(workspace, "tags.update", **{**doc, "project": project, "tag": name}))
        out.emit(row, text=[f"updated tag {row['name']}; its history starts again at the next run"])


@tags_app.command("delete")
def tags_delete(
    name: Annotated[str, typer.Argument(help="The tag's name.")],
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """Delete a tag and its history."""
    out = Out(json_out)
    with out.errors():
        done = as_json("tags.delete", call(workspace, "tags.delete", project=project, tag=name))
        out.emit(done, text=[f"deleted tag {name}"])


@tags_app.command("starter")
def tags_starter(
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH, project: Project_ = "default", json_out: Json_ = False
) -> None:
    """Install the starter tags for the simulated business (idempotent)."""
    out = Out(json_out)
    with out.errors():
        rows = as_json("tags.starter", call(workspace, "tags.starter", project=project))
        out.emit(rows, text=[f"{len(rows)} starter tags installed; compute them with `userloop tags materialise`"])


@tags_app.command("materialise")
def tags_materialise(
    names: Annotated[list[str] | None, typer.Option("--name", "-n", help="Only these tags (repeat).")] = None,
    on: Date_ = None,
    full: Annotated[bool, typer.Option("--full", help="Recompute everyone (no incremental runs).")] = False,
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """Compute tags now, dated; earlier values stay readable in the history."""
    out = Out(json_out)
    with out.errors():
        _day(on)
        result = as_json("tags.materialise", call(workspace, "tags.materialise", project=project, names=names,
                                                  date=on, full=full))  # fmt: skip
        rows = [{**r, "stats": None} for r in result["tags"]]
        if json_out:
            out.emit(result)
        else:
            typer.echo(f"tags as of {result['run_date']}:")
            out.table(rows, ["target", "users", "opened", "closed", "seconds"])


@tags_app.command("upload")
def tags_upload(
    name: Annotated[str, typer.Argument(help="An upload tag's name.")],
    path: Annotated[Path, typer.Argument(help="A CSV file with a header row.")],
    id_column: Annotated[str, typer.Option(help="The column holding the ids.")] = "id",
    id_kind: Annotated[str, typer.Option(help="user_id (person keys) or distinct_id (any known id).")] = "distinct_id",
    value_column: Annotated[str | None, typer.Option(help="The column holding the values (none: yes/no tag).")] = None,
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """Set an upload tag's values from a CSV; rows that cannot be used are listed with the reason."""
    out = Out(json_out)
    with out.errors():
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValidationError(f"cannot read {path}: {exc}") from exc
        from userloop.api.client import ServerClient
        from userloop.ops.tags import UploadTag, upload_tag

        req = build(UploadTag, {"project": project, "tag": name, "csv": text, "id_column": id_column,
                                "id_kind": id_kind, "value_column": value_column})  # fmt: skip
        with session(workspace, writes=True) as run:
            result = run.transfer(upload_tag, req, ServerClient.upload_tag)
        out.emit(result.model_dump(mode="json"))


# segments -----------------------------------------------------------------------------------------------------
@segments_app.command("list")
def segments_list(
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH, project: Project_ = "default", json_out: Json_ = False
) -> None:
    """List segments with their size and last refresh."""
    out = Out(json_out)
    with out.errors():
        rows = as_json("segments.list", call(workspace, "segments.list", project=project))
        out.table(rows, ["id", "name", "kind", "refresh", "size", "refreshed_at"])


@segments_app.command("show")
def segments_show(
    segment_id: Annotated[int, typer.Argument(help="The segment's id.")],
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """A segment's definition and its refresh history (size, entered, left)."""
    out = Out(json_out)
    with out.errors():
        row = as_json("segments.get", call(workspace, "segments.get", project=project, segment_id=segment_id))
        out.emit(row, text=[orjson.dumps(row, option=orjson.OPT_INDENT_2, default=str).decode()])


@segments_app.command("estimate")
def segments_estimate(
    rule: Annotated[str, typer.Argument(help="A rule file (JSON), or - for standard input.")],
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """How many people a rule selects now (nothing is saved)."""
    out = Out(json_out)
    with out.errors():
        doc = read_definition(rule)
        result = as_json("segments.estimate", call(workspace, "segments.estimate", project=project, rule=doc))
        lines = [f"{result['size']:,} of {result['total']:,} people ({result['share']:.2%})"]
        out.emit(result, text=lines + [f"warning: {w}" for w in result.get("warnings", [])])


@segments_app.command("create")
def segments_create(
    name: Annotated[str, typer.Argument(help="The segment's name.")],
    rule: Annotated[str, typer.Argument(help="A rule file (JSON), or - for standard input.")],
    description: Annotated[str, typer.Option(help="What the audience is for.")] = "",
    manual: Annotated[bool, typer.Option("--manual", help="Refresh only on demand (default: daily).")] = False,
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """Save a rule segment and compute its members."""
    out = Out(json_out)
    with out.errors():
        doc = read_definition(rule)
        reply = call(workspace, "segments.create", project=project, name=name, rule=doc, description=description,
                     refresh="manual" if manual else "daily")  # fmt: skip
        row = as_json("segments.create", reply)
        out.emit(row, text=[f"saved segment {row['id']}: {row['name']} — {row['size']:,} people"])


@segments_app.command("update")
def segments_update(
    segment_id: Annotated[int, typer.Argument(help="The segment's id.")],
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    rule: Annotated[str | None, typer.Option(help="A new rule file (JSON).")] = None,
    description: Annotated[str | None, typer.Option(help="A new description.")] = None,
    refresh: Annotated[str | None, typer.Option(help="daily or manual.")] = None,
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """Change a segment; the membership history goes on."""
    out = Out(json_out)
    with out.errors():
        changes: dict[str, Any] = {"name": name, "description": description, "refresh": refresh}
        if rule is not None:
            changes["rule"] = read_definition(rule)
        reply = call(workspace, "segments.update", project=project, segment_id=segment_id, **changes)
        row = as_json("segments.update", reply)
        out.emit(row, text=[f"updated segment {row['id']}: {row['name']}"])


@segments_app.command("delete")
def segments_delete(
    segment_id: Annotated[int, typer.Argument(help="The segment's id.")],
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """Delete a segment and its membership history."""
    out = Out(json_out)
    with out.errors():
        done = as_json("segments.delete", call(workspace, "segments.delete", project=project, segment_id=segment_id))
        out.emit(done, text=[f"deleted segment {segment_id}"])


@segments_app.command("refresh")
def segments_refresh(
    segment_id: Annotated[int, typer.Argument(help="The segment's id.")],
    on: Date_ = None,
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """Recompute a rule segment's members now and record who entered and who left."""
    out = Out(json_out)
    with out.errors():
        _day(on)
        reply = call(workspace, "segments.refresh", project=project, segment_id=segment_id, date=on)
        r = as_json("segments.refresh", reply)
        out.emit(r, text=[f"{r['users']:,} members on {r['run_date']}: {r['opened']:,} entered, {r['closed']:,} left"])


@segments_app.command("static")
def segments_static(
    name: Annotated[str, typer.Argument(help="The segment's name.")],
    path: Annotated[Path, typer.Argument(help="Ids, one per line (a CSV's first column; a header row is skipped).")],
    id_kind: Annotated[str, typer.Option(help="user_id (person keys) or distinct_id (any known id).")] = "distinct_id",
    description: Annotated[str, typer.Option(help="Where the list came from.")] = "",
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """A segment of uploaded ids; ids that match no one are listed."""
    out = Out(json_out)
    with out.errors():
        ids = read_ids(path)
        reply = call(workspace, "segments.static", project=project, name=name, ids=ids, id_kind=id_kind,
                     description=description)  # fmt: skip
        row = as_json("segments.static", reply)
        lines = [f"saved segment {row['id']}: {row['name']} — {row['size']:,} people"]
        lines += [f"  row {r['row']}: {r['id']!r}: {r['reason']}" for r in row["rejects"][:20]]
        out.emit(row, text=lines)


def read_ids(path: Path) -> list[str]:
    """The first column of a CSV or a plain list; a first row that is not an id (``id``, ``user_id``…) is skipped."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"cannot read {path}: {exc}") from exc
    rows = [row[0].strip() for row in csv.reader(io.StringIO(text)) if row and row[0].strip()]
    if rows and rows[0].lower() in ("id", "ids", "user_id", "distinct_id", "uid"):
        rows = rows[1:]
    return rows


@segments_app.command("from-analysis")
def segments_from_analysis(
    name: Annotated[str, typer.Argument(help="The segment's name.")],
    definition: Annotated[str, typer.Argument(help="A funnel/retention/lifecycle definition with 'people' (JSON).")],
    description: Annotated[str, typer.Option(help="What the audience is for.")] = "",
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """A static segment of an analysis' people, e.g. a funnel step's dropped users."""
    out = Out(json_out)
    with out.errors():
        doc = read_definition(definition)
        reply = call(workspace, "segments.from_analysis", project=project, name=name, definition=doc,
                     description=description)  # fmt: skip
        row = as_json("segments.from_analysis", reply)
        out.emit(row, text=[f"saved segment {row['id']}: {row['name']} — {row['size']:,} people"])


@segments_app.command("lookalike")
def segments_lookalike(
    name: Annotated[str, typer.Argument(help="The new segment's name.")],
    seed: Annotated[int, typer.Option(help="The seed segment's id.")],
    top: Annotated[int, typer.Option(help="How many look-alikes to keep.")],
    features: Features_ = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Score and report; save nothing.")] = False,
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """Find the people most like a seed segment and save the top N as a segment."""
    out = Out(json_out)
    with out.errors():
        reply = call(workspace, "segments.lookalike", project=project, name=name, seed=seed, top_n=top,
                     features=list(_kinds(features)), save=not dry_run)  # fmt: skip
        result = as_json("segments.lookalike", reply)
        out.emit(result, text=_lookalike_lines(result))


def _lookalike_lines(result: dict[str, Any]) -> list[str]:
    """A look-alike's reply as text: what was found, how well, what was left out and any warning (zh/en)."""
    quality = result["quality"]
    auc = quality.get("cv_auc")
    saved = result.get("segment")
    lines = [
        f"look-alikes / 相似人群: {result['size']:,} of {result['candidates']:,} candidates, "
        f"seed {result['seed_size']:,}" + (f" → segment {saved['id']} ({saved['name']})" if saved else " (dry run)"),
        f"held-out AUC / 留出集 AUC: {'n/a' if auc is None else f'{auc:.3f}'}",
    ]
    holdout = quality.get("holdout")
    if holdout:
        lines.append(f"hidden seed found / 隐藏种子召回: {holdout['recall']:.0%} in the top {holdout['top_n']:,} "
                     f"({holdout['lift']:.1f}× chance / 随机水平的倍数)")  # fmt: skip
    if result.get("excluded"):
        lines.append("left out, the seed's own definition / 已排除（种子定义本身）:")
        lines += [f"  {e['feature']}: {e['reason']['en']} / {e['reason']['zh']}" for e in result["excluded"]]
    if result.get("influential"):
        lines.append("most influential / 影响最大的特征:")
        lines += [f"  {i['en']} / {i['zh']}" for i in result["influential"][:5]]
    for w in result.get("warnings") or []:
        lines += [f"warning: {w['en']}", f"警告：{w['zh']}"]
    return lines


@segments_app.command("members")
def segments_members(
    segment_id: Annotated[int, typer.Argument(help="The segment's id.")],
    limit: Annotated[int, typer.Option(help="Page size (≤ 10,000).")] = 1000,
    after: Annotated[int | None, typer.Option(help="Continue after this person key.")] = None,
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """A page of current members (person keys)."""
    out = Out(json_out)
    with out.errors():
        reply = call(workspace, "segments.members", project=project, segment_id=segment_id, limit=limit, after=after)
        page = as_json("segments.members", reply)
        more = [f"(more: --after {page['next']})"] if page["next"] is not None else []
        out.emit(page, text=[str(u) for u in page["user_ids"]] + more)


@segments_app.command("changes")
def segments_changes(
    segment_id: Annotated[int, typer.Argument(help="The segment's id.")],
    on: Annotated[str, typer.Option("--date", help="The refresh's local day, YYYY-MM-DD.")],
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """Who entered and who left the segment in a day's refresh."""
    out = Out(json_out)
    with out.errors():
        _day(on)
        result = as_json("segments.changes", call(workspace, "segments.changes", project=project,
                                                  segment_id=segment_id, date=on))  # fmt: skip
        out.emit(result, text=[f"entered {len(result['entered']):,}, left {len(result['left']):,} on {on}"])


@segments_app.command("compare")
def segments_compare(
    a: Annotated[int, typer.Argument(help="Segment A's id.")],
    b: Annotated[int | None, typer.Argument(help="Segment B's id (default: everyone not in A).")] = None,
    features: Features_ = None,
    correction: Annotated[str, typer.Option(help="bh (Benjamini–Hochberg), holm or bonferroni.")] = "bh",
    alpha: Annotated[float, typer.Option(help="Significance level after correction.")] = 0.05,
    top: Annotated[int, typer.Option(help="Rows to print.")] = 20,
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """Compare segment A with B (or with everyone else) on every tag and property, ranked by effect size."""
    out = Out(json_out)
    with out.errors():
        reply = call(workspace, "segments.compare", project=project, a={"segment": a},
                     b={"segment": b} if b is not None else None, features=list(_kinds(features)),
                     correction=correction, alpha=alpha)  # fmt: skip
        result = as_json("segments.compare", reply)
        if json_out:
            out.emit(result)
            return
        rows = [
            {"feature": f["name"], "effect": f"{f['effect']:.3f}", "p (adjusted)": f"{f['p_adjusted']:.2g}",
             "significant": "yes" if f["significant"] else "", "summary": f["summary"]["en"]}
            for f in result.get("features", [])[:top]
        ]  # fmt: skip
        out.table(rows, ["feature", "effect", "p (adjusted)", "significant", "summary"])


@segments_app.command("export")
def segments_export(
    segment_id: Annotated[int, typer.Argument(help="The segment's id.")],
    fields: Annotated[str, typer.Option(help="Comma-separated fields, e.g. user_id,property:city,tag:rfm_class.")],
    output: Annotated[Path, typer.Option("--out", "-o", help="The file to write.")],
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
    limit: Annotated[int | None, typer.Option(help="At most this many people.")] = None,
    unmask: Unmask_ = False,
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """Write a segment's members with chosen fields to CSV or Parquet (phone and e-mail masked unless --unmask)."""
    out = Out(json_out)
    with out.errors():
        if fmt not in ("csv", "parquet"):
            raise ValidationError("--format is csv or parquet")
        from userloop.api.client import ServerClient
        from userloop.ops.segments import ExportSegment, export_segment

        chosen = [f.strip() for f in fields.split(",") if f.strip()]
        fields_ = {"project": project, "segment_id": segment_id, "fields": chosen, "format": fmt,
                   "path": output.expanduser().resolve(), "unmask": unmask, "limit": limit}  # fmt: skip
        req = build(ExportSegment, fields_)
        with session(workspace) as run:
            result = run.transfer(export_segment, req, ServerClient.export_segment)
        out.emit(result.model_dump(mode="json"), text=[f"wrote {output} ({fmt})"])


@segments_app.command("fields")
def segments_fields(
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH, project: Project_ = "default", json_out: Json_ = False
) -> None:
    """The fields an export can hold; sensitive ones are masked unless unmasked."""
    out = Out(json_out)
    with out.errors():
        rows = as_json("segments.export_fields", call(workspace, "segments.export_fields", project=project))
        out.table(rows, list(rows[0].keys()) if rows else ["field"])


# users --------------------------------------------------------------------------------------------------------
@users_app.command("show")
def users_show(
    key: Annotated[str, typer.Argument(help="A person key or any id the person is known by.")],
    unmask: Unmask_ = False,
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """The 360 view of one person: profile, identities, tags with history, models, segments, orders."""
    out = Out(json_out)
    with out.errors():
        row = as_json("users.get", call(workspace, "users.get", project=project, key=key, unmask=unmask))
        out.emit(row, text=user_lines(row))


def user_lines(row: dict[str, Any]) -> list[str]:
    """The 360 view as a page of text (``--json`` prints all of it)."""
    prof, summary, orders = row["profile"], row["summary"], row["orders"]
    lines = [f"person {row['user_id']} · first seen {prof.get('first_seen')} · last seen {prof.get('last_seen')}"]
    shown = {k: v for k, v in prof.items() if v is not None and k not in ("user_id", "created_at", "updated_at")}
    lines += ["profile / 画像:", *(f"  {k}: {v}" for k, v in shown.items())]
    lines += ["identities / 身份:", *(f"  {i['id_type']}: {i['id_value']}" for i in row["identities"])]
    lines += ["tags / 标签:"]
    for tag in row["tags"]:
        changes = len(tag["history"]) - 1
        since = f"  (changed {changes}×, since {tag['history'][-1]['from']})" if changes > 0 else ""
        lines.append(f"  {tag['name']} ({tag['title_zh']}): {tag['value']}{since}")
    lines += ["models / 模型:"]
    for m in row["models"]:
        before = f"  (before: {m['previous']})" if m.get("previous") else ""
        lines.append(f"  {m['model']} {m['run_date']}: {m['outputs']}{before}")
    member = [s for s in row["segments"] if s["member"]]
    lines += ["segments / 人群:", *(f"  {s['id']}: {s['name']}" for s in member)]
    lines.append(f"orders / 订单: {orders['count']:,}, total {orders['amount']}")
    lines.append(f"events / 行为: {summary['events']:,} on {summary['active_days']:,} days, "
                 f"{summary['first_event']} … {summary['last_event']}")  # fmt: skip
    return lines


@users_app.command("timeline")
def users_timeline(
    key: Annotated[str, typer.Argument(help="A person key or any id the person is known by.")],
    limit: Annotated[int, typer.Option(help="Events per page (≤ 500).")] = 50,
    before: Annotated[str | None, typer.Option(help="The 'next' cursor of the previous page.")] = None,
    events: Annotated[list[str] | None, typer.Option("--event", "-e", help="Only these events (repeat).")] = None,
    unmask: Unmask_ = False,
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """A page of one person's events, newest first."""
    out = Out(json_out)
    with out.errors():
        reply = call(workspace, "users.timeline", project=project, key=key, limit=limit, before=before,
                     events=",".join(events) if events else None, unmask=unmask)  # fmt: skip
        page = as_json("users.timeline", reply)
        if json_out:
            out.emit(page)
            return
        out.table(page["events"], ["time", "event", "properties"])
        if page.get("next"):
            typer.echo(f"more: --before {page['next']}")


def register(app: typer.Typer) -> None:
    app.add_typer(tags_app, name="tags")
    app.add_typer(segments_app, name="segments")
    app.add_typer(users_app, name="users")
