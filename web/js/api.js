// Talking to the API from the page: the session is an HttpOnly cookie the browser attaches
// itself (same origin), so no token is ever handled here. Every failure becomes an ApiError
// carrying the API's own `{error, message, action}`.

import { t } from "./i18n.js";

export class ApiError extends Error {
  constructor(status, body) {
    super(body.message);
    this.status = status;
    this.code = body.error;
    this.action = body.action;
    this.details = body.details;
  }

  /** Worth a retry button: the service or the connection was down, not the request wrong. */
  get retryable() {
    return this.status === 0 || this.status === 503 || this.status === 502 || this.status === 504;
  }

  /** `{field: message}` from a VALIDATION_ERROR ("topic: String should have ...; email: ..."). */
  fieldErrors() {
    const fields = {};
    if (this.code !== "VALIDATION_ERROR") return fields;
    const field = this.details?.field;
    if (field) fields[field] = this.message;
    for (const part of this.message.split("; ")) {
      const match = /^([\w.]+): (.+)$/.exec(part);
      if (match) fields[match[1].split(".").pop()] = match[2];
    }
    return fields;
  }
}

const SESSION_ENDED = new Set(["AUTH_REQUIRED", "TOKEN_EXPIRED", "TOKEN_INVALID"]);
let onSessionEnded = () => {};

/** Called with the error when an authenticated call answers that the session is over. */
export function whenSessionEnds(handler) {
  onSessionEnded = handler;
}

function networkError() {
  return new ApiError(0, { error: "NETWORK", message: t("error.network"), action: t("error.networkAction") });
}

async function failure(resp) {
  let body;
  try {
    body = await resp.json();
  } catch {
    body = { error: "HTTP_ERROR", message: `${resp.status} ${resp.statusText}`, action: t("error.networkAction") };
  }
  return new ApiError(resp.status, body);
}

function check(error, path) {
  if (error.status === 401 && SESSION_ENDED.has(error.code) && path !== "/auth/session") onSessionEnded(error);
  return error;
}

export async function api(path, { method = "GET", json, headers = {} } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers }, credentials: "same-origin" };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch {
    throw networkError();
  }
  if (!resp.ok) throw check(await failure(resp), path);
  return resp.status === 204 ? null : resp.json();
}

/** POST a file as multipart with upload progress (fetch cannot report it). */
export function upload(path, file, filename, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    xhr.responseType = "json";
    xhr.upload.onprogress = (event) => event.lengthComputable && onProgress(event.loaded / event.total);
    xhr.onerror = () => reject(networkError());
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) return resolve(xhr.response);
      const body = xhr.response && xhr.response.error ? xhr.response
        : { error: "HTTP_ERROR", message: `${xhr.status}`, action: t("error.networkAction") };
      reject(check(new ApiError(xhr.status, body), path));
    };
    const form = new FormData();
    form.append("file", file, filename);
    xhr.send(form);
  });
}

const TERMINAL = new Set(["succeeded", "failed"]);

/**
 * Follow a job live until it ends; resolves with its last state. EventSource reconnects by
 * itself after a dropped connection and sends Last-Event-ID, so the stream resumes where it
 * was; `onConnection(false)` lets the page say it is reconnecting meanwhile. A stream the
 * server refused (404, 401) is closed for good: the job is then read once by GET.
 */
export function followJob(jobId, onUpdate, onConnection = () => {}) {
  return new Promise((resolve, reject) => {
    const source = new EventSource(`/jobs/${encodeURIComponent(jobId)}/events`);
    let finished = false;
    source.addEventListener("job", (event) => {
      const job = JSON.parse(event.data);
      onConnection(true);
      onUpdate(job);
      if (TERMINAL.has(job.state)) {
        finished = true;
        source.close();
        resolve(job);
      }
    });
    source.onerror = () => {
      if (finished) return;
      if (source.readyState === EventSource.CLOSED) {
        api(`/jobs/${encodeURIComponent(jobId)}`).then((job) => {
          onUpdate(job);
          if (TERMINAL.has(job.state)) resolve(job);
          else followJob(jobId, onUpdate, onConnection).then(resolve, reject);
        }, reject);
      } else {
        onConnection(false);
      }
    };
  });
}
