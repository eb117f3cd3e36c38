// The console: the sign-in page, then the areas inside the shell. Each area is loaded when first opened, so the
// first load carries only the shell and the home page.
import { App as AntApp, ConfigProvider } from "antd";
import enUS from "antd/locale/en_US";
import zhCN from "antd/locale/zh_CN";
import { lazy, Suspense, type ReactNode } from "react";
import { useTranslation } from "react-i18next";
import { BrowserRouter, Navigate, Route, Routes, useLocation } from "react-router-dom";
import { AuthProvider, useAuth } from "./auth/AuthContext";
import { Loading } from "./components/States";
import { Shell } from "./layout/Shell";
import { HomePage } from "./pages/home/HomePage";
import { LoginPage } from "./pages/login/LoginPage";
import { NotFound } from "./pages/NotFound";

const AnalysesPage = lazy(() => import("./pages/analyses/AnalysesPage").then((m) => ({ default: m.AnalysesPage })));
const DashboardsPage = lazy(() =>
  import("./pages/dashboards/DashboardsPage").then((m) => ({ default: m.DashboardsPage })),
);
const DataPage = lazy(() => import("./pages/data/DataPage").then((m) => ({ default: m.DataPage })));
const UsersPage = lazy(() => import("./pages/users/UsersPage").then((m) => ({ default: m.UsersPage })));
const SegmentsPage = lazy(() => import("./pages/segments/SegmentsPage").then((m) => ({ default: m.SegmentsPage })));
const ModelsPage = lazy(() => import("./pages/models/ModelsPage").then((m) => ({ default: m.ModelsPage })));
const SettingsPage = lazy(() => import("./pages/settings/SettingsPage").then((m) => ({ default: m.SettingsPage })));

function RequireSignIn({ children }: { children: ReactNode }) {
  const { me, loading } = useAuth();
  const location = useLocation();
  if (loading && !me) return <Loading />;
  if (!me) return <Navigate to="/login" replace state={{ from: location.pathname + location.search }} />;
  return <>{children}</>;
}

function Lazy({ children }: { children: ReactNode }) {
  return <Suspense fallback={<Loading />}>{children}</Suspense>;
}

export function App() {
  const { i18n } = useTranslation();
  return (
    <ConfigProvider locale={i18n.language === "en" ? enUS : zhCN} theme={{ token: { colorPrimary: "#1f6feb" } }}>
      <AntApp>
        <BrowserRouter>
          <AuthProvider>
            <Routes>
              <Route path="/login" element={<LoginPage />} />
              <Route
                element={
                  <RequireSignIn>
                    <Shell />
                  </RequireSignIn>
                }
              >
                <Route index element={<HomePage />} />
                <Route path="analyses/*" element={<Lazy><AnalysesPage /></Lazy>} />
                <Route path="dashboards/*" element={<Lazy><DashboardsPage /></Lazy>} />
                <Route path="data/*" element={<Lazy><DataPage /></Lazy>} />
                <Route path="users/*" element={<Lazy><UsersPage /></Lazy>} />
                <Route path="segments/*" element={<Lazy><SegmentsPage /></Lazy>} />
                <Route path="models/*" element={<Lazy><ModelsPage /></Lazy>} />
                <Route path="settings/*" element={<Lazy><SettingsPage /></Lazy>} />
                <Route path="*" element={<NotFound />} />
              </Route>
            </Routes>
          </AuthProvider>
        </BrowserRouter>
      </AntApp>
    </ConfigProvider>
  );
}
