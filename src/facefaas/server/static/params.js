// The detection-parameter inputs of the Detect tab: min size, three thresholds, scale factor.
// Each number input (the accessible control) is mirrored by a range slider (a pointer shortcut).

import { byId } from "./ui.js";

const THRESHOLD_IDS = ["threshold-p", "threshold-r", "threshold-o"];
const PARAM_IDS = ["min-size", ...THRESHOLD_IDS, "factor"];

/**
 * The parameters in the form: {minSize (px), thresholds [P, R, O], factor}, or
 * {error, input} naming the first invalid input.
 */
export function readParams() {
  for (const id of PARAM_IDS) {
    const input = byId(id);
    if (input.value === "" || !input.checkValidity()) {
      const label = input.labels[0].textContent.trim();
      return { error: `${label}: enter a number from ${input.min} to ${input.max}.`, input };
    }
  }
  return {
    minSize: Number(byId("min-size").value),
    thresholds: THRESHOLD_IDS.map((id) => Number(byId(id).value)),
    factor: Number(byId("factor").value),
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
 * Put a model's parameters ({min_size, thresholds, factor}, as the API names them) into the form
 * and make them what "Reset to defaults" restores.
 */
export function setModelDefaults(parameters) {
  if (!parameters) return;
  setValue("min-size", parameters.min_size, true);
  (parameters.thresholds || []).slice(0, 3)
    .forEach((value, i) => setValue(THRESHOLD_IDS[i], value, true));
  setValue("factor", parameters.factor, true);
}

/**
 * Keep sliders and number inputs in step, and call onCommit when a value is committed (a number
 * typed and confirmed, a slider released, or the reset button).
 */
export function wireParams(onCommit) {
  for (const id of PARAM_IDS) {
    const number = byId(id);
    const range = byId(`${id}-range`);
    range.addEventListener("input", () => { number.value = range.value; });
    range.addEventListener("change", onCommit);
    number.addEventListener("input", () => { range.value = number.value; });
    number.addEventListener("change", onCommit);
  }
  byId("reset-params").addEventListener("click", () => {
    for (const id of PARAM_IDS) setValue(id, byId(id).dataset.default, false);
    onCommit();
  });
}
