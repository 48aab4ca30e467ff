// "Your voice" (the clone's state and the sample in use) and "Record your voice" (record or
// choose a file, upload with progress, then the clone's stages and its quality report).

import { api, upload } from "./api.js";
import { clock, h } from "./dom.js";
import { t } from "./i18n.js";
import { MAX_SECONDS, MIN_SECONDS, VoiceRecorder, extensionFor } from "./recorder.js";
import { CLONE_STAGES, matchCard, matchLine, qualityReport, rejection, stagesView } from "./job-views.js";

export async function voiceScreen(screen, app) {
  const meta = await api("/user/voice/meta");
  screen.append(h("h1", {}, t("voice.title")),
    h("p", { class: "state", "data-state": meta.state }, h("strong", {}, `${t("voice.state")}: `), t(`voice.state.${meta.state}`)));
  if (meta.state === "pending" && meta.clone_job_id) {
    const stages = stagesView(CLONE_STAGES, app);
    screen.append(stages.root);
    stages.follow(meta.clone_job_id).then(() => app.refreshMe().then(() => app.go("voice")), (error) => app.showError(error));
  }
  if (meta.state === "failed" && meta.last_error) screen.append(rejection(t("clone.rejected"), meta.last_error));
  if (meta.voice_match || ["ready", "evicted"].includes(meta.state)) screen.append(matchCard(meta.voice_match, meta.voice_flag));
  if (meta.sample) {
    screen.append(h("section", { class: "card", "aria-labelledby": "sample-heading" },
      h("h2", { id: "sample-heading" }, t("voice.sample")),
      h("audio", { controls: true, preload: "none", src: "/user/voice/source", "aria-labelledby": "sample-heading" })));
    if (meta.sample.quality) screen.append(qualityReport(meta.sample.quality));
    screen.append(h("a", { class: "button primary", href: "#/record" }, t("voice.update")));
  } else {
    screen.append(h("p", {}, t("voice.none")), h("a", { class: "button primary", href: "#/record" }, t("voice.record")));
  }
}

export async function recordScreen(screen, app) {
  const level = h("meter", { id: "level", min: 0, max: 1, value: 0, low: 0.25, high: 0.9, optimum: 0.6 });
  const elapsed = h("p", { class: "elapsed", "aria-live": "off" }, t("record.minmax", { elapsed: clock(0) }));
  const hint = h("p", { class: "hint", role: "status" });
  const playback = h("audio", { controls: true, hidden: true, "aria-label": t("record.listen") });
  const uploadProgress = h("progress", { max: 1, value: 0, hidden: true, "aria-label": t("record.uploading") });
  const result = h("div", { class: "result" });
  const fileInput = h("input", { type: "file", name: "file", id: "sample-file", accept: "audio/*,.mp3,.wav,.m4a,.ogg,.webm,.flac", "aria-describedby": "sample-file-hint" });
  let recorder = null;
  let take = null;

  const buttons = {
    start: h("button", { type: "button", class: "primary", onclick: start }, t("record.start")),
    stop: h("button", { type: "button", hidden: true, onclick: stop }, t("record.stop")),
    again: h("button", { type: "button", hidden: true, onclick: start }, t("record.again")),
    use: h("button", { type: "button", class: "primary", hidden: true, onclick: () => send(take.blob, `recording.${extensionFor(take.blob.type)}`) }, t("record.upload")),
  };

  function showButtons(...names) {
    for (const [name, button] of Object.entries(buttons)) button.hidden = !names.includes(name);
  }

  async function start() {
    app.clearError();
    result.replaceChildren();
    playback.hidden = true;
    hint.textContent = "";
    recorder = new VoiceRecorder({
      onLevel: (value) => { level.value = value; },
      onTick: (seconds) => { elapsed.textContent = t("record.minmax", { elapsed: clock(seconds) }); },
      onMax: () => { hint.textContent = t("record.maxReached"); stop(); },
    });
    try {
      await recorder.start();
    } catch (error) {
      recorder = null;
      hint.textContent = t("record.micDenied", { reason: error.message || error.name });
      return;
    }
    showButtons("stop");
    buttons.stop.focus();
  }

  async function stop() {
    if (!recorder) return;
    const current = recorder;
    recorder = null;
    take = await current.stop();
    level.value = 0;
    playback.src = URL.createObjectURL(take.blob);
    playback.hidden = false;
    const longEnough = take.seconds >= MIN_SECONDS && take.seconds <= MAX_SECONDS + 1;
    hint.textContent = longEnough ? "" : t("record.tooShort");
    if (longEnough) showButtons("again", "use"); else showButtons("again");
    (longEnough ? buttons.use : buttons.again).focus();
  }

  async function send(blob, name) {
    app.clearError();
    result.replaceChildren();
    uploadProgress.hidden = false;
    uploadProgress.value = 0;
    showButtons();
    fileInput.disabled = true;
    try {
      const accepted = await upload("/user/voice", blob, name, (share) => { uploadProgress.value = share; });
      uploadProgress.value = 1;
      const stages = stagesView(CLONE_STAGES, app);
      result.replaceChildren(h("h2", {}, t("clone.title")), stages.root);
      const job = await stages.follow(accepted.job_id);
      if (job.state === "succeeded") {
        result.append(h("p", { class: "success", role: "status" }, t("clone.done")),
          job.result.voice_match ? matchLine(job.result.voice_match) : null, qualityReport(job.result.quality),
          h("a", { class: "button primary", href: "#/perform" }, t("nav.perform")));
        await app.refreshMe();
      } else {
        result.append(rejection(t("clone.rejected"), job.error));
        showButtons("again");
      }
    } catch (error) {
      app.showError(error, () => send(blob, name));
      showButtons("again", take ? "use" : "start");
    } finally {
      fileInput.disabled = false;
      fileInput.value = "";
    }
  }

  fileInput.addEventListener("change", () => {
    const file = fileInput.files[0];
    if (file) send(file, file.name);
  });

  screen.append(h("h1", {}, t("record.title")), h("p", {}, t("record.intro")),
    h("blockquote", { class: "guide", lang: document.documentElement.lang }, t("record.guide")),
    h("div", { class: "recorder card" },
      h("label", { for: "level" }, t("record.level")), level, elapsed, hint,
      h("div", { class: "actions" }, Object.values(buttons)), playback),
    h("div", { class: "field" }, h("label", { for: "sample-file" }, t("record.file")),
      h("p", { class: "hint", id: "sample-file-hint" }, t("record.fileHint")), fileInput),
    uploadProgress, result);
}
