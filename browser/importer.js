// The importer page's UI thread: thin DOM code. Parsing, matching and validation live
// in Python (`pipeline`) inside the worker; this file renders and forwards.
const config = JSON.parse(document.getElementById("loadbay-config").textContent);
const template = config.template;
const app = document.getElementById("app");
const worker = new Worker(config.worker, { type: "module" });

let nextId = 0;
const pending = new Map();
worker.onmessage = (event) => {
  const { id, progress, ok, value, error } = event.data;
  const entry = pending.get(id);
  if (!entry) return;
  if (progress) return entry.onProgress && entry.onProgress(progress);
  pending.delete(id);
  ok ? entry.resolve(value) : entry.reject(new Error(error));
};
function ask(type, payload, onProgress) {
  const id = ++nextId;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject, onProgress });
    worker.postMessage({ id, type, payload });
  });
}

const absolute = (path) => new URL(path, window.location.href).href;
const booted = ask("boot", {
  pyodide: absolute(config.pyodide),
  lock: absolute(config.lock),
  packages: config.packages,
});

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

function render(...nodes) {
  app.replaceChildren(el("h1", { text: `Import ${template.title || template.name}` }), ...nodes);
}

function notify(message) {
  window.parent.postMessage({ source: "loadbay", ...message }, config.parentOrigin);
}

function showError(message, retry) {
  render(
    el("p", { id: "error", class: "error", role: "alert", text: message }),
    el("button", { id: "restart", onclick: retry || pickFile, text: "Choose another file" }),
  );
}

function fieldLabel(name) {
  const field = template.fields.find((f) => f.name === name);
  return (field && field.title) || name;
}

function pickFile() {
  const status = el("p", { id: "engine-status", class: "muted", text: "Preparing the engine…" });
  booted.then(
    () => (status.textContent = "Ready."),
    (e) => (status.textContent = e.message),
  );
  const input = el("input", { id: "file-input", type: "file", accept: ".csv,.tsv,.txt,text/csv" });
  input.addEventListener("change", () => input.files[0] && openFile(input.files[0]));
  const fields = template.fields.map((f) =>
    el("li", { text: `${f.title || f.name}${f.constraints && f.constraints.required ? " (required)" : ""}` }),
  );
  render(
    el("p", { text: "Choose a CSV file. It is read in your browser; only the columns you map are sent." }),
    input,
    status,
    el("h2", { text: "Expected columns" }),
    el("ul", {}, ...fields),
  );
}

async function openFile(file) {
  render(el("p", { id: "busy", text: `Reading ${file.name}…` }));
  try {
    const described = await ask("open", { file, template });
    showMapping(file, described);
  } catch (error) {
    showError(error.message);
  }
}

function showMapping(file, described) {
  const selects = {};
  const rows = template.fields.map((field) => {
    const select = el("select", { "data-field": field.name, id: `map-${field.name}` });
    select.append(el("option", { value: "", text: "— not mapped —" }));
    described.headers.forEach((header, index) => {
      const option = el("option", { value: String(index), text: header });
      if (described.mapping[field.name] === index) option.selected = true;
      select.append(option);
    });
    selects[field.name] = select;
    const required = field.constraints && field.constraints.required;
    return el(
      "tr",
      {},
      el("td", { text: `${field.title || field.name}${required ? " *" : ""}` }),
      el("td", {}, select),
    );
  });
  const preview = el(
    "table",
    { class: "preview" },
    el("thead", {}, el("tr", {}, ...described.headers.map((h) => el("th", { text: h })))),
    el(
      "tbody",
      {},
      ...described.preview.map((row) =>
        el("tr", {}, ...row.map((cell) => el("td", { text: cell == null ? "" : cell }))),
      ),
    ),
  );
  const proceed = async () => {
    const mapping = {};
    for (const [name, select] of Object.entries(selects)) {
      if (select.value !== "") mapping[name] = Number(select.value);
    }
    render(el("p", { id: "busy", text: `Checking ${described.rows} rows…` }));
    try {
      const report = await ask("map", { mapping });
      showReview(file, described, report);
    } catch (error) {
      showError(error.message, () => showMapping(file, described));
    }
  };
  render(
    el("p", { text: `${described.file}: ${described.rows} rows. Match your columns to ours.` }),
    el("table", { class: "mapping" }, el("tbody", {}, ...rows)),
    el("button", { id: "map-continue", onclick: proceed, text: "Continue" }),
    el("h2", { text: "Your file" }),
    preview,
  );
}

function showReview(file, described, report) {
  if (report.error_count > 0) {
    const shown = report.errors.map((e) =>
      el(
        "tr",
        { class: "error-row" },
        el("td", { text: String(e.row) }),
        el("td", { text: fieldLabel(e.field) }),
        el("td", { text: e.message }),
      ),
    );
    render(
      el("p", {
        id: "summary",
        class: "error",
        text: `${report.error_count} problem(s) in ${report.rows} rows. Fix them in your file and upload it again.`,
      }),
      el(
        "table",
        { id: "errors" },
        el("thead", {}, el("tr", {}, el("th", { text: "Row" }), el("th", { text: "Column" }), el("th", { text: "Problem" }))),
        el("tbody", {}, ...shown),
      ),
      el("button", { id: "restart", onclick: pickFile, text: "Choose another file" }),
      el("button", { id: "back", onclick: () => showMapping(file, described), text: "Change mapping" }),
    );
    return;
  }
  render(
    el("p", { id: "summary", text: `All ${report.rows} rows are valid.` }),
    el("button", { id: "submit", onclick: () => submit(file, report), text: `Submit ${report.rows} rows` }),
    el("button", { id: "back", onclick: () => showMapping(file, described), text: "Change mapping" }),
  );
}

async function submit(file, report) {
  const bar = el("progress", { id: "upload-progress", max: "1", value: "0" });
  const status = el("p", { id: "upload-status", text: "Uploading…" });
  render(status, bar);
  try {
    const result = await ask(
      "upload",
      {
        publishableKey: config.publishableKey,
        templateId: config.templateId,
        fileName: file.name,
        rows: report.rows,
      },
      ({ done, total }) => {
        bar.max = String(total);
        bar.value = String(done);
        status.textContent = `Uploaded ${done} of ${total} batch(es)…`;
      },
    );
    status.textContent = "Delivering…";
    await watch(result.importId, result.token, report.rows, status);
  } catch (error) {
    showError(error.message);
  }
}

async function watch(importId, token, rows, status) {
  for (;;) {
    const response = await fetch(`/api/v1/imports/${importId}`, {
      headers: { authorization: `Bearer ${token}` },
      credentials: "omit",
    });
    const state = await response.json();
    if (!response.ok) throw new Error(state.error ? state.error.message : "Status unavailable.");
    if (["delivered", "complete", "failed"].includes(state.status)) {
      const text =
        state.status === "failed"
          ? `Your ${rows} rows were received, but delivery failed. The team has been told; nothing was lost.`
          : `Delivered ${rows} rows.`;
      render(el("p", { id: "done", "data-status": state.status, text }));
      notify({ type: "loadbay:complete", importId, rows, status: state.status });
      return;
    }
    status.textContent = `Delivering… (${state.deliveries.delivered} of ${state.batches} batch(es) delivered)`;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

pickFile();
