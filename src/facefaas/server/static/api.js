// Thin client for the facefaas HTTP API. Every non-2xx answer becomes an ApiError carrying the
// RFC 9457 problem document (application/problem+json) when the server sent one.

/** An HTTP error with the server's problem details. */
export class ApiError extends Error {
  /**
   * @param {number} status HTTP status, or 0 when the server could not be reached.
   * @param {{type?: string, title?: string, detail?: string}} problem
   * @param {number|null} retryAfter seconds from the Retry-After header, if any.
   */
  constructor(status, problem, retryAfter = null) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.problem = problem;
    this.retryAfter = retryAfter;
  }
}

function parseRetryAfter(value) {
  if (!value) return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, Math.ceil(seconds));
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

async function readProblem(response) {
  const type = response.headers.get("content-type") || "";
  try {
    if (type.includes("json")) {
      const body = await response.json();
      if (body && typeof body === "object") {
        // FastAPI's own validation errors come as {"detail": [...]}: flatten them.
        if (Array.isArray(body.detail)) {
          body.detail = body.detail.map((d) => d.msg || JSON.stringify(d)).join("; ");
        }
        return body;
      }
    }
    const text = (await response.text()).trim();
    return { title: response.statusText, detail: text.slice(0, 300) };
  } catch {
    return { title: response.statusText };
  }
}

/**
 * fetch() that throws ApiError on network failure or a non-2xx status.
 * @returns {Promise<Response>}
 */
export async function request(url, options = {}) {
  let response;
  try {
    response = await fetch(url, options);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, { title: "Network error", detail: String(error.message || error) });
  }
  if (!response.ok) {
    const problem = await readProblem(response);
    throw new ApiError(response.status, problem,
                       parseRetryAfter(response.headers.get("retry-after")));
  }
  return response;
}

/**
 * Query string of the detection parameters of the model's family, as the API names them
 * ({min_size: 20, thresholds: [0.6, 0.7, 0.7], factor: 0.709} for MTCNN, {threshold: 0.5,
 * nms_threshold: 0.3, input_size: null} for CenterFace: a list travels comma-separated, a null
 * is left out, so the server uses its default), then of the function's own options
 * ({color: "#ff0000"}: encoded, so "#" travels as %23).
 */
export function paramsQuery(params, options = {}) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries({ ...params, ...options })) {
    if (value === null || value === undefined) continue;
    query.set(name, Array.isArray(value) ? value.join(",") : String(value));
  }
  return query.toString();
}

function keyHeaders(key) {
  return key ? { "X-API-Key": key } : {};
}

function runUrl(modelId, operation, params, options) {
  return `/api/run/${encodeURIComponent(modelId)}/${encodeURIComponent(operation)}`
    + `?${paramsQuery(params, options)}`;
}

/**
 * Detect faces. The JSON is the library's Faces.to_dict() ({width, height, faces}) plus
 * model_id, image {format, orientation, ...}, parameters and timings_ms.
 * @param {Blob} image raw image bytes, sent as application/octet-stream.
 */
export async function detect(modelId, image, params, { key, signal } = {}) {
  const response = await request(runUrl(modelId, "detect", params), {
    method: "POST",
    headers: { "Content-Type": "application/octet-stream", ...keyHeaders(key) },
    body: image,
    signal,
  });
  return response.json();
}

/**
 * Render faces server-side: operation is "annotate" or an anonymising function ("blur",
 * "pixelate", "redact", ...); options are the function's own query options ({color} for redact).
 * @returns {Promise<Blob>} the encoded image.
 */
export async function render(modelId, operation, image, params, { key, signal, options } = {}) {
  const response = await request(runUrl(modelId, operation, params, options), {
    method: "POST",
    headers: { "Content-Type": "application/octet-stream", ...keyHeaders(key) },
    body: image,
    signal,
  });
  return response.blob();
}

/**
 * What the server offers and its limits (GET /api/info). function_details (absent from older
 * servers) describes each function: [{name, aliases, summary, output, media_types, options,
 * anonymizes}].
 * @returns {Promise<{max_body_bytes: number, max_model_bytes: number,
 *                    upload_token_required: boolean, default_model: string, functions: string[],
 *                    function_details?: object[], families?: object[]}>} (families, absent
 *   from older servers: [{name, title, summary, parameters, defaults}])
 */
export async function info() {
  const response = await request("/api/info", { headers: { Accept: "application/json" } });
  return response.json();
}

