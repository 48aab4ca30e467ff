// The app shell: the session, the navigation, the quota meter, errors, and a hash router
// (the API owns every other path, so the app lives at / and keeps its place after the #).

import { ApiError, api, whenSessionEnds } from "./api.js";
import { h } from "./dom.js";
import { apiLanguage, formatDate, setLanguage, t } from "./i18n.js";
import { loginScreen, signupScreen } from "./account.js";
import { libraryScreen } from "./library.js";
import { performScreen } from "./perform.js";
import { settingsScreen } from "./settings.js";
import { recordScreen, voiceScreen } from "./voice.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const quotaBox = document.getElementById("quota");
const banner = document.getElementById("banner");
const status = document.getElementById("status");

const SCREENS = {
  login: loginScreen, signup: signupScreen, voice: voiceScreen, record: recordScreen,
  perform: performScreen, library: libraryScreen, settings: settingsScreen,
};
const PUBLIC = new Set(["login", "signup"]);

/** What every screen is given: the signed-in user and the shell's services. */
export const app = {
  me: null,
  settings: null,
  /** the perform job in progress, so the library can show its card at once */
  performing: null,
  go(screen) {
    if (location.hash === `#/${screen}`) route();
    else location.hash = `#/${screen}`;
  },
  announce(text) {
    status.textContent = "";
    setTimeout(() => { status.textContent = text; }, 50);
  },
  showError,
  clearError,
  async refreshMe() {
    app.me = await api("/user/me");
    app.settings = await api("/user/settings");
    setLanguage(app.settings.language);
    renderQuota({ used: app.me.charCount, limit: app.me.monthlyLimit, resetsAt: nextMonth(app.me.quotaPeriod) });
    return app.me;
  },
  /** The `quota` of a perform's 202: the meter moves the moment the note is accepted. */
  setQuota(quota) {
    renderQuota({ used: quota.charCount, limit: quota.monthlyLimit, resetsAt: quota.resetsAt });
    app.me = { ...app.me, charCount: quota.charCount, monthlyLimit: quota.monthlyLimit };
  },
  charsLeft() {
    return Math.max(0, app.me.monthlyLimit - app.me.charCount);
  },
  async logout() {
    try {
      await api("/auth/session", { method: "DELETE" });
    } finally {
      signedOut();
      app.go("login");
    }
  },
};

function nextMonth(period) {
  const [year, month] = (period || new Date().toISOString().slice(0, 7)).split("-").map(Number);
  return new Date(Date.UTC(month === 12 ? year + 1 : year, month % 12, 1)).toISOString();
}

function renderQuota({ used, limit, resetsAt }) {
  quotaBox.hidden = false;
  quotaBox.replaceChildren(
    h("label", { for: "quota-meter" }, t("quota.label")),
    h("meter", { id: "quota-meter", min: 0, max: limit, value: used, low: limit * 0.75, high: limit * 0.9, optimum: 0 }),
    h("span", { class: "quota-text" }, t("quota.text", { used: used.toLocaleString(), limit: limit.toLocaleString(), date: formatDate(resetsAt) })),
  );
}

function renderNav(current) {
  nav.hidden = !app.me;
  if (!app.me) return nav.replaceChildren();
  const link = (screen, key) => h("a", { href: `#/${screen}`, "aria-current": screen === current ? "page" : null }, t(key));
  nav.replaceChildren(h("ul", {},
    h("li", {}, link("perform", "nav.perform")), h("li", {}, link("voice", "nav.voice")),
    h("li", {}, link("library", "nav.library")), h("li", {}, link("settings", "nav.settings")),
    h("li", {}, h("button", { type: "button", class: "link", onclick: () => app.logout() }, t("nav.logout")))));
}

function showError(error, retry) {
  const err = error instanceof ApiError ? error : new ApiError(0, { error: "CLIENT_ERROR", message: String(error.message || error), action: "" });
  banner.hidden = false;
  banner.replaceChildren(
    h("p", { class: "error-message" }, err.message),
    err.action ? h("p", { class: "error-action" }, err.action) : null,
    h("div", { class: "actions" },
      retry && err.retryable ? h("button", { type: "button", class: "primary", onclick: () => { clearError(); retry(); } }, t("error.retry")) : null,
      h("button", { type: "button", onclick: clearError }, t("error.dismiss"))));
}

function clearError() {
  banner.hidden = true;
  banner.replaceChildren();
}

function signedOut(message) {
  app.me = app.settings = app.performing = null;
  quotaBox.hidden = true;
  renderNav();
  if (message) app.pendingNotice = message;
}

whenSessionEnds(() => {
  if (!app.me) return;
  signedOut(t("login.expired"));
  app.go("login");
});

let rendering = 0;

async function route() {
  const name = (location.hash.match(/^#\/(\w+)/) || [])[1];
  const ticket = ++rendering;
  clearError();
  if (!app.me && !PUBLIC.has(name)) {
    try {
      await app.refreshMe();
    } catch (error) {
      if (ticket !== rendering) return;
      if (error.status === 401) {
        renderNav();
        return show("login", ticket);
      }
      main.replaceChildren();
      return showError(error, route);
    }
  }
  if (app.me && PUBLIC.has(name)) return app.go("perform");
  if (!SCREENS[name]) return app.go(app.me ? (app.me.voice_state === "none" ? "voice" : "perform") : "login");
  return show(name, ticket);
}

async function show(name, ticket) {
  renderNav(name);
  document.querySelector(".skip").textContent = t("skip");
  const screen = h("div", { class: `screen screen-${name}` });
  try {
    await SCREENS[name](screen, app);
  } catch (error) {
    if (ticket !== rendering) return;
    if (error.status === 401) return;
    showError(error, route);
  }
  if (ticket !== rendering) return;
  main.replaceChildren(screen);
  const heading = screen.querySelector("h1");
  document.title = heading ? `${heading.textContent} · New Visions` : "New Visions";
  if (app.pendingNotice && name === "login") {
    screen.querySelector(".notice")?.replaceChildren(app.pendingNotice);
    app.pendingNotice = null;
  }
  (heading || main).setAttribute("tabindex", "-1");
  (heading || main).focus();
}

app.apiLanguage = apiLanguage;
window.addEventListener("hashchange", route);
route();
