// The search box above the events and properties tables: searches on Enter or the button, cleared with its cross.
import { Input } from "antd";

export function SearchBox({ search, onSearch, label, testId }: {
  search: string;
  onSearch: (text: string) => void;
  /** The placeholder and the accessible name. */
  label: string;
  testId: string;
}) {
  return (
    <Input.Search
      allowClear
      defaultValue={search}
      onSearch={onSearch}
      placeholder={label}
      style={{ maxWidth: 320 }}
      aria-label={label}
      data-testid={testId}
    />
  );
}
