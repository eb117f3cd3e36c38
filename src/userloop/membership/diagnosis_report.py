"""The member diagnosis read by people: findings as sentences in Chinese and English (:func:`explain`), and the
whole report as one self-contained HTML page (:func:`page`: inline style, no script, no external asset; every
name a user gave — programme, levels, wallets, benefits, growth rules — escaped).
"""

from __future__ import annotations

from html import escape

from userloop.membership.diagnosis_types import Diagnosis, Flows, GroupActivity, LevelInfo, Sentence, WalletLiability

#: The caveat every members vs non-members comparison carries (DOMAIN §9: measure the membership honestly).
SELECTION_CAVEAT = Sentence(
    zh="会员与非会员的差异不是会员体系的效果：入会是自选的，入会者本来就是更好的顾客（选择偏差）。"
    "会员体系的效果请看实验中的双重差分（difference-in-differences，匹配对照组）估计。",
    en="The gap between members and non-members is not the effect of the membership: people choose to join, and "
    "those who join were better customers already (selection). For the effect, see the experiments' "
    "difference-in-differences estimate with matched controls.",
)
LEAVE_TIME_NOTE = Sentence(
    zh="退会按最近一次退会时间统计：退会后又重新入会的会员全程计为会员；退会时间未记录的会员在此前各月末仍计为会员，"
    "并计入本月的退会。",
    en="Leaves count by the latest time of leaving: a member who left and rejoined counts as a member throughout; "
    "one whose time of leaving was not recorded counts as a member at every earlier month end and as a leave in the "
    "current month.",
)
GRANTS_NOTE = Sentence(
    zh="权益发放按发放时会员所处等级统计，包含会员期间的全部发放（旅程与会员体系共用权益发放表）。",
    en="Benefit grants are counted by the level held at the grant, every grant while a member (journeys and the "
    "programme share the grants table).",
)


def _pct(x: float) -> str:
    return f"{x:.1%}"


def _level(levels: list[LevelInfo], i: int) -> tuple[str, str]:
    return (levels[i].title_zh, levels[i].title_en) if i < len(levels) else (f"等级{i}", f"level {i}")


def explain(d: Diagnosis) -> Diagnosis:
    """``d`` with its findings (``sentences``) and caveats (``notes``) written out."""
    sentences = [_distribution(d), _movement(d.flows)]
    if d.growth:
        top = d.growth[0]
        sentences.append(Sentence(
            zh=f"成长值来源：{top.title_zh} 占 {_pct(top.share)}（{top.amount:,}），共 {len(d.growth)} 个来源。",
            en=f"Growth value: {top.title_en} gives {_pct(top.share)} ({top.amount:,}) of {len(d.growth)} source(s).",
        ))  # fmt: skip
    sentences += [_wallet(w) for w in d.liability]
    if d.benefits:
        sentences.append(_benefits(d))
    sentences += _comparison(d.comparison)
    notes = [LEAVE_TIME_NOTE, GRANTS_NOTE, SELECTION_CAVEAT]
    if not d.redemption_measured:
        notes.append(Sentence(
            zh="订单事件没有携带券码属性，核销率未计算。",
            en="Order events carry no coupon-code property; the redemption rate is not measured.",
        ))  # fmt: skip
    return d.model_copy(update={"sentences": sentences, "notes": notes})


def _distribution(d: Diagnosis) -> Sentence:
    total = d.now.total
    parts = [(_level(d.levels, i), n) for i, n in enumerate(d.now.counts)]
    zh = "、".join(f"{name[0]} {n:,}（{_pct(n / total) if total else '0%'}）" for name, n in parts)
    en = ", ".join(f"{name[1]} {n:,} ({_pct(n / total) if total else '0%'})" for name, n in parts)
    return Sentence(zh=f"当前会员 {total:,} 人：{zh}。", en=f"{total:,} members now: {en}.")


