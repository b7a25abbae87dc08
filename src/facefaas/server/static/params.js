// The detection parameters of the Detect tab, those of the chosen model's family. MTCNN's (min
// size, three thresholds, scale factor) are in the page; another family's controls are made from
// GET /api/info's `families` (its parameters and defaults) and what this page knows of each
// parameter (PARAMETER_SPECS: label, range, control). A number input (the accessible control)
// is mirrored by a range slider (a pointer shortcut); a parameter with a few sensible values is a
// select.

import { DEFAULT_FAMILY, allFamilies, familyTitle } from "./families.js";
import { byId } from "./ui.js";

const THRESHOLD_IDS = ["threshold-p", "threshold-r", "threshold-o"];
const MTCNN_IDS = ["min-size", ...THRESHOLD_IDS, "factor"];

// How the page shows a parameter it knows (by its API name). A parameter it does not know (of a
// family newer than the page) gets a plain field and is sent as typed.
const PARAMETER_SPECS = {
  threshold: {
    label: "Score threshold", kind: "slider", min: 0.01, max: 1, step: 0.01,
    hint: "Lower finds more faces, and more false ones.",
  },
  nms_threshold: {
    label: "Overlap threshold", unit: "NMS IoU", kind: "slider", min: 0.05, max: 1, step: 0.01,
    hint: "Of two boxes overlapping more, the lower-scored one is dropped.",
  },
  input_size: {
    label: "Input size", kind: "select",
    choices: [[null, "Full resolution"], [640, "640 px"], [960, "960 px"], [1280, "1280 px"],
              [1920, "1920 px"]],
    hint: "The longest side the network sees: smaller is faster and misses small faces.",
  },
};

const groups = new Map(); // family name -> {element, controls} of the families with controls
const pending = new Map(); // family name -> a model's values, kept until its controls exist
let shown = DEFAULT_FAMILY; // the family whose controls are on display
let commit = () => {};

/** "nms_threshold" -> "Nms threshold": the label of a parameter the page does not know. */
function wordsOf(name) {
  const words = name.replace(/[_-]+/g, " ").trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** An element with its attributes (those null or undefined left out). */
function element(tag, attributes = {}) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== undefined && value !== null) node.setAttribute(name, String(value));
  }
  return node;
}

/** The `<option>` of an input size (null: full resolution). */
function sizeOption(value, text) {
  const option = element("option", { value: value === null ? "" : value });
  option.textContent = text;
  return option;
}

/** One parameter's controls: {name, kind, label, input, range?}, its elements in `container`. */
function makeControl(family, name, container) {
  const spec = PARAMETER_SPECS[name]
    || { label: wordsOf(name), kind: Array.isArray(family.defaults?.[name]) ? "text" : "number" };
  const id = `${family.name}-${name}`.replace(/_/g, "-");
  const row = element("div", { class: "param", "data-parameter": name });
  const label = element("label", { for: id });
  label.textContent = spec.label;
  if (spec.unit) {
    const unit = element("span", { class: "hint" });
    unit.textContent = spec.unit;
    label.append(" ", unit);
  }
  row.append(label);
  const control = { name, kind: spec.kind, label: spec.label, input: null, range: null };
  if (spec.kind === "slider") {
    const bounds = { min: spec.min, max: spec.max, step: spec.step };
    control.range = element("input", {
      id: `${id}-range`, type: "range", ...bounds, "aria-hidden": "true", tabindex: "-1",
    });
    control.input = element("input", {
      id, name, type: "number", ...bounds, inputmode: "decimal", required: "",
    });
    row.append(control.range, control.input);
  } else if (spec.kind === "select") {
    control.input = element("select", { id, name });
    control.input.append(...spec.choices.map(([value, text]) => sizeOption(value, text)));
    row.append(control.input);
  } else {
    control.input = element("input", {
      id, name, type: spec.kind === "number" ? "number" : "text", step: "any",
      inputmode: spec.kind === "number" ? "decimal" : undefined, autocomplete: "off",
    });
    row.append(control.input);
  }
  if (spec.hint) {
    const hint = element("p", { id: `${id}-hint`, class: "hint param-hint" });
    hint.textContent = spec.hint;
    control.input.setAttribute("aria-describedby", hint.id);
    row.append(hint);
  }
  container.append(row);
  return control;
}

/** Show `value` in a control; with asDefault, make it what "Reset to defaults" restores. */
function setControl(control, value, asDefault) {
  if (value === undefined) return;
  let text;
  if (control.kind === "select") {
    const size = Number(value);
    text = value === null || !Number.isFinite(size) || size === 0 ? "" : String(size);
    if (![...control.input.options].some((option) => option.value === text)) {
      // A size the model recommends that is not one of the choices: offer it too, in order.
      const option = sizeOption(Number(text), `${text} px`);
      const after = [...control.input.options]
        .find((o) => o.value !== "" && Number(o.value) > Number(text));
      control.input.insertBefore(option, after || null);
    }
  } else if (control.kind === "slider" || control.kind === "number") {
    if (value === null || value === "" || !Number.isFinite(Number(value))) {
      if (control.kind === "slider") return;
      text = "";
    } else {
      text = String(value);
    }
  } else {
    text = value === null ? "" : (Array.isArray(value) ? value.join(",") : String(value));
  }
  control.input.value = text;
  if (control.range) control.range.value = text;
  if (asDefault) control.input.dataset.default = text;
}

