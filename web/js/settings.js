// Settings: language, voice stability and similarity, background sound and its volume, the
// notes' name; saved with PUT /user/settings, a refused value shown at its field.

import { api } from "./api.js";
import { field, h, showFieldErrors } from "./dom.js";
import { setLanguage, t } from "./i18n.js";

function slider(name, value) {
  const input = h("input", { type: "range", name, min: 0, max: 1, step: 0.05, value: String(value) });
  const output = h("output", { for: name }, Number(value).toFixed(2));
  input.addEventListener("input", () => { output.textContent = Number(input.value).toFixed(2); });
  return [input, output];
}

export async function settingsScreen(screen, app) {
  const current = await api("/user/settings");
  const language = h("select", { name: "language" },
    h("option", { value: "english", selected: current.language === "english" }, t("settings.english")),
    h("option", { value: "spanish", selected: current.language === "spanish" }, t("settings.spanish")));
  const [stability, stabilityOut] = slider("stability", current.stability);
  const [similarity, similarityOut] = slider("voice_similarity", current.voice_similarity);
  const background = h("input", { type: "checkbox", name: "add_background_sound", checked: current.add_background_sound });
  const [volume, volumeOut] = slider("background_volume", current.background_volume);
  const noteName = h("input", { name: "voice_note_name", maxlength: 80, value: current.voice_note_name || "" });
  background.addEventListener("change", () => { volume.disabled = !background.checked; });
  volume.disabled = !background.checked;

  const withOutput = (wrap, output) => { wrap.querySelector("label").after(output); return wrap; };
  const backgroundField = h("div", { class: "field check", "data-field": "add_background_sound" },
    background, h("label", { for: (background.id = "add_background_sound") }, t("settings.background")),
    h("p", { class: "field-error", hidden: true }));
  const form = h("form", { class: "card", novalidate: true },
    field(t("settings.language"), language),
    withOutput(field(t("settings.stability"), stability), stabilityOut),
    withOutput(field(t("settings.similarity"), similarity), similarityOut),
    backgroundField,
    withOutput(field(t("settings.volume"), volume), volumeOut),
    field(t("settings.noteName"), noteName),
    h("button", { type: "submit", class: "primary" }, t("settings.save")),
    h("p", { class: "saved", role: "status" }));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    app.clearError();
    showFieldErrors(form, {});
    const body = {
      language: language.value, stability: Number(stability.value), voice_similarity: Number(similarity.value),
      add_background_sound: background.checked, background_volume: Number(volume.value), voice_note_name: noteName.value,
    };
    try {
      const saved = await api("/user/settings", { method: "PUT", json: body });
      app.settings = saved;
      const changedLanguage = saved.language !== current.language;
      setLanguage(saved.language);
      if (changedLanguage) {
        await app.refreshMe();  // the quota meter and the navigation speak the new language too
        return app.go("settings");
      }
      form.querySelector(".saved").textContent = t("settings.saved");
    } catch (error) {
      if (!showFieldErrors(form, error.fieldErrors ? error.fieldErrors() : {})) app.showError(error, () => form.requestSubmit());
    }
  });
  screen.append(h("h1", {}, t("settings.title")), form);
}
