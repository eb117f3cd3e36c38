"""A model's stored report (``userloop models report NAME``) as tables instead of one line of JSON.

Reports differ by model and grow over time, so the layout follows the report's shape rather than a list of
fields: top-level figures in a summary table; a mapping of names to counts (lifecycle stages, risk tiers,
preferred categories) as a class-count table with shares; a list of records (RFM classes, validation deciles,
association rules) or a mapping of names to records (value tiers) as a table; deeper mappings (CLV validation
candidates) as sections of their own; the configuration last, flattened. Known keys get Chinese and English
labels; ratios (``*_rate``, ``*share``, support, confidence) print as percentages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from userloop.cli.render import fmt
from userloop.cli.render.table import Col, fit, name, title

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

#: Report keys → (Chinese, English). Keys not listed print as they are.
LABELS: dict[str, tuple[str, str]] = {
    "customers": ("客户数", "customers"),
    "users": ("用户数", "users"),
    "medians": ("中位数", "medians"),
    "recency_days": ("最近购买天数", "recency (days)"),
    "frequency": ("购买频次", "frequency"),
    "monetary": ("消费金额", "monetary"),
    "classes": ("分类", "classes"),
    "class": ("分类", "class"),
    "stages": ("阶段", "stages"),
    "tiers": ("分层", "tiers"),
    "validation": ("验证", "validation"),
    "config": ("配置", "configuration"),
    "transaction_model": ("交易模型", "transaction model"),
    "choice": ("模型选择", "model choice"),
    "candidates": ("候选模型", "candidates"),
    "params": ("参数", "parameters"),
    "deciles": ("十分位", "deciles"),
    "decile": ("十分位", "decile"),
    "dimensions": ("偏好维度", "dimensions"),
    "associations": ("关联规则", "associations"),
    "value_jump": ("价值跃迁", "value jump"),
    "behaviours": ("行为差异", "behaviours"),
    "active_users": ("活跃用户", "active users"),
    "low_frequency_users": ("低频用户", "low-frequency users"),
    "mean_score": ("平均分", "mean score"),
    "feature_importance": ("特征重要性", "feature importance"),
    "snapshots": ("快照", "snapshots"),
    "training_rows": ("训练样本", "training rows"),
    "positive_rate": ("正例率", "positive rate"),
    "top_decile_lift": ("前10%提升", "top-decile lift"),
    "purchases_missing_money": ("缺金额的购买", "purchases without money"),
    "horizon_days": ("预测天数", "horizon (days)"),
    "holdout_days": ("留出天数", "holdout (days)"),
    "log_likelihood": ("对数似然", "log-likelihood"),
    "actual_holdout_purchases": ("留出期实际购买", "actual holdout purchases"),
    "predicted_holdout_purchases": ("留出期预测购买", "predicted holdout purchases"),
    "aggregate_error": ("总量误差", "aggregate error"),
    "decile_error": ("十分位误差", "decile error"),
    "p_alive_auc_bought_again": ("存活概率 AUC", "P(alive) AUC"),
    "predicted_mean": ("预测均值", "predicted mean"),
    "actual_mean": ("实际均值", "actual mean"),
    "reason": ("原因", "reason"),
    "model": ("模型", "model"),
    "mode": ("方式", "mode"),
    "score_share": ("分值占比", "score share"),
    "reached_users": ("跃迁用户", "reached users"),
    "stuck_users": ("停滞用户", "stuck users"),
    "rules": ("规则数", "rules"),
    "top": ("前列", "top"),
    "summary": ("概要", "summary"),
    "count": ("数量", "count"),
    "share": ("占比", "share"),
    "name": ("名称", "name"),
    "value": ("值", "value"),
    "error": ("错误", "error"),
    "expected_purchases_total": ("预期购买总数", "expected purchases, total"),
    "expected_value_total": ("预期价值总额", "expected value, total"),
    "total_clv": ("客户终身价值总额", "total CLV"),
    "mean_p_alive": ("平均存活概率", "mean P(alive)"),
    "gamma_gamma": ("客单价模型 Gamma-Gamma", "spend model (Gamma-Gamma)"),
    "estimates": ("各估计的含义", "what each estimate is"),
    "p_alive": ("存活概率", "P(alive)"),
    "expected_purchases": ("预期购买次数", "expected purchases"),
    "expected_spend": ("预期客单价", "expected spend"),
    "expected_value": ("预期价值", "expected value"),
    "clv": ("客户终身价值", "CLV"),
    "target": ("预测目标", "target"),
    "learner": ("学习器", "learner"),
    "train": ("训练", "train"),
    "calibration": ("校准", "calibration"),
    "score": ("打分", "score"),
    "auc": ("AUC", "AUC"),
    "pr_auc": ("PR-AUC", "PR-AUC"),
    "brier": ("Brier 分数", "Brier score"),
    "ece": ("校准误差 ECE", "calibration error (ECE)"),
    "window_days": ("窗口天数", "window (days)"),
    "run_date": ("运行日期", "run date"),
    "cube": ("RFM 5×5×5 分值立方", "RFM 5×5×5 score cube"),
    "transitions": ("阶段流转", "stage transitions"),
    "transitions_period": ("流转对比期", "transitions compared"),
    "transitions_note": ("流转说明", "transitions note"),
    "from_date": ("起始日期", "from date"),
    "to_date": ("结束日期", "to date"),
    "source": ("来源", "source"),
    "from": ("从", "from"),
    "to": ("到", "to"),
    "distribution": ("分布", "distribution"),
    "predicted": ("预测", "predicted"),
    "observed": ("实际", "observed"),
}

#: Keys whose numbers are ratios, shown as percentages.
PERCENT_SUFFIXES = ("_rate", "share", "support", "confidence")


def label(key: str) -> str:
    zh, en = LABELS.get(key, (key, key))
    return fmt.label(zh, en) if zh != en else en


def header(key: str) -> str:
    zh, en = LABELS.get(key, (key, key))
    return fmt.head(zh, en) if zh != en else en


def value(key: str, v: Any) -> str:
    """One value of the report, formatted by what its key says it is."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "是 / yes" if v else "否 / no"
    if isinstance(v, int | float):
        return fmt.pct(v) if key.endswith(PERCENT_SUFFIXES) else fmt.number(v)
    if isinstance(v, list):
        return ", ".join(value(key, x) for x in v)
    if isinstance(v, dict):
        return ", ".join(f"{k}={value(k, x)}" for k, x in v.items())
    return str(v)


