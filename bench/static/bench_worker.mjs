// Bench worker for the floor only: Pyodide booted as browser/worker.mjs boots it, reading
// the picked File through WORKERFS without parsing it (what no reader can beat). loadbay's
// own runs use the real worker module through the real coordinator (bench_page.mjs).
let pyodide = null;
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
  return { boot_ms: performance.now() - started, wasm_bytes: wasmBytes() };
}

self.onmessage = async (event) => {
  const { id, type, payload } = event.data;
  try {
    let value;
    if (type === "boot") {
      booting = booting || boot(payload);
      value = await booting;
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
