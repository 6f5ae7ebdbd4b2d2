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
  app.replaceChildren(el("h1", { text: `Import ${template.title || template.name || "data"}` }), ...nodes);
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
  const input = el("input", {
    id: "file-input",
    type: "file",
    accept: ".csv,.tsv,.txt,.xlsx,.xlsm,.xlsb,.xls,.ods,.json,.ndjson,.jsonl",
  });
  input.addEventListener("change", () => input.files[0] && openFile(input.files[0]));
  const fields = template.fields.map((f) =>
    el("li", { text: `${f.title || f.name}${f.constraints && f.constraints.required ? " (required)" : ""}` }),
  );
  render(
    el("p", {
      text: "Choose a CSV, Excel, OpenDocument or JSON file. It is read in your browser; only the columns you map are sent.",
    }),
    input,
    status,
    el("h2", { text: "Expected columns" }),
    el("ul", {}, ...fields),
  );
}

function busy(text) {
  return [el("p", { id: "busy", text }), el("progress", { id: "busy-progress", class: "busy" })];
}

// Counts from the worker while it reads, checks or uploads.
function showProgress({ phase, done, total }) {
  const text = document.getElementById("busy");
  const bar = document.getElementById("busy-progress");
  if (!text || !bar) return;
  if (phase === "parse") {
    text.textContent = `Reading… ${done.toLocaleString("en")} rows so far`;
  } else if (phase === "validate") {
    text.textContent = `Checking… ${done} of ${total} columns`;
    bar.max = total;
    bar.value = done;
  }
}

function call(name, ...args) {
  return ask("call", { name, args }, name === "set_mapping" ? showProgress : undefined);
}

