// The Detect tab: pick an image, run a model on it, show the faces, download the results.

import * as api from "./api.js";
import { describeError, formatBytes } from "./messages.js";
import { attachTooltip, composeAnnotated, drawFaces } from "./overlay.js";
import * as families from "./families.js";
import {
  buildFamilyControls, readParams, setModelDefaults, showFamily, wireParams,
} from "./params.js";
import { byId, saveBlob, setStatus } from "./ui.js";

// What a server without function_details in GET /api/info offers besides Boxes.
const FALLBACK_FUNCTIONS = [
  { name: "blur", options: [], anonymizes: true },
  { name: "pixelate", options: [], anonymizes: true },
];
// How the picture's faces are, for its alt text ("… with 2 faces blurred").
const MODE_WORDS = {
  boxes: "outlined", blur: "blurred", pixelate: "pixelated", redact: "redacted",
};

/** "server 225.2 ms (decode 124.8 ms, detect 100.3 ms) · round trip 260 ms" */
function describeTimings(timings, roundTripMs) {
  const parts = [];
  const entries = Object.entries(timings || {}).filter(([, v]) => typeof v === "number");
  const total = entries.find(([k]) => k === "total");
  const steps = entries.filter(([k]) => k !== "total").map(([k, v]) => `${k} ${v.toFixed(1)} ms`);
  if (total) parts.push(`server ${total[1].toFixed(1)} ms`);
  if (steps.length) parts.push(`(${steps.join(", ")})`);
  parts.push(`${parts.length ? "· " : ""}round trip ${roundTripMs.toFixed(0)} ms`);
  return parts.join(" ");
}

function loadImage(img, url) {
  return new Promise((resolve, reject) => {
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("the browser cannot display this image"));
    img.src = url;
  });
}

const plural = (n, word) => (n === 1 ? `1 ${word}` : `${n} ${word}s`);

