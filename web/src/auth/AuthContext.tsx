// Who is signed in, with which role in which project, and the project the console is looking at. The roles decide
// what the console offers (a viewer sees no "save" button); the API decides what is allowed, whatever the console
// shows, and a refused call shows the API's message.
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { setUnauthorizedHandler } from "../api/client";
import { fetchMe, signIn as apiSignIn, signOut as apiSignOut, type Me, type Right } from "./session";

interface AuthState {
  me: Me | null;
  loading: boolean;
  /** The project the console shows (kept in the URL as ?project= by the shell). */
  project: string;
  setProject: (name: string) => void;
  /** Whether the account holds `right` in the current project. */
  can: (right: Right) => boolean;
  signIn: (login: string, password: string) => Promise<void>;
  signOut: () => Promise<void>;
  reload: () => Promise<void>;
}

const Ctx = createContext<AuthState | null>(null);
const PROJECT_KEY = "userloop.project";

export function AuthProvider({ children }: { children: ReactNode }) {
  const [me, setMe] = useState<Me | null>(null);
  const [loading, setLoading] = useState(true);
  const [project, setProjectState] = useState<string>(() => {
    const fromUrl = new URLSearchParams(window.location.search).get("project");
    return fromUrl || localStorage.getItem(PROJECT_KEY) || "default";
  });

  const reload = useCallback(async () => {
    setLoading(true);
    try {
      setMe(await fetchMe());
    } finally {
      setLoading(false);
    }
  }, []);

  useEffect(() => {
    void reload();
    setUnauthorizedHandler(() => setMe(null));
    return () => setUnauthorizedHandler(null);
  }, [reload]);

  const setProject = useCallback((name: string) => {
    localStorage.setItem(PROJECT_KEY, name);
    setProjectState(name);
  }, []);

  // A project the account has no role in falls back to its first one.
  useEffect(() => {
    if (me && me.projects.length && !me.projects.some((p) => p.project === project || p.project === "*")) {
      setProject(me.projects[0].project);
    }
  }, [me, project, setProject]);

  const can = useCallback(
    (right: Right) => {
      if (!me) return false;
      const scope = me.projects.find((p) => p.project === project) ?? me.projects.find((p) => p.project === "*");
      return !!scope && scope.rights.includes(right);
    },
    [me, project],
  );

  const signIn = useCallback(async (login: string, password: string) => {
    setMe(await apiSignIn(login, password));
  }, []);

  const signOut = useCallback(async () => {
    await apiSignOut();
    setMe(null);
  }, []);

  const value = useMemo(
    () => ({ me, loading, project, setProject, can, signIn, signOut, reload }),
    [me, loading, project, setProject, can, signIn, signOut, reload],
  );
  return <Ctx.Provider value={value}>{children}</Ctx.Provider>;
}

export function useAuth(): AuthState {
  const state = useContext(Ctx);
  if (!state) throw new Error("useAuth outside AuthProvider");
  return state;
}
