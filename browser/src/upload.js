// Sending the reviewed rows (in the worker): create the import, PUT each Arrow batch gzipped,
// submit, and remember the confirmed mapping. A busy server (503) is waited for, not fatal.
import { api as defaultApi, sleep as defaultSleep, whileBusy } from "./api.js";

/** @typedef {import("./types.js").Uploaded} Uploaded */

/**
 * @typedef {object} UploadRequest
 * @property {string} publishableKey
 * @property {string} templateId
 * @property {string} fileName
 * @property {number} rows
 * @property {string[]} headers
 * @property {Record<string, string> | undefined} mapping the confirmed field -> header
 */

/**
 * @typedef {object} UploadDeps
 * @property {() => {offset: number, length: number, first_row: number}[]} plan
 * @property {(offset: number, length: number) => Uint8Array} encode
 * @property {(phase: string, done: number, total: number) => void} progress
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

  const { publishableKey, templateId, fileName, rows, headers, mapping } = request;
  const created = await whileBusy(
    () => api("/api/v1/imports", json({ publishableKey, templateId, fileName })),
    busy,
  );
  const token = created.uploadToken;
  const batches = plan();
  for (let i = 0; i < batches.length; i++) {
    const { offset, length, first_row: firstRow } = batches[i];
    const body = await compress(encode(offset, length));
    const put = {
      method: "PUT",
      headers: { "content-type": "application/vnd.apache.arrow.stream", "content-encoding": "gzip" },
      body: /** @type {BodyInit} */ (body),
    };
    await whileBusy(() => api(`/api/v1/imports/${created.id}/batches/${i}?first_row=${firstRow}`, put, token), busy);
    progress("upload", i + 1, batches.length);
  }
  const submitted = () => api(`/api/v1/imports/${created.id}/submit`, json({ batches: batches.length, rows }), token);
  const state = await whileBusy(submitted, busy);
  if (mapping) {
    // Remember the confirmed mapping for the next file with these headers.
    await api(
      `/api/v1/templates/${templateId}/mappings`,
      json({ publishableKey, headers, mapping, importId: created.id }),
      token,
    ).catch((/** @type {Error} */ error) => console.warn("loadbay worker: mapping not remembered:", error.message));
  }
  return { importId: created.id, token, state };
}