function wireControl(control) {
  const { input, range } = control;
  if (range) {
    range.addEventListener("input", () => { input.value = range.value; });
    range.addEventListener("change", () => commit());
    input.addEventListener("input", () => { range.value = input.value; });
  }
  input.addEventListener("change", () => commit());
}

/**
 * Make the controls of the server's families besides MTCNN (whose controls are in the page), each
 * family's in a group of its own, hidden until a model of that family is chosen.
 * @param {object[]} families GET /api/info's `families` (see families.js).
 */
export function buildFamilyControls(families = allFamilies()) {
  const container = byId("family-params");
  for (const family of families) {
    if (family.name === DEFAULT_FAMILY || groups.has(family.name)) continue;
    const group = element("div", {
      id: `params-${family.name}`, class: "param-group", "data-family": family.name,
    });
    group.hidden = true;
    const controls = family.parameters.map((name) => makeControl(family, name, group));
    for (const control of controls) {
      setControl(control, family.defaults?.[control.name] ?? null, true);
      wireControl(control);
    }
    container.append(group);
    groups.set(family.name, { element: group, controls });
    if (pending.has(family.name)) setModelDefaults(family.name, pending.get(family.name));
  }
  showFamily(shown);
}

/**
 * Show the parameters of `family` and hide the others'. MTCNN's are the page's own; a family the
 * server did not describe (so without controls) runs on its model's recommended values.
 */
export function showFamily(family) {
  shown = family || DEFAULT_FAMILY;
  const mtcnn = shown === DEFAULT_FAMILY;
  const known = mtcnn || groups.has(shown);
  byId("params-mtcnn").hidden = !mtcnn;
  for (const [name, group] of groups) group.element.hidden = name !== shown;
  byId("params-none").hidden = known;
  byId("reset-params").hidden = !known;
  byId("params-family").textContent = `(${familyTitle(shown)})`;
  byId("detect-form").dataset.family = shown;
}

/**
 * The shown family's parameters as the API names them: {values: {min_size: 20, thresholds: [...],
 * factor: 0.709}} for MTCNN, {values: {threshold: 0.5, nms_threshold: 0.3, input_size: null}} for
 * CenterFace; or {error, input} naming the first invalid input.
 */
export function readParams() {
  if (shown === DEFAULT_FAMILY) return readMtcnn();
  const group = groups.get(shown);
  const values = {};
  for (const control of group ? group.controls : []) {
    const { input } = control;
    if (control.kind === "select") {
      values[control.name] = input.value === "" ? null : Number(input.value);
      continue;
    }
    if (input.value === "" && control.kind !== "slider") continue; // the model's own value
    if (input.value === "" || !input.checkValidity()) {
      const range = input.min !== "" && input.max !== ""
        ? `a number from ${input.min} to ${input.max}` : "a valid value";
      return { error: `${control.label}: enter ${range}.`, input };
    }
    values[control.name] = control.kind === "text" ? input.value.trim() : Number(input.value);
  }
  return { values };
}

function readMtcnn() {
  for (const id of MTCNN_IDS) {
    const input = byId(id);
    if (input.value === "" || !input.checkValidity()) {
      const label = input.labels[0].textContent.trim();
      return { error: `${label}: enter a number from ${input.min} to ${input.max}.`, input };
    }
  }
  return {
    values: {
      min_size: Number(byId("min-size").value),
      thresholds: THRESHOLD_IDS.map((id) => Number(byId(id).value)),
      factor: Number(byId("factor").value),
    },
  };
}

function setValue(id, value, asDefault) {
  if (value === undefined || value === null || !Number.isFinite(Number(value))) return;
  const input = byId(id);
  input.value = String(value);
  byId(`${id}-range`).value = String(value);
  if (asDefault) input.dataset.default = String(value);
}

/**
 * Put a model's parameters (as the API names them: {min_size, thresholds, factor} for MTCNN,
 * {threshold, nms_threshold, input_size} for CenterFace) into its family's controls and make them
 * what "Reset to defaults" restores.
 */
export function setModelDefaults(family, parameters) {
  if (!parameters) return;
  if ((family || DEFAULT_FAMILY) === DEFAULT_FAMILY) {
    setValue("min-size", parameters.min_size, true);
    (parameters.thresholds || []).slice(0, 3)
      .forEach((value, i) => setValue(THRESHOLD_IDS[i], value, true));
    setValue("factor", parameters.factor, true);
    return;
  }
  const group = groups.get(family);
  if (!group) {
    pending.set(family, parameters); // its controls come with GET /api/info
    return;
  }
  pending.delete(family);
  for (const control of group.controls) {
    if (control.name in parameters) setControl(control, parameters[control.name], true);
  }
}

/**
 * Keep sliders and number inputs in step, and call onCommit when a value is committed (a number
 * typed and confirmed, a slider released, a size chosen, or the reset button).
 */
export function wireParams(onCommit) {
  commit = onCommit;
  for (const id of MTCNN_IDS) {
    const number = byId(id);
    const range = byId(`${id}-range`);
    range.addEventListener("input", () => { number.value = range.value; });
    range.addEventListener("change", onCommit);
    number.addEventListener("input", () => { range.value = number.value; });
    number.addEventListener("change", onCommit);
  }
  byId("reset-params").addEventListener("click", () => {
    if (shown === DEFAULT_FAMILY) {
      for (const id of MTCNN_IDS) setValue(id, byId(id).dataset.default, false);
    } else {
      for (const control of groups.get(shown)?.controls || []) {
        control.input.value = control.input.dataset.default ?? "";
        if (control.range) control.range.value = control.input.value;
      }
    }
    onCommit();
  });
}
