// The importer's Web Worker: Pyodide runs loadbay's `pipeline` package here, off the UI
// thread. All file logic is Python; this file only moves messages, files and bytes.
// @ts-expect-error the Pyodide runtime is copied beside app/ by tools/build_assets.py
import { loadPyodide } from "../pyodide/pyodide.mjs";
import { api } from "./src/api.js";
import { UserError } from "./src/errors.js";
import { openOptions } from "./src/fields.js";
import { t } from "./src/i18n/index.js";
import { fingerprint, relayed, sameFile, uploadKey } from "./src/resume.js";
import { findSnapshot, keepSnapshot } from "./src/snapshot.js";
import { upload } from "./src/upload.js";
import { fetchWheels, installer } from "./src/wheels.js";

/** @typedef {import("pyodide").PyodideAPI} PyodideAPI */
/** @typedef {import("./src/types.js").Described} Described */

/** @type {{postMessage(message: unknown, transfer?: Transferable[]): void, onmessage: ((event: MessageEvent) => void) | null}} */
const scope = /** @type {any} */ (self);

/** @type {Map<number, (record: any) => void>} */
const asking = new Map();
let nextRelay = 0;
// Resume records are the importer page's to keep (its IndexedDB, else the host page's
// storage: src/resume.js, `keeper`); the worker asks it for them.
const kept = relayed(
  (action, key, record) =>
    new Promise((resolve, reject) => {
      const request = ++nextRelay;
      asking.set(request, (answer) => {
        asking.delete(request);
        if (answer.ok) resolve(answer.record ?? undefined);
        else reject(new Error(answer.error));
      });
      scope.postMessage({ keep: { request, action, key, record } });
    }),
);

/** @type {PyodideAPI} */
let pyodide;
/** @type {Record<string, (...args: unknown[]) => any>} */
let bridge;
/** @type {Promise<void> | null} */
let booting = null;
/**
 * How this engine started; `ms`: reading the kept snapshot, then starting Pyodide.
 * @typedef {{boot: "snapshot" | "fresh", reason?: string, ms: {snapshot: number, start: number}}} Booted
 */
/** @type {Booted | undefined} */
let booted;

/**
 * @typedef {object} BootConfig
 * @property {string} pyodide the runtime's folder URL
 * @property {string} lock the pyodide-lock.json URL
 * @property {string[]} packages the wheels installed at boot (the others load on demand)
 * @property {string} build the asset build id: a snapshot of another build is never restored
 */

/**
 * Start the engine: Pyodide with the boot wheels installed and pipeline.bridge imported.
 * From this build's memory snapshot if the browser keeps one; else from scratch, and then
 * the snapshot is made for the next page load. A snapshot that cannot be used is dropped,
 * and the engine starts from scratch (the console says why).
 * @param {BootConfig} config
 * @returns {Promise<Booted>}
 */
async function boot(config) {
  const t0 = performance.now();
  // Marks of the start's phases, for a profiler or the bench (performance.getEntriesByType).
  const wheels = fetchWheels(config.lock, config.packages).finally(() => performance.mark("loadbay:wheels-fetched"));
  /** @type {import("./src/snapshot.js").Found} */
  const found = await findSnapshot(config.build).catch((/** @type {Error} */ e) => ({ reason: e.message, seen: null, denied: true }));
  const t1 = performance.mark("loadbay:snapshot-read").startTime;
  if (found.bytes) {
    try {
      await start(config, wheels, found.bytes);
      ready();
      return { boot: "snapshot", ms: { snapshot: t1 - t0, start: performance.now() - t1 } };
    } catch (error) {
      console.warn("loadbay worker: the engine's snapshot did not restore, starting afresh:", error);
      found.reason = `the kept snapshot did not restore: ${/** @type {Error} */ (error).message}`;
    }
  }
  await start(config, wheels, null, !found.denied);
  const snapshot = found.denied ? null : snapshotOf(pyodide);
  ready();
  if (snapshot) {
    keepSnapshot(config.build, snapshot, found.seen).catch((/** @type {Error} */ e) =>
      console.warn("loadbay worker: the engine's snapshot was not kept:", e.message),
    );
  }
  return { boot: "fresh", reason: found.reason, ms: { snapshot: t1 - t0, start: performance.now() - t1 } };
}

/**
 * The engine's memory as a snapshot (null: the console says why it was not made).
 * @param {PyodideAPI} engine started with `_makeSnapshot`
 */
