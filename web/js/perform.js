// Perform: pick a routine, write the topic, watch the stages, play and download the note.
// Locked until a voice exists, with a pointer to "Your voice".

import { api } from "./api.js";
import { field, h, showFieldErrors } from "./dom.js";
import { t } from "./i18n.js";
import { PERFORM_STAGES, matchLine, rejection, stagesView } from "./job-views.js";

export const TOPIC_MAX = 200;

export async function performScreen(screen, app) {
  screen.append(h("h1", {}, t("perform.title")));
  if (!["ready", "evicted"].includes(app.me.voice_state)) {
    screen.append(h("p", { class: "locked" }, t("perform.locked")),
      h("a", { class: "button primary", href: "#/voice" }, t("perform.toVoice")));
    return;
  }
  const { routines } = await api(`/routines?language=${app.apiLanguage()}`);
  const routine = h("select", { name: "routine_type", required: true },
    routines.map((r) => h("option", { value: r.type }, r.title)));
  const description = h("p", { class: "hint", id: "routine-description" });
  const showDescription = () => {
    description.textContent = routines.find((r) => r.type === routine.value)?.description || "";
  };
  routine.addEventListener("change", showDescription);
  showDescription();
  const topic = h("textarea", { name: "topic", required: true, maxlength: TOPIC_MAX, rows: 3 });
  const counter = h("p", { class: "counter", "aria-live": "polite" }, t("perform.counter", { n: 0 }));
  topic.addEventListener("input", () => { counter.textContent = t("perform.counter", { n: topic.value.length }); });
  const left = h("p", { class: "chars-left" }, t("perform.left", { n: app.charsLeft().toLocaleString() }));
  const submit = h("button", { type: "submit", class: "primary" }, t("perform.submit"));
  const result = h("div", { class: "result" });
  const routineField = field(t("perform.routine"), routine);
  routineField.append(description);
  routine.setAttribute("aria-describedby", `routine-description ${routine.getAttribute("aria-describedby")}`);
  const form = h("form", { class: "card", novalidate: true }, routineField,
    field(t("perform.topic"), topic, t("perform.topicHint")), counter, left, submit);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    app.clearError();
    showFieldErrors(form, {});
    if (!topic.value.trim()) return showFieldErrors(form, { topic: t("perform.topicHint") });
    submit.disabled = true;
    result.replaceChildren();
    try {
      const accepted = await api("/perform", {
        method: "POST", json: { routine_type: routine.value, topic: topic.value.trim() },
        headers: { "Idempotency-Key": crypto.randomUUID() },
      });
      app.setQuota(accepted.quota);
      left.textContent = t("perform.left", { n: accepted.quota.remaining.toLocaleString() });
      app.performing = { job_id: accepted.job_id, topic: topic.value.trim(), routine_type: routine.value };
      const stages = stagesView(PERFORM_STAGES, app);
      result.append(stages.root);
      const job = await stages.follow(accepted.job_id);
      app.performing = null;
      if (job.state === "succeeded") {
        const note = job.result;
        result.append(h("section", { class: "note card", "aria-labelledby": "note-heading" },
          h("h2", { id: "note-heading" }, note.title || t("perform.done")),
          h("p", { role: "status" }, t("perform.done")), note.voice_match ? matchLine(note.voice_match) : null,
          h("audio", { controls: true, preload: "auto", src: note.audio_url, "aria-labelledby": "note-heading" }),
          h("a", { class: "button", href: note.audio_url, download: `${note.title || "note"}.mp3` }, t("perform.download"))));
      } else {
        result.append(rejection(t("stage.failed"), job.error));
      }
      await app.refreshMe();
      left.textContent = t("perform.left", { n: app.charsLeft().toLocaleString() });
    } catch (error) {
      app.performing = null;
      if (!showFieldErrors(form, error.fieldErrors ? error.fieldErrors() : {})) app.showError(error, () => form.requestSubmit());
    } finally {
      submit.disabled = false;
    }
  });
  screen.append(form, result);
}
