// The Jobs tab: many images (or a zip of them) as one job; its progress, its results, cancel.
//
// The job's token (shown once by POST /api/jobs) is kept in this module's memory only: leaving
// or reloading the page forgets the job, which then expires on the server with its results.

import * as api from "./api.js";
import { fillModelSelect, labelOf } from "./detect.js";
import { familyOf, familyTitle } from "./families.js";
import { describeError, formatBytes } from "./messages.js";
import { readParams } from "./params.js";
import { byId, saveBlob, setStatus } from "./ui.js";

const POLL_MS = 700;
const ENDED = new Set(["done", "failed", "cancelled"]);
const MAX_LISTED_FILES = 20;
const STATE_WORDS = {
  queued: "Queued", running: "Running", done: "Done", failed: "Failed", cancelled: "Cancelled",
};

const plural = (n, word) => (n === 1 ? `1 ${word}` : `${n} ${word}s`);

function isZip(file) {
  return /\.zip$/i.test(file.name) || /zip/.test(file.type);
}

/** Up to five names, then how many more of `count` there are. */
function namesOf(names, count) {
  const shown = names.slice(0, 5);
  const more = count - shown.length;
  return shown.join(", ") + (more > 0 ? ` and ${more} more` : "");
}

function isAccepted(file) {
  return isZip(file) || file.type.startsWith("image/") || file.type === "";
}

/** The text of an item's error, whichever shape the server gave it. */
function errorText(error) {
  if (typeof error === "string") return error;
  if (error && typeof error === "object") {
    return error.detail || error.message || error.title || JSON.stringify(error);
  }
  return String(error);
}

/**
 * Wire the Jobs tab; returns {refreshModels, setFunctions, setLimits}.
 */