function snapshotOf(engine) {
  const installed = { ...engine.loadedPackages };
  try {
    // The packages Pyodide found installed are JavaScript state a snapshot cannot hold.
    for (const name in installed) delete engine.loadedPackages[name];
    return /** @type {Uint8Array<ArrayBuffer>} */ (/** @type {any} */ (engine).makeMemorySnapshot());
  } catch (error) {
    console.warn("loadbay worker: no snapshot of the engine was made:", error);
    return null;
  } finally {
    Object.assign(engine.loadedPackages, installed);
  }
}

/**
 * @param {BootConfig} config
 * @param {Promise<import("./src/wheels.js").WheelFile[]>} wheels
 * @param {Uint8Array | null} snapshot to restore
 * @param {boolean} [snapshotting] to make one once started
 */
async function start(config, wheels, snapshot, snapshotting = false) {
  /** @type {unknown} */
  let failed = null;
  const memory = snapshot ? snapshot.length - new Uint32Array(snapshot.buffer, snapshot.byteOffset, 2)[1] : 0;
  const emscripten = (await import(`${config.pyodide}pyodide.asm.mjs`)).default;
  const started = await loadPyodide({
    indexURL: config.pyodide,
    lockFileURL: config.lock,
    // The wheels are installed by our own step before Python starts (src/wheels.js).
    createPyodideModule: (/** @type {any} */ settings) => {
      settings.preRun.push(installer(wheels, memory, (error) => (failed = error)));
      return emscripten(settings);
    },
    ...(snapshot ? { _loadSnapshot: snapshot } : { _makeSnapshot: snapshotting }),
  });
  performance.mark("loadbay:pyodide-started");
  if (failed) throw failed;
  // Pyodide keeps its options: the snapshot's bytes are not needed once in memory.
  /** @type {any} */ (started)._api.config._loadSnapshot = undefined;
  if (!snapshot) started.runPython("import pipeline.bridge");
  pyodide = started;
}

function ready() {
  bridge = pyodide.pyimport("pipeline.bridge");
  pyodide.FS.mkdirTree("/uploads");
}

/**
 * A bridge function: JSON strings in, {"ok", "value" | "error"} out.
 * @param {string} name
 * @param {...unknown} args
 */
function call(name, ...args) {
  const answer = JSON.parse(bridge[name](...args));
  if (!answer.ok) throw new UserError(answer.error);
  return answer.value;
}

/**
 * What enough users of this template confirmed before for these headers ({label: field}).
 * @param {{publishableKey: string, templateId: string}} context
 * @param {string[]} headers
 */
async function recall(context, headers) {
  const answer = await api(`/api/v1/templates/${context.templateId}/mappings/recall`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ publishableKey: context.publishableKey, headers }),
  });
  return answer.mapping;
}

/**
 * The open file as the engine described it. Its headers leave the browser (to recall) only
 * once the user has confirmed the header row: for a file without one, the engine's proposed
 * header row is the first row of data, cell values.
 * @type {Described | null}
 */
let opened = null;
/** The File the open file was read from: its fingerprint is what resuming checks. @type {File | null} */
let openedFile = null;

/**
 * @typedef {object} OpenRequest
 * @property {File} file
 * @property {Record<string, unknown>} template
 * @property {{publishableKey: string, templateId: string}} context
 * @property {import("./src/types.js").OpenOptions} options
 * @property {number} maxBytes the page's limit, which the engine enforces too
 * @property {boolean} [headerConfirmed] the user chose the header row: recall at once
 */

/**
 * Read the file and propose a mapping from its headers alone; nothing is sent anywhere.
 * @param {OpenRequest} request
 * @param {Progress} progress
 * @returns {Promise<Described>}
 */
async function open({ file, template, context, options, maxBytes, headerConfirmed }, progress) {
  opened = null; // a failed open leaves no headers to send
  openedFile = null;
  opened = await openFile(file, template, openOptions(options || {}, maxBytes), progress);
  openedFile = file;
  return headerConfirmed ? propose(context) : opened;
}

/**
 * The user confirmed the header row: ask the server what users confirmed before for these
 * headers (the engine's, as it read them), and let the engine propose it.
 * @param {{publishableKey: string, templateId: string}} context
 * @returns {Promise<Described>}
 */
