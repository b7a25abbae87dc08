// The Detect tab: pick an image, run a model on it, show the faces, download the results.

import * as api from "./api.js";
import { describeError } from "./messages.js";
import { attachTooltip, composeAnnotated, drawFaces } from "./overlay.js";
import { byId, saveBlob, setStatus } from "./ui.js";

const PARAM_IDS = ["min-size", "threshold-p", "threshold-r", "threshold-o", "factor"];

/** Detection parameters from the form, or null (with the invalid field focused) if invalid. */
function readParams() {
  for (const id of PARAM_IDS) {
    const input = byId(id);
    if (input.value === "" || !input.checkValidity()) {
      const range = `${input.min}–${input.max}`;
      return { error: `${input.labels[0].textContent.trim()}: enter a number in ${range}.`, input };
    }
  }
  return {
    minSize: Number(byId("min-size").value),
    thresholds: ["threshold-p", "threshold-r", "threshold-o"].map((id) => Number(byId(id).value)),
    factor: Number(byId("factor").value),
  };
}

function describeTimings(timings, roundTripMs) {
  const parts = [];
  if (timings && typeof timings === "object") {
    const entries = Object.entries(timings).filter(([, v]) => typeof v === "number");
    const total = entries.find(([k]) => k === "total_ms" || k === "total");
    const steps = entries.filter(([k]) => k !== "total_ms" && k !== "total")
      .map(([k, v]) => `${k.replace(/_ms$/, "")} ${v.toFixed(1)} ms`);
    if (total) parts.push(`server ${total[1].toFixed(1)} ms`);
    if (steps.length) parts.push(`(${steps.join(", ")})`);
  }
  parts.push(`· round trip ${roundTripMs.toFixed(0)} ms`);
  return parts.join(" ");
}

function loadImage(img, url) {
  return new Promise((resolve, reject) => {
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("the browser cannot display this image"));
    img.src = url;
  });
}