export function setupJobs() {
  const form = byId("job-form");
  const fileInput = byId("job-files");
  const dropZone = byId("job-drop");
  const fileList = byId("job-file-list");
  const modelSelect = byId("job-model");
  const functionSelect = byId("job-function");
  const submitButton = byId("job-submit");
  const submitStatus = byId("job-submit-status");
  const panel = byId("job-panel");
  const status = byId("job-status");
  const progress = byId("job-progress");
  const percent = byId("job-percent");
  const counts = byId("job-counts");
  const errors = byId("job-errors");
  const cancelButton = byId("job-cancel");
  const jsonlButton = byId("job-download-jsonl");
  const zipButton = byId("job-download-zip");

  let files = [];
  let rejected = []; // names of the chosen files left out: not an image or a zip
  let picture = new Set(); // functions whose results are pictures
  // The job shown: {id, token, func, state}; the token lives here only.
  let job = null;
  let timer = null;

  // Files -------------------------------------------------------------------------------------
  function listItem(text, className = "") {
    const item = document.createElement("li");
    item.textContent = text;
    if (className) item.className = className;
    return item;
  }

  function setFiles(chosen) {
    const list = [...chosen];
    const accepted = list.filter(isAccepted);
    files = accepted;
    rejected = list.filter((file) => !isAccepted(file)).map((file) => file.name);
    const items = accepted.slice(0, MAX_LISTED_FILES).map((file) => listItem(
      `${file.name} (${formatBytes(file.size)})${isZip(file) ? " — zip" : ""}`));
    if (accepted.length > MAX_LISTED_FILES) {
      items.push(listItem(`and ${accepted.length - MAX_LISTED_FILES} more`));
    }
    // Said, not silently dropped: each file left out is listed as skipped.
    items.push(...rejected.slice(0, MAX_LISTED_FILES).map((name) => listItem(
      `${name} — skipped: not an image or a zip`, "skipped")));
    if (rejected.length > MAX_LISTED_FILES) {
      items.push(listItem(`and ${rejected.length - MAX_LISTED_FILES} more skipped`, "skipped"));
    }
    fileList.replaceChildren(...items);
    const total = accepted.reduce((sum, file) => sum + file.size, 0);
    byId("job-file-summary").textContent = accepted.length
      ? `${plural(accepted.length, "file")}, ${formatBytes(total)}` : "";
    setStatus(submitStatus, rejected.length ? `${skippedChosen(rejected)}.` : "",
              rejected.length ? "warning" : "");
    updateSubmit();
  }

  /** "1 file skipped, not an image or a zip: README.md" for chosen files left out. */
  function skippedChosen(names) {
    const what = names.length === 1 ? "not an image or a zip" : "not images or zips";
    return `${plural(names.length, "file")} skipped, ${what}: ${namesOf(names, names.length)}`;
  }

  /**
   * What the job was started with, and what was left out of it: `answer.skipped` (POST
   * /api/jobs: files of zips that are not images) and the chosen files not sent (`sent`).
   */
  function startedText(answer, sent) {
    const notes = [];
    const skipped = answer.skipped;
    if (skipped && skipped.count > 0) {
      const where = sent.zips > 1 ? "in the zips" : "in the zip";
      const names = Array.isArray(skipped.files) ? skipped.files : [];
      notes.push(`${plural(skipped.count, "file")} ${where} skipped: `
        + namesOf(names, skipped.count));
    }
    if (sent.rejected.length) notes.push(skippedChosen(sent.rejected));
    const extra = notes.length ? ` (${notes.join("; ")})` : "";
    return `Job ${answer.job_id} started: ${plural(answer.total, "image")}${extra}.`;
  }

  function updateSubmit() {
    submitButton.disabled = !files.length || !modelSelect.value || isRunning();
  }

  byId("job-choose").addEventListener("click", () => fileInput.click());
  fileInput.addEventListener("change", () => setFiles(fileInput.files));
  dropZone.addEventListener("dragover", (event) => {
    event.preventDefault();
    dropZone.classList.add("dragging");
  });
  dropZone.addEventListener("dragleave", () => dropZone.classList.remove("dragging"));
  dropZone.addEventListener("drop", (event) => {
    event.preventDefault();
    dropZone.classList.remove("dragging");
    if (event.dataTransfer && event.dataTransfer.files.length) setFiles(event.dataTransfer.files);
  });
  modelSelect.addEventListener("change", updateSubmit);

  // Parameters: the model's own, or those set in the Detect tab ------------------------------
  const detectParams = byId("job-detect-params");
  const paramsHint = byId("job-params-hint");
  let modelsById = new Map();

  /** "min_size 40, thresholds 0.6/0.7/0.7, factor 0.709" (values jobParams kept) */
  function describeParams(values) {
    return Object.entries(values)
      .map(([name, value]) => `${name} ${Array.isArray(value) ? value.join("/") : value}`)
      .join(", ");
  }

  /**
   * The parameters to send: {params} ({} for the model's own), or {error} when the Detect tab's
   * are asked for but are another family's or not valid.
   */
  function jobParams() {
    if (!detectParams.checked) return { params: {} };
    const detectFamily = byId("detect-form").dataset.family || familyOf(null);
    const jobFamily = familyOf(modelsById.get(modelSelect.value));
    if (detectFamily !== jobFamily) {
      return {
        error: `The Detect tab's parameters are ${familyTitle(detectFamily)}'s and this model is `
          + `a ${familyTitle(jobFamily)} model: choose a ${familyTitle(jobFamily)} model in the `
          + "Detect tab, or untick \"Use the Detect tab's parameters\".",
      };
    }
    const read = readParams();
    if (read.error) return { error: `Detect tab: ${read.error}` };
    // A value left to the model (an empty CenterFace input size) is not sent.
    const params = Object.fromEntries(
      Object.entries(read.values).filter(([, value]) => value !== null && value !== undefined));
    return { params };
  }

  function showParamsHint() {
    if (!detectParams.checked) {
      paramsHint.textContent = "Off: each image runs on the model's own parameters.";
      return;
    }
    const chosen = jobParams();
    paramsHint.textContent = chosen.error || `Sends ${describeParams(chosen.params)}.`;
  }
  detectParams.addEventListener("change", showParamsHint);
  modelSelect.addEventListener("change", showParamsHint);

  // Submit ------------------------------------------------------------------------------------
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!files.length || isRunning()) return;
    const chosen = jobParams();
    showParamsHint();
    if (chosen.error) {
      setStatus(submitStatus, chosen.error, "error");
      return;
    }
    const func = functionSelect.value;
    const sent = { zips: files.filter(isZip).length, rejected };
    submitButton.disabled = true;
    setStatus(submitStatus, `Uploading ${plural(files.length, "file")}…`, "busy");
    try {
      const answer = await api.submitJob(files, {
        model: modelSelect.value, func, params: chosen.params,
        key: byId("job-usage-key").value.trim(),
      });
      job = { id: answer.job_id, token: answer.token, func, state: "queued" };
      setStatus(submitStatus, startedText(answer, sent), "ok");
      showJob({ state: "queued", progress: 0, counts: { total: answer.total, done: 0, failed: 0,
                                                       cancelled: 0, pending: answer.total },
                errors: [] });
      poll();
    } catch (error) {
      setStatus(submitStatus, describeError(error, "job"), "error");
    } finally {
      updateSubmit();
    }
  });

  // Progress ----------------------------------------------------------------------------------
  function isRunning() {
    return job !== null && !ENDED.has(job.state);
  }

  async function poll() {
    clearTimeout(timer);
    const current = job;
    if (!current) return;
    try {
      const answer = await api.jobStatus(current.id, current.token);
      if (job !== current) return;
      showJob(answer);
    } catch (error) {
      if (job !== current) return;
      setStatus(status, `Could not read the job's status. ${describeError(error, "job")}`,
                "error");
      if (error.status === 404 || error.status === 401) {
        job.state = "failed";
        finish();
        return;
      }
    }
    if (isRunning()) timer = setTimeout(poll, POLL_MS);
  }

  function showJob(answer) {
    job.state = answer.state;
    panel.hidden = false;
    byId("job-empty").hidden = true;
    panel.dataset.state = answer.state;
    const c = answer.counts || {};
    const fraction = Math.max(0, Math.min(1, Number(answer.progress) || 0));
    progress.value = fraction;
    const shown = `${Math.round(fraction * 100)}%`;
    percent.textContent = shown;
    // A cancelled end is not a success: said in words, not only by the bar's colour.
    progress.setAttribute("aria-valuetext",
                          answer.state === "cancelled" ? `${shown}, cancelled` : shown);
    const parts = [`${c.done || 0} of ${c.total || 0} done`];
    if (c.failed) parts.push(`${c.failed} failed`);
    if (c.cancelled) parts.push(`${c.cancelled} cancelled`);
    if (c.pending && !ENDED.has(answer.state)) parts.push(`${c.pending} to go`);
    counts.textContent = parts.join(" · ");
    // Cancelled while images still ran: it ends when they have.
    const stopping = !ENDED.has(answer.state) && c.cancelled > 0;
    const word = stopping ? "Cancelling" : STATE_WORDS[answer.state] || answer.state;
    const kind = answer.state === "failed" ? "error"
      : answer.state === "cancelled" ? "warning"
        : ENDED.has(answer.state) ? "ok" : "busy";
    const cancelledNote = answer.state === "cancelled" && c.cancelled
      ? `: ${plural(c.cancelled, "image")} not run` : "";
    setStatus(status, `${word}${ENDED.has(answer.state) ? cancelledNote : "…"}`, kind);
    errors.replaceChildren(...(answer.errors || []).map((item) => {
      const li = document.createElement("li");
      li.textContent = `#${item.index + 1} ${item.source}: ${errorText(item.error)}`;
      return li;
    }));
    byId("job-errors-title").hidden = !(answer.errors || []).length;
    if (ENDED.has(answer.state)) finish();
    else {
      cancelButton.hidden = stopping;
      cancelButton.disabled = stopping;
      jsonlButton.disabled = true;
      zipButton.hidden = !picture.has(job.func);
      zipButton.disabled = true;
    }
  }

  function finish() {
    clearTimeout(timer);
    cancelButton.hidden = true;
    jsonlButton.disabled = false;
    zipButton.hidden = !picture.has(job.func);
    zipButton.disabled = false;
    updateSubmit();
  }

  cancelButton.addEventListener("click", async () => {
    if (!isRunning()) return;
    const current = job;
    cancelButton.disabled = true;
    try {
      const answer = await api.cancelJob(current.id, current.token);
      if (job === current) showJob(answer);
    } catch (error) {
      setStatus(status, `Could not cancel the job. ${describeError(error, "job")}`, "error");
      cancelButton.disabled = false;
    }
  });

  // Downloads ---------------------------------------------------------------------------------
  async function download(format) {
    if (!job) return;
    const button = format === "zip" ? zipButton : jsonlButton;
    button.disabled = true;
    try {
      const blob = await api.jobResults(job.id, job.token, format);
      saveBlob(blob, `job-${job.id}.${format === "zip" ? "zip" : "jsonl"}`);
    } catch (error) {
      setStatus(status, `Could not download the results. ${describeError(error, "job")}`,
                "error");
    } finally {
      button.disabled = false;
    }
  }
  jsonlButton.addEventListener("click", () => download("jsonl"));
  zipButton.addEventListener("click", () => download("zip"));

  // Models, functions, limits -----------------------------------------------------------------
  async function refreshModels(models) {
    try {
      const list = models || await api.listModels();
      modelsById = new Map(list.map((model) => [model.id, model]));
      fillModelSelect(modelSelect, list);
      showParamsHint();
    } catch (error) {
      setStatus(submitStatus, `Could not load the model list. ${describeError(error, "list")}`,
                "error");
    }
    updateSubmit();
  }

  /** Detect, then every anonymising picture function of GET /api/info's function_details. */
  function setFunctions(details) {
    if (!Array.isArray(details)) return; // an older server: the fallback options stay
    const anonymizing = details.filter((f) => f && f.anonymizes && typeof f.name === "string");
    picture = new Set(anonymizing.filter((f) => f.output === "image" || !f.output)
      .map((f) => f.name));
    const previous = functionSelect.value;
    const options = [["detect", "Detect (faces as JSON)"],
      ...anonymizing.map((f) => [f.name, `${labelOf(f.name)} (pictures)`])]
      .map(([value, label]) => {
        const option = document.createElement("option");
        option.value = value;
        option.textContent = label;
        return option;
      });
    functionSelect.replaceChildren(...options);
    if (options.some((o) => o.value === previous)) functionSelect.value = previous;
  }

  function setLimits(info) {
    if (Number.isFinite(info.job_max_upload_bytes)) {
      byId("job-limit").textContent = `Up to ${formatBytes(info.job_max_upload_bytes)}.`;
    }
  }

  picture = new Set([...functionSelect.options].map((o) => o.value).filter((v) => v !== "detect"));
  updateSubmit();
  return { refreshModels, setFunctions, setLimits };
}
