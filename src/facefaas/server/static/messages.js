// Human-readable messages for API errors, one per HTTP status, completed by the problem's detail.

const HEADLINES = {
  0: "Could not reach the server. Check that it is running and try again.",
  400: "The server could not use this input.",
  401: "A key is needed for this.",
  403: "This key may not do that.",
  404: "Not found.",
  409: "Conflict with the current state.",
  413: "Too large for this server.",
  415: "Unsupported file type.",
  422: "Invalid value.",
  429: "Too many requests.",
  500: "The server failed while handling this request.",
  503: "The server is busy.",
  507: "The server's storage for models is full.",
};

// What the user can do about it, per status and per context ("detect", "upload", "job",
// "delete").
const ADVICE = {
  detect: {
    400: "Choose a JPEG, PNG, GIF, WebP or BMP image.",
    404: "The model may have been deleted; the model list was refreshed.",
    413: "Try a smaller image.",
    415: "Choose a JPEG, PNG, GIF, WebP or BMP image.",
    422: "Check the parameters.",
  },
  upload: {
    400: "Check the file: it could not be read.",
    413: "The model file is over the server's size limit.",
    415: "This file type is not a model format the server imports.",
    422: "The file is not a model of a detector family the server runs (such as MTCNN or "
      + "CenterFace).",
  },
  job: {
    400: "Choose JPEG, PNG, GIF, WebP or BMP images, or a zip of them.",
    404: "The job has expired or was removed: its results are gone.",
    413: "Send fewer or smaller files in one job.",
    415: "Choose images or a zip of images.",
    422: "Check the model and the function.",
  },
  delete: {
    401: "Enter the model's admin key.",
    403: "The admin key is wrong, or this model cannot be deleted.",
    404: "It was already deleted; the list was refreshed.",
  },
};

// Messages that say everything in plain words, per context and status: the headline and the
// problem's detail (written for API clients: header names, the model id in quotes) are left out,
// as they would only say the same again in other terms. `model` names the model concerned.
const PLAIN = {
  detect: {
    401: ({ model }) => `${capitalize(model)} is private: enter its usage key in the Usage key `
      + "field (under Model) to run it.",
    403: ({ model }) => `The key in the Usage key field does not open ${model}: check it `
      + "(it was shown when the model was uploaded; the model's admin key works too).",
  },
  upload: {
    401: () => "This server takes uploads only with its upload token: enter it in the Upload "
      + "token field.",
    403: ({ problem }) => {
      if (problem.code === "quota-exceeded") {
        const quota = problem.unit === "bytes" ? formatBytes(problem.limit) : `${problem.limit} models`;
        return `You already keep as much as one uploader may on this server (${quota}): delete `
          + "one of your models first.";
      }
      return "The upload token entered is not this server's: check the Upload token field.";
    },
    507: () => "The server's storage for uploaded models is full: try again once models have "
      + "been deleted.",
  },
};

/**
 * One sentence or two describing an ApiError for a person.
 * @param {import("./api.js").ApiError} error
 * @param {"detect"|"upload"|"delete"|"list"} context
 * @param {{model?: string}} about what the request was about: `model` names the model for
 *   people (e.g. "model “secret” (3f2a…)"); "this model" when absent.
 */
export function describeError(error, context, { model = "this model" } = {}) {
  const status = typeof error.status === "number" ? error.status : -1;
  if (status < 0) return `Unexpected error: ${error.message || error}`;
  const problem = error.problem || {};
  const plain = (PLAIN[context] || {})[status];
  if (plain) return `${plain({ model, problem })} (HTTP ${status})`;
  const headline = HEADLINES[status] || (status >= 500 ? HEADLINES[500] : `Error ${status}.`);
  const parts = [headline];
  const detail = problem.detail;
  if (detail && status !== 0) parts.push(sentence(String(detail)));
  if (status === 413 && problem.unit === "bytes" && Number.isFinite(problem.limit)) {
    parts.push(`The limit is ${formatBytes(problem.limit)}.`);
  }
  const advice = (ADVICE[context] || {})[status];
  if (advice) parts.push(advice);
  if ((status === 429 || status === 503) && error.retryAfter !== null) {
    parts.push(`Try again in ${error.retryAfter} s.`);
  } else if (status === 429 || status === 503) {
    parts.push("Try again in a moment.");
  }
  if (status >= 500 && status !== 503 && problem.request_id) parts.push(`Request id: ${problem.request_id}.`);
  return status ? `${parts.join(" ")} (HTTP ${status})` : parts.join(" ");
}

const capitalize = (text) => text.charAt(0).toUpperCase() + text.slice(1);

/** "the data is bad" -> "The data is bad." */
function sentence(text) {
  const trimmed = text.trim();
  return trimmed.charAt(0).toUpperCase() + trimmed.slice(1).replace(/([^.!?])$/, "$1.");
}

/** Bytes for people: "512 B", "3.2 KiB", "32.0 MiB". */
export function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
