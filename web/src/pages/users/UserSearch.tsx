// Find a person by any id: a distinct id, a login id, an anonymous id, a phone or e-mail identity, or the person
// key. The 360 page resolves it (users.get) and says so when no one is known by it.
import { Card, Input, Typography } from "antd";
import { useState } from "react";
import { useTranslation } from "react-i18next";
import { useNavigate } from "react-router-dom";
import { useAuth } from "../../auth/AuthContext";

export function UserSearch() {
  const { t } = useTranslation();
  const { project } = useAuth();
  const navigate = useNavigate();
  const [key, setKey] = useState("");
  const go = (value: string) => {
    const trimmed = value.trim();
    if (trimmed) navigate({ pathname: `/users/${encodeURIComponent(trimmed)}`, search: `?project=${encodeURIComponent(project)}` });
  };
  return (
    <Card title={t("users.searchTitle")} style={{ maxWidth: 720 }}>
      <Typography.Paragraph type="secondary">{t("users.searchHint")}</Typography.Paragraph>
      <Input.Search
        size="large"
        value={key}
        allowClear
        enterButton={t("common.search")}
        placeholder={t("users.searchPlaceholder")}
        onChange={(e) => setKey(e.target.value)}
        onSearch={go}
        maxLength={200}
        data-testid="user-search"
        aria-label={t("users.searchTitle")}
      />
    </Card>
  );
}