/**
 * Every model the server lists (GET /api/models): public ones, and the private ones `key` opens:
 * [{id, name, description, sha256, format, family, builtin, private, parameters, config,
 * created_at, updated_at, usage: {calls, faces, errors, ...}}] (`family`, "mtcnn" or
 * "centerface", is absent from older servers, whose models are all MTCNN's).
 * @param {string} key a usage or admin key, or "".
 */
export async function listModels(key = "") {
  // The listing comes in pages: follow its Link rel="next" (a bounded number of them).
  const models = [];
  let url = "/api/models?limit=200";
  for (let page = 0; url && page < MAX_MODEL_PAGES; page += 1) {
    const headers = { Accept: "application/json", ...keyHeaders(key) };
    const response = await request(url, { headers });
    const body = await response.json();
    if (Array.isArray(body)) models.push(...body);
    url = nextLink(response.headers.get("Link"));
  }
  return models;
}

const MAX_MODEL_PAGES = 50;

/** The URL of an RFC 8288 Link header's rel="next", or null. */
export function nextLink(header) {
  for (const part of (header || "").split(",")) {
    const match = /^\s*<([^>]*)>\s*;(.*)$/.exec(part);
    if (match && /(^|;)\s*rel="?next"?\s*(;|$)/.test(match[2])) return match[1];
  }
  return null;
}

/**
 * Upload a model as multipart: one part named "file" per file (with its file name: the server
 * tells the networks apart by it, e.g. det1/det2/det3.caffemodel), then name, description,
 * private.
 * @param {File[]} files one file, or the model's files together.
 * @param {string} token the server's upload token, when it requires one.
 * @returns {Promise<object>} the model's info plus {model_id, admin_key, usage_key, warnings}.
 */
export async function uploadModel(files, { name, description, isPrivate, token }) {
  const form = new FormData();
  for (const file of files) form.append("file", file, file.name);
  if (name) form.append("name", name);
  if (description) form.append("description", description);
  if (isPrivate) form.append("private", "true");
  const response = await request("/api/models", {
    method: "POST", body: form, headers: keyHeaders(token),
  });
  return response.json();
}

/** Delete a model with its admin key. */
export async function deleteModel(modelId, adminKey) {
  await request(`/api/models/${encodeURIComponent(modelId)}`, {
    method: "DELETE",
    headers: keyHeaders(adminKey),
  });
}

// Jobs ----------------------------------------------------------------------------------------

function jobHeaders(token) {
  return { "X-Job-Token": token };
}

/**
 * Submit a job of many images (POST /api/jobs, multipart): one part "file" per image or zip,
 * then model, function and params (JSON text).
 * @param {File[]} files images, and/or zips of images.
 * @param {string} key the model's usage key, for a private model.
 * @returns {Promise<{job_id: string, token: string, status_url: string, results_url: string,
 *                    total: number}>} the token is shown once: it reads and cancels the job.
 */
export async function submitJob(files, { model, func, params = {}, key } = {}) {
  const form = new FormData();
  for (const file of files) form.append("file", file, file.name);
  form.append("model", model);
  form.append("function", func);
  form.append("params", JSON.stringify(params));
  const response = await request("/api/jobs", {
    method: "POST", body: form, headers: keyHeaders(key),
  });
  return response.json();
}

/**
 * A job's status (GET /api/jobs/{id}): {job_id, state (queued, running, done, failed,
 * cancelled), counts: {total, done, failed, cancelled, pending}, progress (0 to 1), errors:
 * [{index, source, error}], ...}.
 */
export async function jobStatus(jobId, token, { signal } = {}) {
  const response = await request(`/api/jobs/${encodeURIComponent(jobId)}`, {
    headers: { Accept: "application/json", ...jobHeaders(token) }, signal,
  });
  return response.json();
}

/** Cancel a job (DELETE /api/jobs/{id}); its status after. */
export async function cancelJob(jobId, token) {
  const response = await request(`/api/jobs/${encodeURIComponent(jobId)}`, {
    method: "DELETE", headers: jobHeaders(token),
  });
  return response.json();
}

/**
 * A job's results: "jsonl" (one line per image, in input order) or "zip" (an ended job's
 * pictures and results.jsonl).
 * @returns {Promise<Blob>}
 */
export async function jobResults(jobId, token, format = "jsonl") {
  const query = format === "zip" ? "?format=zip" : "";
  const response = await request(`/api/jobs/${encodeURIComponent(jobId)}/results${query}`, {
    headers: jobHeaders(token),
  });
  return response.blob();
}