def _movement(flows: list[Flows]) -> Sentence:
    joins, ups = sum(f.joins for f in flows), sum(f.upgrades for f in flows)
    downs, leaves = sum(f.downgrades for f in flows), sum(f.leaves for f in flows)
    span = f"{flows[0].period}–{flows[-1].period}" if flows else ""
    return Sentence(
        zh=f"{span}：新入会 {joins:,}，升级 {ups:,}，降级 {downs:,}，退会 {leaves:,}（按月末与月初等级比较）。",
        en=f"{span}: {joins:,} joined, {ups:,} moved up, {downs:,} moved down, {leaves:,} left (level at each "
        "month's end against its start).",
    )


def _wallet(w: WalletLiability) -> Sentence:
    value_zh = f"，折合 {w.liability_yuan:,.2f} 元" if w.liability_yuan is not None else ""
    value_en = f", worth {w.liability_yuan:,.2f} yuan" if w.liability_yuan is not None else ""
    brk_zh = f"；已结清批次的过期率（breakage）{_pct(w.breakage)}" if w.breakage is not None else "；尚无已结清批次"
    brk_en = f"; breakage over settled lots {_pct(w.breakage)}" if w.breakage is not None else "; no settled lots yet"
    return Sentence(
        zh=f"{w.title_zh}：未兑付 {w.outstanding:,}（可用 {w.spendable:,}，冻结 {w.pending:,}）{value_zh}；"
        f"30 天内过期 {w.expiring_30:,}，90 天内 {w.expiring_90:,}{brk_zh}。",
        en=f"{w.title_en}: {w.outstanding:,} outstanding ({w.spendable:,} spendable, {w.pending:,} pending){value_en}; "
        f"{w.expiring_30:,} expire within 30 days, {w.expiring_90:,} within 90{brk_en}.",
    )


def _benefits(d: Diagnosis) -> Sentence:
    grants = sum(b.grants for b in d.benefits)
    by_level: dict[int, int] = {}
    for b in d.benefits:
        by_level[b.level] = by_level.get(b.level, 0) + b.grants
    zh = "、".join(f"{_level(d.levels, i)[0]} {n:,}" for i, n in sorted(by_level.items()))
    en = ", ".join(f"{_level(d.levels, i)[1]} {n:,}" for i, n in sorted(by_level.items()))
    used = sum(b.redeemed or 0 for b in d.benefits)
    rate_zh = f"，核销 {used:,}（{_pct(used / grants)}）" if d.redemption_measured and grants else ""
    rate_en = f"; {used:,} redeemed ({_pct(used / grants)})" if d.redemption_measured and grants else ""
    return Sentence(zh=f"会员期间共发放权益 {grants:,} 次：{zh}{rate_zh}。",
                    en=f"{grants:,} benefits granted to members: {en}{rate_en}.")  # fmt: skip


def _comparison(rows: list[GroupActivity]) -> list[Sentence]:
    out = []
    for days in sorted({r.days for r in rows}):
        m = next(r for r in rows if r.days == days and r.group == "members")
        o = next(r for r in rows if r.days == days and r.group == "non_members")
        spend_zh = spend_en = ""
        if m.spend_per_person is not None and o.spend_per_person is not None:
            spend_zh = f"人均消费 {m.spend_per_person:,.2f} 对 {o.spend_per_person:,.2f} 元，"
            spend_en = f"spend per person {m.spend_per_person:,.2f} vs {o.spend_per_person:,.2f} yuan, "
        out.append(Sentence(
            zh=f"近 {days} 天，会员（{m.people:,} 人）与非会员（{o.people:,} 人）：{spend_zh}"
            f"人均订单 {m.orders_per_person:.2f} 对 {o.orders_per_person:.2f}，"
            f"人均活跃天数 {m.active_days_per_person:.2f} 对 {o.active_days_per_person:.2f}"
            "（不是会员体系的效果，见说明）。",
            en=f"Last {days} days, members ({m.people:,}) vs non-members ({o.people:,}): {spend_en}"
            f"orders per person {m.orders_per_person:.2f} vs {o.orders_per_person:.2f}, active days per person "
            f"{m.active_days_per_person:.2f} vs {o.active_days_per_person:.2f} (not the membership's effect; see "
            "the notes).",
        ))  # fmt: skip
    return out


