// Bench worker, loadbay side: boots Pyodide exactly as browser/worker.mjs does (same
// loadPyodide options, from the same built assets), copies the picked File into Pyodide's
// FS the same way, then runs bench/phases.py, which times the real `pipeline` calls.
let pyodide = null;
let phases = null;
let booting = null;

function wasmBytes() {
  const mod = pyodide && pyodide._module;
  if (!mod) return null;
  if (mod.HEAPU8) return mod.HEAPU8.buffer.byteLength;
  if (mod.wasmMemory) return mod.wasmMemory.buffer.byteLength;
  return null;
}

async function boot(config) {
  const started = performance.now();
  const { loadPyodide } = await import(config.pyodideModule);
  pyodide = await loadPyodide({
    indexURL: config.pyodide,
    lockFileURL: config.lock,
    packages: config.packages,
  });
  pyodide.FS.mkdirTree("/uploads");
  pyodide.FS.mkdirTree("/bench");
  const source = await (await fetch(config.phases)).text();
  pyodide.FS.writeFile("/bench/loadbay_bench_phases.py", source);
  pyodide.runPython("import sys; sys.path.insert(0, '/bench')");
  phases = pyodide.pyimport("loadbay_bench_phases");
  return { boot_ms: performance.now() - started, wasm_bytes: wasmBytes() };
}

async function run(file, templateJson) {
  const t0 = performance.now();
  // As browser/worker.mjs openFile: the File mounted with WORKERFS, read in slices.
  pyodide.FS.mkdirTree("/uploads");
  pyodide.FS.mount(pyodide.FS.filesystems.WORKERFS, { files: [file] }, "/uploads");
  const path = `/uploads/${file.name}`;
  let result;
  let t1;
  try {
    // As browser/worker.mjs openFile: packages this file needs are loaded on demand.
    const needed = JSON.parse(pyodide.pyimport("pipeline.bridge").packages_for(path, file.name, templateJson));
    if (needed.value.length) await pyodide.loadPackage(needed.value);
    t1 = performance.now();
    result = JSON.parse(phases.run(path, file.name, templateJson));
  } finally {
    pyodide.FS.unmount("/uploads");
  }
  result.copy_ms = t1 - t0;
  result.wasm_bytes = wasmBytes();
  return result;
}

self.onmessage = async (event) => {
  const { id, type, payload } = event.data;
  try {
    let value;
    if (type === "boot") {
      booting = booting || boot(payload);
      value = await booting;
    } else if (type === "run") {
      await booting;
      value = await run(payload.file, payload.template);
    } else if (type === "read") {
      // The floor: the File read through WORKERFS as the readers read it, nothing parsed.
      await booting;
      const t0 = performance.now();
      pyodide.FS.mkdirTree("/uploads");
      pyodide.FS.mount(pyodide.FS.filesystems.WORKERFS, { files: [payload.file] }, "/uploads");
      try {
        pyodide.runPython(`
import io, os
with open("/uploads/" + os.listdir("/uploads")[0], "rb", buffering=0) as raw:
    with io.BufferedReader(raw, 4 << 20) as fh:
        while fh.read(4 << 20):
            pass
`);
      } finally {
        pyodide.FS.unmount("/uploads");
      }
      value = { read_ms: performance.now() - t0, wasm_bytes: wasmBytes() };
    } else if (type === "memory") {
      value = { wasm_bytes: wasmBytes() };
    } else {
      throw new Error(`unknown message ${type}`);
    }
    self.postMessage({ id, ok: true, value });
  } catch (error) {
    self.postMessage({ id, ok: false, error: String((error && error.stack) || error) });
  }
};
