// Sending the reviewed rows (in the worker): create the import (or pick an interrupted one
// up again), PUT each Arrow batch gzipped with its Content-Digest, submit, and remember the
// confirmed mapping. A busy server (503) is waited for, not fatal.
import { api as defaultApi, sleep as defaultSleep, whileBusy } from "./api.js";
import { ApiError } from "./errors.js";

/** @typedef {import("./types.js").Uploaded} Uploaded */

/**
 * @typedef {object} UploadRequest
 * @property {string} publishableKey
 * @property {string} templateId
 * @property {string} fileName
 * @property {number} rows
 * @property {string[]} headers
 * @property {Record<string, string> | undefined} mapping the confirmed field -> header
 * @property {{importId: string, token: string}} [resume] an interrupted upload of this file
 * @property {string} [identity] the signed end-user identity the page passed (server/identity.py)
 */

/**
 * @typedef {object} UploadDeps
 * @property {() => {offset: number, length: number, first_row: number, left_out?: number}[]} plan
 * @property {(offset: number, length: number) => Uint8Array} encode
 * @property {(phase: string, done: number, total: number) => void} progress
 * @property {(importId: string, token: string) => Promise<void>} [created] keep the import
 *   (for resuming) before its first batch is sent
 * @property {typeof defaultApi} [api]
 * @property {(ms: number) => Promise<void>} [sleep]
 * @property {(bytes: Uint8Array) => Promise<Uint8Array>} [compress]
 */

/**
 * The IPC stream is written uncompressed in Pyodide (see pipeline/batches.py); the
 * browser's native gzip compresses the request body instead.
 * @param {Uint8Array} bytes
 */
export async function gzip(bytes) {
  const stream = new Blob([/** @type {BlobPart} */ (bytes)]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/**
 * The RFC 9530 Content-Digest of a request body as sent (the gzip bytes: Content-Digest
 * covers the content after its content coding), e.g. `sha-256=:…:`.
 * @param {Uint8Array} body
 */
export async function contentDigest(body) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", /** @type {BufferSource} */ (body)));
  let binary = "";
  for (const byte of digest) binary += String.fromCharCode(byte);
  return `sha-256=:${btoa(binary)}:`;
}

/**
 * The batch numbers the server holds for an import, page by page.
 * @param {typeof defaultApi} api
 * @param {string} importId
 * @param {string} token
 * @returns {Promise<{status: string, held: Set<number>}>}
 */
export async function heldBatches(api, importId, token) {
  const held = new Set();
  let start = 0;
  for (;;) {
    const page = await api(`/api/v1/imports/${importId}/batches?start=${start}`, {}, token);
    for (const seq of page.batches) held.add(seq);
    if (page.next == null) return { status: page.status, held };
    start = page.next;
  }
}

/**
 * An interrupted import the server no longer knows (expired, deleted): start a new one.
 * @param {Error & {status?: number}} error
 */
function gone(error) {
  if (error instanceof ApiError && [401, 404, 410].includes(error.status)) return null;
  throw error;
}

/**
 * @param {UploadRequest} request
 * @param {UploadDeps} deps
 * @returns {Promise<Uploaded>}
 */
export async function upload(request, deps) {
  const { plan, encode, progress } = deps;
  const api = deps.api ?? defaultApi;
  const sleep = deps.sleep ?? defaultSleep;
  const compress = deps.compress ?? gzip;
  const busy = { sleep, onWait: (/** @type {number} */ seconds) => progress("busy", seconds, 0) };
  const json = (/** @type {unknown} */ body) => ({
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });

  const { publishableKey, templateId, fileName, rows, headers, mapping, resume, identity } = request;
  let importId, token;
  /** @type {Set<number>} */
  let held = new Set();
  let uploading = true;
  const answer = resume ? await whileBusy(() => heldBatches(api, resume.importId, resume.token), busy).catch(gone) : null;
  if (resume && answer) {
    ({ importId, token } = resume);
    held = answer.held;
    uploading = answer.status === "uploading"; // submitted already: submitting again is harmless
  } else {
    const created = await whileBusy(
      () => api("/api/v1/imports", json({ publishableKey, templateId, fileName, ...(identity ? { identity } : {}) })),
      busy,
    );
    ({ id: importId, uploadToken: token } = created);
    if (deps.created) await deps.created(importId, token);
  }
  const batches = plan();
  for (let i = 0; i < batches.length; i++) {
    if (uploading && !held.has(i)) {
      const { offset, length, first_row: firstRow, left_out: leftOut = 0 } = batches[i];
      const body = await compress(encode(offset, length));
      const put = {
        method: "PUT",
        headers: {
          "content-type": "application/vnd.apache.arrow.stream",
          "content-encoding": "gzip",
          "content-digest": await contentDigest(body),
        },
        body: /** @type {BodyInit} */ (body),
      };
      const query = leftOut ? `first_row=${firstRow}&left_out=${leftOut}` : `first_row=${firstRow}`;
      await whileBusy(() => api(`/api/v1/imports/${importId}/batches/${i}?${query}`, put, token), busy);
    }
    progress("upload", i + 1, batches.length);
  }
  const submitted = () => api(`/api/v1/imports/${importId}/submit`, json({ batches: batches.length, rows }), token);
  const state = await whileBusy(submitted, busy);
  if (mapping) {
    // Remember the confirmed mapping for the next file with these headers.
    await api(
      `/api/v1/templates/${templateId}/mappings`,
      json({ publishableKey, headers, mapping, importId }),
      token,
    ).catch((/** @type {Error} */ error) => console.warn("loadbay worker: mapping not remembered:", error.message));
  }
  return { importId, token, state };
}