async function propose(context) {
  if (!opened) throw new UserError(t("error.noFile"));
  let remembered = null;
  try {
    remembered = await recall(context, opened.headers);
  } catch (error) {
    console.warn("loadbay worker: remembered mappings unavailable:", /** @type {Error} */ (error).message);
  }
  return remembered ? call("use_remembered", JSON.stringify(remembered)) : opened;
}

/** @typedef {(phase: string, done: number, total: number) => void} Progress */

/**
 * The File is mounted, not copied: WORKERFS reads slices of it on demand, so the
 * file's bytes are never held whole in JavaScript or in Pyodide's memory.
 * @param {File} file
 * @param {Record<string, unknown>} template
 * @param {Record<string, unknown>} options
 * @param {Progress} progress
 * @returns {Promise<Described>}
 */
async function openFile(file, template, options, progress) {
  const path = await mount(file, template);
  return call("open_file", path, file.name, JSON.stringify(template), JSON.stringify(options), progress);
}

/**
 * Mount the File (every engine of the page mounts the same File: nothing is copied) and load
 * the packages reading it with this template needs; its path in this engine.
 * @param {File} file
 * @param {Record<string, unknown>} template
 */
async function mount(file, template) {
  try {
    pyodide.FS.unmount("/uploads");
  } catch {
    // nothing mounted yet
  }
  pyodide.FS.mount(pyodide.FS.filesystems.WORKERFS, { files: [file] }, "/uploads");
  const path = `/uploads/${file.name}`;
  // Spreadsheet and phone-number packages are loaded (from our lock) only when needed.
  /** @type {string[]} */
  const needed = call("packages_for", path, file.name, JSON.stringify(template));
  if (needed.length) {
    /** @type {string[]} */
    const failed = [];
    await pyodide.loadPackage(needed, { checkIntegrity: true, errorCallback: (m) => failed.push(m) });
    if (failed.length) {
      console.error("loadbay worker:", failed.join("\n"));
      throw new UserError(t("error.packages", { packages: needed.join(", ") }));
    }
  }
  return path;
}

// -- parallel engines (browser/src/parallel.js routes, pipeline.chunking reads) -----------

/**
 * The primary engine: mount the file, and say how to cut it for `parts` engines (null: one).
 * @param {OpenRequest & {parts: number}} request
 */
async function plan({ file, template, options, maxBytes, parts }) {
  opened = null;
  openedFile = null;
  await mount(file, template);
  return call("plan_parts", `/uploads/${file.name}`, file.name, JSON.stringify(openOptions(options || {}, maxBytes)), parts);
}

/**
 * Read one byte range of the file; a helper engine (`file` given) mounts it first and sends
 * back its rows, blank rows and row errors. Its cells stay here until it has validated
 * them (`validate_part`).
 * @param {{file?: File, template: Record<string, unknown>, name: string, head: string, start: number, end: number, last: boolean}} request
 * @returns {Promise<{rows: number, verified: boolean, slow: boolean, meta?: Uint8Array}>}
 */
async function readPart({ file, template, name, head, start, end, last }) {
  const path = file ? await mount(file, template) : `/uploads/${name}`;
  const t0 = performance.now();
  const read = call("read_part_at", path, head, start, end, last);
  const read_ms = performance.now() - t0;
  if (!file) return { ...read, read_ms };
  return { ...read, meta: bytes(bridge.part_meta()), read_ms, wasm_bytes: wasmBytes() };
}

/**
 * A helper engine: the errors of its part for the mapping, then its cells, as the pieces
 * of an Arrow IPC stream, each copied out of the engine as it is written (the whole stream
 * is never held in the engine's memory, which never shrinks); buffers handed over.
 * @param {{template: Record<string, unknown>, mapping: string, firstRow: number, rows: number}} request
 */
function validatePart({ template, mapping, firstRow, rows }) {
  const t0 = performance.now();
  const errors = bytes(bridge.validate_part_at(JSON.stringify(template), mapping, firstRow, rows));
  const t1 = performance.now();
  const wasm_bytes = wasmBytes();
  /** @type {Uint8Array[]} */
  const cells = [];
  bridge.send_cells((/** @type {any} */ piece) => cells.push(copied(piece)));
  return { errors, cells, validate_ms: t1 - t0, encode_ms: performance.now() - t1, wasm_bytes };
}

/**
 * A copy of the bytes a Python buffer holds (Pyodide ends the proxy after the call).
 * @param {any} proxy
 */
function copied(proxy) {
  const buffer = proxy.getBuffer("u8");
  try {
    return /** @type {Uint8Array} */ (buffer.data.slice());
  } finally {
    buffer.release();
  }
}

