// All recordings: newest first, a page at a time; play (the audio route answers Range, so
// seeking works), download, delete with confirmation; the note being made shows at once.

import { api, followJob } from "./api.js";
import { h } from "./dom.js";
import { formatDate, t } from "./i18n.js";
import { matchLine } from "./job-views.js";

const PAGE = 10;

function noteCard(note, app, onDeleted) {
  const heading = `note-${note.id}`;
  const card = h("li", { class: "note card", "data-recording": note.id },
    h("h2", { id: heading }, note.title || note.routine_type),
    h("p", { class: "meta" }, [formatDate(note.created_at || note.date), note.duration_s ? t("library.duration", { s: note.duration_s.toFixed(0) }) : null, note.routine_type].filter(Boolean).join(" · ")),
    note.topic ? h("p", { class: "topic" }, note.topic) : null,
    note.voice_match ? matchLine(note.voice_match) : null,
    h("audio", { controls: true, preload: "none", src: note.audio_url, "aria-labelledby": heading }),
    h("div", { class: "actions" },
      h("a", { class: "button", href: note.audio_url, download: `${note.title || "note"}.mp3` }, t("library.download")),
      h("button", { type: "button", class: "danger", onclick: () => confirmDelete(note, card, app, onDeleted) }, t("library.delete"))));
  return card;
}

function confirmDelete(note, card, app, onDeleted) {
  const dialog = h("dialog", { class: "confirm", "aria-labelledby": "confirm-text" },
    h("p", { id: "confirm-text" }, t("library.confirm", { title: note.title || note.routine_type })),
    h("div", { class: "actions" },
      h("button", { type: "button", onclick: () => dialog.close() }, t("library.cancel")),
      h("button", { type: "button", class: "danger", onclick: async () => {
        dialog.close();
        try {
          await api(`/recordings/${encodeURIComponent(note.id)}`, { method: "DELETE" });
          card.remove();
          app.announce(t("library.deleted"));
          onDeleted();
        } catch (error) {
          app.showError(error);
        }
      } }, t("library.delete"))));
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
}

export async function libraryScreen(screen, app) {
  const list = h("ul", { class: "notes" });
  const empty = h("p", { class: "empty", hidden: true }, t("library.empty"));
  const more = h("button", { type: "button", hidden: true }, t("library.more"));
  let cursor = null;
  const refreshEmpty = () => { empty.hidden = list.children.length > 0; };

  async function loadPage() {
    const page = await api(`/recordings?limit=${PAGE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    list.append(...page.items.map((note) => noteCard(note, app, refreshEmpty)));
    cursor = page.next_cursor;
    more.hidden = !cursor;
    refreshEmpty();
  }

  more.addEventListener("click", () => loadPage().catch((error) => app.showError(error, () => more.click())));

  if (app.performing) {
    const pending = app.performing;
    const stage = h("p", { class: "stage" }, t("stage.queued"));
    const card = h("li", { class: "note card pending", "aria-busy": "true" },
      h("h2", {}, t("library.inProgress")), h("p", { class: "topic" }, pending.topic), stage);
    list.append(card);
    followJob(pending.job_id, (job) => { stage.textContent = t(`stage.${job.stage || job.state}`); }).then(async (job) => {
      if (job.state !== "succeeded") return card.replaceChildren(h("h2", {}, t("stage.failed")), h("p", {}, job.error.message));
      const note = await api(`/recordings/${encodeURIComponent(job.result.recording_id)}`);
      card.replaceWith(noteCard(note, app, refreshEmpty));
    }).catch((error) => app.showError(error));
  }
  await loadPage();
  screen.append(h("h1", {}, t("library.title")), empty, list, more);
}
