// The importer's Web Worker: Pyodide runs loadbay's `pipeline` package here, off the UI
// thread. All file logic is Python; this file only moves messages, files and bytes.
import { loadPyodide } from "../pyodide/pyodide.mjs";

let pyodide = null;
let bridge = null;
let booting = null;

async function boot(config) {
  pyodide = await loadPyodide({
    indexURL: config.pyodide,
    lockFileURL: config.lock,
    packages: config.packages,
  });
  bridge = pyodide.pyimport("pipeline.bridge");
  pyodide.FS.mkdirTree("/uploads");
}

function call(name, ...args) {
  const answer = JSON.parse(bridge[name](...args));
  if (!answer.ok) throw new UserError(answer.error);
  return answer.value;
}

class UserError extends Error {}

// The File is mounted, not copied: WORKERFS reads slices of it on demand, so the
// file's bytes are never held whole in JavaScript or in Pyodide's memory.
// What users of this template confirmed before for the same headers, proposed first.
async function recall(context, headers) {
  const answer = await api(`/api/v1/templates/${context.templateId}/mappings/recall`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ publishableKey: context.publishableKey, headers }),
  });
  return answer.mapping;
}

async function openAndPropose({ file, template, context, options }, progress) {
  const described = await openFile(file, template, options || {}, progress);
  let remembered = null;
  try {
    remembered = await recall(context, described.headers);
  } catch (error) {
    console.warn("loadbay worker: remembered mappings unavailable:", error.message);
  }
  return remembered ? call("use_remembered", JSON.stringify(remembered)) : described;
}

async function openFile(file, template, options, progress) {
  try {
    pyodide.FS.unmount("/uploads");
  } catch {
    // nothing mounted yet
  }
  pyodide.FS.mount(pyodide.FS.filesystems.WORKERFS, { files: [file] }, "/uploads");
  const path = `/uploads/${file.name}`;
  // Spreadsheet and phone-number packages are loaded (from our lock) only when needed.
  const needed = call("packages_for", path, file.name, JSON.stringify(template));
  if (needed.length) {
    const failed = [];
    await pyodide.loadPackage(needed, { checkIntegrity: true, errorCallback: (m) => failed.push(m) });
    if (failed.length) {
      console.error("loadbay worker:", failed.join("\n"));
      throw new UserError(`Part of the importer (${needed.join(", ")}) could not be loaded. Check your connection and pick the file again.`);
    }
  }
  return call("open_file", path, file.name, JSON.stringify(template), JSON.stringify(options), progress);
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
]);

async function api(path, options, token) {
  const headers = { ...(options.headers || {}) };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(path, { ...options, headers, credentials: "omit" });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const message = (body.error && body.error.message) || `The server answered ${response.status}.`;
    throw new UserError(message);
  }
  return body;
}

// The IPC stream is written uncompressed in Pyodide (see pipeline/batches.py); the
// browser's native gzip compresses the request body instead.
async function gzip(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function upload({ publishableKey, templateId, fileName, rows, headers, mapping }, progress) {
  const created = await api("/api/v1/imports", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ publishableKey, templateId, fileName }),
  });
  const plan = call("batch_plan");
  for (let i = 0; i < plan.length; i++) {
    const { offset, length, first_row: firstRow } = plan[i];
    const proxy = bridge.encode_batch(offset, length);
    let bytes;
    try {
      bytes = proxy.toJs();
    } finally {
      proxy.destroy();
    }
    await api(
      `/api/v1/imports/${created.id}/batches/${i}?first_row=${firstRow}`,
      {
        method: "PUT",
        headers: {
          "content-type": "application/vnd.apache.arrow.stream",
          "content-encoding": "gzip",
        },
        body: await gzip(bytes),
      },
      created.uploadToken,
    );
    progress({ done: i + 1, total: plan.length });
  }
  const state = await api(
    `/api/v1/imports/${created.id}/submit`,
    {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ batches: plan.length, rows }),
    },
    created.uploadToken,
  );
  if (mapping) {
    // Remember the confirmed mapping for the next file with these headers.
    await api(`/api/v1/templates/${templateId}/mappings`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ publishableKey, headers, mapping, importId: created.id }),
    }, created.uploadToken).catch((error) => console.warn("loadbay worker: mapping not remembered:", error.message));
  }
  return { importId: created.id, token: created.uploadToken, state };
}

self.onmessage = async (event) => {
  const { id, type, payload } = event.data;
  const reply = (message) => self.postMessage({ id, ...message });
  // Python calls this between batches and fields; the page draws it while we work.
  const progress = (phase, done, total) => self.postMessage({ id, progress: { phase, done, total } });
  try {
    let value;
    if (type === "boot") {
      booting = booting || boot(payload);
      await booting;
    } else {
      await booting;
      if (type === "open") value = await openAndPropose(payload, progress);
      else if (type === "call" && payload.name === "set_mapping")
        value = call("set_mapping", ...payload.args, progress);
      else if (type === "call" && CALLS.has(payload.name)) value = call(payload.name, ...payload.args);
      else if (type === "upload")
        value = await upload(payload, ({ done, total }) => progress("upload", done, total));
      else throw new Error(`unknown message ${type}`);
    }
    reply({ ok: true, value });
  } catch (error) {
    if (error instanceof UserError) {
      reply({ ok: false, error: error.message });
    } else {
      console.error("loadbay worker:", error);
      reply({
        ok: false,
        error: "The importer hit an internal problem; nothing was sent. Reload and try again.",
      });
    }
  }
};
