// Dashboards (看板): the project's list of dashboards, and a dashboard's grid of saved insights.
import { Route, Routes } from "react-router-dom";
import { DashboardList } from "./DashboardList";
import { DashboardView } from "./DashboardView";

export function DashboardsPage() {
  return (
    <Routes>
      <Route index element={<DashboardList />} />
      <Route path=":dashboardId" element={<DashboardView />} />
    </Routes>
  );
}
