// Small DOM helpers shared by the tabs.

/** document.getElementById that fails loudly when the page and the script disagree. */
export function byId(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`#${id} is missing from the page`);
  return element;
}

/**
 * Show a message in a status region (an aria-live element).
 * @param {HTMLElement} element
 * @param {string} text empty to clear.
 * @param {"error"|"warning"|"busy"|"ok"|""} kind styles the message (warning: something was
 *   left out or stopped, not an error); errors are also announced assertively.
 */
export function setStatus(element, text, kind) {
  element.textContent = text;
  element.dataset.kind = kind;
  element.setAttribute("aria-live", kind === "error" ? "assertive" : "polite");
}

/** Let the user save a Blob under a file name. */
export function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** A date-time for people, in their locale; the raw value when it is not a date. */
export function formatDate(value) {
  if (value === null || value === undefined || value === "") return "—";
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}