/** Wire the Detect tab; returns {refreshModels} for the Models tab to call. */
export function setupDetect() {
  const form = byId("detect-form");
  const fileInput = byId("file-input");
  const dropZone = byId("drop-zone");
  const picture = byId("picture");
  const overlay = byId("overlay");
  const stage = byId("stage");
  const status = byId("detect-status");
  const modelSelect = byId("model-select");
  const tooltip = attachTooltip(overlay, byId("tooltip"));

  const state = {
    file: null, // the chosen image's bytes (Blob)
    fileName: "image",
    sourceUrl: null, // object URL of the chosen image
    shownUrl: null, // object URL of a server-rendered image on display
    shownBlob: null, // that image's bytes (for download)
    result: null, // the last detection JSON
    controller: null, // AbortController of the request in flight
    sequence: 0,
    timer: 0,
  };

  const mode = () => form.elements.mode.value;

  async function setFile(file) {
    if (!file) return;
    // Keep the bytes in memory: every run sends them again, and the file on disk may change
    // (Chromium also hides disk-backed request bodies' responses from its DevTools protocol).
    let bytes;
    try {
      bytes = new Blob([await file.arrayBuffer()], { type: file.type });
    } catch (error) {
      setStatus(status, `Could not read ${file.name || "the file"}: ${error.message}`, "error");
      return;
    }
    state.file = bytes;
    state.fileName = file.name || "image";
    if (state.sourceUrl) URL.revokeObjectURL(state.sourceUrl);
    state.sourceUrl = URL.createObjectURL(bytes);
    byId("file-name").textContent = `${state.fileName} (${formatBytes(bytes.size)})`;
    byId("detect-button").disabled = false;
    run();
  }

  function showResult(result, url, roundTripMs) {
    state.result = result;
    byId("stage-empty").hidden = true;
    byId("figure").hidden = false;
    tooltip.hide();
    drawFaces(overlay, result, { landmarks: byId("show-landmarks").checked,
                                  quiet: mode() !== "boxes" });
    const n = result.faces.length;
    byId("face-count").textContent = n === 1 ? "1 face" : `${n} faces`;
    byId("timing").textContent = describeTimings(result.timings, roundTripMs);
    picture.alt = `The image with ${n === 1 ? "1 face" : `${n} faces`} ${
      mode() === "boxes" ? "outlined" : mode() === "blur" ? "blurred" : "pixelated"}`;
    byId("download-image").disabled = false;
    byId("download-json").disabled = false;
    stage.dataset.state = "done";
    stage.dataset.url = url;
  }

  async function run() {
    if (!state.file) return;
    const params = readParams();
    if (params.error) {
      setStatus(status, params.error, "error");
      params.input.focus();
      return;
    }
    if (state.controller) state.controller.abort();
    const controller = new AbortController();
    state.controller = controller;
    const sequence = ++state.sequence;
    const render = mode();
    const options = { key: byId("usage-key").value.trim(), signal: controller.signal };
    const modelId = modelSelect.value;
    stage.dataset.state = "running";
    setStatus(status, "Finding faces…", "busy");
    const started = performance.now();
    try {
      const [result, rendered] = await Promise.all([
        api.detect(modelId, state.file, params, options),
        render === "boxes" ? null : api.render(modelId, render, state.file, params, options),
      ]);
      const roundTrip = performance.now() - started;
      if (sequence !== state.sequence) return;
      const url = await displayImage(result, rendered, modelId, params, options);
      if (sequence !== state.sequence) return;
      showResult(result, url, roundTrip);
      setStatus(status, "", "");
    } catch (error) {
      if (error.name === "AbortError" || sequence !== state.sequence) return;
      stage.dataset.state = "error";
      setStatus(status, describeError(error, "detect"), "error");
      if (error.status === 404) refreshModels();
    } finally {
      if (state.controller === controller) state.controller = null;
    }
  }

  // Show the picture the JSON's coordinates refer to: the chosen file itself when the browser
  // decodes it with the same (EXIF-oriented) size, otherwise the server's rendering of it.
  async function displayImage(result, rendered, modelId, params, options) {
    if (state.shownUrl) URL.revokeObjectURL(state.shownUrl);
    state.shownUrl = null;
    state.shownBlob = rendered;
    if (!rendered) {
      try {
        await loadImage(picture, state.sourceUrl);
        if (picture.naturalWidth === result.width && picture.naturalHeight === result.height) {
          return state.sourceUrl;
        }
      } catch {
        // Not decodable by this browser (e.g. TIFF): fall through to the server's rendering.
      }
      rendered = await api.render(modelId, "annotate", state.file, params, options);
      state.shownBlob = rendered;
    }
    state.shownUrl = URL.createObjectURL(rendered);
    await loadImage(picture, state.shownUrl);
    return state.shownUrl;
  }

  function scheduleRun() {
    clearTimeout(state.timer);
    state.timer = setTimeout(run, 250);
  }

  // Inputs ----------------------------------------------------------------------------------
  fileInput.addEventListener("change", () => setFile(fileInput.files[0]));
  dropZone.addEventListener("click", (event) => {
    if (!event.target.closest("label, input")) fileInput.click();
  });
  dropZone.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      fileInput.click();
    }
  });
  for (const type of ["dragenter", "dragover"]) {
    dropZone.addEventListener(type, (event) => {
      event.preventDefault();
      dropZone.classList.add("dragging");
    });
  }
  for (const type of ["dragleave", "drop"]) {
    dropZone.addEventListener(type, () => dropZone.classList.remove("dragging"));
  }
  dropZone.addEventListener("drop", (event) => {
    event.preventDefault();
    const file = [...event.dataTransfer.files][0];
    if (file) setFile(file);
  });
  // A file dropped beside the zone must not make the browser navigate away from the page.
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());
  document.addEventListener("paste", (event) => {
    if (byId("panel-detect").hidden) return;
    const item = [...event.clipboardData.items].find((i) => i.kind === "file"
                                                          && i.type.startsWith("image/"));
    if (!item) return;
    event.preventDefault();
    const blob = item.getAsFile();
    setFile(new File([blob], blob.name || "pasted-image", { type: blob.type }));
  });

  // Parameters: each range mirrors its number input; a committed change re-runs.
  for (const range of form.querySelectorAll("input[type=range][data-mirror]")) {
    const number = byId(range.dataset.mirror);
    range.addEventListener("input", () => { number.value = range.value; });
    range.addEventListener("change", scheduleRun);
    number.addEventListener("input", () => { range.value = number.value; });
    number.addEventListener("change", scheduleRun);
  }
  byId("reset-params").addEventListener("click", () => {
    for (const id of PARAM_IDS) {
      byId(id).value = byId(id).dataset.default;
      byId(`${id}-range`).value = byId(id).dataset.default;
    }
    scheduleRun();
  });
  for (const radio of form.elements.mode) radio.addEventListener("change", run);
  modelSelect.addEventListener("change", run);
  byId("show-landmarks").addEventListener("change", () => {
    if (state.result) {
      drawFaces(overlay, state.result, { landmarks: byId("show-landmarks").checked,
                                          quiet: mode() !== "boxes" });
    }
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    run();
  });

  // Downloads -------------------------------------------------------------------------------
  byId("download-json").addEventListener("click", () => {
    if (!state.result) return;
    const text = `${JSON.stringify(state.result, null, 2)}\n`;
    saveBlob(new Blob([text], { type: "application/json" }), `${baseName()}.faces.json`);
  });
  byId("download-image").addEventListener("click", async () => {
    if (!state.result) return;
    try {
      if (state.shownBlob) {
        const extension = (state.shownBlob.type.split("/")[1] || "jpg").replace("jpeg", "jpg");
        saveBlob(state.shownBlob, `${baseName()}.${mode()}.${extension}`);
      } else {
        const blob = await composeAnnotated(picture, state.result,
                                            { landmarks: byId("show-landmarks").checked });
        saveBlob(blob, `${baseName()}.boxes.png`);
      }
    } catch (error) {
      setStatus(status, `Could not save the image: ${error.message}`, "error");
    }
  });

  function baseName() {
    return state.fileName.replace(/\.[^.]+$/, "") || "image";
  }

  // Models ----------------------------------------------------------------------------------
  async function refreshModels(models) {
    try {
      const list = models || await api.listModels();
      fillModelSelect(modelSelect, list);
    } catch (error) {
      setStatus(status, `Could not load the model list. ${describeError(error, "list")}`, "error");
    }
  }

  return { refreshModels };
}

/** Replace the select's options, built-in mtcnn first; keep the selection when it still exists. */
function fillModelSelect(select, models) {
  const previous = select.value;
  const sorted = [...models].sort((a, b) => rank(a) - rank(b)
                                   || String(a.model_id).localeCompare(String(b.model_id)));
  const options = sorted.map((model) => {
    const option = document.createElement("option");
    option.value = model.model_id;
    const label = model.name && model.name !== model.model_id
      ? `${model.name} (${model.model_id})` : model.model_id;
    option.textContent = model.builtin ? `${label} — built-in` : label;
    return option;
  });
  if (!options.length) return;
  select.replaceChildren(...options);
  if (sorted.some((m) => m.model_id === previous)) select.value = previous;
}

function rank(model) {
  if (model.model_id === "mtcnn") return 0;
  return model.builtin ? 1 : 2;
}

function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
