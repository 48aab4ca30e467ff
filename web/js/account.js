// Sign up with an activation code, log in. Both end in a session cookie (POST /auth/session).

import { api } from "./api.js";
import { field, h, showFieldErrors } from "./dom.js";
import { t } from "./i18n.js";

async function submitting(form, app, work) {
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  app.clearError();
  showFieldErrors(form, {});
  try {
    await work();
  } catch (error) {
    if (!showFieldErrors(form, error.fieldErrors ? error.fieldErrors() : {})) app.showError(error, () => form.requestSubmit());
  } finally {
    button.disabled = false;
  }
}

async function startSession(app, username, password) {
  await api("/auth/session", { method: "POST", json: { username, password } });
  await app.refreshMe();
  app.go(app.me.voice_state === "none" ? "record" : "perform");
}

export async function loginScreen(screen, app) {
  const username = h("input", { name: "username", autocomplete: "username", required: true, maxlength: 254 });
  const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const form = h("form", { class: "card", novalidate: true },
    field(t("login.username"), username), field(t("login.password"), password),
    h("button", { type: "submit", class: "primary" }, t("login.submit")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitting(form, app, () => startSession(app, username.value, password.value));
  });
  screen.append(h("h1", {}, t("login.title")), h("p", { class: "notice", role: "status" }), form,
    h("p", {}, h("a", { href: "#/signup" }, t("login.toSignup"))));
}

export async function signupScreen(screen, app) {
  const inputs = {
    username: h("input", { name: "username", autocomplete: "username", required: true, minlength: 3, maxlength: 32 }),
    email: h("input", { name: "email", type: "email", autocomplete: "email", required: true }),
    password: h("input", { name: "password", type: "password", autocomplete: "new-password", required: true, minlength: 8 }),
    activation_code: h("input", { name: "activation_code", autocomplete: "one-time-code", required: true }),
  };
  const form = h("form", { class: "card", novalidate: true },
    field(t("signup.username"), inputs.username), field(t("signup.email"), inputs.email),
    field(t("signup.password"), inputs.password), field(t("signup.code"), inputs.activation_code),
    h("button", { type: "submit", class: "primary" }, t("signup.submit")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitting(form, app, async () => {
      const body = Object.fromEntries(Object.entries(inputs).map(([name, input]) => [name, input.value]));
      try {
        await api("/auth/register", { method: "POST", json: body });
      } catch (error) {
        // the code names the field it is about: show it there
        if (error.code === "ACTIVATION_CODE_INVALID") error.details = { field: "activation_code" };
        if (error.code === "ALREADY_EXISTS") error.details = { field: "username" };
        if (error.details?.field) error.code = "VALIDATION_ERROR";
        throw error;
      }
      await startSession(app, body.username, body.password);
    });
  });
  screen.append(h("h1", {}, t("signup.title")), form, h("p", {}, h("a", { href: "#/login" }, t("signup.toLogin"))));
}
