"""The report after launch read by people: findings as sentences in Chinese and English (:func:`explain`), e.g.
"「coupon」组比对照组转化率高 1.8 个百分点（95% 置信区间 0.9–2.7），每花 1 元券带来 3.2 元 GMV", and the whole report
as one self-contained HTML page (:func:`page`: inline style, no script, no external asset; every name a user gave
— journey, node, branch, variant, event — escaped).
"""

from __future__ import annotations

from html import escape

from userloop.experiment.report_types import Comparison, Report, Return, Sentence, SrmCheck

#: What a comparison's control is called, by kind.
_CONTROL = {
    "control_branch": ("对照组", "the control group"),
    "global_control": ("全局对照组", "the global control group"),
    "control_variant": ("对照组", "the control group"),
}
_GUARDRAILS = {
    "unsubscribed": ("退订率", "unsubscribe rate"),
    "complained": ("投诉率", "complaint rate"),
    "churned": ("流失率", "churn rate"),
}


def _where(c: Comparison | Return | SrmCheck) -> tuple[str, str]:
    return (f"节点 {c.node}", f"node {c.node}") if c.node else ("整体", "overall")


def _arm(name: str, entry: bool) -> tuple[str, str]:
    if entry:
        return "进入旅程的人", "People in the journey"
    return f"「{name}」组", f"'{name}'"


def _pp(x: float) -> str:
    return f"{abs(x) * 100:.1f}"


def _interval(c: Comparison) -> tuple[str, str]:
    low, high = c.low * 100, c.high * 100
    return f"95% 置信区间 {low:.1f}–{high:.1f}", f"95% CI {low:.1f} to {high:.1f}"


def conversion_sentence(c: Comparison, back: Return | None) -> Sentence:
    """The conversion difference in percentage points with its interval, and the return on benefits."""
    entry = c.treatment == "entered"
    zh_t, en_t = _arm(c.treatment, entry)
    zh_c, en_c = _CONTROL[c.against]
    zh_w, en_w = _where(c)
    ci_zh, ci_en = _interval(c)
    if c.code is not None:
        return Sentence(
            zh=f"{zh_w}：{zh_t}与{zh_c}的转化率无法比较（{c.code}）。",
            en=f"{en_w.capitalize()}: {en_t} and {en_c} cannot be compared on conversion ({c.code}).",
        )
    up = c.estimate >= 0
    zh = f"{zh_w}：{zh_t}比{zh_c}转化率{'高' if up else '低'} {_pp(c.estimate)} 个百分点（{ci_zh}）"
    verb = "convert" if entry else "converts"
    en = (f"{en_w.capitalize()}: {en_t} {verb} {_pp(c.estimate)} percentage points {'more' if up else 'less'} "
          f"than {en_c} ({ci_en})")  # fmt: skip
    if back is not None and back.return_per_cost is not None:
        zh += f"，每花 1 元券带来 {back.return_per_cost:.1f} 元 GMV"
        en += f"; each 1 yuan of benefits brings {back.return_per_cost:.1f} yuan of GMV"
    if not c.significant:
        zh += "；差异不显著"
        en += "; not significant"
    return Sentence(zh=zh + "。", en=en + ".")


def guardrail_sentence(c: Comparison) -> Sentence:
    """A guardrail that got significantly worse."""
    zh_t, en_t = _arm(c.treatment, c.treatment == "entered")
    zh_c, en_c = _CONTROL[c.against]
    zh_m, en_m = _GUARDRAILS[c.metric]
    zh_w, en_w = _where(c)
    ci_zh, ci_en = _interval(c)
    return Sentence(
        zh=f"护栏指标：{zh_w}{zh_t}的{zh_m}比{zh_c}高 {_pp(c.estimate)} 个百分点（{ci_zh}）。",
        en=f"Guardrail: {en_w}, the {en_m} of {en_t} is {_pp(c.estimate)} percentage points above {en_c} ({ci_en}).",
    )


def srm_sentence(s: SrmCheck) -> Sentence:
    """A sample ratio mismatch: the split or its records are broken, so the experiment's numbers are suspect."""
    zh_w, en_w = _where(s)
    counts = ", ".join(f"{a} {n:,}" for a, n in zip(s.arms, s.counts, strict=True))
    return Sentence(
        zh=f"样本比例失衡（SRM）：{zh_w}各组人数 {counts} 与计划比例不符（p={s.p_value:.2g}），分流或记录有问题，"
        "该实验的其他结论不可信。",
        en=f"Sample ratio mismatch: {en_w}, the arms hold {counts}, not the planned shares (p={s.p_value:.2g}); the "
        "assignment or its records are broken, so this experiment's other numbers are suspect.",
    )


