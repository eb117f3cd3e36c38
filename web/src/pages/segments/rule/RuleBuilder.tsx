// The segment rule builder: a group of conditions joined by "all" (and) or "any" (or), with nested groups and a
// "not" on any item, edited in place as the API's rule JSON. An "edit as JSON" switch shows the same rule as text
// for what the form does not cover.
import { DeleteOutlined, PlusOutlined } from "@ant-design/icons";
import { Button, Card, Dropdown, Input, Segmented, Space, Switch, Tooltip, Typography } from "antd";
import { useEffect, useState } from "react";
import { useTranslation } from "react-i18next";
import type { Registry } from "../registry";
import { ConditionEditor } from "./ConditionEditor";
import {
  appendAt, asGroup, CONDITION_TYPES, groupKind, groupParts, isGroup, isNot, makeGroup, newCondition, toggleNot,
  updateAt, type Condition, type ConditionType, type Group, type Path, type Rule,
} from "./ruleModel";

interface Props {
  value: Group;
  onChange: (next: Group) => void;
  registry: Registry;
  disabled?: boolean;
}

export function RuleBuilder({ value, onChange, registry, disabled }: Props) {
  const { t } = useTranslation();
  const [asJson, setAsJson] = useState(false);
  return (
    <div data-testid="segment-builder">
      <Space style={{ marginBottom: 8 }}>
        <Switch size="small" checked={asJson} onChange={setAsJson} data-testid="rule-json-switch"
          aria-label={t("segments.rule.editJson")} />
        <Typography.Text>{t("segments.rule.editJson")}</Typography.Text>
      </Space>
      {asJson ? (
        <RuleJson value={value} onChange={onChange} disabled={disabled} />
      ) : (
        <GroupEditor group={value} path={[]} root={value} onRoot={onChange} onReplace={onChange} registry={registry} disabled={disabled} />
      )}
    </div>
  );
}

function RuleJson({ value, onChange, disabled }: Omit<Props, "registry">) {
  const { t } = useTranslation();
  const [draft, setDraft] = useState(() => JSON.stringify(value, null, 2));
  const [error, setError] = useState(false);
  useEffect(() => {
    setDraft((current) => {
      try {
        return JSON.stringify(JSON.parse(current)) === JSON.stringify(value) ? current : JSON.stringify(value, null, 2);
      } catch {
        return current;
      }
    });
  }, [value]);
  return (
    <>
      <Input.TextArea
        value={draft}
        disabled={disabled}
        autoSize={{ minRows: 6, maxRows: 24 }}
        status={error ? "error" : undefined}
        style={{ fontFamily: "monospace" }}
        data-testid="rule-json"
        aria-label={t("segments.rule.editJson")}
        onChange={(e) => {
          setDraft(e.target.value);
          try {
            setError(false);
            onChange(asGroup(JSON.parse(e.target.value) as Rule));
          } catch {
            setError(true);
          }
        }}
      />
      {error && <Typography.Text type="danger">{t("segments.rule.badJson")}</Typography.Text>}
    </>
  );
}

interface GroupProps {
  group: Group;
  path: Path;
  root: Group;
  onRoot: (next: Group) => void;
  /** Replace this group (its parent keeps a "not" around it). */
  onReplace: (next: Group) => void;
  registry: Registry;
  disabled?: boolean;
}

function GroupEditor({ group, path, root, onRoot, onReplace, registry, disabled }: GroupProps) {
  const { t } = useTranslation();
  const kind = groupKind(group);
  const parts = groupParts(group);
  const addItems = CONDITION_TYPES.map((type) => ({ key: type, label: t(`segments.conditionTypes.${type}`) }));
  return (
    <div data-testid="rule-group" style={{ borderLeft: "3px solid #1f6feb33", paddingLeft: 12 }}>
      <Space style={{ marginBottom: 8 }} wrap>
        <Segmented
          value={kind}
          disabled={disabled}
          options={[{ value: "all", label: t("segments.rule.all") }, { value: "any", label: t("segments.rule.any") }]}
          onChange={(k) => onReplace(makeGroup(k as "all" | "any", parts))}
          data-testid="rule-group-kind"
        />
        <Typography.Text type="secondary">
          {kind === "all" ? t("segments.rule.allHint") : t("segments.rule.anyHint")}
        </Typography.Text>
      </Space>
      {parts.length === 0 && (
        <Typography.Paragraph type="secondary" data-testid="rule-empty">
          {kind === "all" ? t("segments.rule.emptyAll") : t("segments.rule.emptyAny")}
        </Typography.Paragraph>
      )}
      {parts.map((part, i) => (
        <ItemEditor key={i} item={part} path={[...path, i]} root={root} onRoot={onRoot} registry={registry}
          disabled={disabled} />
      ))}
      {!disabled && (
        <Space>
          <Dropdown
            trigger={["click"]}
            menu={{
              items: addItems,
              onClick: ({ key }) => onRoot(appendAt(root, path, newCondition(key as ConditionType))),
            }}
          >
            <Button icon={<PlusOutlined />} size="small" data-testid="rule-add-condition">
              {t("segments.rule.addCondition")}
            </Button>
          </Dropdown>
          {path.length < 6 && (
            <Button size="small" icon={<PlusOutlined />} data-testid="rule-add-group"
              onClick={() => onRoot(appendAt(root, path, kind === "all" ? { any: [] } : { all: [] }))}>
              {t("segments.rule.addGroup")}
            </Button>
          )}
        </Space>
      )}
    </div>
  );
}

interface ItemProps {
  item: Rule;
  path: Path;
  root: Group;
  onRoot: (next: Group) => void;
  registry: Registry;
  disabled?: boolean;
}

function ItemEditor({ item, path, root, onRoot, registry, disabled }: ItemProps) {
  const { t } = useTranslation();
  const negated = isNot(item);
  const inner = negated ? item.not : item;
  const set = (next: Rule) => onRoot(updateAt(root, path, negated ? { not: next } : next));
  const controls = (
    <Space size={4}>
      <Tooltip title={t("segments.rule.notHint")}>
        <Button size="small" type={negated ? "primary" : "default"} aria-pressed={negated} disabled={disabled}
          onClick={() => onRoot(updateAt(root, path, toggleNot(item)))} data-testid="rule-not">
          {t("segments.rule.not")}
        </Button>
      </Tooltip>
      {!disabled && (
        <Button type="text" size="small" icon={<DeleteOutlined />} aria-label={t("common.remove")}
          onClick={() => onRoot(updateAt(root, path, null))} data-testid="rule-remove" />
      )}
    </Space>
  );
  if (isGroup(inner)) {
    return (
      <Card size="small" style={{ marginBottom: 8 }} extra={controls} title={t("segments.rule.group")}>
        <GroupEditor group={inner} path={path} root={root} onRoot={onRoot} onReplace={set} registry={registry} disabled={disabled} />
      </Card>
    );
  }
  if (isNot(inner)) {
    // a doubly negated item is shown as JSON rather than guessed at
    return <Card size="small" extra={controls}><Typography.Text code>{JSON.stringify(inner)}</Typography.Text></Card>;
  }
  const condition = inner as Condition;
  return (
    <Card size="small" style={{ marginBottom: 8 }} data-testid="rule-condition"
      title={<Typography.Text type="secondary">{t(`segments.conditionTypes.${condition.type}`)}</Typography.Text>}
      extra={controls}>
      <ConditionEditor condition={condition} registry={registry} disabled={disabled} onChange={set} />
    </Card>
  );
}