def render(doc: dict[str, Any], console: Console) -> list[RenderableType]:
    """Head line (model, run date, version), then the report's sections."""
    head = f"{doc.get('model')} · {doc.get('run_date')} · {doc.get('model_version')}"
    out: list[RenderableType] = [title(f"模型报告 / model report: {head}", gap=False)]
    report = doc.get("report") or {}
    body = {k: v for k, v in report.items() if k != "config"}
    out += section(body, "summary", console)
    if isinstance(report.get("config"), dict):
        out += [title(label("config")), *pairs_table(flatten(report["config"]), console)]
    return out


def section(obj: dict[str, Any], key: str, console: Console) -> list[RenderableType]:
    """A mapping: its plain figures as one table, then each nested part as its own block."""
    if _is_error(obj):
        return [title(f"{label('error')}: {obj['error'].get('message')} [{obj['error'].get('code')}]", style="red")]
    plain = [(k, v) for k, v in obj.items() if not _nested(v)]
    out: list[RenderableType] = []
    if plain:
        out += [title(label(key)), *pairs_table([(label(k), value(k, v)) for k, v in plain], console)]
    for k, v in obj.items():
        if _nested(v):
            out += block(k, v, console)
    return out


def block(key: str, v: Any, console: Console) -> list[RenderableType]:
    """One nested part, laid out by its shape."""
    if isinstance(v, list):
        return [title(label(key)), *records_table(v, console)]
    if _is_error(v):
        return [title(f"{label(key)} — {label('error')}: {v['error'].get('message')} [{v['error'].get('code')}]")]
    if _is_counts(v):
        return [title(label(key)), *counts_table(v, console)]
    if v and all(_is_counts(x) for x in v.values()):
        out: list[RenderableType] = [title(label(key))]
        for k, x in v.items():
            out += [title(label(k), style="italic"), *counts_table(x, console)]
        return out
    if v and all(_is_record(x) for x in v.values()):
        rows = [{"name": k, **x} for k, x in v.items()]
        return [title(label(key)), *records_table(rows, console)]
    if key == "feature_importance" and all(isinstance(x, int | float) for x in v.values()):
        ranked = sorted(v.items(), key=lambda kv: -abs(kv[1] or 0))
        return [title(label(key)), *pairs_table([(k, fmt.number(x)) for k, x in ranked], console)]
    return section(v, key, console)


