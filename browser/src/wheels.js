// The engine's boot wheels, installed without Pyodide's package loader: their files are
// written to site-packages and their shared libraries linked before Python starts, where a
// memory snapshot (src/snapshot.js) finds them again at the same addresses.

/** A file of a wheel: its path inside site-packages and its bytes. @typedef {{path: string, bytes: Uint8Array<ArrayBuffer>}} WheelFile */

/**
 * A lock's hex SHA-256 as a fetch `integrity` value: the browser checks the bytes.
 * @param {string} hex
 */
function integrity(hex) {
  const bytes = hex.match(/../g)?.map((pair) => parseInt(pair, 16)) ?? [];
  return `sha256-${btoa(String.fromCharCode(...bytes))}`;
}

/**
 * The files of the lock's wheels `names`, each fetched with the lock's hash checked.
 * @param {string} lockURL
 * @param {string[]} names
 * @returns {Promise<WheelFile[]>}
 */
export async function fetchWheels(lockURL, names) {
  const lock = await (await fetch(lockURL)).json();
  const wheels = await Promise.all(
    names.map(async (name) => {
      const entry = lock.packages[name];
      if (!entry) throw new Error(`${name} is not in ${lockURL}`);
      const url = new URL(entry.file_name, lockURL);
      const response = await fetch(url, { integrity: integrity(entry.sha256) });
      if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
      return unzip(new Uint8Array(await response.arrayBuffer()));
    }),
  );
  return wheels.flat();
}

/**
 * The files of a zip archive (a wheel: stored or deflated entries, no zip64), in its order.
 * The platform inflates (DecompressionStream); this only walks the central directory.
 * @param {Uint8Array<ArrayBuffer>} zip
 * @returns {Promise<WheelFile[]>}
 */
export async function unzip(zip) {
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  let end = zip.length - 22;
  while (end >= 0 && view.getUint32(end, true) !== 0x06054b50) end--;
  if (end < 0) throw new Error("not a zip archive: no end of central directory");
  const count = view.getUint16(end + 10, true);
  let at = view.getUint32(end + 16, true);
  const names = new TextDecoder();
  /** @type {Promise<WheelFile>[]} */
  const files = [];
  for (let i = 0; i < count; i++) {
    if (view.getUint32(at, true) !== 0x02014b50) throw new Error(`zip central directory damaged at entry ${i}`);
    const method = view.getUint16(at + 10, true);
    const size = view.getUint32(at + 20, true);
    const nameLength = view.getUint16(at + 28, true);
    const local = view.getUint32(at + 42, true);
    const path = names.decode(zip.subarray(at + 46, at + 46 + nameLength));
    at += 46 + nameLength + view.getUint16(at + 30, true) + view.getUint16(at + 32, true);
    if (path.endsWith("/")) continue;
    const start = local + 30 + view.getUint16(local + 26, true) + view.getUint16(local + 28, true);
    const raw = zip.subarray(start, start + size);
    if (method === 0) files.push(Promise.resolve({ path, bytes: raw }));
    else if (method === 8) files.push(inflate(raw).then((bytes) => ({ path, bytes })));
    else throw new Error(`${path}: zip compression method ${method} is not supported`);
  }
  return Promise.all(files);
}

/** @param {Uint8Array<ArrayBuffer>} raw */
async function inflate(raw) {
  const stream = new Blob([raw]).stream().pipeThrough(new DecompressionStream("deflate-raw"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/**
 * A preRun step of Pyodide's Emscripten module: write the wheels' files under site-packages
 * and link each shared library, in the files' order (the lock's names in the page's order,
 * then each archive's: the same for every start of a build). Before the runtime starts, a library's memory
 * is taken from the top of the initial heap, so the same wheels land at the same addresses
 * on every start: a snapshot of memory made after them is valid for a start that links them
 * again (Emscripten's preload plugin does the same for .so files, `preloadedWasm`).
 * `memoryBytes`: grow the memory to hold the snapshot about to be restored.
 * @param {Promise<WheelFile[]>} wheels
 * @param {number} memoryBytes
 * @param {(error: unknown) => void} failed
 * @returns {(module: any) => void}
 */
export function installer(wheels, memoryBytes, failed) {
  return (module) => {
    module.addRunDependency("loadbay-wheels");
    install(module, wheels, memoryBytes)
      .catch(failed)
      .finally(() => module.removeRunDependency("loadbay-wheels"));
  };
}

/**
 * @param {any} module
 * @param {Promise<WheelFile[]>} wheels
 * @param {number} memoryBytes
 */
async function install(module, wheels, memoryBytes) {
  const site = module.API.sitePackages;
  const files = await wheels;
  // Compiled side by side; linked one after the other, always in the same order.
  const libraries = files
    .filter((f) => f.path.endsWith(".so"))
    .map((f) => ({ path: `${site}/${f.path}`, compiled: WebAssembly.compile(f.bytes) }));
  for (const { path, bytes } of files) {
    const full = `${site}/${path}`;
    module.FS.mkdirTree(full.slice(0, full.lastIndexOf("/")));
    module.FS.writeFile(full, bytes);
  }
  for (const { path, compiled } of libraries) {
    const flags = { loadAsync: true, nodelete: true, allowUndefined: true };
    module.preloadedWasm[path] = await module.loadWebAssemblyModule(await compiled, flags, path, {});
  }
  performance.mark("loadbay:wheels-linked");
  if (module.HEAP8.length < memoryBytes && !module._emscripten_resize_heap(memoryBytes)) {
    throw new Error(`the engine's memory cannot grow to ${memoryBytes} bytes`);
  }
}
