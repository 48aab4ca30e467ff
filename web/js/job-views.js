// Pieces several screens show: a job's stages with progress, and a sample's quality report.

import { followJob } from "./api.js";
import { h } from "./dom.js";
import { t } from "./i18n.js";

export const CLONE_STAGES = ["decoding", "normalizing", "checking", "uploading", "saving"];
export const PERFORM_STAGES = ["reserving", "composing", "acquiring_voice", "synthesizing", "mixing", "storing"];

/** A list of stages that follows a job live; `follow()` resolves with the finished job. */
export function stagesView(stages, app) {
  const items = Object.fromEntries(stages.map((stage) => [stage, h("li", { "data-stage": stage, class: "todo" }, t(`stage.${stage}`))]));
  const progress = h("progress", { max: 1, value: 0, "aria-labelledby": "stages-heading" });
  const connection = h("p", { class: "connection", hidden: true }, t("error.reconnecting"));
  const root = h("section", { class: "stages", "aria-labelledby": "stages-heading" },
    h("h2", { id: "stages-heading" }, t("stages.title")), progress, h("ol", {}, Object.values(items)), connection);
  let last = null;
  function update(job) {
    progress.value = job.state === "succeeded" ? 1 : job.progress || 0;
    const at = job.state === "succeeded" ? stages.length : stages.indexOf(job.stage);
    stages.forEach((stage, index) => {
      items[stage].className = index < at ? "done" : index === at ? (job.state === "failed" ? "failed" : "current") : "todo";
      if (index === at) items[stage].setAttribute("aria-current", "step");
      else items[stage].removeAttribute("aria-current");
    });
    root.dataset.state = job.state;
    if (job.stage && job.stage !== last && stages.includes(job.stage)) app.announce(t(`stage.${job.stage}`));
    last = job.stage;
  }
  return {
    root,
    follow: (jobId) => followJob(jobId, update, (connected) => { connection.hidden = connected; }),
  };
}

function verdict(value, thresholds, names) {
  for (let i = 0; i < thresholds.length; i++) if (value < thresholds[i]) return t(names[i]);
  return t(names[names.length - 1]);
}

/** The quality report in plain words: speech seconds, loudness, noise, clipping. */
export function qualityReport(quality) {
  const lufs = quality.loudness_before_lufs;
  const loud = lufs === null || lufs === undefined ? null
    : t(lufs < -30 ? "quality.loud.quiet" : lufs > -12 ? "quality.loud.loud" : "quality.loud.ok");
  return h("section", { class: "quality card", "aria-labelledby": "quality-heading" },
    h("h2", { id: "quality-heading" }, t("quality.title")),
    h("ul", {},
      h("li", { "data-quality": "speech" }, t("quality.speech", { s: quality.speech_s.toFixed(0), total: quality.duration_before_s.toFixed(0) })),
      loud ? h("li", { "data-quality": "loudness" }, t("quality.loudness", { lufs: lufs.toFixed(0), verdict: loud })) : null,
      h("li", { "data-quality": "noise" }, t("quality.noise", {
        db: quality.snr_db.toFixed(0),
        verdict: verdict(-quality.snr_db, [-30, -15], ["quality.noise.low", "quality.noise.some", "quality.noise.high"]),
      })),
      h("li", { "data-quality": "clipping" }, t("quality.clipping", {
        pct: (quality.clipping_ratio * 100).toFixed(2),
        verdict: verdict(quality.clipping_ratio, [0.001, 0.01], ["quality.clip.none", "quality.clip.some", "quality.clip.much"]),
      }))));
}

/** A failed job's `{error, message, action}` where the user is looking. */
export function rejection(title, error) {
  return h("section", { class: "rejection card", role: "alert" },
    h("h2", {}, title), h("p", { class: "error-message" }, error.message), h("p", { class: "error-action" }, error.action));
}

/** A voice match `{score, band}` in plain words: how much a voice sounds like its owner. */
export function matchLine(match) {
  return h("p", { class: "match", "data-band": match.band },
    t("match.line", { score: match.score, band: t(`match.${match.band}`) }));
}

/** "Your voice"'s match: a meter, the score and band in words, and the flag's fix when the
 *  voice scored under the service's floor. */
export function matchCard(match, flag) {
  const card = h("section", { class: "match-card card", "aria-labelledby": "match-heading" },
    h("h2", { id: "match-heading" }, t("match.title")));
  if (match) {
    card.append(h("meter", { min: 0, max: 100, low: 35, high: 65, optimum: 100, value: match.score, "aria-label": t("match.meter") }),
      matchLine(match));
  } else {
    card.append(h("p", { class: "match" }, t("match.none")));
  }
  if (flag) {
    card.classList.add("flagged");
    card.append(h("p", { class: "error-message" }, flag.message), h("p", { class: "error-action" }, flag.action));
  }
  return card;
}