function size(bytes) {
  return bytes >= 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(1)} GB` : `${Math.round(bytes / 1024 ** 2)} MB`;
}

const ENCODINGS = [
  ["", "Detect automatically"],
  ["utf-8", "UTF-8"],
  ["utf-16", "UTF-16"],
  ["windows-1252", "Windows-1252 (Western)"],
  ["iso-8859-1", "ISO-8859-1 (Latin-1)"],
  ["shift_jis", "Shift-JIS (Japanese)"],
];

async function openFile(file, options = {}) {
  if (file.size > config.maxFileBytes) {
    // Refused before a byte is read: the limit is the operator's, the message the user's.
    showError(
      `${file.name} is ${size(file.size)}; this importer takes files up to ${size(config.maxFileBytes)}. ` +
        "Split the file or remove columns you don't need, and try again.",
    );
    return;
  }
  render(...busy(`Reading ${file.name}…`));
  try {
    const context = { publishableKey: config.publishableKey, templateId: config.templateId };
    const described = await ask("open", { file, template, context, options }, showProgress);
    showMapping(file, { ...described, options });
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
    const match = (described.matches || []).find((m) => m.field === field.name);
    const how = match
      ? match.source === "fuzzy"
        ? `likely match (${Math.round(match.confidence * 100)}%)`
        : match.source === "remembered"
          ? "as last time"
          : "exact match"
      : "";
    return el(
      "tr",
      {},
      el("td", { text: `${field.title || field.name}${required ? " *" : ""}` }),
      el("td", {}, select),
      el("td", { class: "muted match-source", id: `match-${field.name}`, text: how }),
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
    const missing = template.fields
      .filter((f) => f.constraints && f.constraints.required && !(f.name in mapping))
      .map((f) => f.title || f.name);
    if (missing.length) {
      notice.textContent = `Map a column to each required field: ${missing.join(", ")}.`;
      return;
    }
    render(...busy(`Checking ${described.rows} rows…`));
    try {
      const summary = await call("set_mapping", JSON.stringify(mapping));
      const confirmed = {};
      for (const [name, index] of Object.entries(mapping)) confirmed[name] = described.headers[index];
      showReview(file, { ...described, confirmed }, summary);
    } catch (error) {
      showError(error.message, () => showMapping(file, described));
    }
  };
  const notice = el("p", { id: "mapping-error", class: "error", role: "alert" });
  // A new sheet or encoding re-detects the header row; a new header row keeps the rest.
  const reopen = (change) => openFile(file, { ...described.options, ...change });
  const choices = el("div", { class: "toolbar", id: "file-choices" });
  if (described.sheets.length > 1) {
    const sheet = el("select", { id: "sheet-select", "aria-label": "Sheet" });
    for (const name of described.sheets) sheet.append(el("option", { value: name, text: name }));
    sheet.value = described.sheet;
    sheet.addEventListener("change", () => reopen({ sheet: sheet.value, header_row: "" }));
    choices.append(el("label", { text: "Sheet " }), sheet);
  }
  const headerRow = el("input", {
    id: "header-row",
    type: "number",
    min: "1",
    value: String(described.header_row),
    "aria-label": "Header row",
  });
  choices.append(
    el("label", { text: "Header row " }),
    headerRow,
    el("button", {
      id: "header-row-apply",
      class: "secondary",
      text: "Use this row",
      onclick: () => reopen({ header_row: headerRow.value }),
    }),
  );
  if (described.kind === "csv") {
    const encoding = el("select", { id: "encoding", "aria-label": "Encoding" });
    for (const [value, label] of ENCODINGS) encoding.append(el("option", { value, text: label }));
    encoding.value = described.options.encoding || "";
    encoding.addEventListener("change", () => reopen({ encoding: encoding.value, header_row: "" }));
    choices.append(
      el("label", { text: `Encoding (read as ${described.encoding}) ` }),
      encoding,
    );
  }
  const problems = described.problems.map((p) => el("li", { text: p.message }));
  if (described.problem_count > problems.length) {
    problems.push(el("li", { text: `…and ${described.problem_count - problems.length} more.` }));
  }
  render(
    el("p", { text: `${described.file}: ${described.rows} rows. Match your columns to ours.` }),
    choices,
    problems.length ? el("ul", { id: "file-problems", class: "warnings" }, ...problems) : null,
    el("table", { class: "mapping" }, el("tbody", {}, ...rows)),
    notice,
    el("button", { id: "map-continue", onclick: proceed, text: "Continue" }),
    el("h2", { text: "Your file" }),
    preview,
  );
}

// Review: a virtual grid over the worker's rows; only the visible window is fetched.
const ROW_HEIGHT = 30;
const OVERSCAN = 10;
// Browsers cap an element's height (Chromium at about 33.5M px: 1.1M rows of 30 px). Past
// this height the scrollbar is scaled: its position picks the row, the rows are drawn at
// their natural height around it. LOADBAY_GRID_MAX_PX lowers it (the tests do).
const MAX_SCROLL_PX = Number(globalThis.LOADBAY_GRID_MAX_PX) || 15_000_000;

function showReview(file, described, initial) {
  const shown = template.fields.filter((f) => initial.fields.includes(f.name));
  let summary = initial;
  let windowToken = 0;
  const selected = new Set();

  const summaryEl = el("p", { id: "summary" });
  const submitButton = el("button", { id: "submit", onclick: () => submit(file, described, summary) });
  const undoButton = el("button", { id: "undo", class: "secondary", text: "Undo", onclick: () => change(call("undo")) });
  const viewSelect = el(
    "select",
    { id: "view-filter", "aria-label": "Rows to show" },
    el("option", { value: "all", text: "All rows" }),
    el("option", { value: "errors", text: "Rows with errors" }),
  );
  const fieldSelect = el("select", { id: "filter-field", "aria-label": "Column" });
  const codeSelect = el("select", { id: "filter-code", "aria-label": "Problem" });
  const replaceField = el("select", { id: "replace-field", "aria-label": "Column to search" });
  for (const f of shown) replaceField.append(el("option", { value: f.name, text: f.title || f.name }));
  const findInput = el("input", { id: "find", placeholder: "Find", "aria-label": "Find" });
  const replaceInput = el("input", { id: "replace-with", placeholder: "Replace with", "aria-label": "Replace with" });
  const detail = el("p", { id: "cell-detail", class: "muted", text: "Double-click a cell to edit it." });

  const header = el(
    "div",
    { class: "grid-row grid-head" },
    el("span", { class: "cell cell-check" }),
    el("span", { class: "cell cell-num", text: "Row" }),
    ...shown.map((f) => el("span", { class: "cell", text: f.title || f.name })),
  );
  const spacer = el("div", { class: "grid-spacer" });
  const rowsEl = el("div", { class: "grid-rows" });
  const grid = el("div", { id: "grid", class: "grid", tabindex: "0" }, header, spacer, rowsEl);

  function fillFilters() {
    const keepField = fieldSelect.value;
    const keepCode = codeSelect.value;
    fieldSelect.replaceChildren(el("option", { value: "", text: "Any column" }));
    for (const [name, count] of Object.entries(summary.by_field)) {
      fieldSelect.append(el("option", { value: name, text: `${fieldLabel(name)} (${count})` }));
    }
    codeSelect.replaceChildren(el("option", { value: "", text: "Any problem" }));
    for (const [code, count] of Object.entries(summary.by_code)) {
      codeSelect.append(el("option", { value: code, text: `${code} (${count})` }));
    }
    fieldSelect.value = summary.by_field[keepField] ? keepField : "";
    codeSelect.value = summary.by_code[keepCode] ? keepCode : "";
  }

  function showSummary() {
    summaryEl.textContent =
      summary.error_count > 0
        ? `${summary.error_count} problem(s) in ${summary.rows_with_errors} of ${summary.rows} rows. Fix them below, or delete those rows.`
        : `All ${summary.rows} rows are valid.`;
    summaryEl.className = summary.error_count > 0 ? "error" : "ok";
    submitButton.disabled = summary.error_count > 0 || summary.rows === 0;
    submitButton.textContent =
      summary.error_count > 0 ? `Fix ${summary.error_count} problem(s) to submit` : `Submit ${summary.rows} rows`;
    undoButton.disabled = !summary.can_undo;
    spacer.style.height = `${Math.min(summary.view_rows * ROW_HEIGHT, MAX_SCROLL_PX)}px`;
    fillFilters();
  }

  async function change(promise) {
    try {
      summary = await promise;
      selected.clear();
      showSummary();
      await drawWindow();
    } catch (error) {
      detail.textContent = error.message;
    }
  }

  async function applyView() {
    const view = {
      errors_only: viewSelect.value === "errors",
      field: fieldSelect.value || null,
      code: codeSelect.value || null,
    };
    await change(call("set_view", JSON.stringify(view)));
    grid.scrollTop = 0;
  }

  function renderRow(row) {
    const check = el("input", { type: "checkbox", "aria-label": `Select row ${row.row}` });
    check.checked = selected.has(row.index);
    check.addEventListener("change", () => (check.checked ? selected.add(row.index) : selected.delete(row.index)));
    const cells = shown.map((f) => {
      const value = row.cells[f.name];
      const errors = row.errors[f.name] || [];
      const cell = el("span", {
        class: `cell${errors.length ? " cell-error" : ""}${row.edited.includes(f.name) ? " cell-edited" : ""}`,
        "data-field": f.name,
        "data-row": String(row.row),
        text: value == null ? "" : value,
      });
      if (errors.length) {
        cell.title = errors.join(" ");
        cell.dataset.error = errors.join(" ");
      }
      cell.addEventListener("click", () => {
        const label = `Row ${row.row}, ${f.title || f.name}: `;
        detail.replaceChildren(label + (errors.length ? errors.join(" ") : "no problems."));
        const fix = (row.fixes || {})[f.name];
        if (fix !== undefined) {
          detail.append(
            el("span", { id: "fix-proposal", text: ` Suggested: “${fix}”.` }),
            el("button", {
              id: "fix-apply",
              class: "secondary",
              text: "Apply",
              onclick: () => change(call("edit", row.index, f.name, JSON.stringify(fix))),
            }),
            el("button", {
              id: "fix-column",
              class: "secondary",
              text: `Fix all in ${f.title || f.name}`,
              onclick: () => change(call("fix_column", f.name)),
            }),
          );
        }
      });
      cell.addEventListener("dblclick", () => startEdit(cell, row, f, value));
      return cell;
    });
    return el(
      "div",
      { class: "grid-row", "data-index": String(row.index) },
      el("span", { class: "cell cell-check" }, check),
      el("span", { class: "cell cell-num", text: String(row.row) }),
      ...cells,
    );
  }

  function startEdit(cell, row, f, value) {
    const input = el("input", { class: "cell-input", value: value == null ? "" : value, "aria-label": `Edit ${f.title || f.name}, row ${row.row}` });
    let done = false;
    const finish = (commit) => {
      if (done) return;
      done = true;
      if (commit && input.value !== (value == null ? "" : value)) {
        change(call("edit", row.index, f.name, JSON.stringify(input.value)));
      } else {
        drawWindow();
      }
    };
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter") finish(true);
      if (event.key === "Escape") finish(false);
    });
    input.addEventListener("blur", () => finish(true));
    cell.replaceChildren(input);
    input.focus();
    input.select();
  }

  async function drawWindow() {
    const token = ++windowToken;
    const scroll = grid.scrollTop;
    const visible = Math.ceil(grid.clientHeight / ROW_HEIGHT);
    const total = summary.view_rows * ROW_HEIGHT;
    const scaled = total > MAX_SCROLL_PX;
    // The (fractional) row at the top of the view: scroll / ROW_HEIGHT, or, when scaled, the
    // same share of all rows as the scrollbar's share of its range.
    const range = grid.scrollHeight - grid.clientHeight;
    const top = scaled && range > 0
      ? (scroll / range) * Math.max(0, summary.view_rows - (grid.clientHeight - ROW_HEIGHT) / ROW_HEIGHT)
      : scroll / ROW_HEIGHT;
    const start = Math.max(0, Math.floor(top) - OVERSCAN);
    // Scaled, nothing is drawn below the view: rows there would stretch the scroll range.
    const count = Math.floor(top) - start + visible + (scaled ? 1 : OVERSCAN);
    const rows = await call("window", start, count);
    if (token !== windowToken) return; // a newer scroll position won
    let offset = scaled ? scroll + (start - top) * ROW_HEIGHT : start * ROW_HEIGHT;
    if (scaled) offset = Math.max(0, Math.min(offset, MAX_SCROLL_PX - rows.length * ROW_HEIGHT));
    rowsEl.style.transform = `translateY(${offset}px)`;
    rowsEl.replaceChildren(...rows.map(renderRow));
  }

  let scheduled = false;
  grid.addEventListener("scroll", () => {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(() => {
      scheduled = false;
      drawWindow();
    });
  });
  viewSelect.addEventListener("change", applyView);
  fieldSelect.addEventListener("change", applyView);
  codeSelect.addEventListener("change", applyView);

  render(
    summaryEl,
    el(
      "div",
      { class: "toolbar" },
      viewSelect,
      fieldSelect,
      codeSelect,
      undoButton,
      el("button", { id: "delete-selected", class: "secondary", text: "Delete selected rows", onclick: () => change(call("delete_rows", JSON.stringify([...selected]))) }),
      el("button", { id: "delete-error-rows", class: "secondary", text: "Delete all rows with errors", onclick: () => change(call("delete_rows_with_errors")) }),
    ),
    el(
      "div",
      { class: "toolbar" },
      replaceField,
      findInput,
      replaceInput,
      el("button", {
        id: "replace-apply",
        class: "secondary",
        text: "Replace in column",
        onclick: () => change(call("replace", replaceField.value, findInput.value, replaceInput.value)),
      }),
    ),
    grid,
    detail,
    el(
      "div",
      { class: "toolbar" },
      submitButton,
      el("button", { id: "back", class: "secondary", onclick: () => showMapping(file, described), text: "Change mapping" }),
    ),
  );
  showSummary();
  drawWindow();
}

async function submit(file, described, summary) {
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
        rows: summary.rows,
        headers: described.headers,
        mapping: described.confirmed,
      },
      ({ done, total }) => {
        bar.max = String(total);
        bar.value = String(done);
        status.textContent = `Uploaded ${done} of ${total} batch(es)…`;
      },
    );
    status.textContent = "Delivering…";
    await watch(result.importId, result.token, summary.rows, status);
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
