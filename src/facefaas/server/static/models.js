// The Models tab: upload a model (its keys are shown once), list models, delete one.

import * as api from "./api.js";
import { familyOf, familyTitle, getFamily } from "./families.js";
import { describeError, formatBytes } from "./messages.js";
import { byId, formatDate, setStatus } from "./ui.js";

/**
 * Wire the Models tab.
 * @param {(models: object[]) => void} onModels called with every freshly loaded model list.
 */
export function setupModels(onModels) {
  const uploadForm = byId("upload-form");
  const uploadStatus = byId("upload-status");
  const listStatus = byId("models-status");
  const dialog = byId("delete-dialog");
  let deleting = null; // id of the model the dialog is about
  // Private models are listed only to holders of one of their keys: the listing sends the Usage
  // key field's key, and a private model it revealed stays listed until the page is reloaded
  // (running it without the key then says, in plain words, that it needs one).
  const usageKey = byId("usage-key");
  const revealed = new Map();
  let shown = null; // the models in the table, to show again once the families are known

  async function listModels() {
    const list = await api.listModels(usageKey.value.trim());
    for (const model of list) if (model.private) revealed.set(model.id, model);
    const listed = new Set(list.map((model) => model.id));
    return [...list, ...[...revealed.values()].filter((model) => !listed.has(model.id))];
  }

  async function refresh() {
    setStatus(listStatus, "Loading models…", "busy");
    try {
      const models = await listModels();
      renderTable(models);
      setStatus(listStatus, models.length ? "" : "No models.", "");
      onModels(models);
    } catch (error) {
      setStatus(listStatus, describeError(error, "list"), "error");
    }
  }

  function renderTable(models) {
    shown = models;
    const rows = models.map((model) => {
      const row = document.createElement("tr");
      row.dataset.modelId = model.id;
      const id = document.createElement("code");
      id.textContent = model.id;
      const idCell = document.createDocumentFragment();
      idCell.append(id);
      if (model.private) idCell.append(privateBadge());
      const cells = [
        idCell,
        model.name || "",
        familyCell(model),
        model.description || "",
        formatDate(model.created_at),
        describeUsage(model),
      ];
      for (const content of cells) {
        const cell = document.createElement("td");
        cell.append(content);
        row.append(cell);
      }
      const actions = document.createElement("td");
      if (!model.builtin) {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "danger small";
        button.textContent = "Delete";
        button.setAttribute("aria-label", `Delete model ${model.id}`);
        button.addEventListener("click", () => openDelete(model.id));
        actions.append(button);
      } else {
        actions.textContent = "built-in";
        actions.className = "hint";
      }
      row.append(actions);
      return row;
    });
    byId("models-body").replaceChildren(...rows);
  }

  // Upload ----------------------------------------------------------------------------------
  const fileInput = byId("model-file");
  const fileList = byId("model-file-list");
  // The files chosen, listed under the input (which shows only "3 files" for several).
  function listFiles() {
    const files = [...fileInput.files];
    fileList.replaceChildren(...(files.length > 1 ? files : []).map((file) => {
      const item = document.createElement("li");
      item.textContent = `${file.name} (${formatBytes(file.size)})`;
      return item;
    }));
  }
  fileInput.addEventListener("change", listFiles);
  uploadForm.addEventListener("reset", () => fileList.replaceChildren());

  uploadForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const files = [...fileInput.files];
    if (!files.length) {
      setStatus(uploadStatus, "Choose the model's file (or files) first.", "error");
      fileInput.focus();
      return;
    }
    const button = byId("upload-button");
    button.disabled = true;
    const what = files.length === 1 ? files[0].name : `${files.length} files`;
    setStatus(uploadStatus, `Uploading ${what}…`, "busy");
    try {
      const created = await api.uploadModel(files, {
        name: byId("model-name").value.trim(),
        description: byId("model-description").value.trim(),
        isPrivate: byId("model-private").checked,
        token: byId("upload-token").value.trim(),
      });
      showKeys(created);
      setStatus(uploadStatus, `Model ${created.model_id} uploaded.`, "ok");
      const token = byId("upload-token").value;
      uploadForm.reset();
      byId("upload-token").value = token;
      await refresh();
    } catch (error) {
      setStatus(uploadStatus, describeError(error, "upload"), "error");
    } finally {
      button.disabled = false;
    }
  });

  function showKeys(created) {
    byId("new-model-id").textContent = created.model_id;
    byId("new-model-sha").textContent = created.sha256 || "—";
    byId("new-admin-key").textContent = created.admin_key || "—";
    const usage = created.usage_key || "";
    byId("new-usage-key").textContent = usage;
    byId("new-usage-key-label").hidden = !usage;
    byId("new-usage-key-row").hidden = !usage;
    const warnings = Array.isArray(created.warnings) ? created.warnings : [];
    byId("upload-warnings").replaceChildren(...warnings.map((text) => {
      const item = document.createElement("li");
      item.textContent = text;
      return item;
    }));
    const box = byId("upload-result");
    box.hidden = false;
    box.focus();
  }

  byId("dismiss-keys").addEventListener("click", () => {
    // The keys leave the page for good: they are not kept anywhere else.
    for (const id of ["new-model-id", "new-model-sha", "new-admin-key", "new-usage-key"]) {
      byId(id).textContent = "";
    }
    byId("upload-result").hidden = true;
    byId("upload-button").focus();
  });

  for (const button of document.querySelectorAll("button.copy[data-copy]")) {
    button.addEventListener("click", async () => {
      const text = byId(button.dataset.copy).textContent;
      try {
        await navigator.clipboard.writeText(text);
        button.textContent = "Copied";
      } catch {
        // Clipboard access needs a secure context or a permission: select the text instead.
        const range = document.createRange();
        range.selectNodeContents(byId(button.dataset.copy));
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        button.textContent = "Selected: press Ctrl+C";
      }
      setTimeout(() => { button.textContent = "Copy"; }, 2500);
    });
  }

  // Delete ----------------------------------------------------------------------------------
  function openDelete(modelId) {
    deleting = modelId;
    byId("delete-model-id").textContent = modelId;
    byId("admin-key").value = "";
    setStatus(byId("delete-status"), "", "");
    dialog.showModal();
    byId("admin-key").focus();
  }

  byId("delete-cancel").addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => { byId("admin-key").value = ""; });
  byId("delete-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = byId("admin-key").value.trim();
    const dialogStatus = byId("delete-status");
    if (!key) {
      setStatus(dialogStatus, "Enter the model's admin key.", "error");
      return;
    }
    const button = byId("delete-confirm");
    button.disabled = true;
    setStatus(dialogStatus, "Deleting…", "busy");
    try {
      await api.deleteModel(deleting, key);
      revealed.delete(deleting);
      dialog.close();
      await refresh();
      setStatus(listStatus, `Model ${deleting} deleted.`, "ok");
      byId("refresh-models").focus(); // its row, and the button that opened the dialog, are gone
    } catch (error) {
      setStatus(dialogStatus, describeError(error, "delete"), "error");
      if (error.status === 404) await refresh();
    } finally {
      button.disabled = false;
    }
  });

  byId("refresh-models").addEventListener("click", refresh);
  usageKey.addEventListener("change", () => {
    if (usageKey.value.trim()) refresh(); // a key may reveal private models
  });

  /** Show the server's model size limit and, if it wants one, the upload token field. */
  function setLimits(info) {
    byId("model-limit").textContent = `Up to ${formatBytes(info.max_model_bytes)} in all.`;
    byId("upload-token-field").hidden = !info.upload_token_required;
  }

  /** The server's families are known (GET /api/info): name them in the table. */
  function familiesChanged() {
    if (shown) renderTable(shown);
  }

  return { refresh, setLimits, familiesChanged };
}

