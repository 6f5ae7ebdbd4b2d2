// Bench page: holds the <input type=file> the harness fills (a real File, as a user's) and
// hands that File to the engines or to PapaParse/SheetJS. Nothing is parsed on this thread.
// loadbay runs as the importer runs it: the real coordinator (browser/src/parallel.js) and
// the real worker module (browser/worker.mjs), from the built assets.
import { ParallelEngine } from "/assets/app/src/parallel.js";
import { RestartingEngine } from "/assets/app/src/worker.js";

const config = await (await fetch("/bench/config.json")).json();
const WORKER = "/assets/app/worker.mjs";
const log = document.getElementById("log");
const input = document.getElementById("file");

function spawn(url, options) {
  const worker = new Worker(url, options);
  const pending = new Map();
  let next = 0;
  worker.onmessage = (event) => {
    const { id, ok, value, error } = event.data;
    const entry = pending.get(id);
    if (!entry) return;
    pending.delete(id);
    ok ? entry.resolve(value) : entry.reject(new Error(error));
  };
  worker.onerror = (event) => {
    for (const entry of pending.values()) entry.reject(new Error(event.message || "worker error"));
    pending.clear();
  };
  return (type, payload) =>
    new Promise((resolve, reject) => {
      const id = ++next;
      pending.set(id, { resolve, reject });
      worker.postMessage({ id, type, payload });
    });
}

let loadbay = null;
let engines = null;
let papa = null;
let sheetjs = null;
const absolute = (path) => new URL(path, window.location.href).href;
function picked() {
  const file = input.files[0];
  if (!file) throw new Error("no file picked");
  return file;
}

function bootEngine(worker) {
  return worker("boot", {
    pyodideModule: absolute(config.pyodideModule),
    pyodide: absolute(config.pyodide),
    lock: absolute(config.lock),
    packages: config.packages,
  });
}

/** `workers` engines as the importer starts them; resolved when every one is booted. */
async function bootEngines(workers) {
  const spawn = (name) => () => new Worker(WORKER, { type: "module", name });
  const primary = new RestartingEngine(spawn("loadbay-engine"), () => {});
  const engine = new ParallelEngine(primary, spawn("loadbay-helper"), workers);
  const started = performance.now();
  await engine.ask("boot", { pyodide: absolute(config.pyodide), lock: absolute(config.lock), packages: config.packages });
  while (engine.ready().length < workers - 1) await new Promise((resolve) => setTimeout(resolve, 20));
  engines = { engine, workers };
  return { boot_ms: performance.now() - started };
}

/** One-cell edits timed per load: enough for a median that a busy machine does not swing. */
const EDITS = 9;
/** Rows the review grid fetches to draw its view after a change (browser/src/ui/grid.js). */
const GRID_ROWS = 40;

/**
 * One-cell edits through the grid's path (the "edit" call, then the window the grid draws),
 * spread over the file so every engine's part is touched; alternately a bad and a good
 * value, each checked in the answer. Milliseconds: the summary back, and the cell shown.
 * @param {ParallelEngine} engine
 * @param {number} rows
 * @param {string} field an integer field
 */
async function timeEdits(engine, rows, field) {
  const answered = [];
  const shown = [];
  let checked = true;
  for (let k = 0; k < EDITS; k++) {
    const index = Math.min(rows - 1, Math.floor(((k + 0.5) / EDITS) * rows));
    const bad = k % 2 === 0;
    const t0 = performance.now();
    const summary = await engine.call("edit", [index, field, JSON.stringify(bad ? "not a number" : "42")]);
    const t1 = performance.now();
    const window = await engine.call("window", [index, GRID_ROWS]);
    const t2 = performance.now();
    answered.push(t1 - t0);
    shown.push(t2 - t0);
    const row = window[0];
    checked &&= summary.rows === rows && row.index === index && bad === Boolean(row.errors[field]);
  }
  const median = (/** @type {number[]} */ xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  return { edit_ms: median(answered), edit_shown_ms: median(shown), edits: { field, answered_ms: answered, shown_ms: shown, checked } };
}

window.bench = {
  bootEngines,
  async bootReader() {
    loadbay = loadbay || spawn("/bench/bench_worker.mjs", { type: "module" });
    return bootEngine(loadbay);
  },
  async readLoadbay() {
    // The floor: the File read through WORKERFS as the readers read it, nothing parsed.
    return loadbay("read", { file: picked() });
  },
  /**
   * Open the picked file, map it as proposed, validate: what the user waits for before the
   * review grid shows. `last`: also fetch the grid's last row (the big case); `edit`: then
   * time one-cell edits of this field (timeEdits).
   */
  async runLoadbay(template, last = false, edit = "") {
    const { engine, workers } = engines;
    const t0 = performance.now();
    const request = { file: picked(), template: JSON.parse(template), context: { publishableKey: "", templateId: "" }, options: {}, maxBytes: 4 * 1024 ** 3 };
    const described = await engine.ask("open", request);
    const t1 = performance.now();
    // Every proposed match, sure or not (the bench's headers are the template's own).
    const mapping = Object.fromEntries(described.matches.map((m) => [m.field, m.column]));
    const summary = await engine.call("set_mapping", [JSON.stringify(mapping)]);
    const t2 = performance.now();
    const counts = await engine.call("error_counts", []);
    const memory = await engine.primary.ask("memory", {});
    const edited = edit ? await timeEdits(engine, summary.rows, edit) : {};
    const value = {
      reader: "browser/src/parallel.js + browser/worker.mjs",
      workers,
      parts: engine.lastOpen === "parts" ? workers : 1,
      open_ms: t1 - t0,
      validate_ms: t2 - t1,
      total_ms: t2 - t0,
      rows: summary.rows,
      cols: described.headers.length,
      mapped: Object.keys(mapping).length,
      ...counts,
      wasm_bytes: memory.wasm_bytes,
      steps: engine.lastOpen === "parts" ? engine.timings : null,
      ...edited,
    };
    if (last) {
      const [row] = await engine.call("window", [summary.view_rows - 1, 1]);
      value.last_row = row ? row.row : null;
      value.first_data_row = described.first_data_row;
    }
    log.textContent += `loadbay ${JSON.stringify(value)}\n`;
    return value;
  },
  async runPapa(template) {
    papa = papa || spawn("/bench/papa_worker.js");
    const value = await papa("run", { file: picked(), template });
    log.textContent += `papaparse ${JSON.stringify(value)}\n`;
    return value;
  },
  async runSheetjs(template) {
    sheetjs = sheetjs || spawn("/bench/sheetjs_worker.js");
    const value = await sheetjs("run", { file: picked(), template });
    log.textContent += `sheetjs ${JSON.stringify(value)}\n`;
    return value;
  },
  pageHeap() {
    return performance.memory ? performance.memory.usedJSHeapSize : null;
  },
};
window.benchReady = true;