/**
 * Wire the Detect tab; returns {refreshModels, setLimits, setFunctions, setFamilies} for the rest
 * of the page.
 */
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
    models: new Map(), // id -> model info from GET /api/models
    modelList: [], // those models, as listed
    controller: null, // AbortController of the requests in flight
    sequence: 0,
    timer: 0,
    // render mode -> its function's details (GET /api/info's function_details)
    functions: new Map(FALLBACK_FUNCTIONS.map((f) => [f.name, f])),
    // the user's choice, kept while a mode without landmarks is on
    wantLandmarks: byId("show-landmarks").checked,
  };

  const mode = () => form.elements.mode.value;
  const landmarks = () => byId("show-landmarks").checked;
  const drawOptions = () => ({ landmarks: landmarks(), quiet: mode() !== "boxes" });

  /** The selected function's own query options: the fill colour, for a function taking one. */
  function renderOptions(render) {
    const details = state.functions.get(render);
    const options = {};
    if (details && (details.options || []).includes("color")) {
      options.color = byId("render-color").value;
    }
    return options;
  }

  // Landmarks are drawn over boxes only: an anonymising mode disables the checkbox (and shows it
  // unchecked, with a note saying why); Boxes restores what the user had chosen.
  function updateModeControls() {
    const boxes = mode() === "boxes";
    const checkbox = byId("show-landmarks");
    if (!boxes && !checkbox.disabled) state.wantLandmarks = checkbox.checked;
    checkbox.disabled = !boxes;
    checkbox.checked = boxes ? state.wantLandmarks : false;
    byId("landmarks-note").hidden = boxes;
    if (boxes) checkbox.removeAttribute("aria-describedby");
    else checkbox.setAttribute("aria-describedby", "landmarks-note");
    byId("color-field").hidden = !("color" in renderOptions(mode()));
  }

  /** "model “secret” (3f2a…)", or "model mtcnn": the selected model, for messages. */
  function modelForPeople() {
    const id = modelSelect.value;
    const model = state.models.get(id);
    return model && model.name && model.name !== id ? `model “${model.name}” (${id})`
      : `model ${id}`;
  }

  /** Rebuild the Render buttons: Boxes, then one per anonymising function of the server. */
  function setFunctions(details) {
    const list = Array.isArray(details) ? details : FALLBACK_FUNCTIONS;
    const anonymizing = list.filter((f) => f && f.anonymizes && typeof f.name === "string");
    const previous = mode();
    state.functions = new Map(anonymizing.map((f) => [f.name, f]));
    const buttons = [["boxes", "Boxes"], ...anonymizing.map((f) => [f.name, labelOf(f.name)])]
      .flatMap(([value, label]) => {
        const radio = document.createElement("input");
        radio.type = "radio";
        radio.name = "mode";
        radio.id = `mode-${value}`;
        radio.value = value;
        radio.checked = value === previous;
        radio.addEventListener("change", onModeChange);
        const text = document.createElement("label");
        text.htmlFor = radio.id;
        text.textContent = label;
        const details = state.functions.get(value);
        if (details && details.summary) text.title = details.summary;
        return [radio, text];
      });
    byId("mode-buttons").replaceChildren(...buttons);
    if (!form.elements.mode.value) byId("mode-boxes").checked = true;
    updateModeControls();
    if (mode() !== previous) run();
  }

  function onModeChange() {
    updateModeControls();
    run();
  }

  async function setFile(file) {
    if (!file) return;
    // Keep the bytes in memory: every run sends them again, and the file on disk may change
    // (Chromium also hides the responses to disk-backed request bodies from its DevTools).
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

  function showResult(result, roundTripMs) {
    state.result = result;
    byId("stage-empty").hidden = true;
    byId("figure").hidden = false;
    tooltip.hide();
    drawFaces(overlay, result, drawOptions());
    const count = plural(result.faces.length, "face");
    byId("face-count").textContent = count;
    byId("timing").textContent = describeTimings(result.timings_ms, roundTripMs);
    byId("no-faces").textContent = result.faces.length ? "" : noFacesMessage(result);
    byId("no-faces").hidden = result.faces.length > 0;
    const how = MODE_WORDS[mode()] || `shown by ${mode()}`;
    picture.alt = `${state.fileName} with ${count} ${how}`;
    byId("download-image").disabled = false;
    byId("download-json").disabled = false;
    stage.dataset.state = "done";
  }

  function showNoResult(text) {
    state.result = null;
    tooltip.hide();
    byId("figure").hidden = true;
    byId("stage-empty").textContent = text;
    byId("stage-empty").hidden = false;
    byId("download-image").disabled = true;
    byId("download-json").disabled = true;
  }

  async function run() {
    clearTimeout(state.timer);
    if (!state.file) return;
    const read = readParams(); // the chosen model's family's parameters
    if (read.error) {
      setStatus(status, read.error, "error");
      read.input.focus();
      return;
    }
    const params = read.values;
    if (state.controller) state.controller.abort();
    const controller = new AbortController();
    state.controller = controller;
    const sequence = ++state.sequence;
    const render = mode();
    const options = { key: byId("usage-key").value.trim(), signal: controller.signal };
    const modelId = modelSelect.value;
    const about = { model: modelForPeople() };
    stage.dataset.state = "running";
    setStatus(status, "Finding faces…", "busy");
    const started = performance.now();
    try {
      const [result, rendered] = await Promise.all([
        api.detect(modelId, state.file, params, options),
        render === "boxes" ? null : api.render(
          modelId, render, state.file, params, { ...options, options: renderOptions(render) }),
      ]);
      const roundTrip = performance.now() - started;
      if (sequence !== state.sequence) return;
      await displayImage(result, rendered, () => api.render(
        modelId, "annotate", state.file, params, options));
      if (sequence !== state.sequence) return;
      showResult(result, roundTrip);
      setStatus(status, "", "");
      markUsageKey(false);
    } catch (error) {
      if (error.name === "AbortError" || sequence !== state.sequence) return;
      showNoResult("No result: see the message above.");
      stage.dataset.state = "error";
      setStatus(status, describeError(error, "detect", about), "error");
      markUsageKey(error.status === 401 || error.status === 403);
      if (error.status === 404) refreshModels();
    } finally {
      if (state.controller === controller) state.controller = null;
    }
  }

  // Show the picture the JSON's coordinates refer to (the EXIF-oriented image): the chosen file
  // itself when the browser decodes it to the same size, otherwise the server's rendering.
  async function displayImage(result, rendered, annotate) {
    if (state.shownUrl) URL.revokeObjectURL(state.shownUrl);
    state.shownUrl = null;
    state.shownBlob = rendered;
    if (!rendered) {
      try {
        await loadImage(picture, state.sourceUrl);
        if (picture.naturalWidth === result.width && picture.naturalHeight === result.height) {
          return;
        }
      } catch {
        // Not decodable by this browser (e.g. TIFF): show the server's rendering instead.
      }
      rendered = await annotate();
      state.shownBlob = rendered;
    }
    state.shownUrl = URL.createObjectURL(rendered);
    await loadImage(picture, state.shownUrl);
  }

  // After a 401/403 the Usage key field is marked (and tied to the message) until a run passes.
  function markUsageKey(wrong) {
    const input = byId("usage-key");
    if (wrong) {
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", "detect-status");
    } else {
      input.removeAttribute("aria-invalid");
      input.removeAttribute("aria-describedby");
    }
  }

  function scheduleRun() {
    clearTimeout(state.timer);
    state.timer = setTimeout(run, 200);
  }

  // Inputs ----------------------------------------------------------------------------------
  fileInput.addEventListener("change", () => setFile(fileInput.files[0]));
  // The whole zone opens the picker for pointer users; keyboard users have the button.
  dropZone.addEventListener("click", (event) => {
    if (event.target !== fileInput) fileInput.click();
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
    if (byId("panel-detect").hidden || !event.clipboardData) return;
    const item = [...event.clipboardData.items]
      .find((i) => i.kind === "file" && i.type.startsWith("image/"));
    if (!item) return;
    event.preventDefault();
    const blob = item.getAsFile();
    setFile(new File([blob], blob.name || "pasted-image", { type: blob.type }));
  });

  wireParams(scheduleRun);
  for (const radio of form.elements.mode) radio.addEventListener("change", onModeChange);
  byId("render-color").addEventListener("change", run);
  modelSelect.addEventListener("change", () => {
    const model = state.models.get(modelSelect.value);
    if (model) applyModel(model);
    run();
  });
  byId("show-landmarks").addEventListener("change", () => {
    state.wantLandmarks = landmarks();
    if (state.result) drawFaces(overlay, state.result, drawOptions());
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    run();
  });

  // Downloads -------------------------------------------------------------------------------
  const baseName = () => state.fileName.replace(/\.[^.]+$/, "") || "image";
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
        const blob = await composeAnnotated(picture, state.result, { landmarks: landmarks() });
        saveBlob(blob, `${baseName()}.boxes.png`);
      }
    } catch (error) {
      setStatus(status, `Could not save the image: ${error.message}`, "error");
    }
  });

  // Models ----------------------------------------------------------------------------------
  async function refreshModels(models) {
    try {
      const list = models || await api.listModels();
      state.models = new Map(list.map((model) => [model.id, model]));
      state.modelList = list;
      const previous = modelSelect.value;
      fillModelSelect(modelSelect, list);
      const model = state.models.get(modelSelect.value);
      if (model && modelSelect.value !== previous) applyModel(model);
      else describeFamily(model);
    } catch (error) {
      setStatus(status, `Could not load the model list. ${describeError(error, "list")}`, "error");
    }
  }

  /** Show the model's family's parameters, set to the model's values (its run defaults, if its
   * admin set some, over its recommended ones). */
  function applyModel(model) {
    const family = families.familyOf(model);
    showFamily(family);
    setModelDefaults(family, { ...model.parameters, ...model.config });
    describeFamily(model);
  }

  /** The model's family's summary atop its parameters (none from a server without families). */
  function describeFamily(model) {
    const family = families.getFamily(families.familyOf(model));
    const summary = family && typeof family.summary === "string" ? family.summary.trim() : "";
    byId("family-summary").textContent = summary
      ? `${summary.charAt(0).toUpperCase()}${summary.slice(1)}`.replace(/([^.!?])$/, "$1.") : "";
  }

  /** The server's detector families (GET /api/info's `families`, absent from older servers:
   * then every model is MTCNN's). */
  function setFamilies(list) {
    families.setFamilies(list);
    buildFamilyControls();
    fillModelSelect(modelSelect, state.modelList);
    const model = state.models.get(modelSelect.value);
    if (model) {
      showFamily(families.familyOf(model));
      describeFamily(model);
    }
  }

  /** What to say when a run finds no face, with its model's family's knobs that find more. */
  function noFacesMessage(result) {
    const family = families.familyOf(state.models.get(result.model_id || modelSelect.value));
    const more = {
      mtcnn: "lower thresholds or a smaller min face size find more",
      centerface: "a lower score threshold or a larger input size finds more",
    }[family];
    return `No faces found with these parameters${more ? `: ${more}` : ""}.`;
  }

  function setLimits(info) {
    byId("drop-limit").textContent = `Up to ${formatBytes(info.max_body_bytes)}.`;
  }

  updateModeControls();
  return { refreshModels, setLimits, setFunctions, setFamilies };
}

