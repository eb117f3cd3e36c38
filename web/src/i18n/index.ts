// Translations: one catalog per area of the console (src/i18n/locales/<lang>/<area>.json), merged under the area's
// name, so the key home.title reads locales/<lang>/home.json's "title". Every string a user reads comes from here;
// a missing key is reported on the console (the browser tests fail on it) rather than shown silently.
import i18n from "i18next";
import { initReactI18next } from "react-i18next";

export const LANGUAGES = ["zh-CN", "en"] as const;
export type Language = (typeof LANGUAGES)[number];
const STORAGE_KEY = "userloop.lang";

type Catalog = Record<string, unknown>;
const files = import.meta.glob<Catalog>("./locales/*/*.json", { eager: true, import: "default" });

/** The catalogs by language: {"en": {"home": {...}, "common": {...}}, "zh-CN": {...}}. */
export function catalogs(): Record<Language, Catalog> {
  const out = { "zh-CN": {}, en: {} } as Record<Language, Catalog>;
  for (const [path, catalog] of Object.entries(files)) {
    const match = /\.\/locales\/([^/]+)\/([^/]+)\.json$/.exec(path);
    if (!match) continue;
    const [, lang, area] = match;
    if ((LANGUAGES as readonly string[]).includes(lang)) out[lang as Language][area] = catalog;
  }
  return out;
}

/** The language to start in: the one chosen before, else the browser's (Chinese → zh-CN), else zh-CN. */
export function initialLanguage(): Language {
  const saved = typeof localStorage === "undefined" ? null : localStorage.getItem(STORAGE_KEY);
  if (saved && (LANGUAGES as readonly string[]).includes(saved)) return saved as Language;
  const browser = typeof navigator === "undefined" ? "" : navigator.language || "";
  return browser && !browser.toLowerCase().startsWith("zh") ? "en" : "zh-CN";
}

export function setLanguage(lang: Language): void {
  localStorage.setItem(STORAGE_KEY, lang);
  void i18n.changeLanguage(lang);
  document.documentElement.lang = lang;
}

const all = catalogs();
void i18n.use(initReactI18next).init({
  resources: { "zh-CN": { translation: all["zh-CN"] }, en: { translation: all.en } },
  lng: initialLanguage(),
  fallbackLng: false,
  interpolation: { escapeValue: false }, // React escapes what it renders
  returnNull: false,
  saveMissing: true,
  missingKeyHandler: (lngs, _ns, key) => {
    console.error(`i18n: no translation for "${key}" in ${lngs.join(", ")}`);
  },
});

export default i18n;