def counts_table(counts: dict[str, int], console: Console) -> list[RenderableType]:
    """Names with their counts and share of the sum: stages, tiers, preferred categories."""
    total = sum(counts.values())
    columns = [name(header("name")), Col(header("count")), Col(header("share"))]
    rows = [[str(k), fmt.count(n), fmt.pct(n / total) if total else ""] for k, n in counts.items()]
    return list(fit(console, columns, rows))


def records_table(records: list[Any], console: Console) -> list[RenderableType]:
    """A list of records as a table of their plain fields; a ``users`` count column gets a share."""
    if not records:
        return [title("（无 / none）", style="dim", gap=False)]
    if not all(isinstance(r, dict) for r in records):
        return [title(", ".join(value("", r) for r in records), style="", gap=False)]
    keys: list[str] = []
    for r in records:
        keys += [k for k, v in r.items() if k not in keys and not _nested(v)]
    count_key = "users" if "users" in keys and _all_ints(records, "users") else None
    total = sum(r.get(count_key) or 0 for r in records) if count_key else 0
    first = keys[0] if keys else ""
    columns = [name(header(first))] + [Col(header(k), justify=_justify(records, k)) for k in keys[1:]]
    if count_key and total and len(records) > 1:
        columns.append(Col(header("share")))
    rows = []
    for r in records:
        row = [value(k, r.get(k)) for k in keys]
        if count_key and total and len(records) > 1:
            row.append(fmt.pct((r.get(count_key) or 0) / total))
        rows.append(row)
    return list(fit(console, columns, rows))


def pairs_table(pairs: list[tuple[str, str]], console: Console) -> list[RenderableType]:
    """Label and value, one per row, no header; long values (a sentence) wrap."""
    columns = [name("", width=40), Col("", justify="left", wrap=True)]
    return list(fit(console, columns, [[k, v] for k, v in pairs], header=False))


def flatten(obj: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Nested configuration as ``purchases.event  order_paid`` rows."""
    rows: list[tuple[str, str]] = []
    for k, v in obj.items():
        path = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            rows += flatten(v, f"{path}.")
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            for i, x in enumerate(v):
                rows += flatten(x, f"{path}.{i}.")
        else:
            rows.append((path, value(k, v)))
    return rows


def _nested(v: Any) -> bool:
    return isinstance(v, dict) or (isinstance(v, list) and any(isinstance(x, dict) for x in v))


def _is_counts(v: Any) -> bool:
    """A mapping of names to whole counts (stages, tiers, categories)."""
    return isinstance(v, dict) and bool(v) and all(isinstance(x, int) and not isinstance(x, bool) for x in v.values())


def _is_record(v: Any) -> bool:
    return isinstance(v, dict) and bool(v) and not any(isinstance(x, dict | list) for x in v.values())


def _is_error(v: Any) -> bool:
    return isinstance(v, dict) and set(v) == {"error"} and isinstance(v["error"], dict)


def _all_ints(records: list[dict[str, Any]], key: str) -> bool:
    return all(isinstance(r.get(key), int) and not isinstance(r.get(key), bool) for r in records)


def _justify(records: list[dict[str, Any]], key: str) -> Any:
    numeric = all(isinstance(r.get(key), int | float) or r.get(key) is None for r in records)
    return "right" if numeric else "left"
