// Bench page: holds the <input type=file> the harness fills (a real File, as a user's) and
// hands that File to one of two workers. Nothing is parsed on this thread.
const config = await (await fetch("/bench/config.json")).json();
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
    phases: absolute(config.phases),
  });
}

window.bench = {
  async bootLoadbay() {
    loadbay = loadbay || spawn("/bench/bench_worker.mjs", { type: "module" });
    return bootEngine(loadbay);
  },
  async bootSecondLoadbay() {
    // A second engine in the same tab, as two-worker parsing would need (bench floor only).
    return bootEngine(spawn("/bench/bench_worker.mjs", { type: "module" }));
  },
  async readLoadbay() {
    return loadbay("read", { file: picked() });
  },
  async runLoadbay(template) {
    const value = await loadbay("run", { file: picked(), template });
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