def explain(report: Report) -> Report:
    """``report`` with its findings (``sentences``) and caveats (``notes``) written out."""
    returns = {(r.experiment, r.treatment, r.against): r for r in report.returns}
    sentences = [srm_sentence(s) for s in report.srm if s.alert]
    for c in report.comparisons:
        if c.metric == "conversion" and c.scale == "absolute":
            sentences.append(conversion_sentence(c, returns.get((c.experiment, c.treatment, c.against))))
        elif c.metric in _GUARDRAILS and c.significant and c.estimate > 0:
            sentences.append(guardrail_sentence(c))
    notes = [
        Sentence(
            zh=f"转化：曝光后 {report.window_seconds // 3600} 小时内发生目标事件 {report.goal}；人均收入取目标事件的"
            f"{report.money_property or '（无金额属性）'}；区间为 Welch t 检验的 95% 置信区间。",
            en=f"Conversion: the goal event {report.goal} within {report.window_seconds // 3600} hours of exposure; "
            f"revenue per person sums {report.money_property or '(no money property)'} on goal events; intervals "
            "are Welch's 95% t intervals.",
        )
    ]
    if not report.arms:
        notes.append(Sentence(zh="还没有人被曝光。", en="Nobody has been exposed yet."))
    return report.model_copy(update={"sentences": sentences, "notes": notes})


# the page ---------------------------------------------------------------------------------------------------------
_STYLE = (
    "body{font-family:system-ui,-apple-system,'PingFang SC','Microsoft YaHei',sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
    "th{background:#f4f4f4}td.t,th.t{text-align:left}.alert{color:#b00020;font-weight:bold}p.en{color:#555}"
)


def _num(x: float | None, digits: int = 2) -> str:
    return "" if x is None else f"{x:,.{digits}f}"


def _table(headers: list[str], rows: list[list[str]], text_columns: int = 1) -> str:
    head = "".join(f'<th class="t">{escape(h)}</th>' if i < text_columns else f"<th>{escape(h)}</th>"
                   for i, h in enumerate(headers))  # fmt: skip
    body = "".join(
        "<tr>" + "".join(f'<td class="t">{escape(c)}</td>' if i < text_columns else f"<td>{escape(c)}</td>"
                         for i, c in enumerate(r)) + "</tr>"
        for r in rows
    )  # fmt: skip
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def page(report: Report) -> str:
    """The report as one self-contained HTML page (every user-given name escaped)."""
    title = f"实验报告 · Experiment report — {report.subject}"
    parts = [f"<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>{escape(title)}</title>"
             f"<style>{_STYLE}</style></head><body><h1>{escape(title)}</h1>",
             f"<p>{escape(report.as_of.isoformat())} UTC · goal {escape(report.goal)}</p>",
             "<h2>结论 · Findings</h2>"]  # fmt: skip
    for s in report.sentences:
        alert = ' class="alert"' if s.zh.startswith("样本比例失衡") else ""
        parts.append(f'<p{alert}>{escape(s.zh)}</p><p class="en">{escape(s.en)}</p>')
    parts.append("<h2>各组 · Arms</h2>")
    parts.append(_table(
        ["experiment", "variant", "global control", "people", "conversions", "rate", "revenue / person",
         "cost / person", "unsubscribed", "complained", "churned"],
        [[a.experiment, a.variant, "yes" if a.global_control else "", f"{a.people:,}", f"{a.conversions:,}",
          _num(None if a.conversion_rate is None else a.conversion_rate * 100, 1) + "%",
          _num(a.revenue_per_person), _num(a.cost_per_person), f"{a.unsubscribed:,}", f"{a.complained:,}",
          f"{a.churned:,}"] for a in report.arms],
        text_columns=3,
    ))  # fmt: skip
    parts.append("<h2>对比 · Comparisons</h2>")
    parts.append(_table(
        ["experiment", "treatment", "control", "metric", "scale", "estimate", "95% low", "95% high", "p",
         "p (Holm)"],
        [[c.experiment, c.treatment, f"{c.control} ({c.against})", c.metric, c.scale, _num(c.estimate, 4),
          _num(c.low, 4), _num(c.high, 4), f"{c.p_value:.3g}",
          "" if c.p_adjusted is None else f"{c.p_adjusted:.3g}"] for c in report.comparisons],
        text_columns=5,
    ))  # fmt: skip
    if report.returns:
        parts.append("<h2>权益回报 · Return on benefits</h2>")
        parts.append(_table(
            ["experiment", "treatment", "control", "revenue / person added", "cost / person added", "GMV per 1 yuan"],
            [[r.experiment, r.treatment, r.control, _num(r.revenue_per_person_added),
              _num(r.cost_per_person_added), _num(r.return_per_cost)] for r in report.returns],
            text_columns=3,
        ))  # fmt: skip
    if report.srm:
        parts.append("<h2>样本比例检查 · Sample ratio</h2>")
        parts.append(_table(
            ["experiment", "arms", "people", "planned %", "p", "alert"],
            [[s.experiment, " / ".join(s.arms), " / ".join(f"{n:,}" for n in s.counts),
              " / ".join(f"{w:g}" for w in s.weights), f"{s.p_value:.3g}", "SRM" if s.alert else ""]
             for s in report.srm],
            text_columns=2,
        ))  # fmt: skip
    for s in report.notes:
        parts.append(f'<p>{escape(s.zh)}</p><p class="en">{escape(s.en)}</p>')
    parts.append("</body></html>")
    return "".join(parts)


__all__ = ["conversion_sentence", "explain", "guardrail_sentence", "page", "srm_sentence"]