/**
 * `read(n)` over the pieces of a stream: at most n bytes of the piece at hand, empty at the
 * end. A piece read to its end is let go at once (its buffer detached), not at the next
 * garbage collection: the primary decodes a part while holding the file's other cells.
 * @param {Uint8Array[]} pieces
 */
function reader(pieces) {
  let k = 0;
  let at = 0;
  return (/** @type {number} */ n) => {
    while (k < pieces.length && at >= pieces[k].length) {
      // ArrayBuffer.prototype.transfer (ES2024) frees the bytes now
      /** @type {any} */ (pieces[k].buffer).transfer?.(0);
      k += 1;
      at = 0;
    }
    if (k === pieces.length) return new Uint8Array(0);
    const piece = pieces[k].subarray(at, at + n);
    at += piece.length;
    return piece;
  };
}

/**
 * The primary engine: its part and the helpers' joined into the open file (their cells
 * come with their errors: `finish`).
 * @param {OpenRequest & {plan: string, parts: {rows: number, meta: Uint8Array}[]}} request
 */
async function join({ file, template, options, maxBytes, context, headerConfirmed, plan, parts }) {
  const t0 = performance.now();
  for (const part of parts) bridge.add_part(part.rows, part.meta);
  const path = `/uploads/${file.name}`;
  const opts = JSON.stringify(openOptions(options || {}, maxBytes));
  /** @type {{described: Described, starts: number[], rows: number}} */
  const joined = call("open_parts", path, file.name, JSON.stringify(template), opts, plan);
  const steps = { join_ms: performance.now() - t0, wasm_bytes: wasmBytes() };
  opened = joined.described;
  openedFile = file;
  return { ...joined, steps, described: headerConfirmed ? await propose(context) : opened };
}

/**
 * The primary engine: the review from its errors and the helpers' errors and cells.
 * @param {{errors: Uint8Array[], cells: Uint8Array[][]}} request
 */
function finish({ errors, cells }) {
  const t0 = performance.now();
  const summary = call("finish_parts", errors, cells.map(reader));
  return { summary, finish_ms: performance.now() - t0, wasm_bytes: wasmBytes() };
}

/** The engine's wasm memory in bytes (it only grows), for the bench. */
function wasmBytes() {
  const mod = /** @type {any} */ (pyodide)._module;
  return mod?.HEAPU8 ? mod.HEAPU8.buffer.byteLength : null;
}

/**
 * A Python bytes proxy into JavaScript bytes (the proxy is destroyed).
 * @param {any} proxy
 * @returns {Uint8Array}
 */
function bytes(proxy) {
  try {
    return /** @type {Uint8Array} */ (proxy.toJs());
  } finally {
    proxy.destroy();
  }
}

/**
 * @typedef {object} ResumeRequest
 * @property {File} file
 * @property {Record<string, unknown>} template
 * @property {{publishableKey: string, templateId: string}} context
 * @property {number} maxBytes
 */

/**
 * Open `file` as the interrupted upload kept for this importer read it, with its mapping
 * and edits, if it is the same file (by fingerprint); null if there is none or it is not.
 * @param {ResumeRequest} request
 * @param {Progress} progress
 */
async function resume({ file, template, context, maxBytes }, progress) {
  const saved = await kept.find(uploadKey(context.publishableKey, context.templateId));
  if (!saved || !sameFile(saved.fingerprint, await fingerprint(file))) return null;
  opened = null;
  openedFile = null;
  opened = await openFile(file, template, openOptions(saved.options || {}, maxBytes), progress);
  openedFile = file;
  const summary = call("restore_review", JSON.stringify(saved.review));
  const { options, headerConfirmed, confirmed } = saved;
  return { described: opened, summary, options, headerConfirmed, confirmed };
}

/**
 * @typedef {import("./src/upload.js").UploadRequest & {
 *   options: import("./src/types.js").OpenOptions, headerConfirmed?: boolean, resumable?: boolean
 * }} SendRequest
 */

/**
 * Upload the reviewed rows. The import is kept in IndexedDB before its first batch leaves,
 * so a reload can send the rest; `resumable`: carry on the kept import of this same file.
 * @param {SendRequest} request
 * @param {Progress} progress
 */