/** The model's family by its title ("CenterFace"), its summary as a tooltip. */
function familyCell(model) {
  const name = familyOf(model);
  const cell = document.createElement("span");
  cell.className = "family";
  cell.dataset.family = name;
  cell.textContent = familyTitle(name);
  const family = getFamily(name);
  if (family && family.summary) cell.title = family.summary;
  return cell;
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** A padlock and the word "Private", with what it means as a tooltip. */
function privateBadge() {
  const badge = document.createElement("span");
  badge.className = "badge private";
  badge.title = "Private: running it needs its usage key";
  const icon = document.createElementNS(SVG_NS, "svg");
  icon.setAttribute("viewBox", "0 0 16 16");
  icon.setAttribute("width", "12");
  icon.setAttribute("height", "12");
  icon.setAttribute("aria-hidden", "true");
  const lock = document.createElementNS(SVG_NS, "path");
  lock.setAttribute("d", "M4 7V5a4 4 0 0 1 8 0v2h1v8H3V7h1zm2 0h4V5a2 2 0 0 0-4 0v2z");
  lock.setAttribute("fill", "currentColor");
  icon.append(lock);
  const text = document.createElement("span");
  text.textContent = "Private";
  const meaning = document.createElement("span");
  meaning.className = "visually-hidden";
  meaning.textContent = ": running it needs its usage key";
  badge.append(icon, text, meaning);
  return badge;
}

/** "12 runs, 15 faces, 1 error · mean 210 ms" from the model's usage counters. */
function describeUsage(model) {
  const usage = model.usage;
  if (!usage || typeof usage.calls !== "number") return "—";
  const plural = (n, word) => (n === 1 ? `1 ${word}` : `${n} ${word}s`);
  const parts = [plural(usage.calls, "run"), plural(usage.faces ?? 0, "face")];
  if (usage.errors) parts.push(plural(usage.errors, "error"));
  const text = parts.join(", ");
  return typeof usage.mean_latency_ms === "number"
    ? `${text} · mean ${usage.mean_latency_ms.toFixed(0)} ms` : text;
}