/** "redact" -> "Redact", "face_swap" -> "Face swap". */
export function labelOf(name) {
  const words = name.replace(/[_-]+/g, " ").trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/**
 * Replace the select's options: one group per detector family (in the server's order), built-in
 * models first, mtcnn first of all; keep the selection if it still exists.
 */
export function fillModelSelect(select, models) {
  if (!models.length) return;
  const previous = select.value;
  const sorted = [...models].sort((a, b) => rank(a) - rank(b)
                                   || String(a.name).localeCompare(String(b.name)));
  const byFamily = new Map();
  for (const model of sorted) {
    const family = families.familyOf(model);
    if (!byFamily.has(family)) byFamily.set(family, []);
    byFamily.get(family).push(model);
  }
  const order = [...byFamily.keys()];
  order.sort((a, b) => families.familyRank(a) - families.familyRank(b));
  const groups = order.map((family) => {
    const group = document.createElement("optgroup");
    group.label = families.familyTitle(family);
    group.dataset.family = family;
    group.append(...byFamily.get(family).map((model) => {
      const option = document.createElement("option");
      option.value = model.id;
      option.dataset.family = family;
      const label = model.name && model.name !== model.id ? `${model.name} (${model.id})`
        : model.id;
      option.textContent = label + (model.builtin ? " — built-in" : "")
        + (model.private ? " — private" : "");
      return option;
    }));
    return group;
  });
  select.replaceChildren(...groups);
  if (sorted.some((m) => m.id === previous)) select.value = previous;
}

function rank(model) {
  if (model.id === "mtcnn") return 0;
  return model.builtin ? 1 : 2;
}