async function send(request, progress) {
  const key = uploadKey(request.publishableKey, request.templateId);
  const file = openedFile;
  const print = file ? await fingerprint(file) : null;
  /** @type {import("./src/upload.js").UploadRequest} */
  const what = { ...request, resume: undefined };
  if (request.resumable && print) {
    const saved = await kept.find(key).catch(() => undefined);
    if (saved && sameFile(saved.fingerprint, print)) what.resume = { importId: saved.importId, token: saved.token };
  }
  /** @param {string} importId @param {string} token */
  const created = async (importId, token) => {
    if (!print || !file) return;
    const review = call("saved_review");
    const { options, headerConfirmed, mapping: confirmed } = request;
    const saved = { key, importId, token, fileName: file.name, fingerprint: print, options, headerConfirmed, confirmed, review, savedAt: Date.now() };
    await kept.save(saved).catch((/** @type {Error} */ e) => console.warn("loadbay worker: upload not kept for resuming:", e.message));
  };
  const uploaded = await upload(what, { plan: () => call("batch_plan"), encode: encodeBatch, progress, created });
  await kept.forget(key).catch(() => {});
  return uploaded;
}

// Bridge calls the page may make: JSON in, JSON out.
const CALLS = new Set([
  "set_mapping",
  "set_view",
  "window",
  "edit",
  "replace",
  "fix_column",
  "delete_rows",
  "delete_rows_with_errors",
  "undo",
  "questions",
  "map_values",
  "convert_dates",
  "count_replace",
  "count_fix",
  "error_at",
  "rejected_csv",
  "set_language",
  "error_counts",
]);

/**
 * Whether an error means this engine cannot go on (a Rust panic, a wasm trap, memory
 * exhausted, Pyodide's fatal state): the page then replaces the worker.
 * @param {unknown} error
 */
function fatal(error) {
  if (error instanceof WebAssembly.RuntimeError || error instanceof RangeError) return true;
  const text = String(error && /** @type {Error} */ (error).message);
  return /fatally failed|unreachable|memory access out of bounds|out of memory|Aborted\(/i.test(text);
}

/** @param {number} offset @param {number} length */
function encodeBatch(offset, length) {
  return bytes(bridge.encode_batch(offset, length));
}

scope.onmessage = async (event) => {
  if (event.data.kept) {
    asking.get(event.data.kept)?.(event.data);
    return;
  }
  const { id, type, payload } = event.data;
  /** @param {object} message @param {Transferable[]} [transfer] */
  const reply = (message, transfer = []) => scope.postMessage({ id, ...message }, transfer);
  // Python calls this between batches and fields; the page draws it while we work.
  /** @type {Progress} */
  const progress = (phase, done, total) => scope.postMessage({ id, progress: { phase, done, total } });
  try {
    let value;
    if (type === "boot") {
      booting = booting || boot(payload).then((how) => void (booted = how));
      await booting;
      value = booted;
    } else {
      await booting;
      if (type === "open") value = await open(payload, progress);
      else if (type === "recall") value = await propose(payload.context);
      else if (type === "call" && payload.name === "set_mapping")
        value = call("set_mapping", ...payload.args, progress);
      else if (type === "call" && CALLS.has(payload.name)) value = call(payload.name, ...payload.args);
      else if (type === "resume") value = await resume(payload, progress);
      else if (type === "upload") value = await send(payload, progress);
      else if (type === "plan") value = await plan(payload);
      else if (type === "part") value = await readPart(payload);
      else if (type === "join") value = await join(payload);
      else if (type === "call" && payload.name === "validate_own") value = call("validate_own", ...payload.args);
      else if (type === "validate_part") value = validatePart(payload);
      else if (type === "finish") value = finish(payload);
      else if (type === "memory") value = { wasm_bytes: wasmBytes() };
      else throw new Error(`unknown message ${type}`);
    }
    // A part's cells, meta and errors go to the page with their buffers handed over.
    const cells = Array.isArray(value?.cells) ? value.cells : [];
    const buffers = [...cells, value?.meta, value?.errors];
    reply({ ok: true, value }, buffers.filter((b) => b instanceof Uint8Array).map((b) => b.buffer));
  } catch (error) {
    if (error instanceof UserError) {
      reply({ ok: false, error: error.message });
    } else if (fatal(error)) {
      console.error("loadbay worker: the engine failed:", error);
      reply({ ok: false, fatal: true, error: String(/** @type {Error} */ (error).message || error) });
    } else {
      console.error("loadbay worker:", error);
      reply({ ok: false, error: t("error.internal") });
    }
  }
};
