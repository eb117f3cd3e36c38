// The tags and segments area: a tab for each list (the tab is in the URL), a tag's and a segment's own pages, the
// rule builder, and the comparison of two groups. /segments/<id> works from a bare URL (an analysis's "people
// behind this number" lands there).
import { Tabs } from "antd";
import { useTranslation } from "react-i18next";
import { Route, Routes, useParams } from "react-router-dom";
import { NotFound } from "../NotFound";
import { useUrlParam } from "../../lib/urlState";
import { ComparePage } from "./compare/ComparePage";
import { SegmentDetail } from "./SegmentDetail";
import { SegmentEditor } from "./SegmentEditor";
import { SegmentsTable } from "./SegmentsTable";
import { TagDetail } from "./tags/TagDetail";
import { TagEditor } from "./tags/TagEditor";
import { TagsTable } from "./tags/TagsTable";

function Lists() {
  const { t } = useTranslation();
  const [tab, setTab] = useUrlParam("tab", "segments");
  return (
    <Tabs
      activeKey={tab}
      onChange={setTab}
      data-testid="segments-tabs"
      items={[
        { key: "segments", label: t("segments.tabs.segments"), children: <SegmentsTable /> },
        { key: "tags", label: t("segments.tabs.tags"), children: <TagsTable /> },
      ]}
    />
  );
}

/** A fresh form per tag (its draft state must not carry over from another tag's form). */
function TagEditorFor() {
  const { name } = useParams();
  return <TagEditor key={name ?? ""} />;
}

export function SegmentsPage() {
  return (
    <Routes>
      <Route index element={<Lists />} />
      <Route path="new" element={<SegmentEditor />} />
      <Route path="compare" element={<ComparePage />} />
      <Route path="tags/new" element={<TagEditorFor />} />
      <Route path="tags/:name" element={<TagDetail />} />
      <Route path="tags/:name/edit" element={<TagEditorFor />} />
      <Route path=":id" element={<SegmentDetail />} />
      <Route path=":id/edit" element={<SegmentEditor />} />
      <Route path="*" element={<NotFound />} />
    </Routes>
  );
}