# the page -------------------------------------------------------------------------------------------------
_STYLE = """body{font-family:system-ui,-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}th,td{border:1px solid #ccc;padding:.25rem .6rem;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f3f3f3}p.en{color:#555}.note{font-size:.9em}"""


def _e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def _table(columns: list[str], rows: list[list[object]]) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _both(s: Sentence, css: str = "") -> str:
    return f'<p lang="zh-CN" class="{css}">{_e(s.zh)}</p><p lang="en" class="en {css}">{_e(s.en)}</p>'


def _h2(zh: str, en: str) -> str:
    return f"<h2>{_e(zh)} · {_e(en)}</h2>"


def page(d: Diagnosis) -> str:
    """The report as one HTML document (UTF-8, no external assets): findings, tables, then the notes."""
    names = [f"{lv.title_zh} / {lv.title_en}" for lv in d.levels]
    parts = [
        f"<h1>{_e(d.title_zh)} · {_e(d.title_en)} — 会员诊断 · Member diagnosis</h1>",
        f"<p>{_e(d.programme)} · {_e(d.as_of.isoformat())} UTC · {_e(d.timezone)}</p>",
        _h2("结论", "Findings"), *(_both(s) for s in d.sentences),
        _h2("等级分布（月末）", "Level distribution (month ends)"),
        _table(["month / 月份", *names, "total / 合计"],
               [[h.period, *h.counts, h.total] for h in d.history]),
        _h2("等级流转", "Flows between levels"),
        _table(["month / 月份", "joins / 入会", "up / 升级", "down / 降级", "stayed / 不变", "left / 退会"],
               [[f.period, f.joins, f.upgrades, f.downgrades, f.stayed, f.leaves] for f in d.flows]),
        *(_flow_matrix(f, names) for f in d.flows[-1:]),
        _h2("成长值来源", "Growth-value sources"),
        _table(["source / 来源", "amount / 成长值", "entries / 笔数", "members / 人数", "share / 占比"],
               [[f"{g.title_zh} / {g.title_en}", g.amount, g.entries, g.members, _pct(g.share)] for g in d.growth]),
        _h2("积分负债与过期率", "Points liability and breakage"),
        _table(["wallet / 钱包", "spendable / 可用", "pending / 冻结", "yuan / 元", "≤30d", "≤90d",
                "breakage / 过期率"],
               [[f"{w.title_zh} / {w.title_en}", w.spendable, w.pending, w.liability_yuan, w.expiring_30,
                 w.expiring_90, "" if w.breakage is None else _pct(w.breakage)] for w in d.liability]),
        _h2("各等级权益使用", "Benefit use by level"),
        _table(["level / 等级", "benefit / 权益", "grants / 发放", "people / 人数", "redeemed / 核销", "rate / 核销率"],
               [[names[b.level] if b.level < len(names) else b.level, b.benefit, b.grants, b.people, b.redeemed,
                 "" if b.redemption_rate is None else _pct(b.redemption_rate)] for b in d.benefits]),
        _h2("会员与非会员", "Members vs non-members"),
        _table(["group / 人群", "days / 天", "people / 人数", "spend pp / 人均消费", "orders pp / 人均订单",
                "active days pp / 人均活跃天", "buyers / 购买占比"],
               [[r.group, r.days, r.people, r.spend_per_person, round(r.orders_per_person, 3),
                 round(r.active_days_per_person, 3), _pct(r.buyers_share)] for r in d.comparison]),
        _h2("说明", "Notes"), *(_both(s, "note") for s in d.notes),
    ]  # fmt: skip
    return (f'<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>{_e(d.title_en)} — member '
            f"diagnosis</title><style>{_STYLE}</style></head><body>{''.join(parts)}</body></html>\n")  # fmt: skip


def _flow_matrix(f: Flows, names: list[str]) -> str:
    rows = [["new / 新入会" if i == 0 else names[i - 1], *row] for i, row in enumerate(f.matrix)]
    return f"<p>{_e(f.period)}</p>" + _table(["from → to / 从 → 到", *names, "left / 退会"], rows)
